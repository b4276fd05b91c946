// The modulation table sent to the sidecar for the improvement phase, for ULTRA and for the baselines.
import type { Snapshot } from "../bridge/ops.js";
import type { ModulationTable, RiceTable, TableVariant } from "../bridge/shapes.js";
import type { SidecarClient } from "../bridge/client.js";
import { NDArray } from "../protocol.js";
import type { CriticalState, RewardUnit } from "./critical.js";
import { concat, type Episode } from "./episodes.js";
import { mixSeed, rng } from "./rng.js";
import type { Settings } from "./settings.js";

// The table's layout is protocol.json's, declared once as zod schemas in ts/bridge/shapes.ts.
export type { ModulationState, ModulationTable, RiceTable, TableVariant } from "../bridge/shapes.js";

/** Observation and snapshot of every state a table may name, kept from the trajectories (identify/states.msgpack). */
export type StateStore = Record<string, { obs: NDArray; snapshot: Snapshot }>;
export const stateKey = (episode: number, step: number) => `${episode}:${step}`;

/** The rice arm's table: no states (the mask net finds them), p = modulation.reset_prob, RICE's RND. */
export function riceTable(s: Settings, seed: number, rice: RiceTable): ModulationTable {
  const { reset_prob, action_tolerance, fire_on } = s.modulation;
  return { variant: "rice", radius: 0, fire_on, reset_prob, reward_scale: 0, reward_unit: 1, action_tolerance, seed, states: [], rice };
}

function rowOf(a: NDArray, i: number): NDArray {
  const row = a.row(i);
  return new NDArray(a.dtype, a.shape.slice(1), row.slice() as typeof row);
}

/** Keep the observation and snapshot of each named state of `ep`. */
export function storeStates(states: CriticalState[], ep: Episode, store: StateStore): void {
  for (const c of states) store[stateKey(c.episode, c.step)] = { obs: rowOf(ep.raw_obs, c.step), snapshot: ep.snapshots[c.step] };
}

export function modulationTable(
  states: CriticalState[],
  store: StateStore,
  variant: TableVariant,
  s: Settings,
  seed: number,
  radius: number,
  rewardUnit: number,
): ModulationTable {
  const { reset_prob, reward_scale, action_tolerance, fire_on } = s.modulation;
  return {
    variant,
    radius,
    fire_on,
    reset_prob,
    reward_scale,
    reward_unit: rewardUnit,
    action_tolerance,
    seed,
    states: states.map((c) => {
      const kept = store[stateKey(c.episode, c.step)];
      if (!kept) throw new Error(`episode ${c.episode} step ${c.step} has no stored state in identify/states.msgpack; re-run identify`);
      const action = c.action === null ? null : typeof c.action === "number" ? c.action : NDArray.float32(c.action);
      return { obs: kept.obs, action, reward: c.reward, snapshot: kept.snapshot };
    }),
  };
}

/** Running moments of the base policy's raw per-step rewards (Welford), for its reward unit. */
export interface RewardMoments {
  n: number;
  mean: number;
  m2: number;
  abs: number;
}
export const emptyMoments = (): RewardMoments => ({ n: 0, mean: 0, m2: 0, abs: 0 });

export function addRewards(m: RewardMoments, rewards: ArrayLike<number>): void {
  for (let i = 0; i < rewards.length; i++) {
    const r = rewards[i];
    m.n++;
    const d = r - m.mean;
    m.mean += d / m.n;
    m.m2 += d * (r - m.mean);
    m.abs += Math.abs(r);
  }
}

/** The adviser reward's unit: the std of the per-step rewards, so that 1.0 means one typical step's reward in every
 * env; where every step earned the same, their mean |r|; where that is 0 too (or nothing was measured), 1.0. */
export function rewardUnitOf(m: RewardMoments): RewardUnit {
  const std = m.n ? Math.sqrt(m.m2 / m.n) : 0;
  if (std > 0) return { value: std, steps: m.n, basis: "std" };
  const meanAbs = m.n ? m.abs / m.n : 0;
  if (meanAbs > 0) return { value: meanAbs, steps: m.n, basis: "mean_abs" };
  return { value: 1, steps: m.n, basis: "fallback" };
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
  sc: SidecarClient,
  env: string,
  states: CriticalState[],
  store: StateStore,
  episodes: number,
  episodeObs: (i: number) => NDArray,
  fraction: number,
): Promise<number | null> {
  if (!states.length) return null;
  const keys = concat(
    states.map(({ episode, step }) => store[stateKey(episode, step)].obs).map((o) => new NDArray(o.dtype, [1, ...o.shape], o.data)),
  );
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
