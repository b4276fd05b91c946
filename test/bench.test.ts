// The learning benchmarks through the CLI, on budgets small enough for CI: real sidecar, real SB3, real envs.
// Speeds are not asserted here (that is what the benchmarks report); what they compute and compare is.
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { firstDifference, nothingCompared, type StepTrace, type TracedRun } from "../ts/bench/learn.js";
import { formatLlmRows, llmSummary, type LlmBenchRow } from "../ts/bench/llm.js";
import { summarize, wireBytes, type SnapshotRun } from "../ts/bench/snapshots.js";
import { NDArray, pack } from "../ts/protocol.js";
import { readJson as json, ultraWith } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "ultra-bench-"));
const ultra = (...args: string[]) => ultraWith({ ULTRA_BENCH_RESULTS: dir }, ...args);

describe("bench determinism", () => {
  it("finds SB3's learn() and the project's path bitwise-equal, and two project runs too, step by step", async () => {
    const r = await ultra("bench", "determinism", "--steps", "1024", "--json", join(dir, "det.json"));
    expect(r.code, r.stderr).toBe(0);
    const d = json(join(dir, "det.json"));
    expect(d).toMatchObject({ env: "HalfCheetah-v5", ok: true, equal: true, nothing_compared: null });
    expect(Object.values<any>(d.comparisons).map((c) => c.first_difference)).toEqual([null, null]);
    expect(d.compared.tensors).toBeGreaterThan(4); // every policy tensor was compared, not an empty map
    expect(d.compared.env_steps).toBe(1024); // every env step's action, reward and observation (one sub-env)
    expect(r.stderr).toMatch(/determinism HalfCheetah-v5, 1024 steps, \d+ tensors, 1024 env steps, \d+ episodes: equal: true/);
    // without --record nothing goes to the results dir
    expect(existsSync(join(dir, "determinism-HalfCheetah_v5.json"))).toBe(false);
    expect(r.stderr).toContain("determinism-HalfCheetah_v5: not recorded (--record writes");
  });

  it("fails, and says so, when a budget leaves nothing to compare", async () => {
    const r = await ultra("bench", "determinism", "--steps", "0", "--record");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("determinism HalfCheetah-v5: FAILED: nothing was compared: no env step");
    const d = json(join(dir, "determinism-HalfCheetah_v5.json")); // --record wrote it (to $ULTRA_BENCH_RESULTS here)
    expect(d).toMatchObject({ ok: false, equal: true, compared: { env_steps: 0, episodes: 0 } });
    expect(nothingCompared({ tensors: 13, env_steps: 0, episodes: 0 })).toMatch(/^nothing was compared: no env step/);
    expect(nothingCompared({ tensors: 0, env_steps: 0, episodes: 0 })).toMatch(/no policy tensor and no env step/);
    expect(nothingCompared({ tensors: 28, env_steps: 1024, episodes: 0 })).toBeNull(); // Pong: steps, but no episode ends
  });

  it("names the first tensor that differs, then the first env step, then the returns", () => {
    const trace = (actions: number[], rewards: number[]): StepTrace => ({
      rewards: new NDArray("float64", [rewards.length, 1], new Float64Array(rewards)),
      actions: new NDArray("uint8", [actions.length, 8], new Uint8Array(actions.flatMap((x) => Array(8).fill(x)))),
      observations: new NDArray("uint8", [actions.length, 8], new Uint8Array(actions.length * 8)),
    });
    const run = (w: number[], returns = [1, 2], steps = trace([1, 2, 3], [0.5, 0.5, 0.5])): TracedRun => ({
      seconds: 1,
      steps: 1,
      steps_per_s: 1,
      episode_returns: returns,
      modulation: null,
      params: {
        "a.weight": new NDArray("float32", [2], new Float32Array([1, 2])),
        "b.bias": new NDArray("float32", [2], new Float32Array(w)),
      },
      trace: steps,
    });
    expect(firstDifference(run([3, 4]), run([3, 4]))).toBeNull();
    expect(firstDifference(run([3, 4]), run([3, 4 + 2 ** -20]))).toBe("b.bias"); // one low bit
    expect(firstDifference(run([3, 4]), run([3, 4], [1, 2.5]))).toBe("episode returns");
    const { "b.bias": _, ...fewer } = run([3, 4]).params!;
    expect(firstDifference(run([3, 4]), { ...run([3, 4]), params: fewer })).toBe("b.bias (missing in one run)");
    expect(firstDifference(run([3, 4]), run([3, 4], [1, 2], trace([1, 9, 3], [0.5, 0.5, 0.5])))).toBe("actions at env step 1");
    expect(firstDifference(run([3, 4]), run([3, 4], [1, 2], trace([1, 2, 3], [0.5, 0.5, 0.5 + 2 ** -40])))).toBe("rewards at env step 2");
    expect(firstDifference(run([3, 4]), run([3, 4], [1, 2], trace([1, 2], [0.5, 0.5])))).toBe("env steps taken (3 vs 2)");
    expect(firstDifference(run([3, 4]), { ...run([3, 4]), trace: undefined })).toBe("env steps (trace missing in one run)");
  });
});

describe("bench overhead", () => {
  it("times the three contenders in alternating repeats and applies the table to the modulated one only", async () => {
    const args = ["bench", "overhead", "--steps", "512", "--repeats", "2", "--table-states", "10", "--radius", "100"];
    const r = await ultra(...args, "--json", join(dir, "ov.json"));
    expect(r.code, r.stderr).toBe(0);
    const d = json(join(dir, "ov.json"));
    expect(Object.keys(d.steps_per_s)).toEqual(["sb3", "ultra_empty", "ultra_10_states"]);
    for (const c of Object.values<any>(d.steps_per_s)) {
      expect(c.runs).toHaveLength(2);
      for (const x of c.runs) expect(x).toBeGreaterThan(0);
    }
    // the ratio pairs the runs of one repeat, then takes the median (of 2: their mean)
    const paired = (name: string) => d.steps_per_s[name].runs.map((x: number, i: number) => x / d.steps_per_s.sb3.runs[i]);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b) / xs.length;
    expect(d.ratio.ultra_empty).toBeCloseTo(mean(paired("ultra_empty")), 12);
    expect(d.ratio.ultra_10_states).toBeCloseTo(mean(paired("ultra_10_states")), 12);
    expect(d.met).toBe(d.ratio.ultra_empty >= 0.97 && d.ratio.ultra_10_states >= 0.9);
    // a radius of 100 covers every state: every step matches, and RA overrides each matched action
    expect(d.table.matched_fraction).toBe(1);
    expect(d.table.overridden_actions).toBe(d.table.matched_steps);
    expect(r.stderr).toMatch(
      /ratio to sb3: ultra_empty [\d.]+× \(goal ≥ 0\.97\), ultra_10_states [\d.]+× \(goal ≥ 0\.9\); goals (met|NOT met)/,
    );
  });
});

describe("bench scale", () => {
  it("measures each n_envs with DummyVecEnv and SubprocVecEnv", async () => {
    const r = await ultra("bench", "scale", "--steps", "512", "--n-envs", "1,2", "--json", join(dir, "scale.json"));
    expect(r.code, r.stderr).toBe(0);
    const d = json(join(dir, "scale.json"));
    expect(d.rows.map((x: any) => `${x.vec_env}×${x.n_envs}`)).toEqual(["dummy×1", "dummy×2", "subproc×1", "subproc×2"]);
    for (const x of d.rows) expect(x.steps_per_s).toBeGreaterThan(0);
    const bad = await ultra("bench", "scale", "--vec-envs", "threads");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--vec-envs takes dummy and/or subproc, got "threads"');
  });
});

describe("bench faults", () => {
  it("kills the sidecar of a real run three times; each is a clear error with no orphan, and the resumed run matches", async () => {
    const r = await ultra("bench", "faults", "--kills", "3", "--kills-per-run", "3", "--json", join(dir, "faults.json"));
    const d = json(join(dir, "faults.json"));
    expect(d.failures).toEqual([]);
    expect(r.code, r.stderr).toBe(0);
    expect(d).toMatchObject({ kills: 3, clear_errors: 3, orphans: 0 });
    expect(d.resumed).toBeGreaterThanOrEqual(1); // a resumed attempt may finish before its kill comes: then a new run starts
    expect(d.identical).toBe(d.resumed);
    expect(Object.values<number>(d.by_phase).reduce((a, b) => a + b)).toBe(3);
  }, 900_000);
});

// The model's own figures need minutes on this CPU (bench/README.md has a recorded run); here, what is derived from them.
describe("bench llm", () => {
  const row = (mode: LlmBenchRow["mode"], episode: number, seconds: number, prompt = 1900, rejected = 0): LlmBenchRow => ({
    mode,
    episode,
    prompt_tokens: prompt,
    cached_prompt_tokens: episode ? 800 : 0,
    completion_tokens: 150,
    seconds,
    parsed: true,
    counts: { proposed: 4, valid: 4 - rejected, clipped: 0, rejected },
    valid: rejected === 0,
  });

  it("judges candidates by the episodes after the first (its prefix is evaluated once) and episode mode by its largest prompt", () => {
    const rows = [
      row("candidates", 0, 14),
      row("candidates", 1, 5.5),
      row("candidates", 2, 6.5, 1900, 1),
      row("episode", 0, 30, 3950),
      row("episode", 1, 20, 3990),
    ];
    const s = llmSummary(rows);
    expect(s.modes.candidates).toEqual({ max_prompt_tokens: 1900, first_seconds: 14, max_seconds_after_first: 6.5, valid: 2, replies: 3 });
    expect(s.met).toEqual({ candidates_seconds_after_first: false, episode_prompt_tokens: true });
    expect(llmSummary(rows.slice(0, 2)).met).toEqual({ candidates_seconds_after_first: true, episode_prompt_tokens: null });
    expect(llmSummary([row("candidates", 0, 3)]).met.candidates_seconds_after_first).toBeNull(); // one episode: nothing after the first
    expect(formatLlmRows(rows).split("\n")[3]).toMatch(/^candidates\s+2\s+1900\s+800\s+150\s+6\.5\s+no \(4\/1\)$/);
  });

  it("needs a run directory with recorded episodes, and says so", async () => {
    const r = await ultra("bench", "llm", "--run", join(dir, "no-run"));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("is not a run directory (no run.json)");
  });
});

describe("bench snapshots", () => {
  const run = (repeat: number, every: 0 | 1, seconds: number, held: number, digest = "d"): SnapshotRun => ({
    repeat,
    snapshot_every: every,
    steps: 100,
    seconds,
    snapshot_s: every ? 0.1 * seconds : 0,
    snapshots: every * 100,
    held_bytes: held,
    rss_bytes: held,
    peak_bytes: held,
    digest,
  });
  const sizes = {
    with: { steps: 100, bytes: 8000, snapshot_bytes: 5000, snapshots: 100 },
    without: { steps: 100, bytes: 3000, snapshot_bytes: 1, snapshots: 0 },
  };

  it("pairs the two modes by repeat, splits the snapshots' time share at snapshot(), and judges the cost", () => {
    // repeat 1 ran under twice the load: paired by repeat (not by order), both shares are 1 - 3/4
    const runs = [run(0, 1, 4, 9e6), run(1, 0, 6, 3e6), run(0, 0, 3, 3e6), run(1, 1, 8, 9e6)];
    const s = summarize(runs, sizes, 2);
    expect(s.share.time).toBeCloseTo(0.25);
    expect(s.share.time_in_snapshot_fn).toBeCloseTo(0.1);
    expect(s.share.time_outside_snapshot_fn).toBeCloseTo(0.15);
    expect(s.share.bytes).toBeCloseTo(5 / 8);
    expect(s.snapshot.bytes).toBe(50);
    expect(s.per_episode).toMatchObject({ held_mb: { with: 4.5, without: 1.5 }, held_snapshots_mb: 3, received_mb: { with: 0.004 } });
    expect(s.same_episodes).toBe(true);
    expect(s.large_cost.met).toBe(false);
    expect(summarize([run(0, 1, 4, 250e6), run(0, 0, 3, 3e6, "e")], sizes, 1)).toMatchObject({
      same_episodes: false,
      large_cost: { met: true }, // 247 MB of snapshots held per episode
    });
    expect(() => summarize([run(0, 1, 4, 1)], sizes, 1)).toThrow("with and without");
  });

  it("counts bytes as they cross the bridge", () => {
    const value = { obs: new NDArray("uint8", [2, 70000], new Uint8Array(140000)), snaps: [{ state: Buffer.alloc(500), rng: "{}" }] };
    const sent = pack(value).reduce((n, f) => n + f.byteLength, 0);
    expect(sent - wireBytes(value)).toBeGreaterThanOrEqual(0);
    expect(sent - wireBytes(value)).toBeLessThan(32); // the array's header
  });

  it("collects the same episodes with and without snapshots, through the CLI", async () => {
    const r = await ultra("bench", "snapshots", "--env", "CartPole-v1", "--repeats", "1", "--json", join(dir, "snap.json"));
    expect(r.code, r.stderr).toBe(0);
    const d = json(join(dir, "snap.json"));
    expect(d).toMatchObject({ bench: "snapshots-CartPole-v1", env: "CartPole-v1", same_episodes: true });
    expect(d.runs.map((x: SnapshotRun) => x.snapshot_every)).toEqual([1, 0]);
    const [on, off] = d.runs as SnapshotRun[];
    expect(on.snapshots).toBe(on.steps);
    expect(on.snapshot_s).toBeGreaterThan(0);
    expect(off).toMatchObject({ snapshots: 0, snapshot_s: 0 });
    expect(d.sizes.with.bytes - d.sizes.without.bytes).toBeGreaterThanOrEqual(d.sizes.with.snapshot_bytes - 16);
    expect(Object.keys(d.sizes.with.snapshot_parts)).toEqual(expect.arrayContaining(["base", "rng", "wrappers", "vec.obs"]));
    expect(r.stderr).toMatch(/snapshots CartPole-v1: [\d.]+ steps\/episode, same episodes: true; /);
  });
});
