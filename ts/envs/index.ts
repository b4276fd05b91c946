// The state interpreter of an env config, by name. Unknown envs get the generic one (obs[i] by index).
import { genericInterpreter } from "./generic.js";
import { halfCheetah } from "./halfcheetah.js";
import { hopper } from "./hopper.js";
import { pong } from "./pong.js";
import { reacher } from "./reacher.js";
import type { StateInterpreter } from "./types.js";
import { walker2d } from "./walker2d.js";

export type { KeyFeature, StateInterpreter } from "./types.js";

export const INTERPRETERS: readonly StateInterpreter[] = [halfCheetah, hopper, walker2d, reacher, pong];

/** "HalfCheetah", "halfcheetah", "HalfCheetah-v5", "ALE/Pong-v5" all resolve; RICE's sparse variants
 * ("SparseHopper", "ultra/SparseHopper-v5") observe exactly what their dense twin does. */
export function interpreterFor(configName: string): StateInterpreter {
  const key = configName.toLowerCase().replace(/^.*\//, "").replace(/-v\d+$/, "").replace(/noframeskip$/, "");
  const find = (k: string) => INTERPRETERS.find((i) => i.name.toLowerCase() === k);
  const hit = find(key);
  if (hit) return hit;
  const sparse = /^sparse-?(.+)$/.exec(key);
  const dense = sparse ? find(sparse[1]) : undefined;
  if (dense && dense !== pong) return { ...dense, name: `Sparse${dense.name}` };
  return genericInterpreter(configName);
}
