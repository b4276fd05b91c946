// model_learn with a progress bar (steps/s, ETA, recent episode return), returning the learning curve too.
import type { LearnProgress } from "./bridge/ops.js";
import type { Sidecar } from "./bridge/sidecar.js";
import { progressBar } from "./progress.js";

export interface CurvePoint {
  timesteps: number;
  ep_rew_mean: number;
}

export async function learn(sc: Sidecar, model: string, steps: number, phase: string, extra: { tb_log_name?: string; modulation?: unknown } = {}) {
  const bar = progressBar(phase, steps);
  const curve: CurvePoint[] = [];
  const show = (p: LearnProgress) => {
    if (p.ep_rew_mean != null && curve.at(-1)?.timesteps !== p.timesteps) curve.push({ timesteps: p.timesteps, ep_rew_mean: p.ep_rew_mean });
    bar.update(p.steps, p.ep_rew_mean == null ? {} : { ep_rew_mean: p.ep_rew_mean });
  };
  try {
    const res = await sc.call("model_learn", { model, steps, tb_log_name: extra.tb_log_name ?? "PPO", ...(extra.modulation ? { modulation: extra.modulation } : {}) }, { onEvent: (_, p) => show(p) });
    show(res);
    return { ...res, curve };
  } finally {
    bar.stop();
  }
}
