// The `rollout` adviser: a non-LLM reference. Critical states are where the value estimate drops most;
// the suggested action is the first action that does best in short counterfactual rollouts from the
// state's snapshot (the policy takes over after it); the reward is how much better it did, normalised.
import { largestDrops } from "../../describe/drops.js";
import { NDArray } from "../../protocol.js";
import type { Episode } from "../episodes.js";
import { mixSeed, rng } from "../rng.js";
import type { AdviceContext, AdviceResult, Adviser, CriticalStateAdvice, EpisodeQuery } from "./types.js";

/** Candidate first actions: the policy's own (index 0), then uniform samples (Box) or every action (Discrete). */
export function candidates(ep: Episode, step: number, ctx: AdviceContext): NDArray {
  const space = ctx.actionSpace;
  const n = ctx.settings.rollout_adviser.candidates;
  if (space.type === "Discrete") {
    const own = Number(ep.actions.data[step]);
    const order = [own, ...Array.from({ length: space.n! }, (_, a) => a).filter((a) => a !== own)];
    return new NDArray("int64", [order.length], BigInt64Array.from(order.map(BigInt)));
  }
  const dim = space.shape[0];
  const random = rng(mixSeed(ctx.seed, ep.episode, step));
  const data = new Float32Array(n * dim);
  data.set(ep.actions.row(step) as Float32Array, 0);
  for (let i = dim; i < n * dim; i++) {
    const j = i % dim;
    data[i] = space.low![j] + random() * (space.high![j] - space.low![j]);
  }
  return new NDArray("float32", [n, dim], data);
}

export class RolloutAdviser implements Adviser {
  readonly name = "rollout";

  async advise(ep: Episode, _query: EpisodeQuery, ctx: AdviceContext): Promise<AdviceResult> {
    const { max_critical_states, min_separation } = ctx.settings.identify;
    const { horizon, gamma } = ctx.settings.rollout_adviser;
    const request = { episode: ep.episode, length: ep.length, horizon, gamma, states: [] as unknown[] };
    const reply: unknown[] = [];
    const advice: CriticalStateAdvice[] = [];
    for (const { step, drop } of largestDrops(ep.values.data, { k: max_critical_states, minSeparation: min_separation })) {
      const cands = candidates(ep, step, ctx);
      const { returns } = await ctx.sc.call("counterfactual", {
        model: ctx.model,
        env: ctx.counterfactualEnv,
        snapshot: ep.snapshots[step],
        candidates: cands,
        horizon,
        gamma,
      });
      const r = returns.toNumbers();
      request.states.push({ step, value_drop: drop, candidates: cands.shape[0] });
      reply.push({ step, returns: r });
      const best = r.indexOf(Math.max(...r));
      if (best === 0) continue; // the policy's own action is already the best tried: nothing to suggest
      const spread = Math.sqrt(r.reduce((s, x) => s + (x - mean(r)) ** 2, 0) / r.length) || 1;
      const action = cands.dtype === "int64" ? Number(cands.data[best]) : Array.from(cands.row(best) as Float32Array);
      advice.push({
        step,
        reason: `value estimate drops by ${drop.toFixed(3)} after this step; over ${horizon} steps, the suggested first action returns ${r[best].toFixed(2)} vs ${r[0].toFixed(2)} for the policy's own`,
        action,
        reward: Math.min(1, (r[best] - r[0]) / spread),
      });
    }
    return { request, reply, advice };
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
