// State interpreters: numeric states and actions of one env as named features and natural language, for the
// adviser's prompt (the paper's "state interpretation function").

/** A feature worth summarising over a stretch of an episode. */
export interface KeyFeature {
  /** key in `features()` */
  name: string;
  label: string;
  unit?: string;
  digits?: number;
  /** "stats": mean/min/max over the stretch (default); "last": the value at its last step (e.g. a score) */
  summary?: "stats" | "last";
}

export interface StateInterpreter {
  /** config name */
  name: string;
  /** Named features of one raw (un-normalised) observation (and, for Pong, RAM when given): Episode.raw_obs,
   * never Episode.obs, which VecNormalize scaled for the policy (the labels say m, m/s, rad). */
  features(obs: ArrayLike<number>, ram?: ArrayLike<number>): Record<string, number>;
  /** One line of natural language for a state, e.g. "torso height 1.21 m, pitch +0.05 rad, forward velocity 2.3 m/s, ..." */
  describe(obs: ArrayLike<number>, ram?: ArrayLike<number>): string;
  /** A shorter line for a candidate card (the whole body, not each joint); absent: describe() up to its first "; ". */
  brief?(obs: ArrayLike<number>, ram?: ArrayLike<number>): string;
  /** The action's meaning, e.g. "6 torques in [-1, 1]: back thigh, back shin, back foot, front thigh, front shin, front foot". */
  actionSemantics: string;
  /** Short names of the action's parts (a Box's dimensions, a Discrete's actions), for the action menu of
   * candidates mode; absent: "action 0", "action 1", ... */
  actionNames?: readonly string[];
  describeAction(action: ArrayLike<number> | number): string;
  /** What an episode summary reports per segment; empty means "the first few features". */
  keyFeatures: readonly KeyFeature[];
}
