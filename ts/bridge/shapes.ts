// The maps with a fixed layout that cross the bridge (protocol.json's `shapes`), as zod schemas: their one TS
// definition, the types are inferred from them. test/protocol.test.ts checks their keys (required and optional)
// against protocol.json, whose shapes the sidecar enforces; strict objects, as the sidecar refuses unknown keys.
import { z } from "zod";
import { NDArray } from "../protocol.js";

/** An env's state from env_snapshot: opaque, only ever handed back to the sidecar. */
export const Snapshot = z.record(z.string(), z.unknown());
export type Snapshot = z.infer<typeof Snapshot>;

/** How the sidecar builds a VecEnv (RL-Zoo layout). */
export const EnvSpec = z.strictObject({
  env_id: z.string(),
  n_envs: z.number().int().positive().optional(),
  seed: z.number().int().optional(),
  env_kwargs: z.record(z.string(), z.unknown()).optional(),
  wrappers: z.array(z.union([z.string(), z.record(z.string(), z.record(z.string(), z.unknown()))])).optional(),
  frame_stack: z.number().int().nullable().optional(),
  normalize: z.union([z.literal(false), z.record(z.string(), z.unknown())]).optional(),
  vec_normalize_path: z.string().nullable().optional(),
  /** update normalisation statistics (true while training) */
  training: z.boolean().optional(),
  trust_model: z.boolean().optional(),
  /** one process per sub-env ("subproc") or all in this one ("dummy", the default; snapshots need it) */
  vec_env: z.enum(["dummy", "subproc"]).optional(),
});
export type EnvSpec = z.infer<typeof EnvSpec>;

/** Hyperparameters for continuing to train a loaded model (a loaded model otherwise has lr 0). */
/** A number, or RL-Zoo's "lin_X": X decaying linearly to 0 over training. */
export const Schedule = z.union([z.number(), z.string().regex(/^lin_[0-9.eE+-]+$/, 'a number or "lin_X" (linear decay from X)')]);
export const TrainOverrides = z.strictObject({
  learning_rate: Schedule,
  clip_range: Schedule.optional(),
  tensorboard_log: z.string().optional(),
});
export type TrainOverrides = z.infer<typeof TrainOverrides>;

// A modulation table's entry is not ts/ultra/critical.ts's CriticalState: it is what the sidecar matches, the
// state's observation and snapshot (from identify/states.msgpack) with the advice's action as an array; the
// episode, step, reason and verification stay in critical_states.json.
export const ModulationState = z.strictObject({
  /** raw (un-normalised) observation */
  obs: z.instanceof(NDArray),
  /** the suggested action; null: a reward-only state */
  action: z.union([z.instanceof(NDArray), z.number().int(), z.null()]).optional(),
  reward: z.number().optional(),
  snapshot: Snapshot.nullable().optional(),
});
export type ModulationState = z.infer<typeof ModulationState>;

export const RiceTable = z.strictObject({
  /** a mask net zip for the agent being refined (null with critical: random) */
  mask: z.string().nullable(),
  /** the training env's spec: RICE's rollouts of the current agent run in a copy of it */
  env: EnvSpec,
  /** λ of the normalised RND bonus (0: none) */
  rnd_coef: z.number().nonnegative(),
  /** mask: the mask net's most important state of the fresh rollout (RICE); random: a uniformly random one (RICE's ablation) */
  critical: z.enum(["mask", "random"]).optional(),
  trust_model: z.boolean().optional(),
});
export type RiceTable = z.infer<typeof RiceTable>;

export const TableVariant = z.enum(["A", "R", "RA", "reset", "rice"]);
export type TableVariant = z.infer<typeof TableVariant>;

/** The modulation table of one model_learn call (py/ultra_sidecar/modulation.py). */
export const ModulationTable = z.strictObject({
  variant: TableVariant,
  radius: z.number().nonnegative(),
  /** entry: once per visit of an entry's radius; step: every step inside it */
  fire_on: z.enum(["entry", "step"]),
  reset_prob: z.number().min(0).max(1),
  reward_scale: z.number(),
  /** raw reward of one typical step of the base policy: an entry's reward 1.0 adds reward_scale × this (the sidecar
   * converts it as VecNormalize converts rewards) */
  reward_unit: z.number().positive(),
  /** R, RA: a Box suggestion pays × max(0, 1 − d/action_tolerance), d the taken action's RMS distance in half-ranges */
  action_tolerance: z.number().positive(),
  seed: z.number().int(),
  states: z.array(ModulationState),
  /** variant rice only: RICE's own critical states (mask net) and RND bonus, in the sidecar (rice.py) */
  rice: RiceTable.optional(),
});
export type ModulationTable = z.infer<typeof ModulationTable>;

/** Each shape of protocol.json by its name there. */
export const SHAPES = {
  env_spec: EnvSpec,
  train: TrainOverrides,
  modulation: ModulationTable,
  modulation_state: ModulationState,
  rice: RiceTable,
} as const;
