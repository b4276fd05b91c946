// Phase 3, improvement: continue PPO from the base policy with the modulation table applied inside the
// sidecar's rollouts, and the baselines with the same budget (improve.budget: the same improve steps, or the same
// total env steps with identify's counted). Each arm checkpoints exactly (weights, optimizer, env states, RNGs), so
// an interrupted improve resumes where it stopped and ends with the same numbers.
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { CHECKPOINT, hasCheckpoint, writeCheckpoint } from "../../checkpoint.js";
import { resolve } from "node:path";
import { UltraError } from "../../errors.js";
import { CriticalStatesFile, CriticalState } from "../critical.js";
import { learn, type CurvePoint } from "../../learn.js";
import { armBudgets } from "../budget.js";
import { log } from "../../progress.js";
import { reusableMask, trainMask, type MaskTraining } from "../explain.js";
export type { MaskTraining } from "../explain.js";
import { loadModel, specFor, type RunContext } from "../context.js";
import { modulationTable, riceTable, type StateStore, type TableVariant } from "../modulation.js";
import { mixSeed } from "../rng.js";
import type { Baseline, Variant } from "../settings.js";

export type Arm = `ultra_${Variant}` | Baseline;

/** Where each arm's refined model lives: ULTRA's in refined/, the baselines' in baselines/NAME/. */
export const armDir = (arm: Arm) => (arm.startsWith("ultra_") ? "refined" : `baselines/${arm}`);

export function arms(ctx: RunContext): Arm[] {
  return [`ultra_${ctx.settings.variant}`, ...ctx.settings.baselines];
}

export interface ArmProgress {
  /** improve steps learn() took (whole rollouts: it may pass improve_steps) */
  steps_done: number;
  /** env steps of the preparation this arm used (identify's, by arm: ts/ultra/budget.ts) */
  prep_env_steps?: number;
  /** the improve steps asked for under improve.budget */
  improve_steps?: number;
  curve: CurvePoint[];
  modulation: unknown[];
  /** wall seconds of the arm's learn() calls, over every sitting (absent in runs made before it was recorded) */
  seconds?: number;
  /** the rice arm: its mask net, and what training it cost (null when rice.mask gave one) */
  mask?: { path: string; trained: MaskTraining | null };
}

/** An arm's learning curve and counters (also inside its checkpoint), or null before it started. */
export function readProgress(ctx: Pick<RunContext, "run">, arm: Arm): ArmProgress | null {
  const file = `${armDir(arm)}/progress.json`;
  return ctx.run.exists(file) ? ctx.run.readJson<ArmProgress>(file) : null;
}

/** The arm's last complete checkpoint dir (relative to the run), or null. */
function lastCheckpoint(ctx: RunContext, dir: string): string | null {
  return hasCheckpoint(ctx.run.path(dir)) ? `${dir}/${CHECKPOINT}` : null;
}

async function saveArm(ctx: RunContext, dir: string, model: string, progress: ArmProgress): Promise<void> {
  await writeCheckpoint(ctx.sc, ctx.run.path(dir), model, progress);
  ctx.run.writeJson(`${dir}/progress.json`, progress);
}

/** The arm's refined model where evaluate and users look for it: dir/model.zip (+ vec_normalize.pkl). */
function publish(ctx: RunContext, dir: string): void {
  for (const f of ["model.zip", "vec_normalize.pkl"])
    if (ctx.run.exists(dir, CHECKPOINT, f)) {
      copyFileSync(ctx.run.path(dir, CHECKPOINT, f), ctx.run.path(dir, `${f}.tmp`));
      renameSync(ctx.run.path(dir, `${f}.tmp`), ctx.run.path(dir, f));
    }
}

/** The arm's table for the learn() segment starting at `start` steps: its reset draws are seeded by the start, so
 * each segment draws afresh and a resumed segment draws as the uninterrupted one did. */
function tableFor(ctx: RunContext, arm: Arm, store: StateStore, file: CriticalStatesFile, start: number, mask: string | null) {
  if (arm === "rice" || arm === "rice_random") {
    if (arm === "rice" && mask === null) throw new Error("the rice arm needs its mask net before its table");
    // the copy env's statistics are replaced by the training env's before each rollout; its file only says whether it normalises
    const env = specFor(ctx, "base", { training: false, nEnvs: 1 });
    return riceTable(ctx.settings, mixSeed(ctx.seed, start), {
      mask: arm === "rice" ? mask : null,
      critical: arm === "rice" ? "mask" : "random",
      env,
      rnd_coef: ctx.settings.rice.rnd_coef,
      trust_model: ctx.settings.trust_model,
    });
  }
  const variant: TableVariant | null = arm.startsWith("ultra_")
    ? (ctx.settings.variant as TableVariant)
    : arm === "continue_ppo"
      ? null
      : "reset";
  if (variant === null) return null;
  const states = arm === "random_critical" ? ctx.run.readChecked("identify/random_states.json", CriticalState.array()) : file.states;
  const radius = arm === "random_critical" ? file.radius.random : file.radius.states;
  return modulationTable(states, store, variant, ctx.settings, mixSeed(ctx.seed, start), radius, file.reward_unit.value);
}

/** The rice arm's mask net: rice.mask, or one trained for the base policy at the arm's first start (RICE's recipe;
 * kept in the arm's dir, so a resumed arm does not train it again), or `ultra explain`'s when it is that one. */
async function riceMask(ctx: RunContext, dir: string): Promise<{ path: string; trained: MaskTraining | null }> {
  const { run, settings } = ctx;
  if (settings.rice.mask !== null) {
    const path = resolve(settings.rice.mask);
    if (!existsSync(path))
      throw new UltraError(
        `rice.mask ${path} does not exist: give the mask net zip trained for this base policy, or set rice.mask to null to train one`,
      );
    return { path, trained: null };
  }
  const path = run.path(dir, "masknet.zip");
  if (run.exists(dir, "masknet.json") && existsSync(path)) return { path, trained: run.readJson<MaskTraining>(`${dir}/masknet.json`) };
  const explained = reusableMask(ctx);
  let trained: MaskTraining;
  if (explained) {
    // the same recipe, seed and base policy: the mask net this arm would train (its cost is still the arm's preparation)
    log(`improve rice: using the mask net \`ultra explain\` trained with this arm's recipe (${explained.path})`);
    copyFileSync(explained.path, path);
    trained = explained.trained;
  } else {
    log(`improve rice: training a mask net for the base policy (${settings.rice.mask_steps} steps, alpha ${settings.rice.alpha})`);
    trained = await trainMask(ctx, { steps: settings.rice.mask_steps, alpha: settings.rice.alpha }, path);
  }
  run.writeJson(`${dir}/masknet.json`, trained); // after the zip: both there means the mask net is complete
  return { path, trained };
}

/** Counters summed over an arm's learn calls. */
export function totalModulation(calls: unknown[]): Record<string, number> | null {
  const stats = calls.filter((c): c is Record<string, number> => c !== null && typeof c === "object");
  if (!stats.length) return null;
  return Object.fromEntries(Object.keys(stats[0]).map((k) => [k, stats.reduce((n, s) => n + s[k], 0)]));
}

/** Drop every arm's models and checkpoints: they were trained on what an earlier phase just redid. */
export function discardArms(ctx: RunContext): void {
  for (const arm of arms(ctx)) rmSync(ctx.run.path(armDir(arm)), { recursive: true, force: true });
}

/** `fresh`: start every arm from the base policy again (re-running the phase); otherwise resume checkpoints. */
export async function improve(ctx: RunContext, fresh = false): Promise<Record<string, unknown>> {
  const { run, settings, sc } = ctx;
  const store = run.readMessage<StateStore>("identify/states.msgpack");
  const file = run.readChecked("critical_states.json", CriticalStatesFile);
  const { rice } = settings;
  const budgets = armBudgets(
    arms(ctx),
    settings.improve.steps,
    settings.improve.budget,
    file.env_steps,
    rice.mask === null ? rice.mask_steps : 0,
    rice.charge_mask,
  );
  const summary: Record<string, unknown> = { budget: settings.improve.budget };
  if (fresh) discardArms(ctx);
  for (const arm of arms(ctx)) {
    const dir = armDir(arm);
    mkdirSync(run.path(dir), { recursive: true });
    const ckpt = lastCheckpoint(ctx, dir);
    const progress: ArmProgress = ckpt ? run.readJson(`${ckpt}/progress.json`) : { steps_done: 0, curve: [], modulation: [] };
    const { prep_env_steps, improve_steps: total } = budgets[arm];
    Object.assign(progress, { prep_env_steps, improve_steps: total });
    if (arm === "rice" && progress.steps_done < total) progress.mask = await riceMask(ctx, dir);
    if (progress.steps_done < total) {
      // A fresh arm starts from the base policy; a resumed one exactly where its last checkpoint stood.
      log(
        `improve ${arm}: ${total - progress.steps_done} steps from ${ckpt ? `its checkpoint at ${progress.steps_done}` : "the base policy"}`,
      );
      const { env, model } = await loadModel(ctx, ckpt ?? "base", {
        training: true,
        nEnvs: settings.improve.n_envs,
        learningRate: settings.improve.learning_rate,
        tensorboardLog: run.path(dir, "tb"),
        resume: ckpt !== null,
      });
      while (progress.steps_done < total) {
        const steps = Math.min(settings.improve.checkpoint_every, total - progress.steps_done);
        const table = tableFor(ctx, arm, store, file, progress.steps_done, progress.mask?.path ?? null);
        const res = await learn(sc, model, steps, arm, { tb_log_name: arm, modulation: table, of: { done: progress.steps_done, total } });
        progress.curve.push(...res.curve.map((p) => ({ ...p, timesteps: p.timesteps - res.timesteps + progress.steps_done + res.steps })));
        progress.steps_done += res.steps;
        progress.seconds = (progress.seconds ?? 0) + res.seconds;
        progress.modulation.push(res.modulation ?? null);
        await saveArm(ctx, dir, model, progress);
      }
      for (const h of [model, env]) await sc.call("close", { handle: h });
    }
    publish(ctx, dir);
    run.writeJson(`${dir}/progress.json`, progress); // with this run's budget fields, also for an arm that had no step left
    summary[arm] = {
      steps: progress.steps_done,
      prep_env_steps,
      total_env_steps: prep_env_steps + progress.steps_done,
      modulation: totalModulation(progress.modulation),
      ...(progress.mask ? { mask: progress.mask } : {}),
    };
  }
  return summary;
}
