// `ultra sweep`: a grid of trials on Ray (a local instance unless --ray names a cluster), one sweep directory:
//   sweep.json  trials/ENV-VARIANT-sSEED/ (an `ultra train` run dir each)  llm-cache/  report.md  curves-ENV.png
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { UltraError } from "../errors.js";
import { withSidecar, type SidecarOptions } from "../bridge/sidecar.js";
import { log } from "../progress.js";
import { RayCluster } from "./cluster.js";
import { sweepReport } from "./report.js";
import { Sweep, type SweepState } from "./scheduler.js";
import { trialsOf, type SweepSpec } from "./spec.js";
import { checkRunDir } from "../ultra/run.js";

export interface SweepOptions {
  spec: SweepSpec;
  out?: string;
  resume?: boolean;
  sidecar?: SidecarOptions;
}

export interface SweepResult {
  dir: string;
  report: string;
  done: number;
  failed: number;
  seconds: number;
}

export const sweepRoot = (out?: string) =>
  resolve(out ?? join("runs", `sweep-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-")}`));

/** A stored sweep's state (sweep.json), if `root` holds one. */
export function storedSweep(root: string): SweepState | undefined {
  const file = join(root, "sweep.json");
  return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as SweepState) : undefined;
}

/** The grid of a new sweep, or (with resume) the stored one: how it runs (Ray, parallelism, attempts) may change. */
function openSweep(root: string, o: SweepOptions): SweepState {
  const state = storedSweep(root);
  if (!state) return { spec: o.spec, created: new Date().toISOString(), cluster: null, trials: trialsOf(o.spec) };
  if (!o.resume) throw new UltraError(`${root} already holds a sweep; pass --resume to continue it, or choose another --out`);
  const grid = (s: SweepSpec) => JSON.stringify([s.envs, s.variants, s.baselines, s.seeds, s.profile, s.adviser]);
  if (grid(o.spec) !== grid(state.spec))
    throw new UltraError(
      `--resume continues the grid stored in ${root}/sweep.json; leave out --envs, --variants, --baselines, --seeds, --profile and --adviser, or start a new sweep with another --out`,
    );
  const { ray, max_parallel, cpus_per_trial, gpus_per_trial, max_attempts } = o.spec;
  Object.assign(state.spec, { ray, max_parallel, cpus_per_trial, gpus_per_trial, max_attempts });
  return state;
}

export async function sweep(o: SweepOptions): Promise<SweepResult> {
  const t0 = Date.now();
  const root = sweepRoot(o.out);
  checkRunDir(root);
  const state = openSweep(root, o);
  const { spec } = state;
  const rayLog = join(root, "ray.log");
  log(`sweep: ${state.trials.length} trials → ${root}; starting Ray (${spec.ray}), its log in ${rayLog}`);
  const cluster = await RayCluster.start(spec.ray, { ...o.sidecar, onLog: (line) => appendFileSync(rayLog, `${line}\n`) });
  try {
    const { info } = cluster;
    log(
      `Ray: ${info.nodes} node(s), ${info.cpus} CPUs, ${info.gpus} GPUs${info.local ? ", a local instance (sidecars on 127.0.0.1)" : ""}`,
    );
    const fits = Math.floor(info.cpus / spec.cpus_per_trial);
    if (info.local && spec.max_parallel > fits) {
      log(
        `warning: ${spec.max_parallel} parallel trials × ${spec.cpus_per_trial} CPUs do not fit in ${info.cpus} CPUs: running ${fits} at a time`,
      );
      spec.max_parallel = Math.max(1, fits);
    }
    state.cluster = info;
    const sw = new Sweep(root, state);
    await sw.run(cluster);
    const { report } = await sweepReport(sw, cluster.local);
    const done = state.trials.filter((t) => t.status === "done").length;
    const failed = state.trials.filter((t) => t.status === "failed").length;
    return { dir: root, report, done, failed, seconds: (Date.now() - t0) / 1000 };
  } finally {
    await cluster.close();
  }
}

/** report.md and summary.json of a stored sweep from the trials done so far, without Ray or training: a grid that
 * spans several sittings publishes what it has (a sweep still running there rewrites them when it ends). */
export async function sweepReportOnly(out: string, sidecar: SidecarOptions = {}): Promise<{ dir: string; report: string; done: number }> {
  const root = sweepRoot(out);
  const state = storedSweep(root);
  if (!state) throw new UltraError(`${root} holds no sweep (no sweep.json); --report-only reads a sweep that has started`);
  const done = state.trials.filter((t) => t.status === "done").length;
  const { report } = await withSidecar(sidecar, (sc) => sweepReport(new Sweep(root, state), sc));
  return { dir: root, report, done };
}
