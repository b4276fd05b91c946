// `ultra explain --run DIR`: a mask net for a run's base policy (RICE's recipe, or --mask), kept in DIR/explain/.
import { withSidecar, type SidecarOptions } from "../bridge/sidecar.js";
import { fmt, log } from "../progress.js";
import { checkExplainInput, explain as explainRun, type Explanation } from "../ultra/explain.js";
import { contextFor, openRun } from "../ultra/run.js";
import { defineCommand, printJson, sidecarOptions } from "./common.js";

export async function explain(dir: string, o: { mask?: string; steps?: number; sidecar?: SidecarOptions }): Promise<Explanation> {
  const { run, record } = openRun(dir);
  checkExplainInput(run, o); // before the sidecar starts
  return withSidecar(o.sidecar ?? {}, (sc) => explainRun(contextFor(run, record, sc), o));
}

export const explainCommand = defineCommand(
  "explain",
  "train (RICE's recipe: rice.mask_steps, rice.alpha) or load a mask net for a run's base policy into DIR/explain/; fidelity scores it, the rice arm reuses it",
  (y) =>
    y
      .option("run", { type: "string", demandOption: true, describe: "a run directory whose base phase has finished" })
      .option("mask", {
        type: "string",
        describe: "load this mask net zip (trained for the run's base policy, e.g. RICE's masknet/best_model.zip) instead of training one",
      })
      .option("steps", { type: "number", describe: "mask net training steps (default: the run's rice.mask_steps; RICE: 300000)" }),
  async (a) => {
    const r = await explain(a.run, { mask: a.mask, steps: a.steps, sidecar: sidecarOptions(a) });
    log(`explain: ${r.mask} in ${a.run} (${r.env_steps} mask-net env steps, ${fmt(r.seconds)} s)`);
    printJson(r);
  },
);
