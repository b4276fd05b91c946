// `ultra pretrain`: a base PPO with the env's RL-Zoo hyperparameters; model.zip (+ vec_normalize.pkl), TensorBoard.
// It checkpoints exactly every --checkpoint-every steps (as improve's arms do), so a long one (Pong's base takes
// hours here) resumes with --resume where it stopped and ends with the model an uninterrupted run would have made.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { UltraError } from "../errors.js";
import { withSidecar, type SidecarOptions } from "../bridge/sidecar.js";
import { CHECKPOINT, hasCheckpoint, readCheckpointProgress, writeCheckpoint } from "../checkpoint.js";
import { envSpec, resolveEnv } from "../config.js";
import { learn, type CurvePoint } from "../learn.js";
import { fmt, log } from "../progress.js";
import { runInfo } from "../runinfo.js";
import { defineCommand, printJson, sidecarOptions } from "./common.js";

export const CHECKPOINT_EVERY = 100_000;

export interface PretrainOptions {
  env: string;
  steps?: number;
  seed: number;
  out?: string;
  force?: boolean;
  /** continue the interrupted pretraining in `out` (none there: start one) */
  resume?: boolean;
  checkpointEvery?: number;
  sidecar?: SidecarOptions;
}

export interface PretrainResult {
  out: string;
  model: string;
  files: string[];
  steps: number;
  /** training time over every sitting */
  seconds: number;
  fps: number;
  ep_rew_mean: number | null;
  /** the sittings it took (1: never interrupted) */
  sittings: number;
}

/** What a pretraining's checkpoint records beside the model: the job it belongs to and how far it got. */
interface PretrainProgress {
  env_id: string;
  seed: number;
  steps: number;
  steps_done: number;
  seconds: number;
  sittings: number;
  curve: CurvePoint[];
  ep_rew_mean: number | null;
  /** the env config's training settings the job started with (PPO hyperparameters, env spec); absent before 2026-12 */
  settings?: Settings;
}

/** What a resumed job rebuilds from the env config rather than from its checkpoint: it must not have changed. */
type Settings = { ppo: Record<string, unknown>; env: Record<string, unknown> };

/** The dotted keys whose values differ between two settings records (`ppo.n_epochs`). */
function changedKeys(a: unknown, b: unknown, at = ""): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObj(a) || !isObj(b)) return JSON.stringify(a) === JSON.stringify(b) ? [] : [at];
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.flatMap((k) => changedKeys(a[k], b[k], at ? `${at}.${k}` : k));
}

/** The checkpoint in `out` when it continues this job; a clear error when it is another's. */
function resumable(out: string, o: { envId: string; seed: number; steps: number; settings: Settings }): PretrainProgress {
  const p = readCheckpointProgress<PretrainProgress>(out);
  const mine = { env_id: o.envId, seed: o.seed, steps: o.steps };
  const theirs = { env_id: p.env_id, seed: p.seed, steps: p.steps };
  if (JSON.stringify(mine) !== JSON.stringify(theirs))
    throw new UltraError(
      `${join(out, CHECKPOINT)} belongs to another pretraining (${JSON.stringify(theirs)}, not ${JSON.stringify(mine)}): ` +
        "resume it with its own --env, --seed and --steps, or pass --force to start this one over",
    );
  // the schedules, PPO's settings and the env's wrappers come from the env config: an edit since would change the job
  const changed = p.settings ? changedKeys(p.settings, o.settings) : [];
  if (changed.length)
    throw new UltraError(
      `the env config of ${o.envId} changed since ${join(out, CHECKPOINT)} was written (${changed.join(", ")}): ` +
        "a resumed pretraining would not be the job it started; restore those settings, or pass --force to start over",
    );
  if (!p.settings) log(`pretrain: ${join(out, CHECKPOINT)} predates settings checks; resuming with the env config as it is now`);
  return p;
}

export async function pretrain(o: PretrainOptions): Promise<PretrainResult> {
  const cfg = resolveEnv(o.env);
  const steps = o.steps ?? cfg.n_timesteps;
  const every = o.checkpointEvery ?? CHECKPOINT_EVERY;
  if (!Number.isInteger(every) || every < 1) throw new UltraError(`--checkpoint-every must be a positive integer, got ${every}`);
  const out = resolve(o.out ?? join("runs", `pretrain-${cfg.name}-s${o.seed}`));
  const finished = join(out, "config.json");
  const settings: Settings = { ppo: cfg.ppo, env: envSpec(cfg, { seed: o.seed, training: true }) };
  const record = existsSync(finished) ? JSON.parse(readFileSync(finished, "utf8")) : null;
  if (o.resume && !o.force && record?.result && existsSync(join(out, "model.zip"))) {
    log(`pretrain: ${out} already holds the finished model (${record.result.steps} steps); nothing to resume`);
    return record.result as PretrainResult;
  }
  // a model.zip beside a checkpoint is one a kill interrupted while it was being recorded: --resume redoes it
  if (existsSync(join(out, "model.zip")) && !o.force && !(o.resume && hasCheckpoint(out)))
    throw new UltraError(`${out} already holds a model.zip; pass --force to overwrite it or choose another --out`);
  let progress: PretrainProgress | null = null;
  if (hasCheckpoint(out)) {
    if (o.force) rmSync(join(out, CHECKPOINT), { recursive: true, force: true });
    else if (!o.resume) {
      const p = readCheckpointProgress<PretrainProgress>(out);
      throw new UltraError(
        `${out} holds an interrupted pretraining (${p.steps_done} of ${p.steps} steps): pass --resume to continue it, or --force to start over`,
      );
    } else progress = resumable(out, { envId: cfg.env_id, seed: o.seed, steps, settings });
  }
  mkdirSync(out, { recursive: true });
  return withSidecar(o.sidecar ?? {}, async (sc) => {
    const ckpt = join(out, CHECKPOINT);
    const stats = join(ckpt, "vec_normalize.pkl");
    // a resumed env takes the checkpoint's normalisation statistics (and keeps updating them)
    const spec = progress
      ? {
          ...envSpec(cfg, { seed: o.seed, training: true, vecNormalizePath: existsSync(stats) ? stats : undefined }),
          normalize: false as const,
        }
      : envSpec(cfg, { seed: o.seed, training: true });
    const ppo = { ...cfg.ppo, seed: o.seed, tensorboard_log: join(out, "tb") };
    const record = {
      command: "pretrain",
      env: cfg,
      spec,
      ppo,
      steps,
      seed: o.seed,
      checkpoint_every: every,
      ...runInfo(sc.info),
      started: new Date().toISOString(),
    };
    writeFileSync(finished, JSON.stringify(record, null, 2));
    const { env } = await sc.call("env_make", { spec });
    let model: string;
    if (progress) {
      log(`pretrain ${cfg.env_id}: resuming at ${progress.steps_done} of ${steps} steps from ${ckpt}`);
      const train = { learning_rate: cfg.ppo.learning_rate ?? 3e-4, tensorboard_log: ppo.tensorboard_log }; // SB3's default lr
      ({ model } = await sc.call("model_load", {
        path: join(ckpt, "model.zip"),
        env,
        seed: o.seed,
        resume: true,
        train: cfg.ppo.clip_range === undefined ? train : { ...train, clip_range: cfg.ppo.clip_range },
      }));
      progress.sittings += 1;
      progress.settings ??= settings;
    } else {
      log(`pretrain ${cfg.env_id}: ${steps} steps, seed ${o.seed}, device ${sc.info.device}, out ${out}`);
      const made = await sc.call("model_new", { env, ppo });
      model = made.model;
      log(`PPO ${cfg.ppo.policy} with ${made.num_params} parameters`);
      progress = {
        env_id: cfg.env_id,
        seed: o.seed,
        steps,
        steps_done: 0,
        seconds: 0,
        sittings: 1,
        curve: [],
        ep_rew_mean: null,
        settings,
      };
    }
    const p = progress;
    while (p.steps_done < steps) {
      const res = await learn(sc, model, Math.min(every, steps - p.steps_done), "pretrain", {
        of: { done: p.steps_done, total: steps },
        schedule_total: steps,
      });
      Object.assign(p, { steps_done: p.steps_done + res.steps, seconds: p.seconds + res.seconds, ep_rew_mean: res.ep_rew_mean });
      p.curve.push(...res.curve);
      if (p.steps_done < steps) await writeCheckpoint(sc, out, model, p);
    }
    const { files } = await sc.call("model_save", { model, path: join(out, "model.zip") });
    const result: PretrainResult = {
      out,
      model: join(out, "model.zip"),
      files,
      steps: p.steps_done,
      seconds: p.seconds,
      fps: p.steps_done / p.seconds,
      ep_rew_mean: p.ep_rew_mean,
      sittings: p.sittings,
    };
    writeFileSync(finished, JSON.stringify({ ...record, finished: new Date().toISOString(), result, curve: p.curve }, null, 2));
    rmSync(ckpt, { recursive: true, force: true }); // the model is saved: the checkpoint has done its work
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
      .option("force", { type: "boolean", default: false, describe: "overwrite an existing model.zip (or checkpoint) in --out" })
      .option("resume", {
        type: "boolean",
        default: false,
        describe: "continue the interrupted pretraining in --out from its checkpoint (none: start it)",
      })
      .option("checkpoint-every", {
        type: "number",
        default: CHECKPOINT_EVERY,
        describe: "steps between exact checkpoints (weights, optimizer, env states, RNGs)",
      })
      .option("json", { type: "string", describe: "also write the result as JSON to this file" }),
  async (a) => {
    const r = await pretrain({
      env: a.env,
      steps: a.steps,
      seed: a.seed,
      out: a.out,
      force: a.force,
      resume: a.resume,
      checkpointEvery: a.checkpointEvery,
      sidecar: sidecarOptions(a),
    });
    log(`saved ${r.files.join(", ")} after ${r.steps} steps in ${fmt(r.seconds)} s (${fmt(r.fps)} steps/s)`);
    printJson(r, a.json);
  },
);
