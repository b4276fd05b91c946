// Phase 3, improvement: continue PPO from the base policy with the modulation table applied inside the
// sidecar's rollouts, and the baselines with the same budget. Each arm checkpoints, so an interrupted
// improve resumes where it stopped.
import { mkdirSync } from "node:fs";
import { CriticalStatesFile, CriticalState } from "../critical.js";
import { learn, type CurvePoint } from "../../learn.js";
import { log } from "../../progress.js";
import { loadModel, type RunContext } from "../context.js";
import { modulationTable, type StateStore, type TableVariant } from "../modulation.js";
import type { Baseline, Variant } from "../settings.js";

export type Arm = `ultra_${Variant}` | Baseline;

/** Where each arm's refined model lives: ULTRA's in refined/, the baselines' in baselines/NAME/. */
export const armDir = (arm: Arm) => (arm.startsWith("ultra_") ? "refined" : `baselines/${arm}`);

export function arms(ctx: RunContext): Arm[] {
  return [`ultra_${ctx.settings.variant}`, ...ctx.settings.baselines];
}

interface ArmProgress {
  steps_done: number;
  curve: CurvePoint[];
  modulation: unknown[];
}

function tableFor(ctx: RunContext, arm: Arm, store: StateStore) {
  const variant: TableVariant | null = arm.startsWith("ultra_") ? (ctx.settings.variant as TableVariant) : arm === "continue_ppo" ? null : "reset";
  if (variant === null) return null;
  const states =
    arm === "random_critical"
      ? ctx.run.readChecked("identify/random_states.json", CriticalState.array())
      : ctx.run.readChecked("critical_states.json", CriticalStatesFile).states;
  return modulationTable(states, store, variant, ctx.settings, ctx.seed);
}

/** Counters summed over an arm's learn calls. */
function totalModulation(calls: unknown[]): Record<string, number> | null {
  const stats = calls.filter((c): c is Record<string, number> => c !== null && typeof c === "object");
  if (!stats.length) return null;
  return Object.fromEntries(Object.keys(stats[0]).map((k) => [k, stats.reduce((n, s) => n + s[k], 0)]));
}

/** `fresh`: start every arm from the base policy again (re-running the phase); otherwise resume checkpoints. */
export async function improve(ctx: RunContext, fresh = false): Promise<Record<string, unknown>> {
  const { run, settings, sc } = ctx;
  const store = run.readMessage<StateStore>("identify/states.msgpack");
  const summary: Record<string, unknown> = {};
  for (const arm of arms(ctx)) {
    const dir = armDir(arm);
    mkdirSync(run.path(dir), { recursive: true });
    const progressFile = `${dir}/progress.json`;
    const progress: ArmProgress = run.exists(progressFile) && !fresh ? run.readJson(progressFile) : { steps_done: 0, curve: [], modulation: [] };
    const total = settings.improve.steps;
    if (progress.steps_done >= total) {
      summary[arm] = { steps: progress.steps_done, modulation: totalModulation(progress.modulation) };
      continue;
    }
    // A fresh arm starts from the base policy; a resumed one from its last checkpoint.
    const from = progress.steps_done > 0 ? dir : "base";
    log(`improve ${arm}: ${total - progress.steps_done} steps from ${from === "base" ? "the base policy" : `its checkpoint at ${progress.steps_done}`}`);
    const { env, model } = await loadModel(ctx, from, {
      training: true,
      nEnvs: settings.improve.n_envs,
      learningRate: settings.improve.learning_rate,
      tensorboardLog: run.path(dir, "tb"),
    });
    const table = tableFor(ctx, arm, store);
    while (progress.steps_done < total) {
      const steps = Math.min(settings.improve.checkpoint_every, total - progress.steps_done);
      const res = await learn(sc, model, steps, arm, { tb_log_name: arm, modulation: table, of: { done: progress.steps_done, total } });
      progress.curve.push(...res.curve.map((p) => ({ ...p, timesteps: p.timesteps - res.timesteps + progress.steps_done + res.steps })));
      progress.steps_done += res.steps;
      progress.modulation.push(res.modulation ?? null);
      await sc.call("model_save", { model, path: run.path(dir, "model.zip") });
      run.writeJson(progressFile, progress);
    }
    for (const h of [model, env]) await sc.call("close", { handle: h });
    summary[arm] = { steps: progress.steps_done, modulation: totalModulation(progress.modulation) };
  }
  return summary;
}
