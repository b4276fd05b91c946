// Phase 1, the base policy: the user's own SB3 model.zip, or a suboptimal PPO pretrained here (RICE's setup:
// SB3's default PPO hyperparameters, 1M steps on MuJoCo).
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { ROOT } from "../../paths.js";
import { UltraError } from "../../errors.js";
import { envSpec } from "../../config.js";
import { findVecNormalize } from "../../paths.js";
import { learn } from "../../learn.js";
import { log } from "../../progress.js";
import { loadModel, type RunContext } from "../context.js";

/** The committed base agent of this env (settings.base.agent), if the repository has one. */
export function committedAgent(agent: string | null, envName: string): string | null {
  if (!agent) return null;
  const file = join(ROOT, agent.replaceAll("{env}", envName));
  return existsSync(file) ? file : null;
}

export async function base(ctx: RunContext, userModel?: string): Promise<Record<string, unknown>> {
  const { run, cfg, settings, sc, seed } = ctx;
  mkdirSync(run.path("base"), { recursive: true });
  const committed = userModel ? null : committedAgent(settings.base.agent, cfg.name);
  if (committed) log(`base: the committed agent ${committed} (${settings.base.agent}; agents/README.md says how it was made)`);
  if (userModel || committed) {
    const src = resolve(userModel ?? committed!);
    if (!existsSync(src)) throw new UltraError(`base model not found: ${src}`);
    copyFileSync(src, run.path("base", "model.zip"));
    const stats = findVecNormalize(src);
    if (stats) copyFileSync(stats, run.path("base", "vec_normalize.pkl"));
    else if (cfg.normalize) log(`warning: no vec_normalize.pkl beside ${src}; the base model is used without normalisation`);
    const { env } = await loadModel(ctx, "base", { training: false }); // fails early, naming the problem, if it does not fit
    await sc.call("close", { handle: env });
    return { source: src, committed: committed !== null, vec_normalize: stats };
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
