// Shared by the benchmarks: a sidecar without heartbeats (they would disturb timings) and a JSON writer.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import os from "node:os";
import { withSidecar, type Sidecar, type SidecarOptions } from "../bridge/sidecar.js";
import { ROOT } from "../paths.js";
import { gitCommit, nodeVersions } from "../runinfo.js";

export const startedSidecar = <T>(opts: SidecarOptions, fn: (sc: Sidecar) => Promise<T>) => withSidecar({ heartbeatS: 0, ...opts }, fn);

export function machine() {
  return { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model, memory_gb: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.release()}` };
}

/** Write to `file` (if given) and to bench/results/<name>.json ($ULTRA_BENCH_RESULTS instead of bench/results:
 * the tests keep their small runs out of the committed figures). */
export function writeResult(name: string, result: object, file?: string): object {
  const doc = { bench: name, date: new Date().toISOString(), git_commit: gitCommit(), machine: machine(), versions: nodeVersions(), ...result };
  const dir = process.env.ULTRA_BENCH_RESULTS || join(ROOT, "bench", "results");
  for (const f of [file, join(dir, `${name}.json`)].filter(Boolean) as string[]) {
    mkdirSync(dirname(f), { recursive: true });
    writeFileSync(f, JSON.stringify(doc, null, 2) + "\n");
  }
  return doc;
}
