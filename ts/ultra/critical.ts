// Critical states: validating what an adviser proposes, and the critical_states.json record.
import { z } from "zod";
import type { SpaceInfo } from "../bridge/ops.js";
import type { Episode } from "./episodes.js";

/** What verification measured for a suggested action (in the critic's units: normalised reward under VecNormalize). */
export const Verification = z.object({
  pairs: z.number().int(),
  /** mean paired gain (suggestion − fresh policy sample) over the pairs that decided */
  mean_gain: z.number(),
  /** its one-sided 95% lower bound (Student's t) */
  lower_bound: z.number(),
  /** the minimum effect the lower bound had to clear: min_effect × the spread of the policy's own first actions */
  threshold: z.number(),
  /** the mean gain on fresh pairs, for kept suggestions: the estimate not selected on passing */
  held_out_gain: z.number().optional(),
});
export type Verification = z.infer<typeof Verification>;

/** Candidates mode: the card a state was picked from and the menu change that made its action. */
export const CardChoice = z.object({
  letter: z.string(),
  kinds: z.array(z.string()),
  /** the card was the episode's largest value drop, i.e. what the rollout adviser picks first without an LLM */
  top_value_drop: z.boolean(),
  change: z.string(),
});
export type CardChoice = z.infer<typeof CardChoice>;

// The one definition of a critical state; the adviser's form (CriticalStateAdvice) and the parse of a proposal
// (Advice) derive from it. Kept apart, as they mean other things: a modulation table's entry (ts/bridge/shapes.ts:
// the wire form, observation and snapshot instead of episode and step), the JSON schemas of an LLM's reply
// (ts/ultra/llm/schema.ts, keys checked against CriticalStateAdvice; ts/describe/cards.ts, cards and menu changes
// that adviceFromCards turns into advice).
export const CriticalState = z.object({
  episode: z.number().int().nonnegative(),
  step: z.number().int().nonnegative(),
  action: z.union([z.array(z.number()), z.number().int(), z.null()]),
  reward: z.number(),
  reason: z.string(),
  adviser: z.string(),
  /** verified advice: the held-out mean gain of the suggested action over the policy's own, from the snapshot */
  gain: z.number().optional(),
  verification: Verification.optional(),
  card: CardChoice.optional(),
});
export type CriticalState = z.infer<typeof CriticalState>;

/** One critical state as an adviser names it (unvalidated until identify checks it). */
export const CriticalStateAdvice = CriticalState.pick({ step: true, reason: true, action: true, reward: true });
export type CriticalStateAdvice = z.infer<typeof CriticalStateAdvice>;

export const AdviceCounts = z.object({
  proposed: z.number().int(),
  valid: z.number().int(),
  clipped: z.number().int(),
  rejected: z.number().int(),
  rejections: z.record(z.string(), z.number().int()),
  /** valid suggestions whose action did not beat the policy's own in verification rollouts */
  unverified: z.number().int().default(0),
});
export type AdviceCounts = z.infer<typeof AdviceCounts>;

/** The radius each table matches with: calibrated per state set (match_fraction) or the setting as given. */
export const Radius = z.object({
  /** for the adviser's states (ULTRA's arm and the reset-only baseline) */
  states: z.number().nonnegative(),
  /** for the random states of the random_critical baseline */
  random: z.number().nonnegative(),
  /** the share of the base policy's own states within the radius it was calibrated to; null: not calibrated */
  match_fraction: z.number().nullable(),
});
export type Radius = z.infer<typeof Radius>;

/** A field identify writes that files from older versions lack: missing, it says to re-run identify. */
const fromIdentify = (field: string) => ({
  error: (iss: { input?: unknown }) =>
    iss.input === undefined
      ? `${field} is missing: this file was written by an older identify; re-run identify (ultra identify --run DIR)`
      : undefined,
});

/** The unit of the adviser's reward: the base policy's per-step reward scale on identify's episodes, in raw reward. */
export const RewardUnit = z.object(
  {
    value: z.number().positive(),
    /** the env steps it was measured on */
    steps: z.number().int().nonnegative(),
    /** std of the raw per-step rewards; mean_abs where that was 0; fallback (1.0) where both were */
    basis: z.enum(["std", "mean_abs", "fallback"]),
  },
  fromIdentify("reward_unit"),
);
export type RewardUnit = z.infer<typeof RewardUnit>;

/** Env steps identify took, by purpose: the preparation cost of the arms that use its states. */
export const EnvSteps = z.object(
  {
    /** the episodes shown to the adviser */
    collect: z.number().int().nonnegative(),
    /** the adviser's own rollouts (the rollout adviser's counterfactuals) */
    adviser: z.number().int().nonnegative(),
    /** verification's paired rollouts */
    verify: z.number().int().nonnegative(),
  },
  fromIdentify("env_steps"),
);
export type EnvSteps = z.infer<typeof EnvSteps>;

export const CriticalStatesFile = z.object({
  env_id: z.string(),
  adviser: z.string(),
  counts: AdviceCounts,
  radius: Radius,
  reward_unit: RewardUnit,
  env_steps: EnvSteps,
  states: z.array(CriticalState),
});
export type CriticalStatesFile = z.infer<typeof CriticalStatesFile>;

export const emptyCounts = (): AdviceCounts => ({ proposed: 0, valid: 0, clipped: 0, rejected: 0, rejections: {}, unverified: 0 });

// A proposal as parsed before validateAdvice checks it: CriticalStateAdvice's fields and the card, with defaults for
// what a reply may leave out; step and action looser than a CriticalState's, so that a step outside the episode or
// an action outside the space is rejected and counted by its reason rather than as unparseable.
const Advice = CriticalState.pick({ card: true }).extend({
  step: z.number().int(),
  reason: CriticalState.shape.reason.default(""),
  action: z.union([z.array(z.number()), z.number(), z.null()]).default(null),
  reward: CriticalState.shape.reward.refine(Number.isFinite, "reward must be finite").default(0),
});

/** Check each proposal against the episode and the action space. Out-of-range continuous actions are
 * clipped and counted; anything else wrong is rejected and counted by reason. */
export function validateAdvice(raw: unknown[], ep: Episode, space: SpaceInfo, adviser: string, counts: AdviceCounts): CriticalState[] {
  const out: CriticalState[] = [];
  const reject = (why: string) => {
    counts.rejected++;
    counts.rejections[why] = (counts.rejections[why] ?? 0) + 1;
  };
  for (const item of raw) {
    counts.proposed++;
    const p = Advice.safeParse(item);
    if (!p.success) {
      reject("not a {step, reason, action, reward} object");
      continue;
    }
    const a = p.data;
    if (a.step < 0 || a.step >= ep.length) {
      reject("step does not exist in the episode");
      continue;
    }
    if (out.some((s) => s.step === a.step)) {
      reject("step named twice");
      continue;
    }
    let action = a.action;
    if (action !== null && space.type === "Discrete") {
      if (typeof action !== "number" || !Number.isInteger(action) || action < 0 || action >= space.n!) {
        reject(`action not in 0..${space.n! - 1}`);
        continue;
      }
    } else if (action !== null) {
      const dim = space.shape[0];
      if (!Array.isArray(action) || action.length !== dim || !action.every(Number.isFinite)) {
        reject(`action is not ${dim} finite numbers`);
        continue;
      }
      const clipped = action.map((x, i) => Math.min(space.high![i], Math.max(space.low![i], x)));
      if (clipped.some((x, i) => x !== (action as number[])[i])) counts.clipped++;
      action = clipped;
    }
    counts.valid++;
    out.push({
      episode: ep.episode,
      step: a.step,
      action,
      reward: a.reward,
      reason: a.reason,
      adviser,
      ...(a.card ? { card: a.card } : {}),
    });
  }
  return out;
}
