// Phase 5, report: report.md (per-arm returns, adviser counts, the critical states of each episode) and
// curves.png (learning curves of every arm, drawn by matplotlib in the sidecar).
import type { Sidecar } from "../../bridge/sidecar.js";
import { fmt } from "../../progress.js";
import { CriticalStatesFile } from "../critical.js";
import type { RunDir, RunRecord } from "../rundir.js";
import { ci95, mean, std } from "../stats.js";
import type { EvalFile } from "./evaluate.js";
import { readProgress, type Arm } from "./improve.js";

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
    "Verified advice: each suggested action was tried from its state's snapshot against the policy's own action (short rollouts, the policy after it); only actions that did better were kept. The gain is in the critic's units (normalised reward).",
    ...Object.entries(c.rejections).map(([why, n]) => `\nRejected ${n}×: ${why}.`),
    "",
    "## Critical states",
    "",
    "| episode | step | action | reward | reason |",
    "|---|---|---|---|---|",
    ...crit.states.map((s) => `| ${s.episode} | ${s.step} | ${s.action === null ? "–" : Array.isArray(s.action) ? `[${s.action.map((x) => x.toFixed(2)).join(", ")}]` : s.action} | ${s.reward.toFixed(3)} | ${s.reason.replace(/\|/g, "/")} |`),
    "",
  ];
  run.write("report.md", lines.join("\n"));
  return run.path("report.md");
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
