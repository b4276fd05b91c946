// The state interpreters, by the name an env config gives (configs/envs/*.yaml `interpreter:`). An env without one
// gets the generic interpreter (obs[i] by index).
import { resolveEnv, type EnvConfig } from "../../config.js";
import { UltraError } from "../../errors.js";
import { genericInterpreter } from "./generic.js";
import { halfCheetah } from "./halfcheetah.js";
import { hopper } from "./hopper.js";
import { pong } from "./pong.js";
import { reacher } from "./reacher.js";
import type { StateInterpreter } from "./types.js";
import { walker2d } from "./walker2d.js";

export type { KeyFeature, StateInterpreter } from "./types.js";

export const INTERPRETERS: readonly StateInterpreter[] = [halfCheetah, hopper, walker2d, reacher, pong];

/** The interpreter an env config names, under the config's name (RICE's sparse variants read what their dense twin
 * reads: SparseHopper is the Hopper interpreter). */
export function interpreterOf(cfg: Pick<EnvConfig, "name" | "interpreter">): StateInterpreter {
  if (cfg.interpreter === null) return genericInterpreter(cfg.name);
  const interp = INTERPRETERS.find((i) => i.name === cfg.interpreter);
  if (!interp)
    throw new UltraError(
      `env ${cfg.name}: interpreter "${cfg.interpreter}" is not one of ${INTERPRETERS.map((i) => i.name).join(", ")} (ts/describe/envs/index.ts); use null for the generic one`,
    );
  return interp.name === cfg.name ? interp : { ...interp, name: cfg.name };
}

/** By env name, id or alias, as `--env` takes it; a name no config knows gets the generic interpreter. */
export function interpreterFor(env: string): StateInterpreter {
  let cfg: EnvConfig;
  try {
    cfg = resolveEnv(env);
  } catch {
    return genericInterpreter(env);
  }
  return interpreterOf(cfg);
}
