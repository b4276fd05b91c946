// Phase 5, report: report.md (per-arm returns, adviser counts, the critical states of each episode) and
// curves.png (learning curves of every arm, drawn by matplotlib in the sidecar).
import type { Sidecar } from "../../bridge/sidecar.js";
import { fmt } from "../../progress.js";
import { CriticalStatesFile } from "../critical.js";
import type { RunDir, RunRecord } from "../rundir.js";
import { ci95, mean, std } from "../stats.js";
import type { EvalFile } from "./evaluate.js";
import { readProgress, totalModulation, type Arm } from "./improve.js";

const ARM_NAMES: Record<string, string> = {
  base: "base policy (no refinement)",
  continue_ppo: "continue PPO (same budget)",
  rice_reset: "RICE-style reset to critical states, no adviser actions",
  random_critical: "random critical states (same count)",
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
  return [
    `LLM calls: ${u.calls} (${u.cache_hits ?? 0} served from the cache), ${u.prompt_tokens} prompt + ${u.completion_tokens} completion tokens, ` +
      `estimated cost $${u.cost_usd.toFixed(4)}, ${fmt(u.seconds)} s; ${u.repairs} replies needed a repair, ${u.failures} episodes got no usable reply.`,
    "",
  ];
}

export async function report(run: RunDir, sc: Sidecar): Promise<string> {
  const rec: RunRecord = run.record;
  const ev = run.readJson<EvalFile>("eval.json");
  const crit = run.readChecked("critical_states.json", CriticalStatesFile);
  const arms = Object.keys(ev.arms);
  const base = ev.arms.base.mean;
  await sc.call("plot_curves", { curves: curves(run, arms), path: run.path("curves.png"), title: `${rec.env_id}, seed ${rec.seed}: refinement curves` });
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
      : ["**Warning: no critical state was accepted, so every refined arm trained exactly as continue PPO did; their differences are noise of evaluation only.**", ""]),
    "| arm | mean ± std | vs base | episodes |",
    "|---|---|---|---|",
    ...arms.map((a) => `| ${armName(a)} | ${fmt(ev.arms[a].mean)} ± ${fmt(ev.arms[a].std)} | ${a === "base" ? "–" : `${ev.arms[a].mean - base >= 0 ? "+" : ""}${fmt(ev.arms[a].mean - base)}`} | ${ev.arms[a].returns.length} |`),
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
    ...(rec.settings as { verify?: boolean }).verify === false
      ? ["Verification was off: every valid suggestion was kept."]
      : [
          "Verified advice: each suggested action was tried from its state's snapshot in common-random-number groups (two fresh samples of the policy and the suggestion first, then the policy with shared noise); it was kept only if the one-sided 95% lower bound of its mean gain exceeded `min_effect` × the spread of the policy's own first actions. The gain shown is re-estimated on fresh groups, in the critic's units (normalised reward).",
        ],
    ...Object.entries(c.rejections).map(([why, n]) => `\nRejected ${n}×: ${why}.`),
    "",
    "## Modulation",
    "",
    `Radius: ${fmt(crit.radius.states)} for the adviser's states, ${fmt(crit.radius.random)} for the random ones (RMS, normalised observations; ${crit.radius.match_fraction === null ? "as configured" : `calibrated so that ${crit.radius.match_fraction * 100}% of the base policy's own states lie within it`}).`,
    "Steps near a critical state, per arm: \"restored\" is the first step of an episode restored at that state's snapshot, \"reached\" every other match, i.e. states the policy got to by itself.",
    "",
    "| arm | env steps | matched (reached) | matched (restored) | actions overridden | rewards added | critical resets |",
    "|---|---|---|---|---|---|---|",
    ...arms.filter((a) => a !== "base").map((a) => modulationRow(run, a)),
    "",
    "## Critical states",
    "",
    "| episode | step | action | reward | verification: gain (held out) · lower bound / threshold | reason |",
    "|---|---|---|---|---|---|",
    ...crit.states.map((s) => `| ${s.episode} | ${s.step} | ${s.action === null ? "–" : Array.isArray(s.action) ? `[${s.action.map((x) => x.toFixed(2)).join(", ")}]` : s.action} | ${s.reward.toFixed(3)} | ${s.verification ? `${fmt(s.verification.held_out_gain ?? NaN)} · ${fmt(s.verification.lower_bound)} / ${fmt(s.verification.threshold)}` : "–"} | ${s.reason.replace(/\|/g, "/")} |`),
    "",
  ];
  run.write("report.md", lines.join("\n"));
  return run.path("report.md");
}

/** One arm's modulation counters over its whole improve phase. */
function modulationRow(run: RunDir, arm: string): string {
  const p = readProgress({ run }, arm as Arm);
  const m = totalModulation(p?.modulation ?? []);
  if (!m) return `| ${armName(arm)} | ${p?.steps_done ?? "–"} | – | – | – | – | – |`;
  const restored = m.restored_start_matches ?? 0;
  return `| ${armName(arm)} | ${p!.steps_done} | ${m.matched_steps - restored} | ${restored} | ${m.overridden_actions} | ${m.reward_added_steps} | ${m.critical_resets} |`;
}

/** Per-seed values → mean, sample std and the 95% CI's half-width. */
export const acrossSeeds = (xs: number[]) => ({ mean: mean(xs), std: std(xs), ci95: ci95(xs) });

/** The table cells "mean ± std | [CI] | per seed" of per-seed values (no CI from one seed). */
export function seedCells(xs: number[]): string {
  const r = acrossSeeds(xs);
  return `${fmt(r.mean)} ± ${fmt(r.std)} | ${Number.isNaN(r.ci95) ? "–" : `[${fmt(r.mean - r.ci95)}, ${fmt(r.mean + r.ci95)}]`} | ${xs.map(fmt).join(", ")}`;
}

export function seedReport(envId: string, seeds: number[], evals: EvalFile[]): string {
  return [
    `# ULTRA report — ${envId}, seeds ${seeds.join(", ")}`,
    "",
    "Each seed's run has its own report (seed-N/report.md) with curves and critical states.",
    "",
    "| arm | mean ± std over seeds | 95% CI | per seed |",
    "|---|---|---|---|",
    ...Object.keys(evals[0].arms).map((arm) => `| ${armName(arm)} | ${seedCells(evals.map((e) => e.arms[arm].mean))} |`),
    "",
  ].join("\n");
}
