// Phase 1, the base policy: the user's own SB3 model.zip, or a suboptimal PPO pretrained here (RICE's setup:
// SB3's default PPO hyperparameters, 1M steps on MuJoCo).
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { UltraError } from "../../bridge/errors.js";
import { envSpec } from "../../config.js";
import { findVecNormalize } from "../../commands/evaluate.js";
import { learn } from "../../learn.js";
import { log } from "../../progress.js";
import { loadModel, type RunContext } from "../context.js";

export async function base(ctx: RunContext, userModel?: string): Promise<Record<string, unknown>> {
  const { run, cfg, settings, sc, seed } = ctx;
  mkdirSync(run.path("base"), { recursive: true });
  if (userModel) {
    const src = resolve(userModel);
    if (!existsSync(src)) throw new UltraError(`base model not found: ${src}`);
    copyFileSync(src, run.path("base", "model.zip"));
    const stats = findVecNormalize(src);
    if (stats) copyFileSync(stats, run.path("base", "vec_normalize.pkl"));
    else if (cfg.normalize) log(`warning: no vec_normalize.pkl beside ${src}; the base model is used without normalisation`);
    const { env } = await loadModel(ctx, "base", { training: false }); // fails early, naming the problem, if it does not fit
    await sc.call("close", { handle: env });
    return { source: src, vec_normalize: stats };
  }
  const ppo = settings.base.hyperparameters === "zoo" ? cfg.ppo : { policy: cfg.ppo.policy };
  log(`base: pretraining PPO (${settings.base.hyperparameters} hyperparameters) for ${settings.base.steps} steps`);
  const { env } = await sc.call("env_make", { spec: envSpec(cfg, { seed, training: true }) });
  const { model } = await sc.call("model_new", { env, ppo: { ...ppo, seed, tensorboard_log: run.path("base", "tb") } });
  const res = await learn(sc, model, settings.base.steps, "base");
  await sc.call("model_save", { model, path: run.path("base", "model.zip") });
  await sc.call("close", { handle: model });
  await sc.call("close", { handle: env });
  run.writeJson("base/curve.json", res.curve);
  return { source: "pretrained", hyperparameters: settings.base.hyperparameters, steps: res.timesteps, ep_rew_mean: res.ep_rew_mean };
}
