// Phase 5, report: report.md (per-arm returns, adviser counts, the critical states of each episode) and
// curves.png (learning curves of every arm, drawn by matplotlib in the sidecar).
import type { SidecarClient } from "../../bridge/client.js";
import { fmt } from "../../progress.js";
import { CriticalStatesFile, type EnvSteps } from "../critical.js";
import type { RunDir, RunRecord } from "../rundir.js";
import { ci95, mean, pairedDiff, std, type Paired } from "../stats.js";
import type { EvalFile } from "./evaluate.js";
import { readProgress, totalModulation, type Arm } from "./improve.js";

const ARM_NAMES: Record<string, string> = {
  base: "base policy (no refinement)",
  continue_ppo: "continue PPO (same budget)",
  rice_reset: "RICE-style reset to critical states, no adviser actions",
  random_critical: "random critical states (same count)",
  rice: "RICE (mask-net critical states + RND)",
  rice_random: "RICE with random critical states (+ RND)",
};
export const armName = (arm: string) => ARM_NAMES[arm] ?? `ULTRA-${arm.replace("ultra_", "")} (${arm})`;

function curves(run: RunDir, armsList: string[]): Record<string, unknown> {
  return Object.fromEntries(armsList.filter((a) => a !== "base").map((a) => [a, readProgress({ run }, a as Arm)?.curve ?? []]));
}

/** What identify's LLM adviser used (run.json), or undefined for a non-LLM adviser. */
export const identifyUsage = (rec: RunRecord) => (rec.phases.identify?.result as { usage?: Record<string, number> } | undefined)?.usage;

/** The LLM's tokens, cost and reply failures in identify, when the adviser is an LLM. */
function llmUsage(rec: RunRecord): string[] {
  const u = identifyUsage(rec);
  if (!u) return [];
  const mode = (rec.phases.identify?.result as { mode?: string } | undefined)?.mode ?? "episode";
  const episodes = Math.max(1, Number((rec.phases.identify?.result as { episodes?: number } | undefined)?.episodes ?? 1));
  return [
    `LLM calls: ${u.calls} (${u.cache_hits ?? 0} served from the cache), ${u.prompt_tokens} prompt + ${u.completion_tokens} completion tokens, ` +
      `estimated cost $${u.cost_usd.toFixed(4)}, ${fmt(u.seconds)} s; ${u.repairs} replies needed a repair, ${u.failures} episodes got no usable reply.`,
    `Identification mode \`${mode}\`${mode === "candidates" ? ` (${u.cards ?? "?"} cards shown in all)` : ""}: per episode ${fmt(u.prompt_tokens / episodes)} prompt tokens` +
      `${u.cached_prompt_tokens ? ` (${fmt(u.cached_prompt_tokens / episodes)} of them reused from the previous prompt's evaluated prefix)` : ""}, ` +
      `${fmt(u.completion_tokens / episodes)} completion tokens, ${fmt(u.seconds / episodes)} s.`,
    "",
  ];
}

export async function report(run: RunDir, sc: SidecarClient): Promise<string> {
  const rec: RunRecord = run.record;
  const ev = run.readJson<EvalFile>("eval.json");
  const crit = run.readChecked("critical_states.json", CriticalStatesFile);
  const arms = Object.keys(ev.arms);
  const base = ev.arms.base.mean;
  await sc.call("plot_curves", {
    curves: curves(run, arms),
    path: run.path("curves.png"),
    title: `${rec.env_id}, seed ${rec.seed}: refinement curves`,
  });
  const c = crit.counts;
  const gains = crit.states.flatMap((s) => (s.gain === undefined ? [] : [s.gain]));
  const lines = [
    `# ULTRA report — ${rec.env_id}, seed ${rec.seed}`,
    "",
    `Variant ${String((rec.settings as { variant: string }).variant)}, adviser \`${crit.adviser}\`, profile \`${rec.profile}\`, git ${rec.git_commit?.slice(0, 8) ?? "?"}.`,
    `Evaluation: ${ev.episodes} episodes per arm, ${ev.deterministic ? "deterministic" : "stochastic"} policy.`,
    "",
    "## Returns",
    "",
    ...(crit.states.length
      ? []
      : [
          "**Warning: no critical state was accepted, so every refined arm trained exactly as continue PPO did; their differences are noise of evaluation only.**",
          "",
        ]),
    ...identicalWarnings(Object.fromEntries(arms.filter((a) => a !== "base").map((a) => [a, ev.arms[a].returns]))),
    "| arm | mean ± std | vs base | episodes |",
    "|---|---|---|---|",
    ...arms.map(
      (a) =>
        `| ${armName(a)} | ${fmt(ev.arms[a].mean)} ± ${fmt(ev.arms[a].std)} | ${a === "base" ? "–" : `${ev.arms[a].mean - base >= 0 ? "+" : ""}${fmt(ev.arms[a].mean - base)}`} | ${ev.arms[a].returns.length} |`,
    ),
    "",
    "![learning curves](curves.png)",
    "",
    "## Adviser",
    "",
    "| adviser | proposed | valid | clipped | rejected | failed verification | accepted | mean return gain of accepted |",
    "|---|---|---|---|---|---|---|---|",
    `| ${crit.adviser} | ${c.proposed} | ${c.valid} | ${c.clipped} | ${c.rejected} | ${c.unverified} | ${crit.states.length} | ${gains.length ? fmt(mean(gains)) : "–"} |`,
    "",
    ...llmUsage(rec),
    ...((rec.settings as { verify?: boolean }).verify === false
      ? ["Verification was off: every valid suggestion was kept."]
      : [
          "Verified advice: each suggested action was tried from its state's snapshot in common-random-number groups (two fresh samples of the policy and the suggestion first, then the policy with shared noise); it was kept only if the one-sided 95% lower bound of its mean gain exceeded `min_effect` × the spread of the policy's own first actions. The gain shown is re-estimated on fresh groups, in the critic's units (normalised reward).",
        ]),
    ...Object.entries(c.rejections).map(([why, n]) => `\nRejected ${n}×: ${why}.`),
    "",
    "## Modulation",
    "",
    `Radius: ${fmt(crit.radius.states)} for the adviser's states, ${fmt(crit.radius.random)} for the random ones (RMS, normalised observations; ${crit.radius.match_fraction === null ? "as configured" : `calibrated so that ${crit.radius.match_fraction * 100}% of the base policy's own states lie within it`}).`,
    `Steps modulated at a critical state, per arm (\`fire_on: ${String((rec.settings as { modulation?: { fire_on?: string } }).modulation?.fire_on ?? "step")}\`; entry: once per visit of a state's radius): "restored" is the first step of an episode restored at that state's snapshot, "reached" every other match, i.e. states the policy got to by itself; "near" counts every step within a radius, modulated or not.`,
    ...matchWarnings(run, arms, crit.radius.match_fraction),
    "",
    `Adviser reward: 1.0 is ${fmt(crit.reward_unit.value)} raw reward (${crit.reward_unit.basis === "std" ? "the std" : crit.reward_unit.basis === "mean_abs" ? "the mean |r| (the std was 0)" : "a fallback of 1.0 (every reward was 0)"} of the base policy's ${crit.reward_unit.steps} per-step rewards in identify), times \`reward_scale\`, scaled as the env's own rewards are (÷ sqrt of VecNormalize's return variance where it normalises rewards); R pays it only for taking the suggested action (Box: partly, by distance; none suggested: always).`,
    "",
    budgetLine(rec, crit.env_steps),
    "",
    "| arm | preparation env steps | improve env steps | total env steps | matched (reached) | matched (restored) | near | actions overridden | rewards added | critical resets |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...arms.filter((a) => a !== "base").map((a) => modulationRow(run, a)),
    ...(arms.includes("rice") ? ["", riceLine(run, "rice"), "", findingCostLine(findingCost(run))] : []),
    ...(arms.includes("rice_random") ? ["", riceLine(run, "rice_random")] : []),
    "",
    "## Critical states",
    "",
    ...cardChoices(crit.states),
    "| episode | step | card · change | action | reward | verification: gain (held out) · lower bound / threshold | reason |",
    "|---|---|---|---|---|---|---|",
    ...crit.states.map(
      (s) =>
        `| ${s.episode} | ${s.step} | ${s.card ? `${s.card.letter} (${s.card.kinds.join(", ")}${s.card.top_value_drop ? "; the top value drop" : ""}) · ${s.card.change}` : "–"} | ${s.action === null ? "–" : Array.isArray(s.action) ? `[${s.action.map((x) => x.toFixed(2)).join(", ")}]` : s.action} | ${s.reward.toFixed(3)} | ${s.verification ? `${fmt(s.verification.held_out_gain ?? NaN)} · ${fmt(s.verification.lower_bound)} / ${fmt(s.verification.threshold)}` : "–"} | ${s.reason.replace(/\|/g, "/")} |`,
    ),
    "",
  ];
  run.write("report.md", lines.join("\n"));
  return run.path("report.md");
}

/** Which budget rule improve followed, and what identify cost. */
function budgetLine(rec: RunRecord, s: EnvSteps): string {
  const budget = (rec.settings as { improve?: { budget?: string } }).improve?.budget ?? "updates";
  const rule =
    budget === "env_steps"
      ? "every arm's total env steps are equal: arms that used less of identify's steps trained longer by the difference (learn() rounds up to whole rollouts)"
      : "every arm trained the same improve steps; identify's env steps are extra for the arms that use its states";
  return `Budget (\`improve.budget: ${budget}\`): ${rule}. Identify took ${s.collect} env steps collecting episodes, ${s.adviser} in the adviser's rollouts and ${s.verify} verifying; ULTRA and the RICE-style reset count all three, random critical states the first, continue PPO none.`;
}

/** Candidates mode: did the LLM's choice differ from what the critic alone would pick (the top value-drop card)? */
function cardChoices(states: CriticalStatesFile["states"]): string[] {
  const carded = states.filter((s) => s.card);
  if (!carded.length) return [];
  const top = carded.filter((s) => s.card!.top_value_drop).length;
  return [
    `Of the ${carded.length} accepted states picked from cards, ${top} ${top === 1 ? "is" : "are"} the episode's top value-drop card (what the critic alone would pick first) and ${carded.length - top} ${carded.length - top === 1 ? "is" : "are"} another card.`,
    "",
  ];
}

/** One arm's env steps and modulation counters over its whole improve phase. */
function modulationRow(run: RunDir, arm: string): string {
  const p = readProgress({ run }, arm as Arm);
  const m = totalModulation(p?.modulation ?? []);
  const prep = p?.prep_env_steps;
  const steps = `${prep ?? "–"} | ${p?.steps_done ?? "–"} | ${prep === undefined || !p ? "–" : prep + p.steps_done}`;
  if (!m) return `| ${armName(arm)} | ${steps} | – | – | – | – | – | – |`;
  const restored = m.restored_start_matches ?? 0;
  return `| ${armName(arm)} | ${steps} | ${m.matched_steps - restored} | ${restored} | ${m.near_steps ?? "–"} | ${m.overridden_actions} | ${m.reward_added_steps} | ${m.critical_resets + (m.rice_resets ?? 0)} |`;
}

/** The radius was calibrated so that `matchFraction` of the base policy's steps lie near a critical state. An arm
 * modulated far more often than that at states it reached itself (restored starts aside) may be held there by a
 * suggestion, as a "hold still" firing on every step is; an ULTRA arm near its states far more often than the
 * RICE-style reset arm (same states, same resets) was drawn to them by the advice. */
export function matchWarnings(run: RunDir, arms: string[], matchFraction: number | null): string[] {
  if (matchFraction === null) return [];
  const limit = 5 * matchFraction;
  const totals = (arm: string) => {
    const p = readProgress({ run }, arm as Arm);
    const m = totalModulation(p?.modulation ?? []);
    return m && p?.steps_done ? { m, steps: p.steps_done } : null;
  };
  const reset = totals("rice_reset");
  const resetNear = reset ? (reset.m.near_steps ?? 0) / reset.steps : null;
  const pct = (x: number) => `${fmt(100 * x)}%`;
  return arms.flatMap((arm) => {
    const t = totals(arm);
    if (!t) return [];
    const out: string[] = [];
    const reached = (t.m.matched_steps - (t.m.restored_start_matches ?? 0)) / t.steps;
    if (reached > limit)
      out.push(
        `\n**Warning:** ${armName(arm)} was modulated at ${pct(reached)} of its steps at states it reached itself, though the radius was calibrated for ${matchFraction * 100}% of the base policy's: a suggestion may be holding the agent at its own state (\`modulation.fire_on: entry\` fires once per visit).`,
      );
    // R pays only for taking (about) the suggested action: a policy that never does gets no reward, and then
    // ULTRA-R is the RICE-style reset arm (the same states and resets), as on the dense replicate's HalfCheetah
    if (arm === "ultra_R" && t.m.matched_steps > 0 && t.m.reward_added_steps === 0)
      out.push(
        `\n**Warning:** ${armName(arm)} paid its reward at none of its ${t.m.matched_steps} matches: the agent never took an action within \`modulation.action_tolerance\` of a suggestion, so it trained as the RICE-style reset arm does (the same states and resets), not as ULTRA-R.`,
      );
    const near = (t.m.near_steps ?? 0) / t.steps;
    if (arm.startsWith("ultra_") && near > limit && (resetNear === null || near > 2 * resetNear))
      out.push(
        `\n**Warning:** ${armName(arm)} spent ${pct(near)} of its steps near critical states (the base policy ${matchFraction * 100}%${resetNear === null ? "" : `, the RICE-style reset arm ${pct(resetNear)}`}): the advice drew the refined policy to them.`,
      );
    return out;
  });
}

/** The rice arm: where its mask net came from and what it cost, its resets' rollouts, the RND bonus it paid. */
function riceLine(run: RunDir, arm: "rice" | "rice_random"): string {
  const p = readProgress({ run }, arm);
  const m = totalModulation(p?.modulation ?? []);
  const t = p?.mask?.trained;
  const mask =
    arm === "rice_random"
      ? "random critical states (RICE's ablation: no mask net)"
      : !p?.mask
        ? "no mask net yet"
        : t
          ? `a mask net trained here for ${t.steps} steps in ${fmt(t.seconds)} s (blinding ${fmt(100 * t.blind_fraction)}% of steps; return while blinded ${fmt(t.ep_rew_mean ?? NaN)})`
          : `the mask net ${p.mask.path}`;
  const rnd = m?.rnd_bonus_steps
    ? `, mean RND bonus ${(m.rnd_bonus_sum / m.rnd_bonus_steps).toPrecision(3)} per step in PPO's reward units`
    : "";
  return `${arm === "rice" ? "RICE" : "RICE, random critical states"}: ${mask}; its critical resets rolled the agent out for ${m?.rice_rollout_steps ?? 0} extra env steps (not in the table's totals)${rnd}.`;
}

/** What finding critical states cost each method: ULTRA's identification (env steps, seconds, LLM tokens) and the
 * rice arm's mask net (trained here: its env steps and seconds; loaded: nothing in this run). */
export interface FindingCost {
  ultra: { env_steps: number; seconds: number; llm_tokens: number };
  rice: { env_steps: number; seconds: number; trained_here: boolean } | null;
}

export function findingCost(run: RunDir): FindingCost {
  const rec = run.record;
  const crit = run.readChecked("critical_states.json", CriticalStatesFile);
  const u = identifyUsage(rec);
  const e = crit.env_steps;
  const t = readProgress({ run }, "rice")?.mask;
  return {
    ultra: {
      env_steps: e.collect + e.adviser + e.verify,
      seconds: rec.phases.identify?.seconds ?? NaN,
      llm_tokens: u ? u.prompt_tokens + u.completion_tokens : 0,
    },
    rice: t ? { env_steps: t.trained?.steps ?? 0, seconds: t.trained?.seconds ?? 0, trained_here: t.trained !== null } : null,
  };
}

/** The "no extra training" claim as a measured ratio: RICE's explanation cost over ULTRA's identification cost. */
export function findingCostLine(c: FindingCost): string {
  const ultra = `ULTRA's identification took ${c.ultra.env_steps} env steps and ${fmt(c.ultra.seconds)} s${c.ultra.llm_tokens ? ` (${c.ultra.llm_tokens} LLM tokens)` : ""}`;
  if (!c.rice) return `Finding critical states: ${ultra}; RICE's mask net: none yet.`;
  if (!c.rice.trained_here)
    return `Finding critical states: ${ultra}; RICE's mask net was loaded, so its training cost is not in this run (RICE's Table 4 reports 1,317 s for HalfCheetah to 15,393 s for Hopper).`;
  const ratio = (a: number, b: number) => (b > 0 ? `${fmt(a / b)}×` : "–");
  return `Finding critical states: ${ultra}; RICE's mask net took ${c.rice.env_steps} env steps and ${fmt(c.rice.seconds)} s to train: ${ratio(c.rice.env_steps, c.ultra.env_steps)} ULTRA's env steps, ${ratio(c.rice.seconds, c.ultra.seconds)} its seconds.`;
}

/** Per-seed values → mean, sample std and the 95% CI's half-width. */
export const acrossSeeds = (xs: number[]) => ({ mean: mean(xs), std: std(xs), ci95: ci95(xs) });

/** The table cells "mean ± std | [CI] | per seed" of per-seed values (no CI from one seed). */
export function seedCells(xs: number[]): string {
  const r = acrossSeeds(xs);
  return `${fmt(r.mean)} ± ${fmt(r.std)} | ${Number.isNaN(r.ci95) ? "–" : `[${fmt(r.mean - r.ci95)}, ${fmt(r.mean + r.ci95)}]`} | ${xs.map(fmt).join(", ")}`;
}

/** Groups of arms whose evaluation returns are element-wise equal (and not empty). */
export function identicalArms(returns: Record<string, number[]>): string[][] {
  const same = (a: number[], b: number[]) => a.length > 0 && a.length === b.length && a.every((x, i) => x === b[i]);
  const groups: string[][] = [];
  for (const [arm, r] of Object.entries(returns)) {
    const g = groups.find((x) => same(returns[x[0]], r));
    if (g) g.push(arm);
    else groups.push([arm]);
  }
  return groups.filter((g) => g.length > 1);
}

/** A warning per group of identical arms: equal returns to the last episode mean the same training, not a tie. */
export function identicalWarnings(returns: Record<string, number[]>): string[] {
  return identicalArms(returns).flatMap((g) => [
    `**Warning: ${g.map(armName).join(" and ")} have identical evaluation returns, episode by episode: they trained identically (e.g. the critical-state table was empty, so there was nothing to modulate), and the difference between them is nothing, not a measured effect.**`,
    "",
  ]);
}

const signed = (x: number) => (Number.isNaN(x) ? "–" : `${x >= 0 ? "+" : ""}${fmt(x)}`);
const pValue = (p: number) => (Number.isNaN(p) ? "–" : p < 0.001 ? "< 0.001" : p.toFixed(3));

/** The table "difference to continue PPO, paired by seed": every arm but base and continue PPO, from per-seed
 * values listed in the same seed order for every arm. Both arms of a seed start from that seed's base policy, so
 * pairing by seed takes the seed's luck out of the difference; each arm's own CI keeps it in. */
export function pairedTable(perSeed: Record<string, number[]>, heading = "##"): string[] {
  const ref = perSeed.continue_ppo;
  if (!ref) return ["No difference to continue PPO, paired by seed: continue PPO is not among the arms.", ""];
  const arms = Object.keys(perSeed).filter((a) => a !== "base" && a !== "continue_ppo");
  if (!arms.length) return [];
  return [
    `${heading} Difference to continue PPO, paired by seed`,
    "",
    ...pairedRows(Object.fromEntries(arms.map((a) => [a, pairedDiff(perSeed[a], ref)]))),
    "Test: paired t-test, two-sided, df = seeds − 1, on each seed's mean evaluation return minus continue PPO's on the same seed; the CI is the paired t interval of the mean difference (none from one seed); wins: seeds where the arm's return was higher.",
    "",
  ];
}

/** ULTRA's arms minus the reset-only arm (rice_reset), paired by seed: the same critical states and the same
 * restarts, without the adviser's action or reward, so the difference is what the advice itself adds. */
export function adviceTable(advice: Record<string, Paired>, heading = "##"): string[] {
  if (!Object.keys(advice).length) return [];
  return [
    `${heading} What the advice adds: difference to the reset-only arm, paired by seed`,
    "",
    ...pairedRows(advice),
    "The reset-only arm restarts episodes at the same critical states with the same probability as ULTRA's arms, and takes no adviser action or reward there: each difference is what the suggested actions (A), the LLM's reward (R) or both (RA) add to those restarts. Test as above (paired t, two-sided, df = seeds − 1).",
    "",
  ];
}

function pairedRows(pairs: Record<string, Paired>): string[] {
  return [
    "| arm | mean difference | 95% CI | p | wins | per seed |",
    "|---|---|---|---|---|---|",
    ...Object.entries(pairs).map(([a, d]) => {
      const ci = Number.isNaN(d.ci[0]) ? "–" : `[${fmt(d.ci[0])}, ${fmt(d.ci[1])}]`;
      return `| ${armName(a)} | ${signed(d.mean)} | ${ci} | ${pValue(d.p)} | ${d.wins}/${d.n} | ${d.diffs.map(signed).join(", ")} |`;
    }),
    "",
  ];
}

export function seedReport(envId: string, seeds: number[], evals: EvalFile[]): string {
  const arms = Object.keys(evals[0].arms);
  const perSeed = Object.fromEntries(arms.map((arm) => [arm, evals.map((e) => e.arms[arm].mean)]));
  return [
    `# ULTRA report — ${envId}, seeds ${seeds.join(", ")}`,
    "",
    "Each seed's run has its own report (seed-N/report.md) with curves and critical states.",
    "",
    "| arm | mean ± std over seeds | 95% CI | per seed |",
    "|---|---|---|---|",
    ...arms.map((arm) => `| ${armName(arm)} | ${seedCells(perSeed[arm])} |`),
    "",
    ...identicalWarnings(Object.fromEntries(arms.filter((a) => a !== "base").map((a) => [a, evals.flatMap((e) => e.arms[a].returns)]))),
    ...pairedTable(perSeed),
  ].join("\n");
}
