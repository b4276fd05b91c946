// model_learn with a progress bar (steps/s, ETA, recent episode return), returning the learning curve too.
import type { LearnProgress } from "./bridge/ops.js";
import type { ModulationTable } from "./bridge/shapes.js";
import type { SidecarClient } from "./bridge/client.js";
import { progressBar } from "./progress.js";

export interface CurvePoint {
  timesteps: number;
  ep_rew_mean: number;
}

/** `of`: when this call is one segment of a longer job, the job's steps done before it and its total. */
export async function learn(
  sc: SidecarClient,
  model: string,
  steps: number,
  phase: string,
  extra: {
    tb_log_name?: string;
    modulation?: ModulationTable | null;
    of?: { done: number; total: number };
    /** the job's timesteps, when this call is one segment of it: its lin_ schedules span the job */
    schedule_total?: number;
  } = {},
) {
  const done = extra.of?.done ?? 0;
  const bar = progressBar(phase, extra.of?.total ?? steps, "steps", done);
  const curve: CurvePoint[] = [];
  const show = (p: LearnProgress) => {
    if (p.ep_rew_mean != null && curve.at(-1)?.timesteps !== p.timesteps)
      curve.push({ timesteps: p.timesteps, ep_rew_mean: p.ep_rew_mean });
    bar.update(done + p.steps, p.ep_rew_mean == null ? {} : { ep_rew_mean: p.ep_rew_mean });
  };
  try {
    const args = {
      model,
      steps,
      tb_log_name: extra.tb_log_name ?? "PPO",
      ...(extra.modulation ? { modulation: extra.modulation } : {}),
      ...(extra.schedule_total ? { schedule_total: extra.schedule_total } : {}),
    };
    const res = await sc.call("model_learn", args, { onEvent: (_, p) => show(p) });
    show(res);
    return { ...res, curve };
  } finally {
    bar.stop();
  }
}
