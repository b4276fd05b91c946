// Per-env configs (configs/envs/*.yaml): RL-Zoo hyperparameters and how to build the env. Short names resolve.
// An env config of your own can live anywhere: `--env PATH.yaml` (examples/new-env/).
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import type { EnvSpec } from "./bridge/ops.js";
import { Schedule } from "./bridge/shapes.js";
import { UltraError } from "./errors.js";
import { CONFIGS_DIR } from "./paths.js";
import { isTree, merge } from "./tree.js";

export const EnvConfig = z.object({
  name: z.string(),
  env_id: z.string(),
  aliases: z.array(z.string()).default([]),
  /** the state interpreter (ts/describe/envs/ INTERPRETERS, by name) that reads observations in physical units; null: the
   * generic one (obs[i] by index); in an env config file of your own, also module:PATH.mjs (relative to the file) */
  interpreter: z.string().nullable().default(null),
  /** the env's description for the LLM, a template in prompts/ (in an env config file of your own: relative to the file) */
  prompt: z.string().default("generic.md"),
  env_kwargs: z.record(z.string(), z.unknown()).default({}),
  wrappers: z.array(z.union([z.string(), z.record(z.string(), z.record(z.string(), z.unknown()))])).default([]),
  frame_stack: z.number().int().positive().nullable().default(null),
  n_envs: z.number().int().positive().default(1),
  normalize: z.union([z.literal(false), z.record(z.string(), z.unknown())]).default(false),
  n_timesteps: z.number().int().positive(),
  eval: z.object({ deterministic: z.boolean().default(true) }).default({ deterministic: true }),
  ppo: z
    .object({ policy: z.enum(["MlpPolicy", "CnnPolicy"]), learning_rate: Schedule.optional(), clip_range: Schedule.optional() })
    .catchall(z.unknown()),
  /** Per-env overrides of configs/ultra.yaml (e.g. RICE's reset probability for this env). */
  ultra: z.record(z.string(), z.unknown()).default({}),
  /** published returns to set a result beside (e.g. RICE's Table 1): where from, and arm → mean (std) */
  reference: z
    .object({ source: z.string(), returns: z.record(z.string(), z.object({ mean: z.number(), std: z.number().nullable() })) })
    .nullable()
    .default(null),
});
export type EnvConfig = z.infer<typeof EnvConfig>;

/** All env configs; `extends: Name` starts from another config (the sparse variants reuse their dense twin). */
export function loadConfigs(dir = join(CONFIGS_DIR, "envs")): EnvConfig[] {
  let configs = loaded.get(dir);
  if (!configs) loaded.set(dir, (configs = readConfigs(dir)));
  return configs;
}
const loaded = new Map<string, EnvConfig[]>(); // read once per process: every --env resolves against the same files

function readConfigs(dir: string): EnvConfig[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort();
  const raw = new Map(files.map((f) => [f, parse(readFileSync(join(dir, f), "utf8")) as Record<string, unknown>]));
  const byName = new Map([...raw.values()].map((d) => [d.name, d]));
  return files.map((f) => {
    const { extends: parent, ...doc } = raw.get(f)!;
    if (parent !== undefined && !byName.has(parent)) throw new UltraError(`configs/envs/${f} extends unknown config "${parent}"`);
    const parsed = EnvConfig.safeParse(parent === undefined ? doc : merge(byName.get(parent)!, doc));
    if (!parsed.success) throw new UltraError(`configs/envs/${f} is invalid: ${z.prettifyError(parsed.error)}`);
    return parsed.data;
  });
}

/** "HalfCheetah", "halfcheetah", "HalfCheetah-v5" or an alias; another version of a configured env's id
 * ("Hopper-v4", for RICE's agents) keeps that env's settings with the id asked for; any other Gymnasium id gets
 * SB3 defaults; a path ending in .yaml or .yml is an env config file of your own (loadEnvFile). */
export function resolveEnv(name: string, configs = loadConfigs()): EnvConfig {
  if (isEnvFile(name)) return loadEnvFile(name);
  const key = name.toLowerCase();
  const hit = [...configs, ...fromFiles.values()].find((c) => [c.name, c.env_id, ...c.aliases].some((n) => n.toLowerCase() === key));
  if (hit) return hit;
  const unversioned = (id: string) => id.toLowerCase().replace(/-v\d+$/, "");
  const sibling = /-v\d+$/.test(name) && configs.find((c) => unversioned(c.env_id) === unversioned(name));
  if (sibling) return { ...sibling, env_id: name };
  if (/-v\d+$/.test(name)) return EnvConfig.parse({ name, env_id: name, n_timesteps: 1_000_000, ppo: { policy: "MlpPolicy" } });
  throw new UltraError(
    `unknown env "${name}": use one of ${configs.map((c) => c.name).join(", ")} or a full Gymnasium id such as "CartPole-v1"`,
  );
}

/** `--env PATH.yaml`: an env config file rather than a name. */
export const isEnvFile = (name: string) => /\.ya?ml$/i.test(name);

const fromFiles = new Map<string, EnvConfig>(); // env config files read in this process, by absolute path

/** An env config file of your own (`--env PATH.yaml`): the layout of configs/envs/*.yaml, `extends:` a configured
 * env if you like, with `prompt:` and `interpreter: module:PATH.mjs` relative to the file. Read once per process;
 * after that its name, id and aliases resolve like a configured env's (the run's phases, its prompts). */
export function loadEnvFile(path: string): EnvConfig {
  const file = resolve(path);
  const known = fromFiles.get(file);
  if (known) return known;
  if (!existsSync(file))
    throw new UltraError(
      `env config ${file} does not exist: --env takes a configured env (${loadConfigs()
        .map((c) => c.name)
        .join(", ")}), a Gymnasium id, or the path of an env config .yaml (examples/new-env/)`,
    );
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new UltraError(`env config ${file} is not valid YAML (${(e as Error).message.split("\n")[0]})`);
  }
  if (!isTree(doc)) throw new UltraError(`env config ${file} is not a YAML mapping: write it in the layout of configs/envs/*.yaml`);
  const { extends: parent, ...own } = doc;
  const beside = (field: string, value: string) => {
    const target = resolve(dirname(file), value);
    if (!existsSync(target))
      throw new UltraError(`env config ${file}: ${field}: ${value} is not a file (${target}); paths there are relative to the config file`);
    return target;
  };
  if (typeof own.prompt === "string") own.prompt = beside("prompt", own.prompt);
  if (typeof own.interpreter === "string" && own.interpreter.startsWith("module:"))
    own.interpreter = `module:${beside("interpreter", own.interpreter.slice("module:".length))}`;
  const builtin = loadConfigs();
  const base = parent === undefined ? undefined : builtin.find((c) => c.name === parent);
  if (parent !== undefined && !base)
    throw new UltraError(`env config ${file} extends unknown config "${parent}": use one of ${builtin.map((c) => c.name).join(", ")}`);
  const parsed = EnvConfig.safeParse(base ? merge(base, own) : own);
  if (!parsed.success) throw new UltraError(`env config ${file} is invalid: ${z.prettifyError(parsed.error)}`);
  const cfg = parsed.data;
  const names = (c: EnvConfig) => [c.name, ...c.aliases].map((n) => n.toLowerCase());
  const clash = [...builtin, ...fromFiles.values()].find((c) => names(c).some((n) => names(cfg).includes(n)));
  if (clash)
    throw new UltraError(
      `env config ${file}: the name "${cfg.name}" (or an alias) is taken by ${envFileOf(clash) ?? `configs/envs (${clash.name})`}: give your env another name`,
    );
  fromFiles.set(file, cfg);
  return cfg;
}

/** The file an env config came from, if it came from one of your own (loadEnvFile); undefined for configs/envs. */
export const envFileOf = (cfg: Pick<EnvConfig, "name">): string | undefined => [...fromFiles].find(([, c]) => c.name === cfg.name)?.[0];

/** A run's env config (run.json): from its env config file if it had one, else by id (which keeps a v4 id). */
export const runEnv = (record: { env_id: string; env_config?: string }): EnvConfig => resolveEnv(record.env_config ?? record.env_id);

export function envSpec(cfg: EnvConfig, opts: { seed: number; training: boolean; vecNormalizePath?: string; nEnvs?: number }): EnvSpec {
  return {
    env_id: cfg.env_id,
    n_envs: opts.nEnvs ?? cfg.n_envs,
    seed: opts.seed,
    env_kwargs: cfg.env_kwargs,
    wrappers: cfg.wrappers,
    frame_stack: cfg.frame_stack,
    normalize: cfg.normalize,
    vec_normalize_path: opts.vecNormalizePath ?? null,
    training: opts.training,
  };
}
