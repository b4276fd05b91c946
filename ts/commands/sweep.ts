// `ultra sweep`: a grid of envs × variants × seeds on Ray (ts/sweep/run.ts); --dry-run prints the grid.
import { fmt, log } from "../progress.js";
import { storedSweep, sweep, sweepReportOnly, sweepRoot } from "../sweep/run.js";
import { flagsToSpec, resolveSweep, trialsOf } from "../sweep/spec.js";
import { defineCommand, printJson, sidecarOptions } from "./common.js";

export const sweepCommand = defineCommand(
  "sweep",
  "a grid of envs × variants × seeds (with the baselines) on Ray: a local instance, or --ray auto|ray://HOST:PORT",
  (y) =>
    y
      .option("file", { type: "string", describe: "a sweep file (configs/sweeps/*.yaml); flags override it" })
      .option("envs", { type: "string", describe: "e.g. HalfCheetah,Hopper,Walker2d,Reacher,Pong" })
      .option("variants", { type: "string", describe: "ULTRA variants, e.g. RA,R,A" })
      .option("baselines", {
        type: "string",
        describe:
          "all | none | names among continue_ppo,rice_reset,random_critical,rice; all is the first three, all,rice adds RICE (default all)",
      })
      .option("seeds", { type: "string", describe: "e.g. 0-4 (default 0)" })
      .option("profile", { type: "string", describe: "quick | paper | ... (configs/ultra.yaml; default paper)" })
      .option("adviser", { type: "string", describe: "as for train (default: configs/ultra.yaml's)" })
      .option("ray", {
        type: "string",
        describe: "auto (this machine's cluster) or ray://HOST:PORT; default: start a local Ray instance",
      })
      .option("max-parallel", { type: "number", describe: "trials at once (default 2)" })
      .option("cpus-per-trial", { type: "number", describe: "Ray CPUs each trial's sidecar reserves (default 1)" })
      .option("gpus-per-trial", { type: "number", describe: "Ray GPUs each trial's sidecar reserves (default 0; > 0 trains on cuda)" })
      .option("max-attempts", { type: "number", describe: "a trial failing this often is marked failed (default 3)" })
      .option("out", { type: "string", describe: "sweep directory (default runs/sweep-DATE); on a cluster, a path every node mounts" })
      .option("resume", {
        type: "boolean",
        default: false,
        describe: "continue a sweep: finished trials are kept, the others (failed ones too) resume from their checkpoints",
      })
      .option("report-only", {
        type: "boolean",
        default: false,
        describe: "write --out's report.md and summary.json from the trials done so far and stop (no Ray, nothing trained)",
      })
      .option("dry-run", {
        type: "boolean",
        default: false,
        describe: "print the grid's trials as JSON and stop (no Ray, nothing written)",
      }),
  async (a) => {
    const out = sweepRoot(a.out);
    if (a.reportOnly) {
      const r = await sweepReportOnly(out, sidecarOptions(a));
      log(`sweep: report of ${r.done} trials done so far: ${r.report}`);
      printJson(r);
      return;
    }
    const flags = {
      ...flagsToSpec(a),
      profile: a.profile,
      adviser: a.adviser,
      ray: a.ray,
      max_parallel: a.maxParallel,
      cpus_per_trial: a.cpusPerTrial,
      gpus_per_trial: a.gpusPerTrial,
      max_attempts: a.maxAttempts,
    };
    const spec = resolveSweep(a.file, flags, a.resume ? storedSweep(out)?.spec : undefined);
    if (a.dryRun) {
      printJson({
        dir: out,
        spec,
        trials: trialsOf(spec).map(({ id, env, dir, baselines, donor }) => ({
          id,
          dir,
          baselines,
          base_from: spec.agents?.[env]?.model ?? donor,
        })),
      });
      return;
    }
    const r = await sweep({ spec, out, resume: a.resume, sidecar: sidecarOptions(a) });
    log(`sweep: ${r.done} trials done, ${r.failed} failed in ${fmt(r.seconds)} s; report: ${r.report}`);
    printJson(r);
    if (r.failed) process.exitCode = 1;
  },
);
