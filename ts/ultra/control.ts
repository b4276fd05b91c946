// `ultra control`: what an adviser's choices are worth against another adviser's on the same episodes. Each finished
// trial of a sweep is copied (its run.json and base policy) and identified again with the control adviser (`chance`:
// uniformly random picks from the same cards and menu); identification is deterministic in the seed, so both see the
// same episodes, the same cards and the same verification rollouts (common random numbers per state). Compared per
// trial: proposals, accepted states, and how many suggested actions had a gain significantly above 0.
import { cpSync, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import type { SidecarClient } from "../bridge/client.js";
import { UltraError } from "../errors.js";
import { log } from "../progress.js";
import { CriticalStatesFile } from "./critical.js";
import { verdictsOf } from "./phases/identify.js";
import { contextFor, openRun, runPhase } from "./run.js";
import { RunDir } from "./rundir.js";
import { median, pairedDiff, type Paired } from "./stats.js";

export interface AdviceOutcome {
  adviser: string;
  proposed: number;
  accepted: number;
  /** suggested actions whose one-sided 95% lower bound on the gain over the policy's own action is above 0 */
  significant: number;
  /** verdicts (suggested actions verified; reward-only suggestions have none) */
  verified: number;
  median_gain: number | null;
}

export function adviceOutcome(run: RunDir): AdviceOutcome {
  const crit = run.readChecked("critical_states.json", CriticalStatesFile);
  const verdicts = verdictsOf(run);
  return {
    adviser: crit.adviser,
    proposed: crit.counts.proposed,
    accepted: crit.states.length,
    significant: verdicts.filter((v) => v.lower_bound > 0).length,
    verified: verdicts.length,
    median_gain: verdicts.length ? median(verdicts.map((v) => v.mean_gain)) : null,
  };
}

export interface ControlResult {
  from: string;
  out: string;
  adviser: string;
  trials: { id: string; env_id: string; seed: number; advice: AdviceOutcome; control: AdviceOutcome }[];
  /** per trial, the sweep adviser's value minus the control's: significant gains, accepted states (reward-only
   * suggestions, which have no action to verify, included), median verified gain (trials where both have one) */
  paired: { significant: Paired; accepted: Paired; median_gain: Paired | null } | null;
}

export async function adviserControl(from: string, adviser: string, outDir: string, sc: SidecarClient): Promise<ControlResult> {
  const src = resolve(from, "trials");
  if (!existsSync(src)) throw new UltraError(`${resolve(from)} has no trials/: give a sweep's --out directory`);
  const ids = readdirSync(src)
    .filter((id) => new RunDir(join(src, id)).done("identify"))
    .sort();
  if (!ids.length) throw new UltraError(`no trial in ${src} has finished identify: run or resume the sweep first`);
  const out = resolve(outDir);
  const trials: ControlResult["trials"] = [];
  for (const [i, id] of ids.entries()) {
    const dir = join(out, "trials", id);
    const done = new RunDir(dir);
    if (!(done.exists("run.json") && done.done("identify") && done.record.settings.adviser === adviser)) {
      mkdirSync(dir, { recursive: true });
      for (const f of ["run.json", "base"]) cpSync(join(src, id, f), join(dir, f), { recursive: true });
      const { run, record } = openRun(dir);
      record.settings = { ...record.settings, adviser };
      for (const p of ["identify", "improve", "evaluate", "report"] as const) delete record.phases[p];
      run.record = record;
      log(`control ${i + 1}/${ids.length}: ${id}, identify with ${adviser}`);
      await runPhase(contextFor(run, run.record, sc), "identify", { fresh: true });
    }
    const trial = new RunDir(join(src, id));
    trials.push({
      id,
      env_id: trial.record.env_id,
      seed: trial.record.seed,
      advice: adviceOutcome(trial),
      control: adviceOutcome(new RunDir(dir)),
    });
  }
  const pair = (k: "significant" | "accepted" | "median_gain") => {
    const both = trials.filter((t) => t.advice[k] !== null && t.control[k] !== null);
    return both.length < 2
      ? null
      : pairedDiff(
          both.map((t) => t.advice[k]!),
          both.map((t) => t.control[k]!),
        );
  };
  const shown = (p: string) => relative(process.cwd(), p) || "."; // a committed control.md names no home directory
  const result = {
    from: shown(resolve(from)),
    out: shown(out),
    adviser,
    trials,
    paired:
      trials.length >= 2 ? { significant: pair("significant")!, accepted: pair("accepted")!, median_gain: pair("median_gain") } : null,
  };
  writeFileSync(join(out, "control.json"), JSON.stringify(result, null, 2) + "\n");
  writeFileSync(join(out, "control.md"), controlMarkdown(result));
  return result;
}

const fmtGain = (g: number | null) => (g === null ? "–" : g.toFixed(2));

export function controlMarkdown(r: ControlResult): string {
  const name = r.trials[0]?.advice.adviser ?? "the sweep's adviser";
  const rows = r.trials.map(
    ({ id, advice: a, control: c }) =>
      `| ${id} | ${a.proposed} / ${c.proposed} | ${a.accepted} / ${c.accepted} | ${a.significant} of ${a.verified} / ${c.significant} of ${c.verified} | ${fmtGain(a.median_gain)} / ${fmtGain(c.median_gain)} |`,
  );
  const p = (x: Paired) =>
    `${x.mean >= 0 ? "+" : ""}${x.mean.toFixed(2)} (95% CI ${x.ci[0].toFixed(2)} to ${x.ci[1].toFixed(2)}, p ${x.p.toFixed(3)}, higher in ${x.wins} of ${x.n})`;
  return [
    `# ${name} against ${r.adviser}, on the same episodes`,
    "",
    `From the sweep ${r.from}; each trial identified again with ${r.adviser} in ${r.out}. Each cell: ${name} / ${r.adviser}.`,
    "",
    "| trial | proposed | accepted | gain significantly > 0 (of verified) | median gain |",
    "|---|---|---|---|---|",
    ...rows,
    "",
    ...(r.paired
      ? [
          `Paired over trials, ${name} minus ${r.adviser}: significant gains ${p(r.paired.significant)}; accepted states ${p(r.paired.accepted)}` +
            `${r.paired.median_gain ? `; median gain ${p(r.paired.median_gain)}` : ""}.`,
          "",
          "Accepted states include reward-only suggestions (`keep`), which have no action to verify.",
          "",
        ]
      : []),
  ].join("\n");
}
