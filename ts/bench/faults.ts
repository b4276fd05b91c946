// `ultra bench faults`: SIGKILL the sidecar of a real `ultra train` at random moments, again and again. Each time
// the CLI must fail with a clear error and leave no process behind; `--resume` must then finish the run with the
// same critical states and evaluation returns as an uninterrupted run of the same seed.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../paths.js";
import { log, progressBar } from "../progress.js";
import { defineCommand, printJson } from "../commands/common.js";
import { writeResult } from "./common.js";
import { rng } from "../ultra/rng.js";

export interface FaultsOptions {
  env: string;
  kills: number;
  /** kills in one run before it is let finish */
  killsPerRun: number;
  seed: number;
  adviser: string;
  profile: string;
  out?: string;
}

interface Attempt {
  code: number | null;
  stderr: string;
  killed: boolean;
  phase: string | null;
  /** processes of this attempt still alive after the CLI exited */
  orphans: number[];
  seconds: number;
}

/** The pids whose parent is `pid` (from /proc, which every Linux has). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const descendants = (pid: number): number[] => childrenOf(pid).flatMap((c) => [c, ...descendants(c)]);

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z "); // a zombie is dead, just not reaped
  } catch {
    return false;
  }
};

/** One `ultra train` (or --resume); with `killAfterS`, SIGKILL its sidecar then if it is still running. */
function attempt(args: string[], killAfterS: number | null): Promise<Attempt> {
  const t0 = Date.now();
  const cli = spawn(process.execPath, [join(ROOT, "bin", "ultra.js"), ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  cli.stderr.on("data", (d) => (stderr += d));
  const seen = new Set<number>();
  const watch = setInterval(() => descendants(cli.pid!).forEach((p) => seen.add(p)), 200);
  let killed = false;
  let phase: string | null = null;
  const timer =
    killAfterS === null
      ? null
      : setTimeout(() => {
          const sidecar = childrenOf(cli.pid!).find((p) => readFileSync(`/proc/${p}/cmdline`, "utf8").includes("ultra_sidecar"));
          if (sidecar === undefined) return; // between two sidecars, or already done: no kill this time
          phase = [...stderr.matchAll(/── (\w+) ──/g)].at(-1)?.[1] ?? "start";
          killed = true;
          process.kill(sidecar, "SIGKILL");
        }, killAfterS * 1000);
  return new Promise((res) =>
    cli.on("exit", async (code) => {
      clearInterval(watch);
      if (timer) clearTimeout(timer);
      await new Promise((r) => setTimeout(r, 500)); // let anything that outlives the CLI show itself
      res({ code, stderr, killed, phase, orphans: [...seen].filter(alive), seconds: (Date.now() - t0) / 1000 });
    }),
  );
}

/** What must match between a resumed run and the uninterrupted one: critical states and every arm's returns. */
function finalNumbers(dir: string): string {
  const ev = JSON.parse(readFileSync(join(dir, "eval.json"), "utf8"));
  const returns = Object.fromEntries(Object.entries<{ returns: number[] }>(ev.arms).map(([k, v]) => [k, v.returns]));
  return readFileSync(join(dir, "critical_states.json"), "utf8") + JSON.stringify(returns);
}

export async function benchFaults(o: FaultsOptions) {
  const root = o.out ?? mkdtempSync(join(tmpdir(), "ultra-faults-"));
  const base = ["train", "--env", o.env, "--profile", o.profile, "--seed", String(o.seed), "--adviser", o.adviser];
  const ref = await attempt([...base, "--out", join(root, "reference")], null);
  if (ref.code !== 0) throw new Error(`the uninterrupted reference run failed:\n${ref.stderr.slice(-2000)}`);
  const expected = finalNumbers(join(root, "reference"));
  const rand = rng(o.seed);
  const tally = { kills: 0, clear_errors: 0, orphans: 0, runs: 0, resumed: 0, identical: 0, by_phase: {} as Record<string, number> };
  const failures: string[] = [];
  const bar = progressBar("faults", o.kills, "kills");
  while (tally.kills < o.kills) {
    const dir = join(root, `run-${String(tally.runs).padStart(3, "0")}`);
    tally.runs++;
    let kills = 0;
    for (;;) {
      const killAt = kills < o.killsPerRun && tally.kills < o.kills ? 1 + rand() * ref.seconds : null;
      const a = await attempt([...base, "--out", dir, ...(existsSync(join(dir, "run.json")) ? ["--resume"] : [])], killAt);
      tally.orphans += a.orphans.length;
      if (a.orphans.length) failures.push(`${dir}: processes left behind: ${a.orphans.join(", ")}`);
      if (!a.killed || a.code === 0) {
        // (a kill that lands as the finished run shuts its sidecar down counts as no kill)
        if (a.code !== 0) {
          failures.push(`${dir}: run failed without a kill:\n${a.stderr.slice(-1500)}`);
          break;
        }
        if (kills > 0) {
          tally.resumed++;
          if (finalNumbers(dir) === expected) tally.identical++;
          else failures.push(`${dir}: final numbers differ from the uninterrupted run's`);
        }
        break;
      }
      kills++;
      tally.kills++;
      tally.by_phase[a.phase!] = (tally.by_phase[a.phase!] ?? 0) + 1;
      if (a.code === 1 && /error: sidecar (\(pid \d+\) died: exit code null|exited during start \(code null), signal SIGKILL.*--resume/s.test(a.stderr)) tally.clear_errors++;
      else failures.push(`${dir}: kill in ${a.phase} gave exit ${a.code} and: ${a.stderr.slice(-300)}`);
      bar.update(tally.kills, { phase: a.phase! });
    }
  }
  bar.stop();
  return { env: o.env, profile: o.profile, adviser: o.adviser, seed: o.seed, reference_seconds: ref.seconds, root, ...tally, failures };
}

export const faultsBench = defineCommand(
  "faults",
  "SIGKILL the sidecar of real `ultra train` runs at random moments; each must fail clearly, leave no process, and resume to the same numbers",
  (b) =>
    b
      .option("env", { type: "string", default: "HalfCheetah" })
      .option("kills", { type: "number", default: 50 })
      .option("kills-per-run", { type: "number", default: 3, describe: "kills in one run before it may finish" })
      .option("profile", { type: "string", default: "faults", describe: "configs/ultra.yaml profile of each run" })
      .option("adviser", { type: "string", default: "rollout" })
      .option("seed", { type: "number", default: 0 })
      .option("out", { type: "string", describe: "keep the runs here (default: a temp dir)" })
      .option("json", { type: "string", describe: "write the result to this file too" }),
  async (a) => {
    const r = await benchFaults({
      env: a.env,
      kills: a.kills,
      killsPerRun: a.killsPerRun,
      seed: a.seed,
      adviser: a.adviser,
      profile: a.profile,
      out: a.out,
    });
    const phases = Object.entries(r.by_phase)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    log(
      `faults: kills ${r.kills} (${phases}), clear errors ${r.clear_errors}, orphans ${r.orphans}, resumed ${r.resumed}, identical ${r.identical}/${r.resumed}`,
    );
    printJson(writeResult("faults", r, a));
    if (r.failures.length) process.exitCode = 1;
  },
);
