// `ultra control --from SWEEP --adviser chance`: a sweep's adviser against a control adviser on the same episodes.
import { withSidecar } from "../bridge/sidecar.js";
import { adviserControl } from "../ultra/control.js";
import { log } from "../progress.js";
import { defineCommand, sidecarOptions } from "./common.js";

export const controlCommand = defineCommand(
  "control",
  "identify every trial of a sweep again with a control adviser (chance: random picks) and compare what each one's suggestions gained",
  (y) =>
    y
      .option("from", { type: "string", demandOption: true, describe: "a sweep's --out directory" })
      .option("adviser", { type: "string", default: "chance", describe: "the control adviser (as for train)" })
      .option("out", { type: "string", describe: "where the control's runs go (default FROM-ADVISER); re-running continues" }),
  async (a) => {
    const out = a.out ?? `${a.from.replace(/\/+$/, "")}-${a.adviser.replace(/[^\w.-]+/g, "_")}`;
    const r = await withSidecar(sidecarOptions(a), (sc) => adviserControl(a.from, a.adviser, out, sc));
    log(`control: ${r.trials.length} trials; ${out}/control.md`);
  },
);
