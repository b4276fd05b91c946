// The modulation table sent to the sidecar for the improvement phase, for ULTRA and for the baselines.
import type { Snapshot } from "../bridge/ops.js";
import { NDArray } from "../protocol.js";
import type { CriticalState } from "./critical.js";
import type { Episode } from "./episodes.js";
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

export function modulationTable(states: CriticalState[], store: StateStore, variant: TableVariant, s: Settings, seed: number): ModulationTable {
  return {
    variant,
    ...s.modulation,
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
