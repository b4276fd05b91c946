// `ultra pretrain`: a base PPO with the env's RL-Zoo hyperparameters; model.zip (+ vec_normalize.pkl), TensorBoard.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { UltraError } from "../errors.js";
import { withSidecar, type SidecarOptions } from "../bridge/sidecar.js";
import { envSpec, resolveEnv } from "../config.js";
import { learn } from "../learn.js";
import { fmt, log } from "../progress.js";
import { runInfo } from "../runinfo.js";
import { defineCommand, printJson, sidecarOptions } from "./common.js";

export interface PretrainOptions {
  env: string;
  steps?: number;
  seed: number;
  out?: string;
  force?: boolean;
  sidecar?: SidecarOptions;
}

export interface PretrainResult {
  out: string;
  model: string;
  files: string[];
  steps: number;
  seconds: number;
  fps: number;
  ep_rew_mean: number | null;
}

export async function pretrain(o: PretrainOptions): Promise<PretrainResult> {
  const cfg = resolveEnv(o.env);
  const steps = o.steps ?? cfg.n_timesteps;
  const out = resolve(o.out ?? join("runs", `pretrain-${cfg.name}-s${o.seed}`));
  if (existsSync(join(out, "model.zip")) && !o.force)
    throw new UltraError(`${out} already holds a model.zip; pass --force to overwrite it or choose another --out`);
  mkdirSync(out, { recursive: true });
  return withSidecar(o.sidecar ?? {}, async (sc) => {
    const spec = envSpec(cfg, { seed: o.seed, training: true });
    const ppo = { ...cfg.ppo, seed: o.seed, tensorboard_log: join(out, "tb") };
    const record = {
      command: "pretrain",
      env: cfg,
      spec,
      ppo,
      steps,
      seed: o.seed,
      ...runInfo(sc.info),
      started: new Date().toISOString(),
    };
    writeFileSync(join(out, "config.json"), JSON.stringify(record, null, 2));
    log(`pretrain ${cfg.env_id}: ${steps} steps, seed ${o.seed}, device ${sc.info.device}, out ${out}`);
    const { env } = await sc.call("env_make", { spec });
    const { model, num_params } = await sc.call("model_new", { env, ppo });
    log(`PPO ${cfg.ppo.policy} with ${num_params} parameters`);
    const res = await learn(sc, model, steps, "pretrain");
    const { files } = await sc.call("model_save", { model, path: join(out, "model.zip") });
    const result = {
      out,
      model: join(out, "model.zip"),
      files,
      steps: res.timesteps,
      seconds: res.seconds,
      fps: res.fps,
      ep_rew_mean: res.ep_rew_mean,
    };
    writeFileSync(join(out, "config.json"), JSON.stringify({ ...record, finished: new Date().toISOString(), result }, null, 2));
    return result;
  });
}

export const pretrainCommand = defineCommand(
  "pretrain",
  "train a base PPO with the env's RL-Zoo hyperparameters (configs/envs)",
  (y) =>
    y
      .option("env", {
        type: "string",
        demandOption: true,
        describe: "HalfCheetah, Hopper, Walker2d, Reacher, Pong, a Gymnasium id or an env config PATH.yaml",
      })
      .option("steps", { type: "number", describe: "timesteps (default: the config's n_timesteps)" })
      .option("seed", { type: "number", default: 0 })
      .option("out", { type: "string", describe: "run directory (default runs/pretrain-ENV-sSEED)" })
      .option("force", { type: "boolean", default: false, describe: "overwrite an existing model.zip in --out" })
      .option("json", { type: "string", describe: "also write the result as JSON to this file" }),
  async (a) => {
    const r = await pretrain({ env: a.env, steps: a.steps, seed: a.seed, out: a.out, force: a.force, sidecar: sidecarOptions(a) });
    log(`saved ${r.files.join(", ")} after ${r.steps} steps in ${fmt(r.seconds)} s (${fmt(r.fps)} steps/s)`);
    printJson(r, a.json);
  },
);
