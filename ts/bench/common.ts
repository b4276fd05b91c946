// Shared by the benchmarks: a sidecar without heartbeats (they would disturb timings) and the result writer.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import os from "node:os";
import type { Argv } from "yargs";
import { withSidecar, type Sidecar, type SidecarOptions } from "../bridge/sidecar.js";
import { ROOT } from "../paths.js";
import { log } from "../progress.js";
import { gitCommit, nodeVersions } from "../runinfo.js";

export const startedSidecar = <T>(opts: SidecarOptions, fn: (sc: Sidecar) => Promise<T>) => withSidecar({ heartbeatS: 0, ...opts }, fn);

export function machine() {
  return { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model, memory_gb: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.release()}` };
}

/** Whether tracked files differ from git_commit (then the commit alone does not reproduce the figures), or null
 * outside a git checkout. */
export function gitDirty(): boolean | null {
  try {
    return execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"] }).length > 0;
  } catch {
    return null;
  }
}

export interface ResultOptions {
  /** write the result to this file too (--json) */
  json?: string;
  /** write it to bench/results/<name>.json, the committed figures (--record; `make bench` passes it) */
  record?: boolean;
}

/** `ultra bench`'s own option, for every benchmark: --record (ResultOptions.record). */
export const withRecord = (y: Argv) =>
  y.option("record", {
    type: "boolean",
    default: false,
    describe: "write bench/results/<name>.json, the committed figures (make bench does)",
  });

/** Where --record writes: bench/results, or $ULTRA_BENCH_RESULTS (the tests keep their small runs out of the
 * committed figures). */
export const resultsDir = () => process.env.ULTRA_BENCH_RESULTS || join(ROOT, "bench", "results");

/** The result with its provenance (date, commit and whether the tree differed from it, machine, versions), written to `json` if given and, only with
 * `record`, to bench/results/<name>.json: a benchmark run leaves tracked files alone unless asked. */
export function writeResult(name: string, result: object, o: ResultOptions = {}): object {
  const doc = { bench: name, date: new Date().toISOString(), git_commit: gitCommit(), git_dirty: gitDirty(), machine: machine(), versions: nodeVersions(), ...result };
  const files = [o.json, o.record ? join(resultsDir(), `${name}.json`) : undefined].filter(Boolean) as string[];
  for (const f of files) {
    mkdirSync(dirname(f), { recursive: true });
    writeFileSync(f, JSON.stringify(doc, null, 2) + "\n");
  }
  const recorded = join(relative(process.cwd(), resultsDir()), `${name}.json`);
  log(o.record ? `${name}: recorded in ${recorded}` : `${name}: not recorded (--record writes ${recorded})`);
  return doc;
}
