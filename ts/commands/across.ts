// `ultra across DIR... --out OUT`: the replication's parts (sweeps' summary.json files) in one table per task and
// rliable's probability of improvement across all their tasks.
import { withSidecar } from "../bridge/sidecar.js";
import { log } from "../progress.js";
import { acrossParts } from "../sweep/across.js";
import { defineCommand, sidecarOptions } from "./common.js";

export const acrossCommand = defineCommand(
  "across <dirs..>",
  "put several sweeps' results (their summary.json, e.g. docs/results/<part>) side by side: per task, and across tasks",
  (y) =>
    y
      .positional("dirs", { type: "string", array: true, demandOption: true, describe: "sweep --out directories or docs/results/<part>" })
      .option("out", { type: "string", default: "docs/results/across", describe: "where across.md and across.json go" }),
  async (a) => {
    const r = await withSidecar(sidecarOptions(a), (sc) => acrossParts(a.dirs, a.out, sc));
    log(`across: ${r.report}`);
  },
);
