// ULTRA settings (configs/ultra.yaml): defaults < profile < the env's `ultra:` block < command-line flags.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { merge, type Tree } from "../tree.js";
import { UltraError } from "../errors.js";
import { CONFIGS_DIR } from "../paths.js";

export const VARIANTS = ["A", "R", "RA"] as const;
export type Variant = (typeof VARIANTS)[number];
export const BASELINES = ["continue_ppo", "rice_reset", "random_critical"] as const;
/** Baselines a run trains only when `baselines:` names them. `rice` (RICE itself: mask-net critical states + RND)
 * first trains a mask net for the base policy (rice.mask_steps, RICE's cost) unless rice.mask names one. Kept out
 * of BASELINES, the sweeps' default ("all"), so that no run pays for a mask net it did not ask for. `rice_random`
 * is RICE's own ablation: a uniformly random state of the fresh rollout instead of the mask net's, with the RND. */
export const OPT_IN_BASELINES = ["rice", "rice_random"] as const;
export type Baseline = (typeof BASELINES)[number] | (typeof OPT_IN_BASELINES)[number];

export const Settings = z.object({
  variant: z.enum(VARIANTS),
  adviser: z.string(),
  /** verified advice: keep a suggested action only if it beats the policy's own in rollouts from its state */
  verify: z.boolean(),
  /** unpickle the base model.zip and vec_normalize.pkl as SB3 would (code in them runs): only for files you trust */
  trust_model: z.boolean(),
  base: z.object({
    hyperparameters: z.enum(["sb3", "zoo"]),
    steps: z.number().int().positive(),
    /** a committed base agent to start from when --base is not given, relative to the repository ("{env}": the
     * env's config name); an env without one is pretrained (hyperparameters, steps) */
    agent: z.string().nullable(),
  }),
  identify: z.object({
    episodes: z.number().int().positive(),
    max_critical_states: z.number().int().positive(),
    min_separation: z.number().int().nonnegative(),
    deterministic: z.boolean(),
    prompt_chars: z.number().int().positive(),
    /** what an LLM adviser reads: `episode` (the paper's, for strong models), `candidates` (lettered cards and an
     * action menu, for small ones), `auto` (candidates for local models, episode otherwise) */
    mode: z.enum(["auto", "episode", "candidates"]),
    /** candidates mode: cards per episode */
    cards: z.number().int().min(1).max(8),
  }),
  llm: z.object({
    max_tokens: z.number().int().positive(),
    temperature: z.number().min(0),
    timeout_s: z.number().positive(),
    max_retries: z.number().int().nonnegative(),
    concurrency: z.number().int().positive(),
    structured: z.enum(["auto", "json_schema", "json_object"]),
  }),
  /** verified advice: common-random-number pairs per suggestion and the effect (in std of the policy's own return) it must clear */
  verification: z.object({ pairs: z.number().int().min(2), min_effect: z.number().min(0) }),
  rollout_adviser: z.object({ candidates: z.number().int().min(2), horizon: z.number().int().positive(), gamma: z.number().gt(0).lte(1) }),
  modulation: z.object({
    /** RMS distance in the agent's normalised observation space within which a state counts as a critical one */
    radius: z.number().nonnegative(),
    /** calibrate the radius from the base policy's own states so that this fraction of them (from other episodes
     * than the critical state's) lie within it; null: use `radius` as given */
    match_fraction: z.number().gt(0).lt(1).nullable(),
    /** entry: an entry modulates the step a sub-env enters its radius, not again until it has left (or a new episode
     * began); step: every step inside, which a "hold still" suggestion can turn into a lock (the agent stays, the
     * suggestion fires again) */
    fire_on: z.enum(["entry", "step"]),
    reset_prob: z.number().min(0).max(1),
    /** multiplies the adviser's reward, whose unit is the base policy's per-step reward scale (identify measures it) */
    reward_scale: z.number(),
    /** R, RA: an entry with a Box action pays × max(0, 1 − d/action_tolerance), d the RMS distance of the taken
     * action from the suggestion in half-ranges of the action space */
    action_tolerance: z.number().positive(),
  }),
  improve: z.object({
    steps: z.number().int().positive(),
    learning_rate: z.number().positive(),
    n_envs: z.number().int().positive(),
    checkpoint_every: z.number().int().positive(),
    /** updates: every arm trains improve.steps; env_steps: every arm's total env steps (identification's included) are equal */
    budget: z.enum(["updates", "env_steps"]),
  }),
  evaluate: z.object({ episodes: z.number().int().positive() }),
  baselines: z.array(z.enum([...BASELINES, ...OPT_IN_BASELINES])),
  /** the `rice` arm (RICE, arXiv 2405.03064); its p is modulation.reset_prob (the env configs set RICE's Table 3 p) */
  rice: z
    .object({
      /** a mask net zip for the base policy (e.g. RICE's masknet/best_model.zip for RICE's agent); null: train one */
      mask: z.string().nullable(),
      /** env steps to train the mask net when `mask` is null (RICE: 3e5) */
      mask_steps: z.number().int().positive(),
      /** with improve.budget env_steps: count that training in the equal budget (every other arm then trains as much
       * longer); false: report it as the rice arm's preparation without matching it, as when the mask net is given */
      charge_mask: z.boolean(),
      /** the mask net's reward for blinding the agent: alpha × (1 − action) (RICE: 0.01) */
      alpha: z.number().min(0),
      /** λ: weight of the normalised RND bonus (RICE Table 3: 0.001 Hopper, Reacher; 0.01 Walker2d, HalfCheetah) */
      rnd_coef: z.number().min(0),
    })
    .default({ mask: null, mask_steps: 300000, charge_mask: true, alpha: 0.01, rnd_coef: 0.01 }),
});
export type Settings = z.infer<typeof Settings>;

export function resolveSettings(opts: { profile: string; envOverrides?: Tree; flags?: Tree; file?: string }): Settings {
  const file = opts.file ?? join(CONFIGS_DIR, "ultra.yaml");
  const doc = parse(readFileSync(file, "utf8")) as { defaults: Tree; profiles: Record<string, Tree> };
  if (!(opts.profile in doc.profiles))
    throw new UltraError(`unknown profile "${opts.profile}": use one of ${Object.keys(doc.profiles).join(", ")} (configs/ultra.yaml)`);
  const parsed = Settings.safeParse(merge(doc.defaults, doc.profiles[opts.profile], opts.envOverrides, opts.flags));
  if (!parsed.success) throw new UltraError(`invalid ULTRA settings: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
