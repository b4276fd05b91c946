// A mask net explaining a run's base policy (StateMask, trained as RICE trains it: arXiv 2405.03064, Refine_mujoco/
// masknet/): importance of a state = P(the mask lets the agent act there). `ultra explain` keeps one in DIR/explain/
// (masknet.zip, and explain.json: what it cost); the rice arm trains its own with the same function (trainMask), or
// takes this one when it was trained with the arm's recipe for the same base policy; `ultra fidelity` scores it.
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import { UltraError } from "../errors.js";
import type { LearnProgress } from "../bridge/ops.js";
import { log, progressBar } from "../progress.js";
import { loadModel, specFor, type RunContext } from "./context.js";
import type { RunDir } from "./rundir.js";

export const EXPLAIN_DIR = "explain";
const MASK_SEED_OFFSET = 3000; // the mask net's env, apart from identify's (1000) and evaluate's (2000)

/** What training a mask net cost (RICE's Table 4 counts this time). */
export interface MaskTraining {
  steps: number;
  seconds: number;
  /** the env's return while the mask blinds the agent, at the end of training */
  ep_rew_mean: number | null;
  /** how often the mask chose to blind (a uniformly random action) during training */
  blind_fraction: number;
}

/** RICE's recipe: SB3 default PPO for `steps` env steps on the env's reward + alpha·(1 − action); seeded with the run's seed. */
export interface MaskRecipe {
  steps: number;
  alpha: number;
}

/** Train a mask net for the run's base policy (in its env, normalisation frozen) and save it at `path`. */
export async function trainMask(ctx: RunContext, recipe: MaskRecipe, path: string): Promise<MaskTraining> {
  const { sc } = ctx;
  const { env, model } = await loadModel(ctx, "base", { training: false, nEnvs: 1, seedOffset: MASK_SEED_OFFSET });
  try {
    const bar = progressBar("mask net", recipe.steps, "steps");
    try {
      const { mask, steps, seconds, ep_rew_mean, blind_fraction } = await sc.call(
        "mask_train",
        { model, env, steps: recipe.steps, alpha: recipe.alpha, seed: ctx.seed, path },
        { onEvent: (_, p) => bar.update((p as LearnProgress).steps) },
      );
      await sc.call("close", { handle: mask });
      return { steps, seconds, ep_rew_mean, blind_fraction };
    } finally {
      bar.stop();
    }
  } finally {
    for (const h of [model, env]) await sc.call("close", { handle: h });
  }
}

/** DIR/explain/explain.json */
export interface Explanation {
  /** the mask net zip, relative to the run dir */
  mask: string;
  /** --mask: the zip copied here; null when trained here */
  loaded_from: string | null;
  /** trained here: RICE's recipe and the seed (the run's); null when loaded */
  recipe: (MaskRecipe & { seed: number }) | null;
  trained: MaskTraining | null;
  /** env steps the mask net's training took here (0 when loaded) */
  env_steps: number;
  /** wall time of `ultra explain` */
  seconds: number;
  /** sha256 of the base policy's files: a mask net explains only the policy it was trained for */
  base_sha256: string;
  created: string;
}

/** sha256 of base/model.zip (and base/vec_normalize.pkl): a re-run base phase makes older explanations stale. */
export function baseDigest(run: RunDir): string {
  const h = createHash("sha256");
  for (const f of ["model.zip", "vec_normalize.pkl"]) if (run.exists("base", f)) h.update(f).update(readFileSync(run.path("base", f)));
  return h.digest("hex");
}

/** The input checks of `ultra explain`, before any sidecar starts: a base policy, and --mask's file. */
export function checkExplainInput(run: RunDir, o: { mask?: string; steps?: number }): void {
  if (!run.exists("base", "model.zip"))
    throw new UltraError(
      `${run.root} has no base policy (base/model.zip): run its base phase first (ultra base --run ${run.root}, or ultra train --resume)`,
    );
  if (o.mask !== undefined && o.steps !== undefined) throw new UltraError("--mask loads a mask net, --steps trains one: pass one of them");
  if (o.mask !== undefined && !existsSync(resolve(o.mask)))
    throw new UltraError(
      `--mask ${resolve(o.mask)} does not exist: give a mask net zip trained for this run's base policy (e.g. RICE's masknet/best_model.zip), or leave --mask out to train one`,
    );
  if (o.steps !== undefined && !(Number.isInteger(o.steps) && o.steps > 0))
    throw new UltraError(`--steps must be a positive integer (RICE: 300000), got ${o.steps}`);
}

/** Train (RICE's recipe: rice.mask_steps or `steps`, rice.alpha) or load (`mask`) a mask net for the run's base
 * policy into DIR/explain/. */
export async function explain(ctx: RunContext, o: { mask?: string; steps?: number }): Promise<Explanation> {
  const t0 = Date.now();
  const { run, settings, sc } = ctx;
  checkExplainInput(run, o);
  const rel = `${EXPLAIN_DIR}/masknet.zip`;
  const path = run.path(rel);
  mkdirSync(run.path(EXPLAIN_DIR), { recursive: true });
  rmSync(run.path(EXPLAIN_DIR, "explain.json"), { force: true }); // written last: there, it describes the zip beside it
  let [loadedFrom, recipe, trained]: [string | null, Explanation["recipe"], MaskTraining | null] = [null, null, null];
  if (o.mask !== undefined) {
    loadedFrom = resolve(o.mask);
    // loaded against the base policy's env: a mask net for other observations fails here, naming both shapes
    const { env } = await sc.call("env_make", { spec: specFor(ctx, "base", { training: false, nEnvs: 1 }) });
    try {
      const { mask } = await sc.call("mask_load", { path: loadedFrom, env, trust_model: settings.trust_model });
      await sc.call("close", { handle: mask });
    } finally {
      await sc.call("close", { handle: env });
    }
    copyFileSync(loadedFrom, `${path}.tmp`);
    renameSync(`${path}.tmp`, path);
    log(`explain: mask net ${loadedFrom} loads for the base policy; copied to ${path}`);
  } else {
    recipe = { steps: o.steps ?? settings.rice.mask_steps, alpha: settings.rice.alpha, seed: ctx.seed };
    log(`explain: training a mask net for the base policy (${recipe.steps} steps, alpha ${recipe.alpha}: RICE's recipe)`);
    trained = await trainMask(ctx, recipe, path);
  }
  const record: Explanation = {
    mask: rel,
    loaded_from: loadedFrom,
    recipe,
    trained,
    env_steps: trained?.steps ?? 0,
    seconds: (Date.now() - t0) / 1000,
    base_sha256: baseDigest(run),
    created: new Date().toISOString(),
  };
  run.writeJson(`${EXPLAIN_DIR}/explain.json`, record);
  return record;
}

/** DIR/explain's mask net if it is complete and explains the run's current base policy; otherwise null, and `why`. */
export function currentExplanation(run: RunDir): { explanation: Explanation; path: string } | { explanation: null; why: string } {
  if (!run.exists(EXPLAIN_DIR, "explain.json")) return { explanation: null, why: `${run.path(EXPLAIN_DIR)} holds no finished explanation` };
  const explanation = run.readJson<Explanation>(`${EXPLAIN_DIR}/explain.json`);
  const path = run.path(explanation.mask);
  if (!existsSync(path)) return { explanation: null, why: `${path} is missing` };
  if (explanation.base_sha256 !== baseDigest(run))
    return {
      explanation: null,
      why: `its mask net was made for another base policy (the base phase ran again since); run \`ultra explain --run ${run.root}\` again`,
    };
  return { explanation, path };
}

/** DIR/explain's mask net when it is the one the rice arm would train: trained here with the arm's recipe (rice.mask_steps,
 * rice.alpha, the run's seed) for the current base policy. */
export function reusableMask(ctx: RunContext): { path: string; trained: MaskTraining } | null {
  const cur = currentExplanation(ctx.run);
  if (cur.explanation === null) return null;
  const { recipe, trained } = cur.explanation;
  const { mask_steps, alpha } = ctx.settings.rice;
  if (recipe === null || trained === null || recipe.steps !== mask_steps || recipe.alpha !== alpha || recipe.seed !== ctx.seed) return null;
  return { path: cur.path, trained };
}
