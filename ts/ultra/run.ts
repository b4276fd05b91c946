// The run pipeline: one run directory per seed, base → identify → improve → evaluate → report, each phase recorded
// in run.json when done, so that a run resumes phase by phase (and each arm from its last checkpoint). `ultra train`,
// a sweep's trials and the phase commands all go through here.
import { mkdirSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { SidecarDiedError } from "../bridge/errors.js";
import { UltraError } from "../errors.js";
import type { SidecarClient } from "../bridge/client.js";
import { withSidecar, type SidecarOptions } from "../bridge/sidecar.js";
import { envFileOf, resolveEnv, runEnv } from "../config.js";
import { loadInterpreter } from "../describe/envs/index.js";
import { log } from "../progress.js";
import { runInfo } from "../runinfo.js";
import type { RunContext } from "./context.js";
import { base } from "./phases/base.js";
import { evaluate, type EvalFile } from "./phases/evaluate.js";
import { identify } from "./phases/identify.js";
import { discardArms, improve } from "./phases/improve.js";
import { report, seedReport } from "./phases/report.js";
import { PHASES, RunDir, type Phase, type RunRecord } from "./rundir.js";
import { resolveSettings, Settings, type Baseline, type Variant } from "./settings.js";

export interface TrainOptions {
  env: string;
  seeds: number[];
  profile: string;
  variant?: Variant;
  adviser?: string;
  verify?: boolean;
  trustModel?: boolean;
  base?: string;
  out?: string;
  resume?: boolean;
  sidecar?: SidecarOptions;
  /** rice.mask: a mask net explaining the base agent (RICE's own, for RICE's agents) */
  riceMask?: string;
  /** the baseline arms (default: the settings'); a sweep trains them in one trial per env and seed */
  baselines?: Baseline[];
  /** an LLM reply cache shared with other runs (a sweep's) */
  llmCache?: string;
}

/** Free space a run needs at least: models, checkpoints, trajectories with snapshots (Pong's frames take most). */
export const MIN_FREE_MB = 2048;

/** Fail before any training, not an hour in: the run dir must be creatable, writable and have room. */
export function checkRunDir(dir: string, minFreeMb = MIN_FREE_MB): void {
  const probe = join(dir, `.write-test-${process.pid}`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(probe, "ok");
    rmSync(probe);
  } catch (e) {
    throw new UltraError(
      `run directory ${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); choose another --out`,
    );
  }
  const fs = statfsSync(dir);
  const freeMb = (fs.bavail * fs.bsize) / 2 ** 20;
  if (freeMb < minFreeMb)
    throw new UltraError(
      `only ${Math.floor(freeMb)} MB free for run directory ${dir}; a run needs at least ${minFreeMb} MB: free some space or choose another --out`,
    );
}

/** Open an existing run dir for `env` (or any env), with a clear error when it belongs to another env. */
export function openRun(dir: string, env?: string): { run: RunDir; record: RunRecord } {
  const run = new RunDir(dir);
  if (!run.exists("run.json")) throw new UltraError(`${run.root} is not a run directory (no run.json); start one with \`ultra train\``);
  const record = run.record;
  if (env && resolveEnv(env).env_id !== record.env_id)
    throw new UltraError(
      `${run.root} is a run of ${record.env_id}, not ${resolveEnv(env).env_id}; use another --out or the matching --env`,
    );
  return { run, record };
}

export function contextFor(run: RunDir, record: RunRecord, sc: SidecarClient, llmCache?: string): RunContext {
  const parsed = Settings.safeParse(record.settings);
  if (!parsed.success)
    throw new UltraError(`${run.path("run.json")} has invalid settings; it may come from another version: start a new run`);
  // by env_id, not name: a run of Hopper-v4 (RICE's agents) has Hopper's config, but must not get its v5 id back
  return { run, cfg: runEnv(record), settings: parsed.data, seed: record.seed, sc, llmCache };
}

interface PhaseOptions {
  base?: string;
  /** re-running a phase on request: start over rather than resume from checkpoints */
  fresh?: boolean;
}

const PHASE_FNS: Record<Phase, (ctx: RunContext, opts: PhaseOptions) => Promise<unknown>> = {
  base: (ctx, o) => base(ctx, o.base),
  identify: (ctx) => identify(ctx),
  improve: (ctx, o) => improve(ctx, o.fresh),
  evaluate: (ctx) => evaluate(ctx),
  report: (ctx) => report(ctx.run, ctx.sc),
};

/** Run one phase and record it as done. Re-running a phase invalidates the phases after it (and the arms'
 * checkpoints, if improve is among them: `--resume` must not pick up arms trained on the old results). */
export async function runPhase(ctx: RunContext, phase: Phase, opts: PhaseOptions = {}): Promise<void> {
  if (ctx.run.done(phase)) {
    ctx.run.invalidateFrom(phase);
    if (PHASES.indexOf(phase) < PHASES.indexOf("improve")) discardArms(ctx);
  }
  await loadInterpreter(ctx.cfg); // an env config's `interpreter: module:PATH`, imported once for the phases to describe states
  const t0 = Date.now();
  const result = await PHASE_FNS[phase](ctx, opts);
  ctx.run.markDone(phase, (Date.now() - t0) / 1000, phase === "report" ? {} : { result });
}

/** One seed's run in `dir`, phase by phase, skipping those done (a sweep's trial is one of these). */
export async function trainRun(o: TrainOptions, seed: number, dir: string, sc: SidecarClient): Promise<RunDir> {
  const cfg = resolveEnv(o.env);
  const run = new RunDir(dir);
  if (run.exists("run.json")) {
    if (!o.resume) throw new UltraError(`${run.root} already holds a run; pass --resume to continue it, or choose another --out`);
    openRun(dir, o.env);
  } else {
    const settings = resolveSettings({
      profile: o.profile,
      envOverrides: cfg.ultra,
      flags: {
        variant: o.variant,
        adviser: o.adviser,
        verify: o.verify,
        trust_model: o.trustModel,
        baselines: o.baselines,
        rice: o.riceMask ? { mask: o.riceMask } : undefined,
      },
    });
    run.record = {
      env: cfg.name,
      env_id: cfg.env_id,
      ...(envFileOf(cfg) ? { env_config: envFileOf(cfg) } : {}),
      seed,
      profile: o.profile,
      settings,
      created: new Date().toISOString(),
      ...(runInfo(sc.info) as { git_commit: string | null; versions: Record<string, unknown> }),
      phases: {},
    };
  }
  const ctx = contextFor(run, run.record, sc, o.llmCache);
  for (const phase of PHASES) {
    if (run.done(phase)) {
      log(`${phase}: done earlier, skipping`);
      continue;
    }
    log(`── ${phase} ──`);
    await runPhase(ctx, phase, { base: o.base });
  }
  return run;
}

export async function train(o: TrainOptions): Promise<{ runs: string[]; report: string }> {
  const cfg = resolveEnv(o.env);
  const root = resolve(
    o.out ?? join("runs", `${cfg.name}-${o.variant ?? "RA"}-${o.profile}${o.seeds.length === 1 ? `-s${o.seeds[0]}` : ""}`),
  );
  const dirOf = (seed: number) => (o.seeds.length === 1 ? root : join(root, `seed-${seed}`));
  await loadInterpreter(cfg); // a bad interpreter module fails now, not after the base phase
  for (const seed of o.seeds) checkRunDir(dirOf(seed)); // before the sidecar starts
  const resumeHint = `ultra train --env ${o.env} --out ${root}${o.seeds.length > 1 ? ` --seeds ${o.seeds.join(",")}` : ` --seed ${o.seeds[0]}`} --resume`;
  return withSidecar(o.sidecar ?? {}, async (sc) => {
    const runs: RunDir[] = [];
    for (const seed of o.seeds) {
      const dir = dirOf(seed);
      log(`run ${cfg.env_id} seed ${seed} → ${dir}`);
      runs.push(await trainRun(o, seed, dir, sc));
    }
    if (runs.length === 1) return { runs: [runs[0].root], report: runs[0].path("report.md") };
    const top = new RunDir(root);
    const evals = runs.map((r) => r.readJson<EvalFile>("eval.json"));
    top.write("report.md", seedReport(cfg.env_id, o.seeds, evals));
    return { runs: runs.map((r) => r.root), report: top.path("report.md") };
  }).catch((e) => {
    // finished phases and each arm's last checkpoint are kept: say how to continue
    if (e instanceof SidecarDiedError)
      throw new UltraError(
        `${e.message}\nThe run is kept (finished phases, each arm's last checkpoint): continue it with \`${resumeHint}\``,
      );
    throw e;
  });
}
