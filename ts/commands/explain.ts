// `ultra explain --run DIR`: a mask net for a run's base policy (RICE's recipe, or --mask), kept in DIR/explain/.
import { withSidecar, type SidecarOptions } from "../bridge/sidecar.js";
import { checkExplainInput, explain as explainRun, type Explanation } from "../ultra/explain.js";
import { contextFor, openRun } from "../ultra/run.js";

export async function explain(dir: string, o: { mask?: string; steps?: number; sidecar?: SidecarOptions }): Promise<Explanation> {
  const { run, record } = openRun(dir);
  checkExplainInput(run, o); // before the sidecar starts
  return withSidecar(o.sidecar ?? {}, (sc) => explainRun(contextFor(run, record, sc), o));
}
