// `ultra fidelity --run DIR`: StateMask's fidelity test of a finished run's critical states (no training).
import { withSidecar, type SidecarOptions } from "../bridge/sidecar.js";
import { fidelity as run, type FidelityOptions, type FidelityResult } from "../ultra/fidelity.js";
import { defineCommand, sidecarOptions } from "./common.js";

export async function fidelity(dir: string, o: FidelityOptions & { sidecar?: SidecarOptions }): Promise<FidelityResult> {
  return withSidecar(o.sidecar ?? {}, (sc) => run(dir, o, sc));
}

export const fidelityCommand = defineCommand(
  "fidelity",
  "StateMask's fidelity test of a finished run's critical states against value drops, random steps and a mask net (no training)",
  (y) =>
    y
      .option("run", { type: "string", demandOption: true, describe: "a run directory whose identify phase has finished" })
      .option("samples", { type: "number", default: 4, describe: "random action sequences per segment" })
      .option("episodes", { type: "number", describe: "score only the run's first N identify episodes (default all)" })
      .option("compare", {
        type: "string",
        array: true,
        default: [] as string[],
        describe: "another run of the same base policy and seed whose critical states to score too (repeatable)",
      })
      .option("seed", { type: "number", describe: "seed of the random steps and actions (default: the run's seed)" })
      .option("horizon", { type: "number", default: 1000, describe: "steps after a segment at most (an episode's end stops sooner)" })
      .option("mask", {
        type: "string",
        describe:
          "a mask net zip for the run's base policy whose importance selects segments too (default: the run's explain/masknet.zip from `ultra explain`, if any)",
      }),
  async (a) => {
    const r = await fidelity(a.run, {
      samples: a.samples,
      episodes: a.episodes,
      compare: a.compare as string[],
      seed: a.seed,
      horizon: a.horizon,
      mask: a.mask,
      command: process.argv.slice(2).join(" "),
      sidecar: sidecarOptions(a),
    });
    process.stdout.write(`${r.file}\n${r.markdown}\n`);
  },
);
