// The modulation table sent to the sidecar for the improvement phase, for ULTRA and for the baselines.
import type { Snapshot } from "../bridge/ops.js";
import type { Sidecar } from "../bridge/sidecar.js";
import { NDArray } from "../protocol.js";
import type { CriticalState } from "./critical.js";
import { concat, type Episode } from "./episodes.js";
import { mixSeed, rng } from "./rng.js";
import type { Settings } from "./settings.js";

export type TableVariant = "A" | "R" | "RA" | "reset";

/** Observation and snapshot of every state a table may name, kept from the trajectories (identify/states.msgpack). */
export type StateStore = Record<string, { obs: NDArray; snapshot: Snapshot }>;
export const stateKey = (episode: number, step: number) => `${episode}:${step}`;

export interface ModulationTable {
  variant: TableVariant;
  radius: number;
  reset_prob: number;
  reward_scale: number;
  seed: number;
  states: { obs: NDArray; action: NDArray | number | null; reward: number; snapshot: Snapshot }[];
}

function rowOf(a: NDArray, i: number): NDArray {
  const row = a.row(i);
  return new NDArray(a.dtype, a.shape.slice(1), row.slice() as typeof row);
}

/** Keep the observation and snapshot of each named state of `ep`. */
export function storeStates(states: CriticalState[], ep: Episode, store: StateStore): void {
  for (const c of states) store[stateKey(c.episode, c.step)] = { obs: rowOf(ep.raw_obs, c.step), snapshot: ep.snapshots[c.step] };
}

export function modulationTable(states: CriticalState[], store: StateStore, variant: TableVariant, s: Settings, seed: number, radius: number): ModulationTable {
  const { reset_prob, reward_scale } = s.modulation;
  return {
    variant,
    radius,
    reset_prob,
    reward_scale,
    seed,
    states: states.map((c) => {
      const kept = store[stateKey(c.episode, c.step)];
      if (!kept) throw new Error(`episode ${c.episode} step ${c.step} has no stored state in identify/states.msgpack; re-run identify`);
      const action = c.action === null ? null : typeof c.action === "number" ? c.action : NDArray.float32(c.action);
      return { obs: kept.obs, action, reward: c.reward, snapshot: kept.snapshot };
    }),
  };
}

/** The random-critical-states baseline: `count` distinct random steps of `ep`. */
export function randomStates(count: number, ep: Episode, seed: number): CriticalState[] {
  const random = rng(mixSeed(seed, ep.episode, 0xc0ffee));
  const steps = new Set<number>();
  while (steps.size < Math.min(count, ep.length)) steps.add(Math.floor(random() * ep.length));
  return [...steps].map((step) => ({ episode: ep.episode, step, action: null, reward: 0, reason: "random", adviser: "random" }));
}

/** The radius at which `fraction` of the base policy's own states lie near one of `states`: for each recorded state,
 * its distance (as the table matches) to the nearest of `states` from another episode (a state's own neighbours in
 * time would match trivially), and the `fraction` quantile of those. So every table fires on about the same share
 * of the policy's ordinary states, whichever states it names. `episodeObs(i)`: episode i's raw observations. */
export async function calibrateRadius(
  sc: Sidecar,
  env: string,
  states: CriticalState[],
  store: StateStore,
  episodes: number,
  episodeObs: (i: number) => NDArray,
  fraction: number,
): Promise<number | null> {
  if (!states.length) return null;
  const keys = concat(states.map(({ episode, step }) => store[stateKey(episode, step)].obs).map((o) => new NDArray(o.dtype, [1, ...o.shape], o.data)));
  const nearest: number[] = [];
  for (let i = 0; i < episodes; i++) {
    const obs = episodeObs(i);
    const { d } = await sc.call("obs_distances", { env, obs, keys });
    for (let t = 0; t < obs.shape[0]; t++) {
      let best = Infinity;
      for (let j = 0; j < states.length; j++) if (states[j].episode !== i) best = Math.min(best, d.data[t * states.length + j]);
      if (Number.isFinite(best)) nearest.push(best);
    }
  }
  if (!nearest.length) return null; // every state is from the one episode there is: nothing to calibrate against
  nearest.sort((a, b) => a - b);
  return nearest[Math.min(nearest.length - 1, Math.floor(fraction * nearest.length))];
}
