// `ultra across DIR...`: the replication's parts in one place. Each part is a sweep over one or two tasks (its
// summary.json, which `make replicate` copies into docs/results/<part>/), so no single sweep report sees every task:
// this reads the parts' summaries (no run directories needed), puts each task's paired differences to continue PPO
// in one table, and asks rliable's probability of improvement across all the tasks (report.ts: acrossTasks).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { SidecarClient } from "../bridge/client.js";
import { UltraError } from "../errors.js";
import type { Paired } from "../ultra/stats.js";
import { acrossTasks, type EnvTable } from "./report.js";

/** What a sweep's summary.json holds per task (sweepReport), as far as this reads it. */
interface TaskSummary {
  seeds: number[];
  arms: EnvTable["rows"];
  paired_vs_continue_ppo: Record<string, Paired>;
  reference?: { returns: Record<string, { mean: number }> } | null;
}

/** The arms in the table's order, with the short names its header uses. */
const COLUMNS: [string, string][] = [
  ["ultra_RA", "ULTRA-RA"],
  ["ultra_A", "ULTRA-A"],
  ["ultra_R", "ULTRA-R"],
  ["rice", "RICE"],
  ["rice_random", "RICE, random states"],
  ["rice_reset", "reset-only"],
  ["random_critical", "random states"],
];

// Reacher's returns are ~−4, HalfCheetah's ~10⁴: two decimals below 100, one above, the same in a whole cell
const digits = (...xs: number[]) => (Math.max(...xs.map(Math.abs)) < 100 ? 2 : 1);
const fmt = (x: number, d = digits(x)) => x.toFixed(d);
const signed = (x: number, d?: number) => `${x >= 0 ? "+" : ""}${fmt(x, d)}`;

/** Every task of every part: its name, the part it came from, and its summary. */
export function readParts(dirs: string[]): { env: string; part: string; task: TaskSummary }[] {
  const seen = new Map<string, string>();
  return dirs.flatMap((dir) => {
    const file = join(dir, "summary.json");
    if (!existsSync(file))
      throw new UltraError(
        `${dir} has no summary.json: name a sweep's --out directory, or docs/results/<part> (make replicate copies it there)`,
      );
    let summary: Record<string, unknown>;
    try {
      summary = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
      throw new UltraError(`${file} is not JSON (${(e as Error).message}): regenerate it with \`ultra sweep --out ${dir} --report-only\``);
    }
    return Object.entries(summary)
      .filter(([key]) => key !== "across_tasks")
      .map(([env, task]) => {
        const t = task as TaskSummary;
        if (!Array.isArray(t?.seeds) || !Array.isArray(t?.arms) || typeof t.paired_vs_continue_ppo !== "object")
          throw new UltraError(`${file}: task ${env} has no seeds, arms and paired_vs_continue_ppo: is it a sweep's summary.json?`);
        const other = seen.get(env);
        if (other)
          throw new UltraError(
            `${env} is in both ${other} and ${dir}: a task counts once across tasks; leave one part out (e.g. a part with another adviser)`,
          );
        seen.set(env, dir);
        return { env, part: dir, task: t };
      });
  });
}

/** The table per task: base, continue PPO, and each arm's paired difference to continue PPO (mean, 95% CI, seeds
 * ahead); then, per arm, on how many tasks that CI lies above 0 and below it. */
export function overviewLines(tasks: ReturnType<typeof readParts>): string[] {
  const cols = COLUMNS.filter(([arm]) => tasks.some((t) => t.task.paired_vs_continue_ppo[arm]));
  const mean = (t: TaskSummary, arm: string) => t.arms.find((r) => r.arm === arm)?.mean;
  const cell = (p: Paired | undefined) => {
    if (!p) return "–";
    const d = digits(p.mean, ...p.ci);
    return `${signed(p.mean, d)} [${fmt(p.ci[0], d)}, ${fmt(p.ci[1], d)}] ${p.wins}/${p.n}`;
  };
  const tally = cols.map(([arm, name]) => {
    const ps = tasks.map((t) => t.task.paired_vs_continue_ppo[arm]).filter((p): p is Paired => !!p);
    const above = ps.filter((p) => p.ci[0] > 0).length;
    const below = ps.filter((p) => p.ci[1] < 0).length;
    const ahead = ps.filter((p) => p.mean > 0).length;
    return `${name}: mean ahead of continue PPO on ${ahead} of ${ps.length} tasks; CI above 0 on ${above}, below 0 on ${below}.`;
  });
  const b = (x: number | undefined) => (x === undefined ? "–" : fmt(x));
  // what the table is held against: RICE's own gain over PPO fine-tuning (Table 1: v3/v2 envs, 1M steps × 20 envs)
  const published = (t: TaskSummary) => {
    const r = t.reference?.returns;
    return r?.RICE && r["PPO fine-tune"] ? signed(r.RICE.mean - r["PPO fine-tune"].mean) : "–";
  };
  return [
    "## Per task: each arm minus continue PPO, paired by seed",
    "",
    "Mean difference of the final evaluation return [95% t CI over seeds] and the seeds on which the arm is ahead. " +
      "Each task's own table (its part's report) has every arm's mean ± std, the env steps and the adviser's counts. " +
      "The last column is what RICE published for the same comparison (its Table 1: RICE − PPO fine-tune, mean over 3 " +
      "seeds, on the v3/v2 envs after 1M steps × 20 envs; ours are far smaller budgets on v4).",
    "",
    `| task | part | seeds | base | continue PPO | ${cols.map(([, name]) => name).join(" | ")} | RICE Table 1: RICE − PPO fine-tune |`,
    `|---|---|---|---|---|${cols.map(() => "---|").join("")}---|`,
    ...tasks.map(
      ({ env, part, task }) =>
        `| ${env} | ${basename(part)} | ${task.seeds.length} | ${b(mean(task, "base"))} | ${b(mean(task, "continue_ppo"))} | ` +
        `${cols.map(([arm]) => cell(task.paired_vs_continue_ppo[arm])).join(" | ")} | ${published(task)} |`,
    ),
    "",
    ...tally.map((l) => `- ${l}`),
    "",
  ];
}

/** across.md and across.json in `out`, from the parts in `dirs`. */
export async function acrossParts(dirs: string[], out: string, sc: SidecarClient): Promise<{ report: string; summary: unknown }> {
  const tasks = readParts(dirs);
  if (!tasks.length) throw new UltraError(`no task in ${dirs.join(", ")}: their summary.json files name none`);
  const tables = tasks.map(({ env, task }) => ({ env, table: { seeds: task.seeds, rows: task.arms } }));
  const across = await acrossTasks(tables, sc);
  const lines = [
    `# Across the replication's parts — ${tasks.length} tasks`,
    "",
    `From ${dirs.map((d) => `\`${join(d, "summary.json")}\``).join(", ")} (\`ultra across\`). Each part's report.md beside its summary.json says how it was run.`,
    "",
    ...overviewLines(tasks),
    ...(across?.lines ?? ["Across tasks: fewer than 2 seeds per task, nothing to resample.", ""]),
  ];
  const summary = {
    tasks: tasks.map(({ env, part, task }) => ({ env, part, seeds: task.seeds, paired_vs_continue_ppo: task.paired_vs_continue_ppo })),
    across_tasks: across?.summary ?? null,
  };
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "across.json"), JSON.stringify(summary, null, 2) + "\n");
  const report = join(out, "across.md");
  writeFileSync(report, lines.join("\n"));
  return { report, summary };
}
