// `ultra identify|improve|evaluate|report --run DIR`: one phase of an existing run, again.
import { UltraError } from "../errors.js";
import { withSidecar, type SidecarOptions } from "../bridge/sidecar.js";
import { contextFor, openRun, runPhase } from "../ultra/run.js";
import { PHASES, type Phase } from "../ultra/rundir.js";
import { log } from "../progress.js";
import { defineCommand, sidecarOptions } from "./common.js";

/** `ultra identify|improve|evaluate|report --run DIR`: one phase of an existing run. */
export async function phaseCommand(
  phase: Phase,
  dir: string,
  opts: { sidecar?: SidecarOptions; base?: string; adviser?: string },
): Promise<void> {
  const { run, record } = openRun(dir);
  const before = PHASES.slice(0, PHASES.indexOf(phase)).filter((p) => !run.done(p));
  if (before.length)
    throw new UltraError(
      `${phase} needs ${before.join(", ")} first: run \`ultra ${before[0]} --run ${run.root}\` or \`ultra train --resume\``,
    );
  if (opts.adviser !== undefined && opts.adviser !== record.settings.adviser) {
    // identify again with another adviser: the run's settings say which one made its critical states
    log(`${phase}: adviser ${record.settings.adviser} → ${opts.adviser}`);
    record.settings = { ...record.settings, adviser: opts.adviser };
    run.record = record;
  }
  await withSidecar(opts.sidecar ?? {}, (sc) => runPhase(contextFor(run, record, sc), phase, { ...opts, fresh: true }));
}

/** `ultra base|identify|improve|evaluate|report --run DIR`, one command per phase. */
export const phaseCommands = PHASES.map((phase) =>
  defineCommand(
    phase,
    `run the ${phase} phase of an existing run directory again (later phases are redone by train --resume)`,
    (y) =>
      y
        .option("run", { type: "string", demandOption: true, describe: "the run directory" })
        .option("base", { type: "string", describe: "base phase only: your own SB3 PPO model.zip" })
        .option("adviser", { type: "string", describe: "identify only: name the critical states with this adviser instead (as for train)" })
        .check((a) => {
          for (const [flag, only] of [
            ["base", "base"],
            ["adviser", "identify"],
          ] as const)
            if (a[flag] !== undefined && phase !== only) throw new UltraError(`--${flag} applies to \`ultra ${only}\` only, not ${phase}`);
          return true;
        }),
    async (a) => {
      await phaseCommand(phase, a.run, { sidecar: sidecarOptions(a), base: a.base, adviser: a.adviser });
      log(`${phase}: done (${a.run})`);
    },
  ),
);
