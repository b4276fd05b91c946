// `ultra bench overhead | determinism | scale`: SB3's own PPO.learn() against the project's ModulatedPPO, both
// built by the sidecar from the env's config (same hyperparameters, same torch threads, one process) and timed
// inside Python (py/ultra_sidecar/bench.py), so the bridge is not in the figures.
import type { BenchLearnResult, OpArgs } from "../bridge/ops.js";
import type { Sidecar } from "../bridge/sidecar.js";
import { envSpec, resolveEnv } from "../config.js";
import { resolveSettings } from "../ultra/settings.js";
import { progressBar } from "../progress.js";
import { startedSidecar } from "./common.js";

type RunArgs = OpArgs<"bench_learn">;
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

const learn = (sc: Sidecar, args: RunArgs) => sc.call("bench_learn", args, { timeoutS: RUN_TIMEOUT_S });
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

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

/** The first policy tensor (state_dict order) that differs bitwise, or null. */
export function firstDifference(a: BenchLearnResult, b: BenchLearnResult): string | null {
  const pa = a.params ?? {};
  const pb = b.params ?? {};
  const names = [...new Set([...Object.keys(pa), ...Object.keys(pb)])];
  for (const n of names) {
    const x = pa[n];
    const y = pb[n];
    if (!x || !y) return `${n} (missing in one run)`;
    const bx = Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength);
    const by = Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength);
    if (x.dtype !== y.dtype || x.shape.join() !== y.shape.join() || !bx.equals(by)) return n;
  }
  const ra = JSON.stringify(a.episode_returns);
  return ra === JSON.stringify(b.episode_returns) ? null : "episode returns";
}

export async function benchDeterminism(o: LearnBenchOptions) {
  const runs: [string, Partial<RunArgs>][] = [
    ["sb3", { impl: "sb3", table_states: null }],
    ["ultra_empty", { table_states: 0 }],
    ["ultra_empty_again", { table_states: 0 }],
  ];
  const res: Record<string, BenchLearnResult> = {};
  const bar = progressBar(`determinism ${o.env}`, runs.length * o.steps);
  await startedSidecar({}, async (sc) => {
    for (const [i, [name, over]] of runs.entries()) {
      res[name] = await learn(sc, runArgs(o, { ...over, params: true }));
      bar.update((i + 1) * o.steps);
    }
  });
  bar.stop();
  const vsSb3 = firstDifference(res.sb3, res.ultra_empty);
  const again = firstDifference(res.ultra_empty, res.ultra_empty_again);
  return {
    env: resolveEnv(o.env).env_id,
    steps: o.steps,
    seed: o.seed,
    equal: vsSb3 === null && again === null,
    comparisons: {
      "sb3 vs ultra (empty table)": { equal: vsSb3 === null, first_difference: vsSb3 },
      "ultra vs ultra (same seed)": { equal: again === null, first_difference: again },
    },
    tensors: Object.keys(res.sb3.params ?? {}).length,
    episodes: res.sb3.episode_returns.length,
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
