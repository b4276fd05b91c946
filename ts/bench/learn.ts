// `ultra bench overhead | determinism | scale`: SB3's own PPO.learn() against the project's ModulatedPPO, both
// built by the sidecar from the env's config (same hyperparameters, same torch threads, one process) and timed
// inside Python (py/ultra_sidecar/bench.py), so the bridge is not in the figures.
import type { BenchLearnResult, OpArgs } from "../bridge/ops.js";
import type { Sidecar } from "../bridge/sidecar.js";
import { envSpec, resolveEnv } from "../config.js";
import type { NDArray } from "../protocol.js";
import { resolveSettings } from "../ultra/settings.js";
import { fmt, log, progressBar } from "../progress.js";
import { UltraError } from "../errors.js";
import { parseIntList } from "../args.js";
import { defineCommand, printJson, type GlobalOptions } from "../commands/common.js";
import { startedSidecar, writeResult } from "./common.js";
import { median } from "../ultra/stats.js";

/** trace: return every env step of the run (StepTrace) */
type RunArgs = OpArgs<"bench_learn">;

/** Every vectorised env step of a run's learn() (py/ultra_sidecar/bench.py StepTrace), row i = step i: the rewards
 * PPO got ([steps, n_envs] float64), and 8-byte digests ([steps, 8] uint8) of the actions the envs were stepped
 * with and of the observations they returned. */
export interface StepTrace {
  rewards: NDArray;
  actions: NDArray;
  observations: NDArray;
}
export type TracedRun = BenchLearnResult & { trace?: StepTrace };
/** A timed run may take minutes; it sends nothing meanwhile. */
const RUN_TIMEOUT_S = 6 * 3600;

export interface LearnBenchOptions {
  env: string;
  steps: number;
  seed: number;
  /** torch threads in the sidecar, the same for every run */
  threads: number;
  /** the models' torch device (default cpu) */
  device?: string;
}

function runArgs(o: LearnBenchOptions, over: Partial<RunArgs> & { nEnvs?: number; vecEnv?: "dummy" | "subproc" } = {}): RunArgs {
  const cfg = resolveEnv(o.env);
  const { nEnvs, vecEnv, ...rest } = over;
  return {
    spec: { ...envSpec(cfg, { seed: o.seed, training: true, nEnvs }), ...(vecEnv ? { vec_env: vecEnv } : {}) },
    ppo: { ...cfg.ppo, seed: o.seed, ...(o.device ? { device: o.device } : {}) },
    steps: o.steps,
    impl: "ultra",
    threads: o.threads,
    ...rest,
  };
}

const learn = (sc: Sidecar, args: RunArgs) => sc.call("bench_learn", args, { timeoutS: RUN_TIMEOUT_S }) as Promise<TracedRun>;
// ── overhead ────────────────────────────────────────────────────────────────────────────────────────────────

export const OVERHEAD_GOALS = { empty: 0.97, table: 0.9 };

/** The radius a real run of `env` matches critical states with (configs/ultra.yaml and the env's ultra block). */
export const envRadius = (env: string) => resolveSettings({ profile: "paper", envOverrides: resolveEnv(env).ultra }).modulation.radius;

/** The three contenders: SB3's PPO, ModulatedPPO with an empty table, and with `tableStates` critical states. */
function overheadCases(tableStates: number, radius: number) {
  return [
    { name: "sb3", over: { impl: "sb3" as const, table_states: null } },
    { name: "ultra_empty", over: { table_states: 0 } },
    { name: `ultra_${tableStates}_states`, over: { table_states: tableStates, table_radius: radius } },
  ];
}

/** `radius`: of the synthetic critical states, in normalised observation units (the fraction of steps that match
 * is in the result). */
export async function benchOverhead(o: LearnBenchOptions & { repeats: number; tableStates: number; radius: number }) {
  const cases = overheadCases(o.tableStates, o.radius);
  const samples: Record<string, number[]> = Object.fromEntries(cases.map((c) => [c.name, []]));
  const last: Record<string, BenchLearnResult> = {};
  const bar = progressBar(`overhead ${o.env}`, o.repeats * cases.length * o.steps);
  await startedSidecar({}, async (sc) => {
    for (let r = 0; r < o.repeats; r++)
      for (let k = 0; k < cases.length; k++) {
        const c = cases[(k + r) % cases.length]; // alternate the order so drift in load hits every case alike
        const res = await learn(sc, runArgs(o, c.over));
        samples[c.name].push(res.steps_per_s);
        last[c.name] = res;
        bar.update((r * cases.length + k + 1) * o.steps, { [c.name]: res.steps_per_s });
      }
  });
  bar.stop();
  // ratios pair the runs of one repeat (same moment, same load), then take the median over repeats
  const ratio = (name: string) => median(samples[name].map((x, i) => x / samples.sb3[i]));
  const [, empty, table] = cases.map((c) => c.name);
  const ratios = { [empty]: ratio(empty), [table]: ratio(table) };
  return {
    env: resolveEnv(o.env).env_id,
    steps: o.steps,
    repeats: o.repeats,
    torch_threads: o.threads,
    steps_per_s: Object.fromEntries(cases.map((c) => [c.name, { median: median(samples[c.name]), runs: samples[c.name] }])),
    ratio: ratios,
    goals: { [empty]: OVERHEAD_GOALS.empty, [table]: OVERHEAD_GOALS.table },
    met: ratios[empty] >= OVERHEAD_GOALS.empty && ratios[table] >= OVERHEAD_GOALS.table,
    table: { states: o.tableStates, radius: o.radius, ...last[table].modulation, matched_fraction: (last[table].modulation?.matched_steps ?? 0) / last[table].steps },
  };
}

// ── determinism ─────────────────────────────────────────────────────────────────────────────────────────────

const bytes = (x: NDArray) => Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength);
const sameArray = (x: NDArray, y: NDArray) => x.dtype === y.dtype && x.shape.join() === y.shape.join() && bytes(x).equals(bytes(y));

/** The first env step (and what of it) at which two traces differ, or null. */
function firstStepDifference(a: StepTrace, b: StepTrace): string | null {
  const steps = (t: StepTrace) => t.rewards.shape[0];
  if (steps(a) !== steps(b)) return `env steps taken (${steps(a)} vs ${steps(b)})`;
  const fields = ["actions", "rewards", "observations"] as const; // in a step's order: the action, then what it gave
  for (const f of fields) if (a[f].dtype !== b[f].dtype || a[f].shape.join() !== b[f].shape.join()) return `${f} (shape or dtype)`;
  const row = (x: NDArray, i: number) => {
    const n = x.data.byteLength / Math.max(x.shape[0], 1);
    return bytes(x).subarray(i * n, (i + 1) * n);
  };
  for (let i = 0; i < steps(a); i++) for (const f of fields) if (!row(a[f], i).equals(row(b[f], i))) return `${f} at env step ${i}`;
  return null;
}

/** The first difference between two runs, or null: a policy tensor (state_dict order, bitwise), then the first env
 * step whose action, reward or observation differs, then the episode returns. */
export function firstDifference(a: TracedRun, b: TracedRun): string | null {
  const pa = a.params ?? {};
  const pb = b.params ?? {};
  const names = [...new Set([...Object.keys(pa), ...Object.keys(pb)])];
  for (const n of names) {
    const x = pa[n];
    const y = pb[n];
    if (!x || !y) return `${n} (missing in one run)`;
    if (!sameArray(x, y)) return n;
  }
  if (!a.trace !== !b.trace) return "env steps (trace missing in one run)";
  const step = a.trace && b.trace ? firstStepDifference(a.trace, b.trace) : null;
  if (step) return step;
  const ra = JSON.stringify(a.episode_returns);
  return ra === JSON.stringify(b.episode_returns) ? null : "episode returns";
}

/** What a determinism run compared in each pair of runs: policy tensors, env steps (timesteps over all sub-envs:
 * action, reward and observation each) and episode returns. */
export interface Compared {
  tensors: number;
  env_steps: number;
  episodes: number;
}

/** Why an "equal" over `c` would be vacuous, or null: a run that took no env step (a zero budget, or a sidecar
 * that sent no trace) leaves only the initial weights to compare, which the seed alone makes equal. Episode returns
 * may be missing at a bench-sized budget (Pong finishes no episode in a few thousand steps); the env steps are not. */
export function nothingCompared(c: Compared): string | null {
  const none = [c.tensors === 0 && "no policy tensor", c.env_steps === 0 && "no env step"].filter(Boolean);
  return none.length ? `nothing was compared: ${none.join(" and ")} (a zero --steps, or the runs sent no trace)` : null;
}

export async function benchDeterminism(o: LearnBenchOptions) {
  const runs: [string, Partial<RunArgs>][] = [
    ["sb3", { impl: "sb3", table_states: null }],
    ["ultra_empty", { table_states: 0 }],
    ["ultra_empty_again", { table_states: 0 }],
  ];
  const res: Record<string, TracedRun> = {};
  const bar = progressBar(`determinism ${o.env}`, runs.length * o.steps);
  await startedSidecar({}, async (sc) => {
    for (const [i, [name, over]] of runs.entries()) {
      res[name] = await learn(sc, runArgs(o, { ...over, params: true, trace: true }));
      bar.update((i + 1) * o.steps);
    }
  });
  bar.stop();
  const vsSb3 = firstDifference(res.sb3, res.ultra_empty);
  const again = firstDifference(res.ultra_empty, res.ultra_empty_again);
  const rewards = res.sb3.trace?.rewards;
  const compared: Compared = {
    tensors: Object.keys(res.sb3.params ?? {}).length,
    env_steps: rewards ? rewards.shape[0] * (rewards.shape[1] ?? 1) : 0,
    episodes: res.sb3.episode_returns.length,
  };
  const equal = vsSb3 === null && again === null;
  const vacuous = nothingCompared(compared);
  return {
    env: resolveEnv(o.env).env_id,
    steps: o.steps,
    seed: o.seed,
    /** no difference found and something compared: what the exit status says */
    ok: equal && vacuous === null,
    equal,
    nothing_compared: vacuous,
    compared,
    comparisons: {
      "sb3 vs ultra (empty table)": { equal: vsSb3 === null, first_difference: vsSb3 },
      "ultra vs ultra (same seed)": { equal: again === null, first_difference: again },
    },
  };
}

// ── scale ───────────────────────────────────────────────────────────────────────────────────────────────────

export async function benchScale(o: LearnBenchOptions & { nEnvs: number[]; vecEnvs: ("dummy" | "subproc")[] }) {
  const grid = o.vecEnvs.flatMap((vecEnv) => o.nEnvs.map((nEnvs) => ({ vecEnv, nEnvs })));
  const rows: { vec_env: string; n_envs: number; steps_per_s: number; seconds: number }[] = [];
  const bar = progressBar(`scale ${o.env}`, grid.length * o.steps);
  const cfg = resolveEnv(o.env);
  await startedSidecar({}, async (sc) => {
    for (const [i, g] of grid.entries()) {
      // n_steps is per sub-env in SB3: scale it down so every run collects the same rollout size
      const nSteps = Math.max(8, Math.round(Number(cfg.ppo.n_steps ?? 2048) / g.nEnvs));
      const args = runArgs(o, { nEnvs: g.nEnvs, vecEnv: g.vecEnv, table_states: 0 });
      const res = await learn(sc, { ...args, ppo: { ...args.ppo, n_steps: nSteps } });
      rows.push({ vec_env: g.vecEnv, n_envs: g.nEnvs, steps_per_s: res.steps_per_s, seconds: res.seconds });
      bar.update((i + 1) * o.steps, { [`${g.vecEnv}×${g.nEnvs}`]: res.steps_per_s });
    }
  });
  bar.stop();
  return { env: cfg.env_id, steps: o.steps, torch_threads: o.threads, device: o.device ?? "cpu", rows };
}

/** The options every learning benchmark shares: env, steps, seed, and the global --threads / --device. */
const learnBench = (a: { env: string; steps: number; seed: number }) => {
  const g = a as unknown as GlobalOptions;
  return { env: a.env, steps: a.steps, seed: a.seed, threads: g.threads, device: g.device === "auto" ? undefined : g.device };
};

export const overheadBench = defineCommand(
  "overhead",
  "steps/s of SB3's PPO.learn() vs the project's modulated PPO (empty table; a table of N critical states), alternating runs",
  (b) =>
    b
      .option("env", { type: "string", default: "HalfCheetah" })
      .option("steps", { type: "number", default: 20000, describe: "timesteps per run" })
      .option("repeats", { type: "number", default: 3, describe: "runs of each contender" })
      .option("table-states", { type: "number", default: 100 })
      .option("radius", {
        type: "number",
        describe: "of the synthetic critical states (normalised obs, RMS; default: the env's modulation.radius)",
      })
      .option("seed", { type: "number", default: 0 })
      .option("json", { type: "string", describe: "write the result to this file too" }),
  async (a) => {
    const r = await benchOverhead({
      ...learnBench(a),
      repeats: a.repeats,
      tableStates: a.tableStates,
      radius: a.radius ?? envRadius(a.env),
    });
    const sps = Object.entries(r.steps_per_s)
      .map(([k, v]) => `${k} ${fmt(v.median)}`)
      .join(", ");
    const ratios = Object.entries(r.ratio)
      .map(([k, v]) => `${k} ${v.toFixed(3)}× (goal ≥ ${r.goals[k]})`)
      .join(", ");
    log(`overhead ${r.env}: steps/s ${sps}; ratio to sb3: ${ratios}; goals ${r.met ? "met" : "NOT met"}`);
    printJson(writeResult(`overhead-${r.env.replace(/\W+/g, "_")}`, r, a));
  },
);

export const determinismBench = defineCommand(
  "determinism",
  "SB3's PPO.learn() and the project's path (empty table), same seed: bitwise-equal parameters, env steps and returns?",
  (b) =>
    b
      .option("env", { type: "string", default: "HalfCheetah" })
      .option("steps", { type: "number", default: 4096 })
      .option("seed", { type: "number", default: 0 })
      .option("json", { type: "string", describe: "write the result to this file too" }),
  async (a) => {
    const r = await benchDeterminism(learnBench(a));
    const diffs = Object.entries(r.comparisons).map(([k, v]) => `${k}: ${v.equal ? "equal" : `differ at ${v.first_difference}`}`);
    const c = r.compared;
    log(
      `determinism ${r.env}, ${r.steps} steps, ${c.tensors} tensors, ${c.env_steps} env steps, ${c.episodes} episodes: equal: ${r.equal} (${diffs.join("; ")})`,
    );
    if (r.nothing_compared) log(`determinism ${r.env}: FAILED: ${r.nothing_compared}`);
    printJson(writeResult(`determinism-${r.env.replace(/\W+/g, "_")}`, r, a));
    if (!r.ok) process.exitCode = 1;
  },
);

export const scaleBench = defineCommand(
  "scale",
  "steps/s of the project's PPO for several n_envs, DummyVecEnv and SubprocVecEnv",
  (b) =>
    b
      .option("env", { type: "string", default: "HalfCheetah" })
      .option("steps", { type: "number", default: 16384 })
      .option("n-envs", { type: "string", default: "1,2,4,8" })
      .option("vec-envs", { type: "string", default: "dummy,subproc" })
      .option("seed", { type: "number", default: 0 })
      .option("json", { type: "string", describe: "write the result to this file too" }),
  async (a) => {
    const vecEnvs = a.vecEnvs.split(",").map((v) => {
      if (v !== "dummy" && v !== "subproc") throw new UltraError(`--vec-envs takes dummy and/or subproc, got "${v}"`);
      return v;
    });
    const r = await benchScale({ ...learnBench(a), nEnvs: parseIntList(a.nEnvs, "--n-envs"), vecEnvs });
    log(`scale ${r.env} on ${r.device}: ${r.rows.map((x) => `${x.vec_env}×${x.n_envs} ${fmt(x.steps_per_s)}`).join(", ")} steps/s`);
    printJson(writeResult(`scale-${r.env.replace(/\W+/g, "_")}-${r.device}`, r, a));
  },
);
