// StateMask's fidelity test (ts/ultra/fidelity.ts): the scoring math, and the sidecar's segment_returns op on a real
// env. What this proves: scores follow log(d/d_max) − log(l/L) with segments clipped into the episode; the op restores
// one snapshot into every sub-env so that rollouts are paired (the policy's own actions inside the segment give
// exactly the baseline's return, which equals the rest of the collected episode's raw return). It does not prove
// that any selector finds states that matter: that needs a trained policy (run `ultra fidelity` on a real run).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sidecar } from "../ts/bridge/sidecar.js";
import { NDArray } from "../ts/protocol.js";
import { collectEpisodes } from "../ts/ultra/episodes.js";
import { fidelityScore, MIN_RELATIVE_D, randomActions, segmentOf, summarize, type Score } from "../ts/ultra/fidelity.js";
import { startSidecar, TINY_PPO } from "./helpers.js";

describe("fidelity scoring", () => {
  it("places a segment of round(k·L) steps at the step, moved back to fit in the episode", () => {
    expect(segmentOf(10, 100, 0.2)).toEqual({ start: 10, l: 20 });
    expect(segmentOf(95, 100, 0.2)).toEqual({ start: 80, l: 20 });
    expect(segmentOf(0, 3, 0.1)).toEqual({ start: 0, l: 1 }); // at least one step
  });

  it("scores log(d/d_max) − log(l/L): the largest d of a 10% segment scores −log 0.1; d = 0 is floored", () => {
    expect(fidelityScore(5, 5, 10, 100)).toBeCloseTo(Math.log(10), 12);
    expect(fidelityScore(1, 4, 40, 100)).toBeCloseTo(Math.log(0.25) - Math.log(0.4), 12);
    expect(fidelityScore(0, 4, 10, 100)).toBeCloseTo(Math.log(MIN_RELATIVE_D) + Math.log(10), 12);
  });

  it("summarises per selector and k with a 95% CI (none from one score)", () => {
    const s = (selector: string, k: number, fidelity: number): Score => ({ selector, episode: 0, step: 0, start: 0, k, l: 1, L: 10, d: 1, d_max: 1, fidelity });
    const sum = summarize([s("a", 0.1, 1), s("a", 0.1, 3), s("a", 0.2, 2), s("b", 0.1, 0)], [0.1, 0.2]);
    expect(sum.a.by_k["0.1"].mean).toBe(2);
    expect(sum.a.by_k["0.1"].ci95).toBeCloseTo(12.706 * Math.SQRT1_2 * Math.SQRT2, 3); // t(0.975, 1)·s/√2, s = √2
    expect(sum.a.by_k["0.2"]).toEqual({ mean: 2, ci95: null, n: 1 });
    expect(sum.a.all.n).toBe(3);
    expect(sum.b.by_k["0.2"].n).toBe(0);
  });

  it("draws the same random actions for the same seed, within the action space", () => {
    const box = { type: "Box", shape: [2], low: [-1, 0], high: [1, 2] };
    const a = randomActions(box, 3, 4, 7);
    expect(a.shape).toEqual([3, 4, 2]);
    expect(a.toNumbers()).toEqual(randomActions(box, 3, 4, 7).toNumbers());
    a.toNumbers().forEach((x, i) => expect(x).toBeGreaterThanOrEqual(box.low[i % 2]) && expect(x).toBeLessThanOrEqual(box.high[i % 2]));
    const d = randomActions({ type: "Discrete", shape: [], n: 2 }, 2, 50, 1).toNumbers();
    expect(new Set(d)).toEqual(new Set([0, 1]));
  });
});

describe("segment_returns (real sidecar)", () => {
  let sc: Sidecar;
  beforeAll(async () => {
    sc = await startSidecar();
  });
  afterAll(async () => {
    await sc?.close();
  });

  it("pairs its rollouts: the policy's own actions in the segment give the baseline, the rest of the episode's raw return", async () => {
    const { env } = await sc.call("env_make", { spec: { env_id: "CartPole-v1", n_envs: 1, seed: 3 } });
    const { model } = await sc.call("model_new", { env, ppo: TINY_PPO });
    const [ep] = await collectEpisodes(sc, { model, env, episodes: 1, deterministic: true });
    const start = Math.floor(ep.length / 3);
    const l = Math.max(1, Math.min(5, ep.length - start - 1));
    const own = ep.actions.toNumbers().slice(start, start + l);
    const m = 2;
    const { env: seg } = await sc.call("env_make", { spec: { env_id: "CartPole-v1", n_envs: m + 1, seed: 9 } });
    const actions = new NDArray("int64", [m, l], BigInt64Array.from([...own, ...own].map(BigInt)));
    const r = await sc.call("segment_returns", { model, env: seg, snapshot: ep.snapshots[start], actions, horizon: 1000 });
    const rest = ep.rewards.toNumbers().slice(start).reduce((a, b) => a + b, 0);
    expect(r.returns.toNumbers()).toEqual([rest, rest, rest]);
    expect(r.env_steps).toBe((m + 1) * (ep.length - start));

    // random actions: one return per rollout, each a whole number of CartPole's +1 steps
    const rnd = await sc.call("segment_returns", { model, env: seg, snapshot: ep.snapshots[start], actions: randomActions({ type: "Discrete", shape: [], n: 2 }, m, l, 5), horizon: 1000 });
    expect(rnd.returns.shape).toEqual([m + 1]);
    expect(rnd.returns.data[0]).toBe(rest);
    for (const x of rnd.returns.toNumbers()) expect(Number.isInteger(x) && x >= 1).toBe(true);

    await expect(sc.call("segment_returns", { model, env: seg, snapshot: ep.snapshots[start], actions: NDArray.float32([0, 1], [2, 1, 1]), horizon: 10 })).rejects.toThrow(/per-step shape/);
  }, 60_000);
});
