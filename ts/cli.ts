#!/usr/bin/env node
// The `ultra` command line, as a table of contents: each command (its options, handler and summary line) lives in
// its module, ts/commands/*.ts for the commands and ts/bench/*.ts for the benchmarks.
import yargs, { type Argv } from "yargs";
import { hideBin } from "yargs/helpers";
import { UltraError } from "./errors.js";
import { bridgeBench } from "./bench/bridge.js";
import { withRecord } from "./bench/common.js";
import { faultsBench } from "./bench/faults.js";
import { determinismBench, overheadBench, scaleBench } from "./bench/learn.js";
import { llmBench } from "./bench/llm.js";
import { snapshotsBench } from "./bench/snapshots.js";
import { sweepBench } from "./bench/sweep.js";
import { acrossCommand } from "./commands/across.js";
import { controlCommand } from "./commands/control.js";
import { doctorCommand } from "./commands/doctor.js";
import { evalCommand } from "./commands/evaluate.js";
import { explainCommand } from "./commands/explain.js";
import { fidelityCommand } from "./commands/fidelity.js";
import { inspectCommand } from "./commands/inspect.js";
import { phaseCommands } from "./commands/phase.js";
import { pretrainCommand } from "./commands/pretrain.js";
import { sweepCommand } from "./commands/sweep.js";
import { trainCommand } from "./commands/train.js";

// Ctrl-C / SIGTERM: exit through process.exit so the sidecars' exit hook kills them and removes their sockets.
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));

const cli = yargs(hideBin(process.argv))
  .scriptName("ultra")
  .usage("$0 <command> [options]\n\nULTRA: LLM-guided policy modulation for RL (arXiv 2505.20671) on Stable-Baselines3 PPO.")
  .option("device", { choices: ["auto", "cpu", "cuda"], default: "auto", describe: "torch device of the sidecar" })
  .option("threads", { type: "number", default: 1, describe: "torch threads in the sidecar (1 is fastest for MLP PPO)" })
  .option("transport", { choices: ["ipc", "tcp"], default: "ipc", describe: "ipc socket in a private dir, or tcp on 127.0.0.1" })
  .option("verbose", { type: "boolean", default: false, describe: "show the sidecar's log" })
  .command(doctorCommand)
  .command(pretrainCommand)
  .command(trainCommand)
  .command(sweepCommand)
  .command(phaseCommands) // base, identify, improve, evaluate, report --run DIR
  .command(evalCommand)
  .command(fidelityCommand)
  .command(controlCommand)
  .command(acrossCommand)
  .command(explainCommand)
  .command(inspectCommand)
  .command("bench", "benchmarks (JSON on stdout; with --record also bench/results/<name>.json)", (y: Argv) =>
    withRecord(y)
      .command([bridgeBench, overheadBench, determinismBench, scaleBench, faultsBench, sweepBench, llmBench, snapshotsBench])
      .demandCommand(1, "name a benchmark: bridge, overhead, determinism, scale, faults, sweep, llm, snapshots"),
  )
  .demandCommand(1, "name a command; see --help")
  .strict()
  .fail((msg, err, y) => {
    if (err) throw err;
    process.stderr.write(`${y.help()}\n\nerror: ${msg}\n`);
    process.exit(2);
  })
  .help();

try {
  await cli.parseAsync();
} catch (e) {
  if (e instanceof UltraError) {
    process.stderr.write(`error: ${e.message}\n`);
    process.exit(1);
  }
  throw e;
}
