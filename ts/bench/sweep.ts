// `ultra bench sweep`: the same trials (one env × one variant × N seeds) as plain local runs, one after the other,
// then as sweeps on a local Ray instance with 1 and with 2 trials at once. Trials/hour and the machine's CPU
// utilisation for each, and Ray's per-trial overhead: sweep (1 at a time) against plain runs, start-up included.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sweep } from "../sweep/run.js";
import { train } from "../ultra/run.js";
import { fmt, log } from "../progress.js";
import { defineCommand, printJson } from "../commands/common.js";
import { writeResult } from "./common.js";
import { resolveSweep } from "../sweep/spec.js";
import { mean } from "../ultra/stats.js";

export interface SweepBenchOptions {
  env: string;
  seeds: number;
  profile: string;
  adviser: string;
}

/** Busy and total jiffies of all cores (/proc/stat): utilisation over an interval is Δbusy / Δtotal. */
function cpuTimes(): { busy: number; total: number } {
  const [, ...fields] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/);
  const v = fields.map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - v[3] - v[4], total }; // idle, iowait
}

async function measured<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number; cpu_utilisation: number }> {
  const [c0, t0] = [cpuTimes(), performance.now()];
  const value = await fn();
  const [c1, t1] = [cpuTimes(), performance.now()];
  return { value, seconds: (t1 - t0) / 1000, cpu_utilisation: (c1.busy - c0.busy) / (c1.total - c0.total) };
}

export async function benchSweep(o: SweepBenchOptions) {
  const seeds = Array.from({ length: o.seeds }, (_, i) => i);
  const scratch = mkdtempSync(join(tmpdir(), "ultra-bench-sweep-"));
  try {
    log(`bench sweep: ${seeds.length} plain runs of ${o.env} (profile ${o.profile}), one after the other`);
    const plain = [];
    for (const seed of seeds)
      plain.push(await measured(() => train({ env: o.env, seeds: [seed], profile: o.profile, variant: "RA", adviser: o.adviser, baselines: [], out: join(scratch, `plain-${seed}`) })));
    const plainS = plain.reduce((a, p) => a + p.seconds, 0);
    const rows = [{ mode: "plain", parallel: 1, seconds: plainS, trials_per_hour: (3600 * seeds.length) / plainS, cpu_utilisation: mean(plain.map((p) => p.cpu_utilisation)) }];
    for (const parallel of [1, 2]) {
      log(`bench sweep: the same ${seeds.length} trials on local Ray, ${parallel} at a time`);
      const spec = resolveSweep(undefined, { envs: [o.env], variants: ["RA"], baselines: [], seeds, profile: o.profile, adviser: o.adviser, max_parallel: parallel });
      const r = await measured(() => sweep({ spec, out: join(scratch, `ray-${parallel}`) }));
      if (r.value.failed) throw new Error(`bench sweep: ${r.value.failed} trials failed; see ${r.value.report}`);
      rows.push({ mode: "ray", parallel, seconds: r.seconds, trials_per_hour: (3600 * seeds.length) / r.seconds, cpu_utilisation: r.cpu_utilisation });
    }
    const overhead = rows[1].seconds / plainS - 1;
    return { env: o.env, profile: o.profile, adviser: o.adviser, trials: seeds.length, rows, ray_overhead_per_trial: overhead, goal: 0.05, met: overhead <= 0.05 };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

export const sweepBench = defineCommand(
  "sweep",
  "trials/hour and CPU utilisation of plain runs vs a local Ray sweep with 1 and 2 trials at once; Ray's per-trial overhead",
  (b) =>
    b
      .option("env", { type: "string", default: "HalfCheetah" })
      .option("seeds", { type: "number", default: 2, describe: "trials (one seed each)" })
      .option("profile", { type: "string", default: "quick" })
      .option("adviser", { type: "string", default: "rollout" })
      .option("json", { type: "string", describe: "write the result to this file too" }),
  async (a) => {
    const r = await benchSweep({ env: a.env, seeds: a.seeds, profile: a.profile, adviser: a.adviser });
    const rows = r.rows
      .map((x) => `${x.mode}×${x.parallel} ${fmt(x.trials_per_hour)} trials/h (CPU ${Math.round(100 * x.cpu_utilisation)}%)`)
      .join(", ");
    log(
      `sweep ${r.env}: ${rows}; Ray overhead per trial ${(100 * r.ray_overhead_per_trial).toFixed(1)}% (goal ≤ 5%: ${r.met ? "met" : "NOT met"})`,
    );
    printJson(writeResult(`sweep-${r.env.replace(/\W+/g, "_")}`, r, a));
  },
);
