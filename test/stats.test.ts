// The paired comparison of an arm with continue PPO over shared seeds, and the sweep report's rule that arms of
// one env are compared only over the seeds where every arm has a result; across tasks, rliable's probability of
// improvement from the sidecar. No training: fixed numbers.
import { describe, expect, it } from "vitest";
import { acrossTasks, envTable, improvementPairs, type SeedResult } from "../ts/sweep/report.js";
import { acrossParts } from "../ts/sweep/across.js";
import type { Improvement } from "../ts/bridge/ops.js";
import { startSidecar } from "./helpers.js";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { identicalArms, matchWarnings } from "../ts/ultra/phases/report.js";
import { RunDir } from "../ts/ultra/rundir.js";
import { betaInc, ci95Factor, median, pairedDiff, tTwoSidedP } from "../ts/ultra/stats.js";

describe("Student's t and the incomplete beta function", () => {
  it("matches known values", () => {
    expect(betaInc(2, 3, 0.4)).toBeCloseTo(0.5248, 10); // a binomial sum: 6·.4²·.6² + 4·.4³·.6 + .4⁴
    expect(betaInc(0.5, 0.5, 0.3)).toBeCloseTo((2 / Math.PI) * Math.asin(Math.sqrt(0.3)), 10); // the arcsine law
    expect(tTwoSidedP(2, 5)).toBeCloseTo(0.1019395, 6);
    expect(tTwoSidedP(3.182, 3)).toBeCloseTo(0.0500171, 6);
    expect(tTwoSidedP(-2.5, 10)).toBeCloseTo(0.0314468, 6);
    expect(tTwoSidedP(40, 3)).toBeCloseTo(3.438068e-5, 9);
    expect(tTwoSidedP(1, 1)).toBeCloseTo(0.5, 12); // Cauchy: P(|T| ≥ 1) = 1/2
    expect(tTwoSidedP(0, 4)).toBe(1);
    expect(tTwoSidedP(2, 0)).toBeNaN();
  });

  it("the CI's t quantile agrees with the p-value: p = 0.05 at the CI's bound, past the table too", () => {
    for (const n of [2, 4, 10, 21, 22, 31, 61, 200]) expect(tTwoSidedP(ci95Factor(n) * Math.sqrt(n), n - 1)).toBeCloseTo(0.05, 3);
  });
});

describe("median", () => {
  it("is the middle value, or the mean of the two middle ones, whatever the input order; the input is left as it was", () => {
    const xs = [3, -1, 10, 2];
    expect(median(xs)).toBe(2.5);
    expect(xs).toEqual([3, -1, 10, 2]);
    expect(median([5, 1, 4])).toBe(4);
    expect(median([10, 9, 100])).toBe(10); // numeric order, not the default sort's string order
  });
});

describe("pairedDiff", () => {
  it("gives the mean difference, the paired t CI and p, and the wins", () => {
    // differences 1, 2, 2, 3: mean 2, s = √(2/3), t = 2 / (s / 2) = 4.899 with df 3
    const d = pairedDiff([1, 2, 3, 4], [0, 0, 1, 1]);
    expect(d.n).toBe(4);
    expect(d.diffs).toEqual([1, 2, 2, 3]);
    expect(d.mean).toBe(2);
    const half = (3.182 / 2) * Math.sqrt(2 / 3);
    expect(d.ci[0]).toBeCloseTo(2 - half, 10);
    expect(d.ci[1]).toBeCloseTo(2 + half, 10);
    expect(d.p).toBeCloseTo(0.0162766, 6);
    expect(d.wins).toBe(4);
  });

  it("counts only seeds where the arm was higher, and a mixed sign gives a CI around 0", () => {
    const d = pairedDiff([10, 8, 12], [9, 9, 12]); // differences 1, −1, 0
    expect(d.wins).toBe(1);
    expect(d.mean).toBe(0);
    expect(d.p).toBeCloseTo(1, 12);
    expect(d.ci[0]).toBeCloseTo(-4.303 / Math.sqrt(3), 10); // s = 1: t(0.975, 2) / √3
    expect(d.ci[1]).toBeCloseTo(4.303 / Math.sqrt(3), 10);
  });

  it("is NaN for CI and p with fewer than 2 seeds", () => {
    const one = pairedDiff([5], [3]);
    expect(one).toMatchObject({ n: 1, mean: 2, wins: 1 });
    expect(one.ci[0]).toBeNaN();
    expect(one.ci[1]).toBeNaN();
    expect(one.p).toBeNaN();
    const none = pairedDiff([], []);
    expect(none.n).toBe(0);
    expect(none.mean).toBeNaN();
    expect(none.p).toBeNaN();
  });

  it("identical arms: differences all 0, p = 1; a constant shift: p = 0", () => {
    expect(pairedDiff([1, 2, 3], [1, 2, 3])).toMatchObject({ mean: 0, ci: [0, 0], p: 1, wins: 0 });
    expect(pairedDiff([2, 3, 4], [1, 2, 3])).toMatchObject({ mean: 1, p: 0, wins: 3 });
    expect(() => pairedDiff([1, 2], [1])).toThrow(/same seeds/);
  });
});

describe("the sweep report's table of one env, with a failed trial", () => {
  // seeds 0–2; the trial training ULTRA-R on seed 1 failed, so ULTRA-R has no result there
  const means: Record<string, number[]> = {
    base: [10, 20, 30],
    continue_ppo: [12, 21, 33],
    ultra_RA: [15, 22, 36],
    ultra_R: [11, NaN, 35],
  };
  const result = (arm: string, seed: number): SeedResult =>
    arm === "ultra_R" && seed === 1
      ? { missing: "trial Hopper-R-s1 failed" }
      : { mean: means[arm][seed], returns: [means[arm][seed], seed] };
  const t = envTable(["base", "ultra_RA", "ultra_R", "continue_ppo"], [0, 1, 2], result);

  it("compares every arm over the seeds all arms have, and lists the dropped seed with the arm that failed", () => {
    expect(t.seeds).toEqual([0, 2]);
    expect(t.dropped).toEqual([{ seed: 1, missing: [{ arm: "ultra_R", why: "trial Hopper-R-s1 failed" }] }]);
    for (const r of t.rows) expect(r.seeds).toEqual([0, 2]);
    const row = (arm: string) => t.rows.find((r) => r.arm === arm)!;
    expect(row("ultra_RA").returns).toEqual([15, 36]);
    expect(row("ultra_RA").mean).toBe(25.5); // not (15 + 22 + 36) / 3
    expect(row("base").mean).toBe(20);
    expect(row("ultra_R").mean).toBe(23);
    const text = t.lines.join("\n");
    expect(text).toContain(
      "Compared over seeds 0, 2, where every arm has a result; dropped: seed 1 (ULTRA-R (ultra_R): trial Hopper-R-s1 failed).",
    );
    expect(text).toMatch(/^\| ULTRA-RA \(ultra_RA\) \| 2 \| 25\.5 ± 14\.8 \| \[-107\.9, 158\.9\] \| 15\.0, 36\.0 \|$/m);
  });

  it("names each unfinished trial of a dropped seed once, not once per arm it holds", () => {
    const why: Record<string, string> = {
      base: "trial Hopper-RA-s0 running, trial Hopper-R-s0 failed",
      ultra_RA: "trial Hopper-RA-s0 running",
      continue_ppo: "trial Hopper-RA-s0 running",
      ultra_R: "trial Hopper-R-s0 failed",
    };
    const open = envTable(["base", "ultra_RA", "ultra_R", "continue_ppo"], [0], (arm) => ({ missing: why[arm] }));
    expect(open.lines[0]).toBe(
      "Compared over seeds none, where every arm has a result; dropped: seed 0 (trial Hopper-RA-s0 running; " +
        "base policy (no refinement), ULTRA-R (ultra_R): trial Hopper-R-s0 failed).",
    );
  });

  it("pairs each arm with continue PPO over the same seeds: difference, CI, p, wins, the test named", () => {
    // ULTRA-RA − continue PPO on seeds 0 and 2: 3, 3 → no spread; ULTRA-R: −1, 2 → mean 0.5, s = 2.121
    expect(t.paired.ultra_RA).toMatchObject({ n: 2, diffs: [3, 3], mean: 3, p: 0, wins: 2 });
    expect(t.paired.ultra_R.diffs).toEqual([-1, 2]);
    expect(t.paired.ultra_R.ci[1]).toBeCloseTo(0.5 + (12.706 * Math.sqrt(4.5)) / Math.sqrt(2), 10);
    expect(t.paired.ultra_R.p).toBeCloseTo(0.795167, 5); // t = 0.5 / 1.5 = 1/3, df 1: 1 − (2/π)·atan(1/3)
    expect(Object.keys(t.paired)).toEqual(["ultra_RA", "ultra_R"]);
    const text = t.lines.join("\n");
    expect(text).toContain("### Difference to continue PPO, paired by seed");
    expect(text).toMatch(/^\| ULTRA-R \(ultra_R\) \| \+0\.50 \| \[-18\.6, 19\.6\] \| 0\.795 \| 1\/2 \| -1\.00, \+2\.00 \|$/m);
    expect(text).toContain("Test: paired t-test, two-sided");
  });

  it("pairs each ULTRA arm with the reset-only arm too (what the advice adds), and only when that arm is there", () => {
    const arms = { base: [1, 1, 1], ultra_A: [5, 9, 4], ultra_R: [6, 7, 8], continue_ppo: [4, 4, 4], rice_reset: [6, 8, 2] };
    const r = envTable(Object.keys(arms), [0, 1, 2], (arm, seed) => ({
      mean: arms[arm as keyof typeof arms][seed],
      returns: [arms[arm as keyof typeof arms][seed]],
    }));
    expect(Object.keys(r.advice)).toEqual(["ultra_A", "ultra_R"]); // not continue PPO's, not the reset arm's own
    expect(r.advice.ultra_A).toMatchObject({ diffs: [-1, 1, 2], wins: 2, n: 3 });
    expect(r.advice.ultra_R.diffs).toEqual([0, -1, 6]);
    expect(r.paired.ultra_A.diffs).toEqual([1, 5, 0]); // the continue-PPO pairing is unchanged beside it
    const text = r.lines.join("\n");
    expect(text).toContain("### What the advice adds: difference to the reset-only arm, paired by seed");
    expect(text).toMatch(/^\| ULTRA-A \(ultra_A\) \| \+0\.67 \| .* \| 2\/3 \| -1\.00, \+1\.00, \+2\.00 \|$/m);
    expect(t.advice).toEqual({}); // no reset-only arm in the table above
    expect(t.lines.join("\n")).not.toContain("What the advice adds");
  });

  it("warns when two arms have identical returns, and says so when continue PPO is not an arm", () => {
    const same = envTable(["base", "ultra_RA", "ultra_R"], [0, 1], (_arm, seed) => ({ mean: seed, returns: [seed, 1] }));
    const text = same.lines.join("\n");
    expect(text).toContain("**Warning: ULTRA-RA (ultra_RA) and ULTRA-R (ultra_R) have identical evaluation returns");
    expect(text).not.toMatch(/base policy \(no refinement\) and/);
    expect(text).toContain("continue PPO is not among the arms");
    expect(same.dropped).toEqual([]);
    expect(text).not.toContain("dropped");
  });
});

describe("identicalArms (the per-run report's warning)", () => {
  it("groups arms whose returns are equal episode by episode, not those merely equal in mean", () => {
    const r = {
      continue_ppo: [1, 2, 3],
      ultra_RA: [1, 2, 3],
      ultra_R: [3, 2, 1],
      rice_reset: [1, 2, 3],
      random_critical: [1, 2],
      ultra_A: [],
    };
    expect(identicalArms(r)).toEqual([["continue_ppo", "ultra_RA", "rice_reset"]]);
    expect(identicalArms({ ultra_A: [], ultra_R: [] })).toEqual([]);
  });
});

describe("matchWarnings (the per-run report's check of the calibrated radius)", () => {
  const stats = (matched: number, near: number, restored = 10) => ({
    matched_steps: matched,
    near_steps: near,
    restored_start_matches: restored,
    overridden_actions: matched,
    reward_added_steps: matched,
    critical_resets: restored,
  });
  const runWith = (arms: Record<string, ReturnType<typeof stats>[] | null[]>) => {
    const run = new RunDir(mkdtempSync(join(tmpdir(), "ultra-match-")));
    for (const [arm, modulation] of Object.entries(arms))
      run.writeJson(`${arm.startsWith("ultra_") ? "refined" : `baselines/${arm}`}/progress.json`, {
        steps_done: 20480,
        curve: [],
        modulation,
      });
    return run;
  };

  it("warns when ULTRA-R matched its states but never paid its reward (then it is the reset arm), not when it paid", () => {
    const unpaid = { ...stats(968, 968, 73), overridden_actions: 0, reward_added_steps: 0 }; // the dense HalfCheetah seed 0
    const w = matchWarnings(runWith({ ultra_R: [unpaid] }), ["ultra_R"], 0.01).join("\n");
    expect(w).toMatch(/ULTRA-R \(ultra_R\) paid its reward at none of its 968 matches/);
    const paid = { ...unpaid, reward_added_steps: 12 };
    expect(matchWarnings(runWith({ ultra_R: [paid] }), ["ultra_R"], 0.01).join("\n")).not.toMatch(/paid its reward/);
    // RA overrides the action, so it always pays: no such warning
    expect(matchWarnings(runWith({ ultra_RA: [unpaid] }), ["ultra_RA"], 0.01).join("\n")).not.toMatch(/paid its reward/);
  });

  it("warns when an arm was held at or drawn to critical states far beyond the calibration, not otherwise", () => {
    // the quick HalfCheetah run's collapse: 17,609 of 20,480 steps modulated, calibrated for 1%
    const run = runWith({
      ultra_RA: [stats(9000, 9000), stats(8609, 8609)],
      rice_reset: [stats(100, 300)],
      random_critical: [stats(40, 2000)],
      continue_ppo: [null],
    });
    const arms = ["ultra_RA", "rice_reset", "random_critical", "continue_ppo"];
    const w = matchWarnings(run, arms, 0.01);
    expect(w).toHaveLength(2);
    expect(w[0]).toMatch(/ULTRA-RA.* modulated at 85\.9\d*% of its steps at states it reached itself/);
    expect(w[1]).toMatch(
      /ULTRA-RA.* spent 86\.0?% of its steps near critical states \(the base policy 1%, the RICE-style reset arm 1\.46\d*%\)/,
    );
    expect(matchWarnings(run, arms, null)).toEqual([]); // a radius as configured was not calibrated against anything
  });

  it("does not blame the advice for what resets explain", () => {
    // Hopper smoke: short episodes restored at the states keep every reset arm near them ~6% of the time
    const run = runWith({ ultra_RA: [stats(64 * 10, 140 * 10, 28 * 10)], rice_reset: [stats(59 * 10, 116 * 10, 28 * 10)] });
    expect(matchWarnings(run, ["ultra_RA", "rice_reset"], 0.01)).toEqual([]);
  });
});

describe("the sweep report across tasks: rliable's probability of improvement over a real sidecar", () => {
  // two tasks with 3 seeds, one with 2: the one with fewer compared seeds cannot fill a runs × tasks matrix
  const returns: Record<string, Record<string, number[]>> = {
    "HalfCheetah-v4": { base: [1, 1, 1], ultra_RA: [10, 11, 12], rice: [5, 6, 7], continue_ppo: [20, 21, 22] },
    "Hopper-v4": { base: [1, 1, 1], ultra_RA: [30, 31, 32], rice: [5, 6, 7], continue_ppo: [20, 21, 22] },
    "Walker2d-v4": { base: [1, 1], ultra_RA: [1, 2], rice: [1, 2], continue_ppo: [1, 2] },
  };
  const tables = Object.entries(returns).map(([env, arms]) => ({
    env,
    table: envTable(Object.keys(arms), [0, 1, 2].slice(0, arms.base.length), (arm, seed) => ({
      mean: arms[arm][seed],
      returns: [arms[arm][seed]],
    })),
  }));

  it("asks every refined arm against continue PPO and each ULTRA arm against RICE and the reset-only arm", () => {
    expect(improvementPairs(["base", "ultra_RA", "ultra_R", "continue_ppo", "rice"])).toEqual([
      ["ultra_RA", "continue_ppo"],
      ["ultra_R", "continue_ppo"],
      ["rice", "continue_ppo"],
      ["ultra_RA", "rice"],
      ["ultra_R", "rice"],
    ]);
    expect(improvementPairs(["base", "ultra_A", "continue_ppo", "rice_reset"])).toEqual([
      ["ultra_A", "continue_ppo"],
      ["rice_reset", "continue_ppo"],
      ["ultra_A", "rice_reset"],
    ]);
    expect(improvementPairs(["base", "ultra_RA"])).toEqual([]);
  });

  it("averages P(X > Y) over the tasks with the most seeds, names the task left out, and is the same on a rerun", async () => {
    const sc = await startSidecar();
    try {
      const got = (await acrossTasks(tables, sc))!;
      const again = (await acrossTasks(tables, sc))!;
      expect(again).toEqual(got);
      const s = got.summary as { tasks: string[]; seeds: number; left_out: string[]; pairs: Record<string, Improvement> };
      expect(s.tasks).toEqual(["HalfCheetah-v4", "Hopper-v4"]);
      expect(s.seeds).toBe(3);
      expect(s.left_out).toEqual(["Walker2d-v4"]);
      // ULTRA-RA loses every run on HalfCheetah and wins every run on Hopper: 0 and 1, averaged ½
      expect(s.pairs["ultra_RA>continue_ppo"].tasks.map((t) => t.p)).toEqual([0, 1]);
      expect(s.pairs["ultra_RA>continue_ppo"].p).toBe(0.5);
      expect(s.pairs["rice>continue_ppo"]).toMatchObject({ p: 0, ci: [0, 0] });
      const text = got.lines.join("\n");
      expect(text).toContain("| X | Y | HalfCheetah-v4 | Hopper-v4 | all tasks |");
      expect(text).toMatch(
        /^\| ULTRA-RA \(ultra_RA\) \| continue PPO \(same budget\) \| 0\.00 \[0\.00, 0\.00\] \| 1\.00 \[1\.00, 1\.00\] \| 0\.50 \[0\.\d\d, 0\.\d\d\] \|$/m,
      );
      expect(text).toContain("left out (fewer compared seeds): Walker2d-v4 (2)");
      const oneSeed = envTable(["base", "ultra_RA", "continue_ppo"], [0], () => ({ mean: 1, returns: [1] }));
      expect(await acrossTasks([{ env: "Hopper-v4", table: oneSeed }], sc)).toBeNull(); // one seed: nothing to resample
    } finally {
      await sc.close();
    }
  }, 120_000);
});

describe("ultra across: the replication's parts (their summary.json files) side by side, over a real sidecar", () => {
  // a part's summary.json as sweepReport writes it, per task: seeds, arms, paired_vs_continue_ppo
  const part = (root: string, name: string, tasks: Record<string, Record<string, number[]>>) => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    const summary = Object.fromEntries(
      Object.entries(tasks).map(([env, arms]) => {
        const t = envTable(Object.keys(arms), [0, 1, 2], (arm, seed) => ({ mean: arms[arm][seed], returns: [arms[arm][seed]] }));
        const reference = env === "Hopper-v4" ? { returns: { "PPO fine-tune": { mean: 3638.75 }, RICE: { mean: 3663.91 } } } : null;
        return [env, { seeds: t.seeds, arms: t.rows, paired_vs_continue_ppo: t.paired, reference }];
      }),
    );
    writeFileSync(join(dir, "summary.json"), JSON.stringify({ ...summary, across_tasks: {} }));
    return dir;
  };

  it("averages a pair over the tasks that have both its arms, and tabulates each task's paired differences", async () => {
    const root = mkdtempSync(join(tmpdir(), "ultra-across-"));
    const dense = part(root, "dense", {
      "Hopper-v4": { base: [1, 1, 1], ultra_RA: [30, 31, 32], rice: [5, 6, 7], continue_ppo: [20, 21, 22] },
    });
    // Pong has no RICE arm: RICE's pairs must use Hopper alone, ULTRA-RA's both tasks
    const pong = part(root, "pong", { "ALE/Pong-v5": { base: [-21, -21, -21], ultra_RA: [-21, -21, -21], continue_ppo: [-20, -20, -20] } });
    const sc = await startSidecar();
    try {
      const out = join(root, "across");
      const { report } = await acrossParts([dense, pong], out, sc);
      const s = JSON.parse(readFileSync(join(out, "across.json"), "utf8")) as {
        across_tasks: { tasks: string[]; pairs: Record<string, Improvement & { on: string[] }> };
      };
      expect(s.across_tasks.tasks).toEqual(["Hopper-v4", "ALE/Pong-v5"]);
      // ULTRA-RA wins every Hopper run and loses every Pong run: ½ over both
      expect(s.across_tasks.pairs["ultra_RA>continue_ppo"]).toMatchObject({ p: 0.5, on: ["Hopper-v4", "ALE/Pong-v5"] });
      expect(s.across_tasks.pairs["rice>continue_ppo"]).toMatchObject({ p: 0, ci: [0, 0], on: ["Hopper-v4"] });
      const text = readFileSync(report, "utf8");
      expect(text).toContain("| Hopper-v4 | dense | 3 | 1.00 | 21.00 | +10.00 [10.00, 10.00] 3/3 | -15.00 [-15.00, -15.00] 0/3 | +25.16 |");
      expect(text).toContain("| ALE/Pong-v5 | pong | 3 | -21.00 | -20.00 | -1.00 [-1.00, -1.00] 0/3 | – | – |");
      expect(text).toMatch(
        /^\| RICE \(mask-net critical states \+ RND\) \| continue PPO \(same budget\) \| 0\.00 \[0\.00, 0\.00\] \| – \| 0\.00 \[0\.00, 0\.00\] \(1\) \|$/m,
      );
      expect(text).toContain("- ULTRA-RA: mean ahead of continue PPO on 1 of 2 tasks; CI above 0 on 1, below 0 on 1.");
      // a task in two parts would count twice; a directory without a summary is not a part
      await expect(acrossParts([dense, dense], out, sc)).rejects.toThrow(/Hopper-v4 is in both .* leave one part out/);
      await expect(acrossParts([root], out, sc)).rejects.toThrow(/has no summary\.json: name a sweep's --out directory/);
      // a summary that is not JSON, one that is not a sweep's, and one that names no task
      const bad = (name: string, text: string) => {
        mkdirSync(join(root, name));
        writeFileSync(join(root, name, "summary.json"), text);
        return join(root, name);
      };
      await expect(acrossParts([bad("torn", '{"Hopper-v4": {')], out, sc)).rejects.toThrow(/summary\.json is not JSON .* --report-only/);
      await expect(acrossParts([bad("other", '{"Hopper-v4": {"mean": 1}}')], out, sc)).rejects.toThrow(
        /task Hopper-v4 has no seeds, arms and paired_vs_continue_ppo: is it a sweep's summary\.json\?/,
      );
      await expect(acrossParts([bad("empty", '{"across_tasks": {}}')], out, sc)).rejects.toThrow(/no task in .*empty/);
    } finally {
      await sc.close();
    }
  }, 120_000);
});
