// A sweep: envs × ULTRA variants × seeds, plus the baselines, as trials. A YAML file (configs/sweeps/) and
// command-line flags both fill the same spec; flags win.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { UltraError } from "../errors.js";
import { parseBaselines, parseIntList } from "../args.js";
import { resolveEnv } from "../config.js";
import { BASELINES, OPT_IN_BASELINES, VARIANTS, type Baseline, type Variant } from "../ultra/settings.js";

export const SweepSpec = z.object({
  envs: z.array(z.string()).min(1),
  variants: z.array(z.enum(VARIANTS)).min(1),
  /** default BASELINES; opt-in arms (rice) only when named */
  baselines: z.array(z.enum([...BASELINES, ...OPT_IN_BASELINES])),
  seeds: z.array(z.number().int().nonnegative()).min(1),
  profile: z.string(),
  /** default: configs/ultra.yaml's */
  adviser: z.string().optional(),
  /** "local": a Ray instance started here (loopback); "auto": the cluster this machine belongs to; ray://HOST:PORT */
  ray: z.string().regex(/^(local|auto|ray:\/\/.+)$/, "local, auto or ray://HOST:PORT"),
  max_parallel: z.number().int().positive(),
  cpus_per_trial: z.number().positive(),
  gpus_per_trial: z.number().nonnegative(),
  /** a trial that fails this often is marked failed, and the sweep goes on */
  max_attempts: z.number().int().positive(),
  /** per env (as named in `envs`): the agent to refine instead of pretraining one, and a mask net explaining it for
   * the rice arm. `${VAR}` in a path is the environment variable VAR (e.g. RICE=../shared/rice). */
  agents: z.record(z.string(), z.object({ model: z.string(), mask: z.string().optional() }).strict()).optional(),
});
export type SweepSpec = z.infer<typeof SweepSpec>;

const DEFAULTS = {
  baselines: [...BASELINES],
  seeds: [0],
  profile: "paper",
  ray: "local",
  max_parallel: 2,
  cpus_per_trial: 1,
  gpus_per_trial: 0,
  max_attempts: 3,
};

const list = (s: string) =>
  s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);

/** Command-line strings as spec values: "a,b" lists, "0-4" seeds, baselines as `ultra train --baselines` takes them. */
export function flagsToSpec(f: { envs?: string; variants?: string; baselines?: string; seeds?: string }): Partial<SweepSpec> {
  const out: Record<string, unknown> = {};
  if (f.envs) out.envs = list(f.envs);
  if (f.variants) out.variants = list(f.variants);
  if (f.baselines) out.baselines = parseBaselines(f.baselines);
  if (f.seeds) out.seeds = parseIntList(f.seeds);
  return out as Partial<SweepSpec>;
}

/** defaults < a resumed sweep's stored spec < the sweep file < flags, checked; every env must resolve. */
export function resolveSweep(file: string | undefined, flags: Partial<SweepSpec>, stored?: SweepSpec): SweepSpec {
  let fromFile: unknown = {};
  if (file) {
    try {
      fromFile = parse(readFileSync(file, "utf8")) ?? {};
    } catch (e) {
      throw new UltraError(`cannot read sweep file ${file}: ${(e as Error).message}`);
    }
  }
  const defined = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  const merged = { ...DEFAULTS, ...stored, ...(fromFile as object), ...defined } as Partial<SweepSpec>;
  if (!merged.envs || !merged.variants)
    throw new UltraError(
      "name the grid: --envs and --variants (e.g. --envs HalfCheetah,Hopper --variants RA,R), or a --file with envs: and variants:",
    );
  const parsed = SweepSpec.safeParse(merged);
  if (!parsed.success) throw new UltraError(`invalid sweep${file ? ` (${file})` : ""}: ${z.prettifyError(parsed.error)}`);
  for (const env of parsed.data.envs) resolveEnv(env); // an unknown env fails now, naming it, not hours in
  if (parsed.data.agents) parsed.data.agents = resolveAgents(parsed.data.agents, parsed.data.envs);
  return parsed.data;
}

/** `${VAR}` expanded and every file there: a missing agent fails the sweep now, naming the path, not at its trial. */
function resolveAgents(agents: NonNullable<SweepSpec["agents"]>, envs: string[]): NonNullable<SweepSpec["agents"]> {
  const unknown = Object.keys(agents).filter((e) => !envs.includes(e));
  if (unknown.length)
    throw new UltraError(
      `agents names ${unknown.join(", ")}, not among the sweep's envs (${envs.join(", ")}): key agents by the env as named in envs`,
    );
  const path = (where: string, p: string) => {
    const out = p.replace(/\$\{(\w+)\}/g, (_, name: string) => {
      const v = process.env[name];
      if (!v) throw new UltraError(`${where} is ${p}, but \${${name}} is not set: set ${name} (e.g. make replicate RICE=../shared/rice)`);
      return v;
    });
    if (!existsSync(resolve(out))) throw new UltraError(`${where}: ${resolve(out)} does not exist`);
    return resolve(out);
  };
  return Object.fromEntries(
    Object.entries(agents).map(([env, a]) => [
      env,
      { model: path(`agents.${env}.model`, a.model), ...(a.mask ? { mask: path(`agents.${env}.mask`, a.mask) } : {}) },
    ]),
  );
}

export type TrialStatus = "pending" | "running" | "done" | "failed";

export interface Trial {
  id: string;
  env: string;
  variant: Variant;
  seed: number;
  /** run dir, relative to the sweep dir */
  dir: string;
  /** trained here: the baselines go with the first variant of each env and seed */
  baselines: Baseline[];
  /** the trial of the same env and seed whose base policy this one starts from (null: it pretrains its own) */
  donor: string | null;
  status: TrialStatus;
  attempts: number;
  errors: string[];
  seconds: number;
  node?: string;
  endpoint?: string;
  pid?: number;
}

/** Every env × variant × seed. Variants of one env and seed share a base policy (pretrained once) and the
 * baselines (trained once): they would come out the same in each, since they do not depend on the variant. */
export function trialsOf(spec: SweepSpec): Trial[] {
  const trials: Trial[] = [];
  for (const env of spec.envs)
    for (const seed of spec.seeds)
      spec.variants.forEach((variant, i) => {
        const id = `${resolveEnv(env).name}-${variant}-s${seed}`;
        // with an agent given for the env every trial starts from it; otherwise the first variant pretrains one
        const donor = i === 0 || spec.agents?.[env] ? null : `${resolveEnv(env).name}-${spec.variants[0]}-s${seed}`;
        trials.push({
          id,
          env,
          variant,
          seed,
          dir: `trials/${id}`,
          baselines: i === 0 ? spec.baselines : [],
          donor,
          status: "pending",
          attempts: 0,
          errors: [],
          seconds: 0,
        });
      });
  return trials;
}
