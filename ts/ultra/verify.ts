// Verified advice (beyond the paper): before a suggested action enters the modulation table, restore its
// state and compare rollouts that start with the suggestion against rollouts that start with fresh samples of
// the policy, in common-random-number groups (same env state, same policy noise afterwards), so that each
// difference is the first action's effect. A suggestion is kept only when the one-sided 95% lower bound of its
// mean paired gain exceeds min_effect × the spread of the policy's own first actions (how much two samples of
// π(·|s) differ in the same group): beating one lucky sample of the policy is not enough. The gain reported
// for a kept suggestion is re-estimated on fresh groups, not on the ones that chose it.
import { NDArray } from "../protocol.js";
import type { AdviceContext } from "./advisers/types.js";
import type { AdviceCounts, CriticalState, Verification } from "./critical.js";
import type { Episode } from "./episodes.js";
import { mixSeed } from "./rng.js";
import { mean, std, t95OneSided } from "./stats.js";

/** One state's verdict, as identify/episode-NNN.json keeps it. */
export interface Verdict extends Verification {
  step: number;
  accepted: boolean;
}

async function pairedGains(ctx: AdviceContext, env: string, ep: Episode, s: CriticalState, seed: number) {
  const { pairs } = ctx.settings.verification;
  const action = typeof s.action === "number" ? s.action : NDArray.float32(s.action as number[]);
  const r = await ctx.sc.call("paired_returns", {
    model: ctx.model,
    env,
    snapshot: ep.snapshots[s.step],
    action,
    pairs,
    horizon: ctx.settings.rollout_adviser.horizon,
    seed,
  });
  const own = r.own.toNumbers();
  const ownAgain = r.own_again.toNumbers();
  return { gains: r.suggested.toNumbers().map((x, i) => x - own[i]), ownSpread: own.map((x, i) => x - ownAgain[i]) };
}

/** The paired test of one suggestion. `gains`: suggestion − policy sample, per group; `ownSpread`: policy sample −
 * another policy sample, per group, whose std/√2 is the spread of one policy action's effect. */
export function judge(
  gains: number[],
  ownSpread: number[],
  minEffect: number,
): { mean: number; lower: number; threshold: number; accepted: boolean } {
  const n = gains.length;
  const m = mean(gains);
  const lower = m - (t95OneSided(n - 1) * std(gains)) / Math.sqrt(n);
  const threshold = (minEffect * std(ownSpread)) / Math.SQRT2;
  return { mean: m, lower, threshold, accepted: lower > threshold };
}

/** `env`: an env with a multiple of 3 sub-envs (groups run side by side), frozen normalisation. */
export async function verifyAdvice(
  states: CriticalState[],
  ep: Episode,
  ctx: AdviceContext,
  env: string,
  counts: AdviceCounts,
): Promise<{ kept: CriticalState[]; verdicts: Verdict[] }> {
  const kept: CriticalState[] = [];
  const verdicts: Verdict[] = [];
  for (const s of states) {
    if (s.action === null) {
      kept.push(s); // a reward-only suggestion has no action to test
      continue;
    }
    const chosen = await pairedGains(ctx, env, ep, s, mixSeed(ctx.seed, ep.episode, s.step, 1));
    const v = judge(chosen.gains, chosen.ownSpread, ctx.settings.verification.min_effect);
    const verdict: Verdict = {
      step: s.step,
      pairs: chosen.gains.length,
      mean_gain: v.mean,
      lower_bound: v.lower,
      threshold: v.threshold,
      accepted: v.accepted,
    };
    if (v.accepted) {
      // the pairs that passed the test overstate the gain (selection): report it from fresh pairs
      const heldOut = await pairedGains(ctx, env, ep, s, mixSeed(ctx.seed, ep.episode, s.step, 2));
      verdict.held_out_gain = mean(heldOut.gains);
      const { step: _, accepted: __, ...verification } = verdict;
      kept.push({ ...s, gain: verdict.held_out_gain, verification });
    } else counts.unverified++;
    verdicts.push(verdict);
  }
  return { kept, verdicts };
}
