// `ultra eval`: load any SB3 PPO model.zip (this project's, RL-Zoo's or a hub layout) and report mean ± std return.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { UltraError } from "../errors.js";
import { withSidecar, type SidecarOptions } from "../bridge/sidecar.js";
import { envSpec, resolveEnv } from "../config.js";
import { findVecNormalize } from "../paths.js";
import { fmt, log, progressBar } from "../progress.js";
import { defineCommand, printJson, sidecarOptions } from "./common.js";

export interface EvalOptions {
  model: string;
  env?: string;
  episodes: number;
  seed: number;
  deterministic?: boolean;
  trustModel?: boolean;
  sidecar?: SidecarOptions;
}

export interface EvalResult {
  model: string;
  env_id: string;
  episodes: number;
  deterministic: boolean;
  vec_normalize: string | null;
  returns: number[];
  lengths: number[];
  mean: number;
  std: number;
}

/** The env a model was trained on, when its directory says so (a run's config.json). */
function envOfRun(modelPath: string): string | undefined {
  const cfg = join(dirname(modelPath), "config.json");
  if (!existsSync(cfg)) return undefined;
  return JSON.parse(readFileSync(cfg, "utf8"))?.env?.env_id;
}

export async function evaluate(o: EvalOptions): Promise<EvalResult> {
  const model = resolve(o.model);
  if (!existsSync(model)) throw new UltraError(`model file not found: ${model}`);
  const envName = o.env ?? envOfRun(model);
  if (!envName) throw new UltraError(`cannot tell which env ${model} was trained on; pass --env (e.g. --env HalfCheetah)`);
  const cfg = resolveEnv(envName);
  const deterministic = o.deterministic ?? cfg.eval.deterministic;
  const vecNormalize = findVecNormalize(model);
  return withSidecar(o.sidecar ?? {}, async (sc) => {
    // Statistics come from the file beside the model; a fresh VecNormalize would distort observations.
    const spec = {
      ...envSpec(cfg, { seed: o.seed, training: false, vecNormalizePath: vecNormalize ?? undefined, nEnvs: 1 }),
      normalize: false as const,
      trust_model: o.trustModel,
    };
    if (!vecNormalize && cfg.normalize)
      log(`warning: ${cfg.name} is trained with VecNormalize but no vec_normalize.pkl sits beside ${model}`);
    const { env } = await sc.call("env_make", { spec });
    const { model: handle } = await sc.call("model_load", { path: model, env, trust_model: o.trustModel });
    const bar = progressBar("eval", o.episodes, "episodes");
    try {
      const r = await sc.call(
        "model_evaluate",
        { model: handle, env, episodes: o.episodes, deterministic },
        { onEvent: (_, p) => bar.update(p.episodes) },
      );
      bar.update(o.episodes);
      return {
        model,
        env_id: cfg.env_id,
        episodes: o.episodes,
        deterministic,
        vec_normalize: vecNormalize,
        returns: r.returns.toNumbers(),
        lengths: r.lengths.toNumbers(),
        mean: r.mean,
        std: r.std,
      };
    } finally {
      bar.stop();
    }
  });
}

export const evalCommand = defineCommand(
  "eval",
  "evaluate any SB3 PPO model.zip (with vec_normalize.pkl beside it) and print mean ± std return",
  (y) =>
    y
      .option("model", { type: "string", demandOption: true })
      .option("env", { type: "string", describe: "env it was trained on (read from the run dir when omitted)" })
      .option("episodes", { type: "number", default: 10 })
      .option("seed", { type: "number", default: 0 })
      .option("deterministic", { type: "boolean", describe: "deterministic actions (default: the env config's eval setting)" })
      .option("trust-model", {
        type: "boolean",
        default: false,
        describe: "unpickle model.zip and vec_normalize.pkl as SB3 does (code in them runs): only for files you trust",
      })
      .option("json", { type: "string", describe: "also write the result as JSON to this file" }),
  async (a) => {
    const r = await evaluate({
      model: a.model,
      env: a.env,
      episodes: a.episodes,
      seed: a.seed,
      deterministic: a.deterministic,
      trustModel: a.trustModel,
      sidecar: sidecarOptions(a),
    });
    log(
      `${r.env_id}: return ${fmt(r.mean)} ± ${fmt(r.std)} over ${r.episodes} episodes (${r.deterministic ? "deterministic" : "stochastic"})`,
    );
    printJson(r, a.json);
  },
);
