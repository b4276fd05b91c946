// Verified advice (beyond the paper): before a suggested action enters the modulation table, restore its
// state and compare short rollouts — the suggested action then the policy, against the policy's own action
// then the policy — over several samples of the (stochastic) policy. Suggestions that do not help are
// dropped and counted. This is what makes a small local model safe to use.
import { NDArray } from "../protocol.js";
import type { AdviceContext } from "./advisers/types.js";
import type { AdviceCounts, CriticalState } from "./critical.js";
import type { Episode } from "./episodes.js";
import { mean } from "./stats.js";

/** The counterfactual env has n sub-envs: even ones start with the policy's own action, odd ones with the suggestion. */
function pairedCandidates(ep: Episode, s: CriticalState, n: number, discrete: boolean): NDArray {
  const own = discrete ? [Number(ep.actions.data[s.step])] : Array.from(ep.actions.row(s.step) as Float32Array);
  const suggested = discrete ? [s.action as number] : (s.action as number[]);
  const rows = Array.from({ length: n }, (_, i) => (i % 2 === 0 ? own : suggested));
  return discrete ? new NDArray("int64", [n], BigInt64Array.from(rows.map((r) => BigInt(r[0])))) : NDArray.float32(rows.flat(), [n, own.length]);
}

export async function verifyAdvice(states: CriticalState[], ep: Episode, ctx: AdviceContext, nEnvs: number, counts: AdviceCounts): Promise<CriticalState[]> {
  const { horizon, gamma } = ctx.settings.rollout_adviser;
  const kept: CriticalState[] = [];
  for (const s of states) {
    if (s.action === null) {
      kept.push(s); // a reward-only suggestion has no action to test
      continue;
    }
    const candidates = pairedCandidates(ep, s, nEnvs, ctx.actionSpace.type === "Discrete");
    const { returns } = await ctx.sc.call("counterfactual", {
      model: ctx.model, env: ctx.counterfactualEnv, snapshot: ep.snapshots[s.step], candidates, horizon, gamma, deterministic: false,
    });
    const r = returns.toNumbers();
    const gain = mean(r.filter((_, i) => i % 2 === 1)) - mean(r.filter((_, i) => i % 2 === 0));
    if (gain > 0) kept.push({ ...s, gain });
    else counts.unverified++;
  }
  return kept;
}
