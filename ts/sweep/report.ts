// The sweep report: per env, every arm's final return over seeds (mean ± std, 95% CI), its difference to
// continue PPO paired by seed (and each ULTRA arm's to the reset-only arm: what the advice adds), learning curves
// with 95% CI bands, and the adviser's statistics; then every trial's status. Also summary.json for scripts.
import type { SidecarClient } from "../bridge/client.js";
import type { Improvement } from "../bridge/ops.js";
import { resolveEnv, type EnvConfig } from "../config.js";
import { CriticalStatesFile } from "../ultra/critical.js";
import {
  acrossSeeds,
  armName,
  findingCost,
  findingCostLine,
  identicalWarnings,
  identifyUsage,
  adviceTable,
  pairedTable,
  seedCells,
  type FindingCost,
} from "../ultra/phases/report.js";
import type { EvalFile } from "../ultra/phases/evaluate.js";
import { verdictsOf } from "../ultra/phases/identify.js";
import { readProgress, type Arm, type ArmProgress } from "../ultra/phases/improve.js";
import type { RunDir } from "../ultra/rundir.js";
import { ci95Factor, median, pairedDiff, type Paired } from "../ultra/stats.js";
import type { Sweep } from "./scheduler.js";
import type { Trial } from "./spec.js";

type ArmRow = { arm: string; seeds: number[]; returns: number[] } & ReturnType<typeof acrossSeeds>;

/** An arm's result on one seed (its evaluation's mean and episode returns), or why it has none. */
export type SeedResult = { mean: number; returns: number[] } | { missing: string };

export interface EnvTable {
  /** the seeds every arm has a result for: the only ones compared */
  seeds: number[];
  dropped: { seed: number; missing: { arm: string; why: string }[] }[];
  rows: ArmRow[];
  /** each arm but base and continue PPO minus continue PPO, paired by seed (when continue PPO is an arm) */
  paired: Record<string, Paired>;
  /** each ULTRA arm minus the reset-only arm (same states and restarts, no advice), when both are arms */
  advice: Record<string, Paired>;
  lines: string[];
}

/** One env's tables, over the seeds where every arm has a result. When a trial failed, averaging arm A over seeds
 * {1, 2, 3} and arm B over {1, 2} would put seed 3's luck into their difference, so seed 3 is dropped for all. */
export function envTable(arms: string[], seeds: number[], result: (arm: string, seed: number) => SeedResult): EnvTable {
  const got = new Map(arms.map((arm) => [arm, seeds.map((seed) => result(arm, seed))]));
  const kept: number[] = [];
  const dropped: EnvTable["dropped"] = [];
  seeds.forEach((seed, i) => {
    const missing = arms.flatMap((arm) => {
      const r = got.get(arm)![i];
      return "missing" in r ? [{ arm, why: r.missing }] : [];
    });
    if (missing.length) dropped.push({ seed, missing });
    else kept.push(seed);
  });
  const on = (arm: string) => got.get(arm)!.filter((_, i) => kept.includes(seeds[i])) as { mean: number; returns: number[] }[];
  const rows: ArmRow[] = arms.map((arm) => {
    const returns = on(arm).map((r) => r.mean);
    return { arm, seeds: kept, returns, ...acrossSeeds(returns) };
  });
  const perSeed = Object.fromEntries(rows.map((r) => [r.arm, r.returns]));
  const paired = perSeed.continue_ppo
    ? Object.fromEntries(
        arms.filter((a) => a !== "base" && a !== "continue_ppo").map((a) => [a, pairedDiff(perSeed[a], perSeed.continue_ppo)]),
      )
    : {};
  const advice = perSeed.rice_reset
    ? Object.fromEntries(arms.filter((a) => a.startsWith("ultra_")).map((a) => [a, pairedDiff(perSeed[a], perSeed.rice_reset)]))
    : {};
  const lines = [
    ...(dropped.length
      ? [
          `Compared over seeds ${kept.join(", ") || "none"}, where every arm has a result; dropped: ` +
            dropped.map((d) => `seed ${d.seed} (${droppedWhy(d.missing)})`).join(", ") +
            ".",
          "",
        ]
      : []),
    "| arm | seeds | mean ± std over seeds | 95% CI | per seed |",
    "|---|---|---|---|---|",
    ...rows.map((r) =>
      r.returns.length ? `| ${armName(r.arm)} | ${r.returns.length} | ${seedCells(r.returns)} |` : `| ${armName(r.arm)} | 0 | – | – | – |`,
    ),
    "",
    ...(kept.length
      ? identicalWarnings(Object.fromEntries(arms.filter((a) => a !== "base").map((a) => [a, on(a).flatMap((r) => r.returns)])))
      : []),
    ...(kept.length ? pairedTable(perSeed, "###") : []),
    ...(kept.length ? adviceTable(advice, "###") : []),
  ];
  return { seeds: kept, dropped, rows, paired, advice, lines };
}

/** missingWhy lists an arm's trials with this between them; droppedWhy splits them apart again. */
const TRIAL_SEP = ", ";

/** A dropped seed's reasons, one per trial: the arms are named where a trial failed (or none trains them), not
 * while it is merely running or pending, when every arm it holds is missing and naming them says nothing. */
function droppedWhy(missing: EnvTable["dropped"][number]["missing"]): string {
  const arms = new Map<string, string[]>();
  for (const m of missing) for (const why of m.why.split(TRIAL_SEP)) arms.set(why, [...(arms.get(why) ?? []), armName(m.arm)]);
  return [...arms].map(([why, names]) => (/ (running|pending)$/.test(why) ? why : `${names.join(", ")}: ${why}`)).join("; ");
}

/** Why an arm has no result for a seed: the trial that would hold it, and where that trial stands. */
function missingWhy(trials: Trial[], arm: string, seed: number): string {
  const mine = trials.filter((t) => t.seed === seed);
  const owner = arm.startsWith("ultra_")
    ? mine.filter((t) => `ultra_${t.variant}` === arm)
    : arm === "base"
      ? mine
      : mine.filter((t) => t.baselines.includes(arm as Trial["baselines"][number]));
  return owner.length ? owner.map((t) => `trial ${t.id} ${t.status}`).join(TRIAL_SEP) : "no trial trains it";
}

/** Which trial holds an arm's result for one seed: ULTRA arms their variant's trial, the rest the trial that trained them. */
function holder(trials: Trial[], arm: string, seed: number): Trial | undefined {
  const mine = trials.filter((t) => t.seed === seed && t.status === "done");
  if (arm.startsWith("ultra_")) return mine.find((t) => `ultra_${t.variant}` === arm);
  if (arm === "base") return mine[0];
  return mine.find((t) => t.baselines.includes(arm as Trial["baselines"][number]));
}

function adviserStats(runs: RunDir[]) {
  const verdicts = runs.flatMap(verdictsOf);
  const failed = verdicts.filter((v) => !v.accepted);
  const s = {
    runs: runs.length,
    proposed: 0,
    valid: 0,
    rejected: 0,
    unverified: 0,
    /** failed verification with a gain significantly above 0 (one-sided 95%), but not above the min_effect bar */
    significant_below_bar: failed.filter((v) => v.lower_bound > 0).length,
    /** medians over every verdict: the suggestion's mean paired gain, and the bar it had to clear */
    median_gain: verdicts.length ? median(verdicts.map((v) => v.mean_gain)) : null,
    median_bar: verdicts.length ? median(verdicts.map((v) => v.threshold)) : null,
    accepted: 0,
    llm_calls: 0,
    cache_hits: 0,
    prompt_tokens: 0,
    completion_tokens: 0,
    cost_usd: 0,
  };
  for (const run of runs) {
    const crit = run.readChecked("critical_states.json", CriticalStatesFile);
    s.proposed += crit.counts.proposed;
    s.valid += crit.counts.valid;
    s.rejected += crit.counts.rejected;
    s.unverified += crit.counts.unverified;
    s.accepted += crit.states.length;
    const u = identifyUsage(run.record);
    if (u) {
      s.llm_calls += u.calls;
      s.cache_hits += u.cache_hits ?? 0;
      s.prompt_tokens += u.prompt_tokens;
      s.completion_tokens += u.completion_tokens;
      s.cost_usd += u.cost_usd;
    }
  }
  return s;
}

/** What the failures were: significant gains below the bar, or none at all ("" for runs without verdicts). */
function verificationWhy(a: ReturnType<typeof adviserStats>): string {
  if (a.median_gain === null || a.median_bar === null) return "";
  return (
    ` (${a.significant_below_bar} of them with a gain significantly above 0 but below the min_effect bar; ` +
    `median gain ${a.median_gain.toFixed(2)} against a median bar of ${a.median_bar.toFixed(2)})`
  );
}

/** Per arm, the env steps each seed's run used (identify's that the arm drew on, and its own training) and its
 * training's wall seconds, where the run recorded them. */
export function armCosts(
  arms: string[],
  seeds: number[],
  progress: (arm: string, seed: number) => ArmProgress | null,
): Record<string, { prep: number[]; improve: number[]; seconds: number[] }> {
  return Object.fromEntries(
    arms.map((arm) => {
      const ps = seeds.map((s) => progress(arm, s)).filter((p): p is ArmProgress => p !== null);
      return [
        arm,
        {
          prep: ps.map((p) => p.prep_env_steps ?? 0),
          improve: ps.map((p) => p.steps_done),
          seconds: ps.flatMap((p) => (p.seconds === undefined ? [] : [p.seconds])),
        },
      ];
    }),
  );
}

function costLines(cost: ReturnType<typeof armCosts>): string[] {
  const avg = (xs: number[]) => (xs.length ? String(Math.round(xs.reduce((a, b) => a + b, 0) / xs.length)) : "–");
  return [
    "Env steps per arm (mean over the compared seeds): identification's that the arm drew on (RICE's: its mask net's " +
      "training, where the run trained one), its own training, and " +
      "both; and the training's wall time (mean over the seeds that recorded it; trials share the machine, so compare " +
      "it within a sweep).",
    "",
    "| arm | identification | training | total | training wall time (s) |",
    "|---|---|---|---|---|",
    ...Object.entries(cost).map(
      ([arm, c]) =>
        `| ${armName(arm)} | ${avg(c.prep)} | ${avg(c.improve)} | ${avg(c.prep.map((p, i) => p + c.improve[i]))} | ${avg(c.seconds)} |`,
    ),
    "",
  ];
}

function meanFindingCost(cs: FindingCost[]): FindingCost {
  const m = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const rice = cs.map((c) => c.rice).filter((r): r is NonNullable<FindingCost["rice"]> => r !== null);
  return {
    ultra: {
      env_steps: Math.round(m(cs.map((c) => c.ultra.env_steps))),
      seconds: m(cs.map((c) => c.ultra.seconds)),
      llm_tokens: Math.round(m(cs.map((c) => c.ultra.llm_tokens))),
    },
    rice: rice.length
      ? {
          env_steps: Math.round(m(rice.map((r) => r.env_steps))),
          seconds: m(rice.map((r) => r.seconds)),
          trained_here: rice.every((r) => r.trained_here),
        }
      : null,
  };
}

/** Published numbers to hold the table against, with where they come from (their budget and env versions differ). */
export function referenceLines(ref: EnvConfig["reference"]): string[] {
  if (!ref) return [];
  return [
    `Published, for comparison (${ref.source}): ` +
      Object.entries(ref.returns)
        .map(([arm, r]) => `${arm} ${r.mean}${r.std === null ? "" : ` ± ${r.std}`}`)
        .join(", ") +
      ".",
    "",
  ];
}

/** Bootstrap resamples of each probability of improvement (rliable's examples use 2,000 for it). */
export const IMPROVEMENT_REPS = 2000;

/** The pairs the report asks about: every refinement arm against continue PPO, and each ULTRA arm against RICE
 * and against the reset-only arm (what the advice adds to the same restarts). */
export function improvementPairs(arms: string[]): [string, string][] {
  const has = (a: string) => arms.includes(a);
  const refined = arms.filter((a) => a !== "base" && a !== "continue_ppo");
  const ultra = refined.filter((a) => a.startsWith("ultra_"));
  return [
    ...(has("continue_ppo") ? refined.map((a): [string, string] => [a, "continue_ppo"]) : []),
    ...(has("rice") ? ultra.map((a): [string, string] => [a, "rice"]) : []),
    ...(has("rice_reset") ? ultra.map((a): [string, string] => [a, "rice_reset"]) : []),
  ];
}

/** Across tasks, the field's standard (rliable): the probability that a run of one arm beats a run of another, per
 * task and averaged over the tasks that have the most compared seeds. A pair is averaged over the tasks that have
 * both its arms (Pong has no RICE arm), and says over how many. */
export async function acrossTasks(
  tables: { env: string; table: Pick<EnvTable, "seeds" | "rows"> }[],
  sc: SidecarClient,
): Promise<{ lines: string[]; summary: unknown } | null> {
  const n = Math.max(0, ...tables.map((t) => t.table.seeds.length));
  const used = tables.filter((t) => t.table.seeds.length === n);
  const left = tables.filter((t) => t.table.seeds.length !== n);
  const arms = [...new Set(used.flatMap((t) => t.table.rows.map((r) => r.arm)))];
  const pairs = improvementPairs(arms);
  if (n < 2 || !pairs.length) return null; // one seed per task: nothing to bootstrap
  const has = (t: (typeof used)[number], arm: string) => t.table.rows.some((r) => r.arm === arm);
  // one op call per set of tasks (a runs × tasks matrix must be full for every arm it holds)
  const groups = new Map<string, { tasks: typeof used; pairs: [string, string][] }>();
  for (const [x, y] of pairs) {
    const tasks = used.filter((t) => has(t, x) && has(t, y));
    if (!tasks.length) continue;
    const key = tasks.map((t) => t.env).join("\n");
    const g = groups.get(key) ?? groups.set(key, { tasks, pairs: [] }).get(key)!;
    g.pairs.push([x, y]);
  }
  const got: Record<string, Improvement & { on: string[] }> = {};
  for (const g of groups.values()) {
    const mine = [...new Set(g.pairs.flat())];
    const scores = Object.fromEntries(
      mine.map((arm) => [
        arm,
        Array.from({ length: n }, (_, run) => g.tasks.map((t) => t.table.rows.find((r) => r.arm === arm)!.returns[run])),
      ]),
    );
    const r = await sc.call("probability_of_improvement", { scores, pairs: g.pairs, reps: IMPROVEMENT_REPS, seed: 0 });
    for (const [k, v] of Object.entries(r.pairs)) got[k] = { ...v, on: g.tasks.map((t) => t.env) };
  }
  const asked = pairs.filter(([x, y]) => got[`${x}>${y}`]);
  const all = used.length > 1; // one task: its column is the average
  const partial = asked.some(([x, y]) => got[`${x}>${y}`].on.length < used.length);
  const cell = (r: { p: number; ci: [number, number] }) => `${r.p.toFixed(2)} [${r.ci[0].toFixed(2)}, ${r.ci[1].toFixed(2)}]`;
  const lines = [
    "## Across tasks: probability of improvement",
    "",
    `P(X > Y): the probability that a run of arm X ends with a higher mean evaluation return than a run of arm Y on the ` +
      `same task (Mann–Whitney U / (n_X n_Y), ties count ½), averaged over tasks, with 95% stratified bootstrap CIs ` +
      `(rliable, ${IMPROVEMENT_REPS} resamples; Agarwal et al. 2021). 0.50 is no difference; a CI that excludes 0.50 is one. ` +
      `With few seeds the resamples can only recombine the runs there are: 0.00 [0.00, 0.00] says every run of X lost to every run of Y, not that this is certain. ` +
      `It ignores the pairing by seed that the tables above use. Tasks: ${used.map((t) => t.env).join(", ")}, ${n} seeds each` +
      (left.length ? `; left out (fewer compared seeds): ${left.map((t) => `${t.env} (${t.table.seeds.length})`).join(", ")}` : "") +
      "." +
      (partial
        ? " A task without one of a pair's arms shows –; the pair's average is over the tasks that have both (its count in brackets)."
        : ""),
    "",
    `| X | Y | ${used.map((t) => t.env).join(" | ")}${all ? " | all tasks" : ""} |`,
    `|---|---|${used.map(() => "---|").join("")}${all ? "---|" : ""}`,
    ...asked.map(([x, y]) => {
      const r = got[`${x}>${y}`];
      const per = used.map((t) => (r.on.includes(t.env) ? cell(r.tasks[r.on.indexOf(t.env)]) : "–"));
      const avg = all ? ` | ${cell(r)}${r.on.length < used.length ? ` (${r.on.length})` : ""}` : "";
      return `| ${armName(x)} | ${armName(y)} | ${per.join(" | ")}${avg} |`;
    }),
    "",
  ];
  return {
    lines,
    summary: { tasks: used.map((t) => t.env), seeds: n, left_out: left.map((t) => t.env), reps: IMPROVEMENT_REPS, pairs: got },
  };
}

export async function sweepReport(sweep: Sweep, sc: SidecarClient): Promise<{ report: string; summary: unknown }> {
  const { spec, trials } = sweep.state;
  const lines = [
    `# ULTRA sweep — ${spec.envs.length} envs × ${spec.variants.length} variants × ${spec.seeds.length} seeds`,
    "",
    `Profile \`${spec.profile}\`, adviser \`${spec.adviser ?? "configs/ultra.yaml default"}\`, baselines ${spec.baselines.join(", ") || "none"}, Ray \`${spec.ray}\`.`,
    `Trials: ${trials.filter((t) => t.status === "done").length} done, ${trials.filter((t) => t.status === "failed").length} failed of ${trials.length}. Each trial is a run directory (trials/ID) like \`ultra train\` makes: re-run or replay it alone.`,
    "",
  ];
  const summary: Record<string, unknown> = {};
  const tables: { env: string; table: EnvTable }[] = [];
  for (const envName of spec.envs) {
    const env = resolveEnv(envName);
    const mine = trials.filter((t) => t.env === envName);
    const arms = ["base", ...spec.variants.map((v) => `ultra_${v}`), ...spec.baselines];
    const table = envTable(arms, spec.seeds, (arm, seed) => {
      const t = holder(mine, arm, seed);
      const ev = t && sweep.runDir(t).readJson<EvalFile>("eval.json").arms[arm];
      return ev ? { mean: ev.mean, returns: ev.returns } : { missing: t ? `not in ${t.id}'s eval.json` : missingWhy(mine, arm, seed) };
    });
    tables.push({ env: env.env_id, table });
    const curves: Record<string, unknown> = {};
    const band: Record<string, number> = {};
    for (const arm of arms.slice(1)) {
      // the curves too: over the compared seeds only
      const perSeed = table.seeds.flatMap((seed) => {
        const t = holder(mine, arm, seed);
        return t ? [readProgress({ run: sweep.runDir(t) }, arm as Arm)?.curve ?? []] : [];
      });
      curves[arm] = perSeed;
      band[arm] = perSeed.length > 1 ? ci95Factor(perSeed.length) : 0;
    }
    const png = `curves-${env.name}.png`;
    await sc.call("plot_curves", {
      curves,
      path: sweep.dir.path(png),
      title: `${env.env_id}: refinement, mean over seeds with 95% CI`,
      band_scale: band,
    });
    const advice = adviserStats(mine.filter((t) => t.status === "done").map((t) => sweep.runDir(t)));
    const cost = armCosts(arms.slice(1), table.seeds, (arm, seed) => {
      const t = holder(mine, arm, seed);
      return t ? readProgress({ run: sweep.runDir(t) }, arm as Arm) : null;
    });
    // RICE's explanation beside ULTRA's identification, in the runs that trained the rice arm
    const finding = mine.filter((t) => t.status === "done" && t.baselines.includes("rice")).map((t) => findingCost(sweep.runDir(t)));
    summary[env.env_id] = {
      seeds: table.seeds,
      dropped: table.dropped,
      arms: table.rows,
      paired_vs_continue_ppo: table.paired,
      paired_vs_rice_reset: table.advice,
      adviser: advice,
      env_steps: cost,
      finding_cost: finding,
      reference: env.reference,
    };
    lines.push(
      `## ${env.env_id}`,
      "",
      ...table.lines,
      ...costLines(cost),
      ...(finding.length ? [`${findingCostLine(meanFindingCost(finding))} (mean over ${finding.length} runs)`, ""] : []),
      ...referenceLines(env.reference),
      `![learning curves](${png})`,
      "",
      `Adviser over ${advice.runs} runs: ${advice.proposed} critical states proposed, ${advice.valid} valid, ${advice.rejected} rejected, ` +
        `${advice.unverified} failed verification${verificationWhy(advice)}, ${advice.accepted} accepted. LLM: ${advice.llm_calls} calls (${advice.cache_hits} from the cache), ` +
        `${advice.prompt_tokens} prompt + ${advice.completion_tokens} completion tokens, $${advice.cost_usd.toFixed(4)}.`,
      "",
    );
  }
  const across = await acrossTasks(tables, sc);
  if (across) summary.across_tasks = across.summary;
  lines.push(
    ...(across?.lines ?? []),
    "## Trials",
    "",
    "| trial | status | attempts | seconds | node | errors |",
    "|---|---|---|---|---|---|",
    ...trials.map(
      (t) =>
        `| ${t.id} | ${t.status} | ${t.attempts} | ${t.seconds} | ${t.node ?? "–"} | ${t.errors.join("; ").replace(/\|/g, "/") || "–"} |`,
    ),
    "",
  );
  sweep.dir.writeJson("summary.json", summary);
  return { report: sweep.dir.write("report.md", lines.join("\n")), summary };
}
