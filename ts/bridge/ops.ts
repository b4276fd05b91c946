// Typed requests and replies of each op in protocol/protocol.json: OP_ARGS lists each op's argument names at run time,
// the compiler checks them against OpTable and test/protocol.test.ts against protocol.json. The maps with a fixed
// layout are zod schemas in shapes.ts.
import type { NDArray } from "../protocol.js";
import type { EnvSpec, ModulationTable, Snapshot, TrainOverrides } from "./shapes.js";

export type { EnvSpec, Snapshot, TrainOverrides } from "./shapes.js";

export interface SpaceInfo {
  type: "Box" | "Discrete" | string;
  shape: number[];
  dtype?: string;
  n?: number;
  low?: number[];
  high?: number[];
}

export interface HelloResult {
  protocol: number;
  pid: number;
  versions: Record<string, string | null>;
  cuda: boolean;
  cuda_device: string | null;
  device: string;
  torch_threads: number;
}

/** Counters of the modulation applied during a learn call. */
export interface ModulationStats {
  /** steps modulated: an entry fired (fire_on entry: once per visit) */
  matched_steps: number;
  /** steps within an entry's radius, fired or not */
  near_steps: number;
  /** matches that were the first step of an episode restored at that entry's snapshot */
  restored_start_matches: number;
  overridden_actions: number;
  reward_added_steps: number;
  critical_resets: number;
  /** the rice arm only: episodes started at the mask net's most important state, the env steps of the rollouts
   * that found them, and the RND bonus added (in PPO's reward units) over that many steps */
  rice_resets?: number;
  rice_rollout_steps?: number;
  rnd_bonus_sum?: number;
  rnd_bonus_steps?: number;
}

export interface LearnProgress {
  steps: number;
  total: number;
  timesteps: number;
  fps: number;
  ep_rew_mean: number | null;
  ep_len_mean: number | null;
  episodes: number;
  modulation?: ModulationStats | null;
}

/** One streamed piece of a finished episode. Snapshots are opaque maps for env_restore. */
export interface TrajectoryChunk {
  episode: number;
  env_index: number;
  start: number;
  length: number;
  final: boolean;
  return: number | null;
  /** on the final chunk: true when the env ended the episode (a fall, a lost game), false at the time limit */
  terminated: boolean | null;
  obs: NDArray;
  /** un-normalised observations; absent when the env has no VecNormalize (then they equal obs) */
  raw_obs?: NDArray;
  /** ALE RAM (128 bytes) per step, on Atari only */
  ram?: NDArray<Uint8Array>;
  actions: NDArray;
  rewards: NDArray<Float32Array>;
  values: NDArray<Float32Array>;
  log_probs: NDArray<Float32Array>;
  dones: NDArray<Uint8Array>;
  snapshot_steps: NDArray<Int32Array>;
  snapshots: Snapshot[];
}

export interface EpisodeSummary {
  episode: number;
  env_index: number;
  return: number;
  length: number;
}

/** P(X > Y) with its 95% stratified bootstrap CI, averaged over tasks, and per task in the order given */
export interface Improvement {
  p: number;
  ci: [number, number];
  tasks: { p: number; ci: [number, number] }[];
}

/** One timed `learn()` of SB3's PPO or the project's ModulatedPPO (py/ultra_sidecar/bench.py). */
export interface BenchLearnResult {
  seconds: number;
  steps: number;
  steps_per_s: number;
  episode_returns: number[];
  modulation: ModulationStats | null;
  /** the policy's tensors by state_dict name, when asked for */
  params?: Record<string, NDArray>;
}

interface OpTable {
  hello: [{ client_version: number }, HelloResult];
  ping: [Record<string, never>, { time: number }];
  shutdown: [Record<string, never>, Record<string, never>];
  echo: [{ payload: unknown }, { payload: any }];
  blob: [{ nbytes: number }, { data: NDArray<Float32Array> }];
  env_make: [{ spec: EnvSpec }, { env: string; n_envs: number; observation_space: SpaceInfo; action_space: SpaceInfo }];
  env_reset: [{ env: string }, { obs: NDArray }];
  env_step: [{ env: string; actions: NDArray }, { obs: NDArray; rewards: NDArray<Float32Array>; dones: NDArray<Uint8Array> }];
  env_snapshot: [{ env: string; index: number }, { snapshot: Snapshot }];
  env_restore: [{ env: string; index: number; snapshot: Snapshot }, { obs: NDArray }];
  model_new: [{ env: string; ppo: Record<string, unknown> }, { model: string; device: string; num_params: number }];
  model_load: [
    /** trust_model: unpickle what the file pickled (code in it runs); by default nothing is unpickled */
    // resume: continue exactly where the checkpoint's training stood (its resume.msgpack)
    { path: string; env: string; device?: string; train?: TrainOverrides; seed?: number; trust_model?: boolean; resume?: boolean },
    { model: string; device: string; vec_normalize: boolean },
  ];
  /** resume: also write resume.msgpack (env states, RNGs, last observation) for an exact resume */
  model_save: [{ model: string; path: string; resume?: boolean }, { files: string[] }];
  model_learn: [
    /** schedule_total: this call is a segment of a job of that many timesteps (its lin_ schedules span the job) */
    { model: string; steps: number; tb_log_name?: string; modulation?: ModulationTable | null; schedule_total?: number },
    LearnProgress & { seconds: number },
  ];
  model_predict: [{ model: string; obs: NDArray; deterministic?: boolean }, { actions: NDArray; values: NDArray<Float32Array> }];
  model_evaluate: [
    { model: string; env: string; episodes: number; deterministic?: boolean },
    { returns: NDArray<Float64Array>; lengths: NDArray; mean: number; std: number },
  ];
  collect: [
    { model: string; env: string; episodes: number; deterministic?: boolean; snapshot_every?: number; chunk_steps?: number },
    /** snapshot_s: seconds spent taking snapshots (all sub-envs) */
    { episodes: EpisodeSummary[]; steps: number; snapshot_s: number },
  ];
  counterfactual: [
    { model: string; env: string; snapshot: Snapshot; candidates: NDArray; horizon: number; gamma: number; deterministic?: boolean },
    /** env_steps: sub-env steps taken (ULTRA's preparation cost) */
    { returns: NDArray<Float64Array>; env_steps: number },
  ];
  /** common-random-number groups from a snapshot: two fresh π(·|s) samples and `action` first, then π with shared noise */
  paired_returns: [
    { model: string; env: string; snapshot: Snapshot; action: NDArray | number; pairs: number; horizon: number; seed: number },
    { own: NDArray<Float64Array>; suggested: NDArray<Float64Array>; own_again: NDArray<Float64Array>; env_steps: number },
  ];
  /** RICE's mask network (py/ultra_sidecar/rice.py): load one, score states (P(not blind)), or train one for an agent */
  mask_load: [{ path: string; env: string; trust_model?: boolean }, { mask: string }];
  mask_importance: [{ mask: string; obs: NDArray; trust_model?: boolean }, { importance: NDArray<Float32Array> }];
  mask_train: [
    { model: string; env: string; steps: number; alpha: number; seed: number; path?: string; ppo?: Record<string, unknown> },
    { mask: string; steps: number; seconds: number; ep_rew_mean: number | null; blind_fraction: number; files: string[] },
  ];
  /** RMS distances, as the modulation table matches, from each raw obs row to each key row: d[i][j] */
  obs_distances: [{ env: string; obs: NDArray; keys: NDArray }, { d: NDArray<Float32Array> }];
  /** StateMask fidelity: m + 1 rollouts from a segment's first step (row 0 the deterministic policy, row i actions[i − 1]
   * inside the segment, the deterministic policy after); undiscounted raw-reward returns */
  segment_returns: [
    { model: string; env: string; snapshot: Snapshot; actions: NDArray; horizon: number },
    { returns: NDArray<Float64Array>; env_steps: number },
  ];
  /** bars: {group: {label: [mean, 95% CI half-width]}} */
  plot_bars: [{ bars: Record<string, Record<string, [number, number]>>; path: string; title: string; ylabel: string }, { path: string }];
  /** rliable's probability of improvement (P(X > Y), per task and averaged over tasks) with 95% stratified bootstrap
   * CIs; scores[arm] is runs × tasks */
  probability_of_improvement: [
    { scores: Record<string, number[][]>; pairs: [string, string][]; reps: number; seed: number },
    { pairs: Record<string, Improvement> },
  ];
  /** band_scale: an arm's band is ±band_scale[arm] × sample std over seeds (t/√n: a 95% CI); default ±std */
  plot_curves: [{ curves: Record<string, unknown>; path: string; title: string; band_scale?: Record<string, number> }, { path: string }];
  close: [{ handle: string }, Record<string, never>];
  embedded_model: [{ name: string }, { path: string; package: string }];
  bench_learn: [
    {
      spec: EnvSpec;
      ppo: Record<string, unknown>;
      steps: number;
      impl: "sb3" | "ultra";
      threads: number;
      table_states?: number | null;
      table_radius?: number;
      params?: boolean;
      trace?: boolean;
    },
    BenchLearnResult,
  ];
  ray_init: [{ address: string; num_cpus?: number }, { address: string; nodes: number; cpus: number; gpus: number; local: boolean }];
  actor_start: [
    { name: string; curve: CurveKeys; shared_dir: string; cpus?: number; gpus?: number; torch_threads?: number },
    { endpoint: string; pid: number; node: string },
  ];
  actor_kill: [{ name: string }, Record<string, never>];
}

/** A CURVE server's key pair and the one client key it admits (z85 text, 40 characters each). */
export interface CurveKeys {
  server_public: string;
  server_secret: string;
  client_public: string;
}

export type OpName = keyof OpTable;
export type OpArgs<K extends OpName> = OpTable[K][0];
export type OpResult<K extends OpName> = OpTable[K][1];
export const OP_NAMES = [
  "hello",
  "ping",
  "shutdown",
  "echo",
  "blob",
  "env_make",
  "env_reset",
  "env_step",
  "env_snapshot",
  "env_restore",
  "model_new",
  "model_load",
  "model_save",
  "model_learn",
  "model_predict",
  "model_evaluate",
  "collect",
  "counterfactual",
  "paired_returns",
  "segment_returns",
  "obs_distances",
  "mask_load",
  "mask_importance",
  "mask_train",
  "plot_curves",
  "plot_bars",
  "probability_of_improvement",
  "close",
  "embedded_model",
  "bench_learn",
  "ray_init",
  "actor_start",
  "actor_kill",
] as const satisfies readonly OpName[];

// An op's argument names as OpTable types them: required, optional (an index signature, as in ping's, names none).
type Named<T> = keyof { [K in keyof T as string extends K ? never : K]: 0 };
type RequiredArg<T> = { [K in Named<T>]-?: object extends Pick<T, K> ? never : K }[Named<T>];
type OptionalArg<T> = Exclude<Named<T>, RequiredArg<T>>;

/** Each op's argument names at run time, as protocol.json's args and optional_args (test/protocol.test.ts compares
 * them); `satisfies` lets through only names OpTable types so (required or optional), ArgsUnlisted any it omits. */
export const OP_ARGS = {
  hello: { args: ["client_version"], optional_args: [] },
  ping: { args: [], optional_args: [] },
  shutdown: { args: [], optional_args: [] },
  echo: { args: ["payload"], optional_args: [] },
  blob: { args: ["nbytes"], optional_args: [] },
  env_make: { args: ["spec"], optional_args: [] },
  env_reset: { args: ["env"], optional_args: [] },
  env_step: { args: ["env", "actions"], optional_args: [] },
  env_snapshot: { args: ["env", "index"], optional_args: [] },
  env_restore: { args: ["env", "index", "snapshot"], optional_args: [] },
  model_new: { args: ["env", "ppo"], optional_args: [] },
  model_load: { args: ["path", "env"], optional_args: ["device", "train", "seed", "trust_model", "resume"] },
  model_save: { args: ["model", "path"], optional_args: ["resume"] },
  model_learn: { args: ["model", "steps"], optional_args: ["tb_log_name", "modulation", "schedule_total"] },
  model_predict: { args: ["model", "obs"], optional_args: ["deterministic"] },
  model_evaluate: { args: ["model", "env", "episodes"], optional_args: ["deterministic"] },
  collect: { args: ["model", "env", "episodes"], optional_args: ["deterministic", "snapshot_every", "chunk_steps"] },
  counterfactual: { args: ["model", "env", "snapshot", "candidates", "horizon", "gamma"], optional_args: ["deterministic"] },
  paired_returns: { args: ["model", "env", "snapshot", "action", "pairs", "horizon", "seed"], optional_args: [] },
  segment_returns: { args: ["model", "env", "snapshot", "actions", "horizon"], optional_args: [] },
  obs_distances: { args: ["env", "obs", "keys"], optional_args: [] },
  mask_load: { args: ["path", "env"], optional_args: ["trust_model"] },
  mask_importance: { args: ["mask", "obs"], optional_args: ["trust_model"] },
  mask_train: { args: ["model", "env", "steps", "alpha", "seed"], optional_args: ["path", "ppo"] },
  plot_curves: { args: ["curves", "path", "title"], optional_args: ["band_scale"] },
  plot_bars: { args: ["bars", "path", "title", "ylabel"], optional_args: [] },
  probability_of_improvement: { args: ["scores", "pairs", "reps", "seed"], optional_args: [] },
  close: { args: ["handle"], optional_args: [] },
  embedded_model: { args: ["name"], optional_args: [] },
  bench_learn: { args: ["spec", "ppo", "steps", "impl", "threads"], optional_args: ["table_states", "table_radius", "params", "trace"] },
  ray_init: { args: ["address"], optional_args: ["num_cpus"] },
  actor_start: { args: ["name", "curve", "shared_dir"], optional_args: ["cpus", "gpus", "torch_threads"] },
  actor_kill: { args: ["name"], optional_args: [] },
} as const satisfies {
  [K in OpName]: { args: readonly RequiredArg<OpArgs<K>>[]; optional_args: readonly OptionalArg<OpArgs<K>>[] };
};

/** OpTable's argument names that OP_ARGS leaves out, as "op.name" (never: none; otherwise the line below fails). */
type ArgsUnlisted = {
  [K in OpName]:
    | `${K}.${Exclude<RequiredArg<OpArgs<K>>, (typeof OP_ARGS)[K]["args"][number]> & string}`
    | `${K}.${Exclude<OptionalArg<OpArgs<K>>, (typeof OP_ARGS)[K]["optional_args"][number]> & string}`;
}[OpName];
const opArgsComplete: [ArgsUnlisted] extends [never] ? true : ArgsUnlisted = true;
