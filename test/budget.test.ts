// Equal budgets (ts/ultra/budget.ts) and the adviser reward's unit (ts/ultra/modulation.ts): pure functions, no training.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { armBudgets, prepSteps } from "../ts/ultra/budget.js";
import { CriticalStatesFile } from "../ts/ultra/critical.js";
import { addRewards, emptyMoments, rewardUnitOf } from "../ts/ultra/modulation.js";

const ARMS = ["ultra_RA", "continue_ppo", "rice_reset", "random_critical"];
const IDENTIFY = { collect: 20_000, adviser: 7_350, verify: 61_440 };

describe("budget", () => {
  it("env_steps: every arm's preparation + improve steps are the same total", () => {
    const b = armBudgets(ARMS, 1_000_000, "env_steps", IDENTIFY);
    const totals = ARMS.map((a) => b[a].prep_env_steps + b[a].improve_steps);
    expect(new Set(totals).size).toBe(1);
    expect(totals[0]).toBe(1_000_000 + 20_000 + 7_350 + 61_440);
    expect(b.ultra_RA.improve_steps).toBe(1_000_000); // the arm that prepared most trains improve.steps
    expect(b.continue_ppo).toEqual({ prep_env_steps: 0, improve_steps: 1_088_790 });
    expect(b.random_critical).toEqual({ prep_env_steps: 20_000, improve_steps: 1_068_790 });
    expect(b.rice_reset).toEqual(b.ultra_RA);
  });

  it("env_steps without an arm that uses identify's states: nothing to make up", () => {
    const b = armBudgets(["continue_ppo", "random_critical"], 5000, "env_steps", IDENTIFY);
    expect(b.random_critical.improve_steps).toBe(5000);
    expect(b.continue_ppo.improve_steps).toBe(25_000);
  });

  it("the rice arm's preparation is its mask net's training, counted like identify's", () => {
    const b = armBudgets(["ultra_RA", "rice"], 10_000, "env_steps", IDENTIFY, 300_000);
    expect(b.rice.prep_env_steps).toBe(300_000);
    expect(b.ultra_RA.prep_env_steps + b.ultra_RA.improve_steps).toBe(b.rice.prep_env_steps + b.rice.improve_steps);
    expect(armBudgets(["rice"], 10_000, "env_steps", IDENTIFY).rice.prep_env_steps).toBe(0); // a mask net given: nothing trained
    expect(armBudgets(["ultra_RA", "rice_random"], 10_000, "env_steps", IDENTIFY, 300_000).rice_random.prep_env_steps).toBe(0); // no mask net
  });

  it("chargeMask false: the mask net's training is reported as rice's preparation but not matched", () => {
    const b = armBudgets(["ultra_RA", "continue_ppo", "rice"], 10_000, "env_steps", IDENTIFY, 300_000, false);
    expect(b.rice).toEqual({ prep_env_steps: 300_000, improve_steps: b.continue_ppo.improve_steps });
    expect(b.ultra_RA.improve_steps).toBe(10_000); // identify is still the most any arm drew on
    expect(b.continue_ppo.improve_steps).toBe(10_000 + 20_000 + 7_350 + 61_440);
  });

  it("updates: every arm trains improve.steps, and its preparation is still counted", () => {
    const b = armBudgets(ARMS, 20_000, "updates", IDENTIFY);
    expect(ARMS.map((a) => b[a].improve_steps)).toEqual([20_000, 20_000, 20_000, 20_000]);
    expect(ARMS.map((a) => b[a].prep_env_steps)).toEqual([88_790, 0, 88_790, 20_000]);
  });

  it("an arm without a defined preparation cost is an error naming it", () => {
    expect(() => prepSteps("mystery", IDENTIFY)).toThrow('arm "mystery"');
  });
});

describe("reward unit", () => {
  it("is the std of the raw per-step rewards over every episode", () => {
    const m = emptyMoments();
    addRewards(m, [1, 3]);
    addRewards(m, Float32Array.from([1, 3, 1, 3]));
    expect(rewardUnitOf(m)).toEqual({ value: 1, steps: 6, basis: "std" });
  });

  it("falls back to mean |r| where every step earned the same, and to 1.0 where that is 0 too", () => {
    const same = emptyMoments();
    addRewards(same, [-2, -2, -2]);
    expect(rewardUnitOf(same)).toEqual({ value: 2, steps: 3, basis: "mean_abs" });
    const zero = emptyMoments();
    addRewards(zero, [0, 0]);
    expect(rewardUnitOf(zero)).toEqual({ value: 1, steps: 2, basis: "fallback" });
    expect(rewardUnitOf(emptyMoments())).toEqual({ value: 1, steps: 0, basis: "fallback" });
  });

  it("a critical_states.json from an older identify names the missing fields and says to re-run identify", () => {
    const old = {
      env_id: "Hopper-v5",
      adviser: "rollout",
      states: [],
      counts: { proposed: 0, valid: 0, clipped: 0, rejected: 0, rejections: {} },
      radius: { states: 0.1, random: 0.1, match_fraction: null },
    };
    const r = CriticalStatesFile.safeParse(old);
    expect(r.success).toBe(false);
    const text = z.prettifyError(r.error!);
    expect(text).toContain("reward_unit is missing");
    expect(text).toContain("env_steps is missing");
    expect(text).toContain("re-run identify");
  });
});
