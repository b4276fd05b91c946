// What every phase works with: the run dir, the env config, the resolved settings, a live sidecar.
import { existsSync } from "node:fs";
import type { EnvSpec } from "../bridge/ops.js";
import type { SidecarClient } from "../bridge/client.js";
import { envSpec, type EnvConfig } from "../config.js";
import type { RunDir } from "./rundir.js";
import type { Settings } from "./settings.js";

export interface RunContext {
  run: RunDir;
  cfg: EnvConfig;
  settings: Settings;
  seed: number;
  sc: SidecarClient;
  /** an LLM reply cache shared with other runs (a sweep's), besides the run's own */
  llmCache?: string;
}

/** An env for a saved model: its own normalisation statistics (frozen unless training). */
export function specFor(ctx: RunContext, modelDir: string, opts: { training: boolean; nEnvs?: number; seedOffset?: number }): EnvSpec {
  const stats = ctx.run.path(modelDir, "vec_normalize.pkl");
  const hasStats = existsSync(stats);
  return {
    ...envSpec(ctx.cfg, {
      seed: ctx.seed + (opts.seedOffset ?? 0),
      training: opts.training,
      nEnvs: opts.nEnvs,
      vecNormalizePath: hasStats ? stats : undefined,
    }),
    normalize: false, // statistics come from the file; none means the model was trained without
    trust_model: ctx.settings.trust_model,
  };
}

/** Load a saved model (dir/model.zip) into the sidecar with an env built for it. */
/** `resume`: continue exactly where a checkpoint's training stood (its resume.msgpack: env states, RNGs). */
export async function loadModel(
  ctx: RunContext,
  modelDir: string,
  opts: { training: boolean; nEnvs?: number; seedOffset?: number; learningRate?: number; tensorboardLog?: string; resume?: boolean },
) {
  const { env, action_space, n_envs } = await ctx.sc.call("env_make", { spec: specFor(ctx, modelDir, opts) });
  const train = opts.learningRate === undefined ? undefined : { learning_rate: opts.learningRate, tensorboard_log: opts.tensorboardLog };
  // seeded on every load: sampled actions, and so every phase, replay exactly for the same run seed
  const seed = ctx.seed + (opts.seedOffset ?? 0);
  const path = ctx.run.path(modelDir, "model.zip");
  const { model } = await ctx.sc.call("model_load", {
    path,
    env,
    seed,
    trust_model: ctx.settings.trust_model,
    resume: opts.resume,
    ...(train ? { train } : {}),
  });
  return { env, model, actionSpace: action_space, nEnvs: n_envs };
}
