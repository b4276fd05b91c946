// `ultra train`: ULTRA end to end (ts/ultra/run.ts), one run directory per seed.
import { parseBaselines, parseIntList } from "../args.js";
import { log } from "../progress.js";
import { train } from "../ultra/run.js";
import { VARIANTS, type Variant } from "../ultra/settings.js";
import { defineCommand, printJson, sidecarOptions } from "./common.js";

export const trainCommand = defineCommand(
  "train",
  "ULTRA end to end: base policy → identify → improve (with baselines) → evaluate → report",
  (y) =>
    y
      .option("env", {
        type: "string",
        demandOption: true,
        describe: "HalfCheetah, Hopper, Walker2d, Reacher, Pong, Sparse*, a Gymnasium id, or an env config PATH.yaml (examples/new-env/)",
      })
      .option("variant", {
        choices: VARIANTS,
        describe: "A: suggested actions, R: adviser rewards, RA: both (default: configs/ultra.yaml)",
      })
      .option("seed", { type: "number", default: 0 })
      .option("seeds", { type: "string", describe: "several seeds, e.g. 0,1,2,3,4 or 0-4: one run each and a report over them" })
      .option("base", { type: "string", describe: "start from your own SB3 PPO model.zip instead of pretraining one" })
      .option("adviser", {
        type: "string",
        describe:
          "who names critical states: local (default: the embedded LLM), local:PATH.gguf, openai:MODEL, replay:RUN_DIR, rollout, chance (random picks: an LLM's control)",
      })
      .option("baselines", {
        type: "string",
        describe:
          "baseline arms: all | none | names, e.g. all,rice adds RICE itself (opt-in: it trains a mask net first) (default: configs/ultra.yaml's)",
      })
      .option("verify", {
        choices: ["on", "off"],
        describe: "test each suggested action in rollouts from its state before using it (default on)",
      })
      .option("trust-model", {
        type: "boolean",
        describe: "unpickle --base model.zip and vec_normalize.pkl as SB3 does (code in them runs): only for files you trust",
      })
      .option("profile", { type: "string", default: "paper", describe: "quick | paper (configs/ultra.yaml)" })
      .option("out", { type: "string", describe: "run directory (default runs/ENV-VARIANT-PROFILE-sSEED)" })
      .option("resume", {
        type: "boolean",
        default: false,
        describe: "continue an interrupted run from its last finished phase / checkpoint",
      }),
  async (a) => {
    const r = await train({
      env: a.env,
      seeds: a.seeds ? parseIntList(a.seeds) : [a.seed],
      profile: a.profile,
      variant: a.variant as Variant | undefined,
      adviser: a.adviser,
      verify: a.verify === undefined ? undefined : a.verify === "on",
      trustModel: a.trustModel,
      base: a.base,
      out: a.out,
      resume: a.resume,
      sidecar: sidecarOptions(a),
      baselines: a.baselines === undefined ? undefined : parseBaselines(a.baselines),
    });
    log(`report: ${r.report}`);
    printJson(r);
  },
);
