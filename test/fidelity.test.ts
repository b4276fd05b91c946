// StateMask's fidelity test (ts/ultra/fidelity.ts): the scoring math, and the sidecar's segment_returns op on a real
// env. What this proves: scores follow log(d/d_max) − log(l/L) with segments clipped into the episode; the op restores
// one snapshot into every sub-env so that rollouts are paired (the policy's own actions inside the segment give
// exactly the baseline's return, which equals the rest of the collected episode's raw return); and, end to end on a
// CartPole run whose critical steps are known by construction, that the test ranks them above random and late steps.
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sidecar } from "../ts/bridge/sidecar.js";
import { resolveEnv } from "../ts/config.js";
import { pythonPath } from "../ts/paths.js";
import { NDArray } from "../ts/protocol.js";
import { loadModel, type RunContext } from "../ts/ultra/context.js";
import { collectEpisodes } from "../ts/ultra/episodes.js";
import { explain } from "../ts/ultra/explain.js";
import {
  fidelity,
  fidelityScore,
  maskSegmentStart,
  MIN_RELATIVE_D,
  randomActions,
  segmentOf,
  summarize,
  type Score,
} from "../ts/ultra/fidelity.js";
import { episodeFile } from "../ts/ultra/phases/identify.js";
import { RunDir } from "../ts/ultra/rundir.js";
import type { Settings } from "../ts/ultra/settings.js";
import { readJson, startSidecar, TINY_PPO } from "./helpers.js";

/** Sets a linear policy's action logits to [0, 0.01·x + 0.1·ẋ + θ + 0.5·θ̇]: its deterministic action pushes the cart
 * right when the pole falls right (the classic pole-balancing controller), which balances CartPole for all 500 steps. */
const BALANCE = `
import io, sys, zipfile, torch
path = sys.argv[1]
with zipfile.ZipFile(path) as z:
    files = {n: z.read(n) for n in z.namelist()}
sd = torch.load(io.BytesIO(files["policy.pth"]), weights_only=True)
sd["action_net.weight"] = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.01, 0.1, 1.0, 0.5]])
sd["action_net.bias"] = torch.zeros(2)
buf = io.BytesIO()
torch.save(sd, buf)
files["policy.pth"] = buf.getvalue()
with zipfile.ZipFile(path, "w") as z:
    for n, b in files.items():
        z.writestr(n, b)
`;

/** A CartPole run (seed 0) whose base policy balances the pole for all 500 steps (BALANCE), with identify's first
 * `episodes` stored as identify stores them (fidelity collects them again the same way and checks). */
async function balancedRun(sc: Sidecar, run: RunDir, episodes: number): Promise<RunContext> {
  const { env: made } = await sc.call("env_make", { spec: { env_id: "CartPole-v1", n_envs: 1, seed: 0 } });
  const { model: fresh } = await sc.call("model_new", {
    env: made,
    ppo: { policy: "MlpPolicy", seed: 0, policy_kwargs: { net_arch: { pi: [], vf: [] } } },
  });
  await sc.call("model_save", { model: fresh, path: run.path("base", "model.zip") });
  for (const h of [fresh, made]) await sc.call("close", { handle: h });
  execFileSync(pythonPath(), ["-c", BALANCE, run.path("base", "model.zip")]);
  run.writeJson("run.json", {
    env: "CartPole-v1",
    env_id: "CartPole-v1",
    seed: 0,
    profile: "test",
    settings: { trust_model: false, identify: { episodes, deterministic: true, min_separation: 10 } },
    phases: {},
  });
  const ctx: RunContext = { run, cfg: resolveEnv("CartPole-v1"), settings: { trust_model: false } as Settings, seed: 0, sc };
  const { env, model } = await loadModel(ctx, "base", { training: false, nEnvs: 1, seedOffset: 1000 });
  for (let i = 0; i < episodes; i++) {
    const [ep] = await collectEpisodes(sc, { model, env, episodes: 1, deterministic: true });
    expect(ep.length, "the constructed controller balances to the time limit").toBe(500);
    run.writeMessage(episodeFile(i), { length: ep.length, obs: ep.obs, rewards: ep.rewards, values: ep.values });
  }
  for (const h of [model, env]) await sc.call("close", { handle: h });
  return ctx;
}

const statesAt = (adviser: string, steps: number[], episodes: number) => ({
  env_id: "CartPole-v1",
  adviser,
  states: Array.from({ length: episodes }, (_, episode) =>
    steps.map((step) => ({ episode, step, action: null, reward: 0, reason: "", adviser })),
  ).flat(),
});

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
    const s = (selector: string, k: number, fidelity: number): Score => ({
      selector,
      episode: 0,
      step: 0,
      start: 0,
      k,
      l: 1,
      L: 10,
      d: 1,
      d_max: 1,
      fidelity,
    });
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

  it("starts a mask net's segment at the longest run among its n most important steps (RICE's fid_test)", () => {
    expect(maskSegmentStart([0.1, 0.9, 0.8, 0.2, 0.95, 0.3], 3)).toBe(1); // top steps 1, 2, 4: the run 1–2
    expect(maskSegmentStart([0.1, 0.9, 0.8, 0.2, 0.95, 0.3], 1)).toBe(4); // the most important step
    expect(maskSegmentStart([0.9, 0.1, 0.9, 0.1, 0.8, 0.85], 4)).toBe(4); // 0, 2, 4, 5: the run 4–5
    expect(maskSegmentStart([0.9, 0.1, 0.9], 2)).toBe(0); // runs equally long: the earliest
    expect(maskSegmentStart([0.5, 0.5, 0.5, 0.5], 2)).toBe(0); // equal importance: the earlier steps
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
    const rest = ep.rewards
      .toNumbers()
      .slice(start)
      .reduce((a, b) => a + b, 0);
    expect(r.returns.toNumbers()).toEqual([rest, rest, rest]);
    expect(r.env_steps).toBe((m + 1) * (ep.length - start));

    // random actions: one return per rollout, each a whole number of CartPole's +1 steps
    const rnd = await sc.call("segment_returns", {
      model,
      env: seg,
      snapshot: ep.snapshots[start],
      actions: randomActions({ type: "Discrete", shape: [], n: 2 }, m, l, 5),
      horizon: 1000,
    });
    expect(rnd.returns.shape).toEqual([m + 1]);
    expect(rnd.returns.data[0]).toBe(rest);
    for (const x of rnd.returns.toNumbers()) expect(Number.isInteger(x) && x >= 1).toBe(true);

    await expect(
      sc.call("segment_returns", {
        model,
        env: seg,
        snapshot: ep.snapshots[start],
        actions: NDArray.float32([0, 1], [2, 1, 1]),
        horizon: 10,
      }),
    ).rejects.toThrow(/per-step shape/);
  }, 60_000);

  // Why the critical steps are known: the policy balances CartPole (+1 a step) until the 500-step time limit, and
  // l = 50 uniformly random actions drop the pole within the segment nearly always (a random policy's episodes last
  // ~20 steps). So randomising a segment loses about the rest of the episode: most at the first steps (~450 lost),
  // least in the last l steps, where at most l = 50 is left to lose whatever happens. A random step lies in between.
  it("ranks steps known to matter (the first) above random steps, and those above the last l steps (CartPole)", async () => {
    const root = mkdtempSync(join(tmpdir(), "ultra-fidelity-"));
    const run = new RunDir(join(root, "first"));
    const episodes = 2;
    await balancedRun(sc, run, episodes);
    run.writeJson("critical_states.json", statesAt("first steps", [0, 25], episodes));
    // the same episodes (a copy of the run), other steps: --compare's condition
    cpSync(run.root, join(root, "last"), { recursive: true });
    new RunDir(join(root, "last")).writeJson("critical_states.json", statesAt("last steps", [460, 490], episodes));

    const { summary } = await fidelity(run.root, { samples: 6, compare: [join(root, "last")], horizon: 500, ratios: [0.1] }, sc);
    const first = summary["adviser (first steps)"].all;
    const last = summary["last (last steps)"].all;
    const random = summary.random.all;
    expect([first.n, last.n, random.n]).toEqual([4, 4, 4]);
    expect(first.mean).toBeGreaterThan(random.mean);
    expect(random.mean).toBeGreaterThan(last.mean);
    expect(first.mean - last.mean).toBeGreaterThan(1); // d ~450 against ≤ 50: log 9 ≈ 2.2
    rmSync(root, { recursive: true, force: true });
  }, 120_000);

  // A mask net trained a few thousand steps explains nothing yet: this checks the plumbing (ultra explain's mask net
  // found in the run dir, its importance on the stored episodes, its segments scored like the others'), not its quality.
  it("scores a mask net's segments: ultra explain's, picked up from the run dir, one per episode and k", async () => {
    const root = mkdtempSync(join(tmpdir(), "ultra-fidelity-mask-"));
    const run = new RunDir(join(root, "run"));
    const ctx = await balancedRun(sc, run, 1);
    run.writeJson("critical_states.json", statesAt("first steps", [0], 1));
    ctx.settings = { trust_model: false, rice: { mask: null, mask_steps: 2048, alpha: 0.01, rnd_coef: 0 } } as Settings;
    const ex = await explain(ctx, {});
    expect(ex).toMatchObject({
      mask: "explain/masknet.zip",
      env_steps: 2048,
      recipe: { steps: 2048, alpha: 0.01, seed: 0 },
      loaded_from: null,
    });

    const ratios = [0.1, 0.2];
    const { summary, file } = await fidelity(run.root, { samples: 2, compare: [], horizon: 500, ratios }, sc);
    const mask = summary["mask net"];
    expect(mask.all.n).toBe(2);
    for (const k of ratios) expect(Number.isFinite(mask.by_k[String(k)].mean), `k = ${k}`).toBe(true);
    const out = readJson(file);
    expect(out.settings.mask).toBe(run.path("explain", "masknet.zip"));
    // its segments start where its importance on the stored episode says
    const stored = run.readMessage<{ obs: NDArray; length: number }>(episodeFile(0));
    const { importance } = await sc.call("mask_importance", { mask: run.path("explain", "masknet.zip"), obs: stored.obs });
    const starts = out.scores.filter((s: Score) => s.selector === "mask net").map((s: Score) => s.start);
    expect(starts).toEqual(ratios.map((k) => segmentOf(maskSegmentStart(importance.toNumbers(), segmentOf(0, 500, k).l), 500, k).start));
    rmSync(root, { recursive: true, force: true });
  }, 120_000);
});
