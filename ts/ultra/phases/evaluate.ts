// Phase 4, evaluation: every arm's final policy, the same episodes and seed, deterministic unless the env's
// config says otherwise (Atari: stochastic, as RL-Zoo evaluates it).
import { progressBar } from "../../progress.js";
import { loadModel, type RunContext } from "../context.js";
import { armDir, arms } from "./improve.js";

export interface ArmEval {
  model: string;
  returns: number[];
  lengths: number[];
  mean: number;
  std: number;
}

export interface EvalFile {
  episodes: number;
  deterministic: boolean;
  arms: Record<string, ArmEval>;
}

export async function evaluate(ctx: RunContext): Promise<EvalFile> {
  const { run, settings, sc, cfg } = ctx;
  const episodes = settings.evaluate.episodes;
  const deterministic = cfg.eval.deterministic;
  const out: EvalFile = { episodes, deterministic, arms: {} };
  const all = [["base", "base"] as const, ...arms(ctx).map((a) => [a, armDir(a)] as const)];
  for (const [arm, dir] of all) {
    const { env, model } = await loadModel(ctx, dir, { training: false, nEnvs: 1, seedOffset: 2000 });
    const bar = progressBar(`eval ${arm}`, episodes, "episodes");
    const r = await sc.call("model_evaluate", { model, env, episodes, deterministic }, { onEvent: (_, p) => bar.update(p.episodes) });
    bar.update(episodes);
    bar.stop();
    out.arms[arm] = {
      model: run.path(dir, "model.zip"),
      returns: r.returns.toNumbers(),
      lengths: r.lengths.toNumbers(),
      mean: r.mean,
      std: r.std,
    };
    for (const h of [model, env]) await sc.call("close", { handle: h });
  }
  run.writeJson("eval.json", out);
  return out;
}
