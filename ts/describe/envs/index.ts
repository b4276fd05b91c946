// The state interpreters, by the name an env config gives (configs/envs/*.yaml `interpreter:`). An env without one
// gets the generic interpreter (obs[i] by index). An env config file of your own may name a module instead,
// `interpreter: module:PATH.mjs` (examples/new-env/): loadInterpreter imports it once, before a run needs it.
import { pathToFileURL } from "node:url";
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
  const file = modulePath(cfg.interpreter);
  const interp = file ? fromModules.get(file) : INTERPRETERS.find((i) => i.name === cfg.interpreter);
  if (!interp && file)
    throw new UltraError(`env ${cfg.name}: interpreter module ${file} is not loaded yet: await loadInterpreter(cfg) before asking for it`);
  if (!interp)
    throw new UltraError(
      `env ${cfg.name}: interpreter "${cfg.interpreter}" is not one of ${INTERPRETERS.map((i) => i.name).join(", ")} (ts/describe/envs/index.ts); use null for the generic one, or module:PATH.mjs in an env config file of your own (examples/new-env/)`,
    );
  return interp.name === cfg.name ? interp : { ...interp, name: cfg.name };
}

const MODULE = "module:";
const modulePath = (interpreter: string) => (interpreter.startsWith(MODULE) ? interpreter.slice(MODULE.length) : null);
const fromModules = new Map<string, StateInterpreter>(); // `interpreter: module:PATH` (absolute: loadEnvFile made it so), imported once

/** What a module's default export must have: StateInterpreter's required members (its name is the config's). */
const REQUIRED: [keyof StateInterpreter, "function" | "string" | "array"][] = [
  ["features", "function"],
  ["describe", "function"],
  ["actionSemantics", "string"],
  ["describeAction", "function"],
  ["keyFeatures", "array"],
];

/** The env's interpreter, as interpreterOf gives it, after importing it if the config names a module (once per
 * process: a run awaits this before its phases, so interpreterOf/interpreterFor find it later). */
export async function loadInterpreter(cfg: Pick<EnvConfig, "name" | "interpreter">): Promise<StateInterpreter> {
  const file = cfg.interpreter === null ? null : modulePath(cfg.interpreter);
  if (file && !fromModules.has(file)) {
    const fix =
      "give a .mjs file whose default export is a state interpreter (ts/describe/envs/types.ts; see examples/new-env/interpreter.mjs)";
    let mod: { default?: unknown };
    try {
      mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
    } catch (e) {
      throw new UltraError(
        `env ${cfg.name}: interpreter module ${file} cannot be imported (${(e as Error).message.split("\n")[0]}): ${fix}`,
      );
    }
    const interp = mod.default as Record<string, unknown> | undefined;
    const lacks = REQUIRED.filter(([k, type]) => (type === "array" ? !Array.isArray(interp?.[k]) : typeof interp?.[k] !== type));
    if (lacks.length)
      throw new UltraError(
        `env ${cfg.name}: interpreter module ${file} lacks ${lacks.map(([k, type]) => `${k} (${type === "array" ? "an array" : `a ${type}`})`).join(", ")} in its default export: ${fix}`,
      );
    fromModules.set(file, { ...(interp as unknown as StateInterpreter), name: cfg.name });
  }
  return interpreterOf(cfg);
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
