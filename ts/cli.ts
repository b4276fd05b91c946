#!/usr/bin/env node
// The `ultra` command line. Each subcommand is a thin layer over a function in ts/commands or ts/bench.
import { writeFileSync } from "node:fs";
import yargs, { type Argv } from "yargs";
import { hideBin } from "yargs/helpers";
import { UltraError } from "./errors.js";
import type { SidecarOptions } from "./bridge/sidecar.js";
import { benchBridge } from "./bench/bridge.js";
import { writeResult } from "./bench/common.js";
import { benchFaults } from "./bench/faults.js";
import { benchLlm, formatLlmRows } from "./bench/llm.js";
import { benchSweep } from "./bench/sweep.js";
import { benchDeterminism, benchOverhead, benchScale, envRadius } from "./bench/learn.js";
import { doctor } from "./commands/doctor.js";
import { evaluate } from "./commands/evaluate.js";
import { explain } from "./commands/explain.js";
import { fidelity } from "./commands/fidelity.js";
import { formatDescription, inspectModel } from "./commands/inspect.js";
import { pretrain } from "./commands/pretrain.js";
import { parseBaselines, parseIntList } from "./args.js";
import { phaseCommand } from "./commands/phase.js";
import { storedSweep, sweep, sweepRoot } from "./sweep/run.js";
import { train } from "./ultra/run.js";
import { flagsToSpec, resolveSweep, trialsOf } from "./sweep/spec.js";
import { PHASES } from "./ultra/rundir.js";
import { VARIANTS, type Variant } from "./ultra/settings.js";
import { fmt, log } from "./progress.js";

// Ctrl-C / SIGTERM: exit through process.exit so the sidecars' exit hook kills them and removes their sockets.
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));

interface GlobalOptions {
  device: string;
  threads: number;
  transport: string;
  verbose: boolean;
}
const sidecarOptions = (args: object): SidecarOptions => {
  const a = args as GlobalOptions; // yargs' global options, lost by the per-command builder types
  return {
    device: a.device as SidecarOptions["device"],
    torchThreads: a.threads,
    transport: a.transport as SidecarOptions["transport"],
    onLog: a.verbose ? (l) => process.stderr.write(`${l}\n`) : undefined,
  };
};

/** The options every learning benchmark shares: env, steps, seed, and the global --threads / --device. */
const learnBench = (a: { env: string; steps: number; seed: number }) => {
  const g = a as unknown as GlobalOptions;
  return { env: a.env, steps: a.steps, seed: a.seed, threads: g.threads, device: g.device === "auto" ? undefined : g.device };
};

const printJson = (value: unknown, file?: string) => {
  const text = JSON.stringify(value, null, 2);
  if (file) writeFileSync(file, text + "\n");
  process.stdout.write(text + "\n");
};

const cli = yargs(hideBin(process.argv))
  .scriptName("ultra")
  .usage("$0 <command> [options]\n\nULTRA: LLM-guided policy modulation for RL (arXiv 2505.20671) on Stable-Baselines3 PPO.")
  .option("device", { choices: ["auto", "cpu", "cuda"], default: "auto", describe: "torch device of the sidecar" })
  .option("threads", { type: "number", default: 1, describe: "torch threads in the sidecar (1 is fastest for MLP PPO)" })
  .option("transport", { choices: ["ipc", "tcp"], default: "ipc", describe: "ipc socket in a private dir, or tcp on 127.0.0.1" })
  .option("verbose", { type: "boolean", default: false, describe: "show the sidecar's log" })
  .command(
    "doctor",
    "check node, python, torch, SB3, gymnasium, MuJoCo, ALE, ZeroMQ, CUDA and a live sidecar round trip",
    (y: Argv) => y.option("json", { type: "boolean", default: false }),
    async (a) => {
      const r = await doctor();
      if (a.json) printJson(r);
      else
        for (const c of r.checks)
          process.stdout.write(`${c.ok ? "ok  " : "FAIL"} ${c.name.padEnd(20)} ${c.detail}${c.fix ? `\n     fix: ${c.fix}` : ""}\n`);
      if (!r.ok) process.exitCode = 1;
    },
  )
  .command(
    "pretrain",
    "train a base PPO with the env's RL-Zoo hyperparameters (configs/envs)",
    (y: Argv) =>
      y
        .option("env", { type: "string", demandOption: true, describe: "HalfCheetah, Hopper, Walker2d, Reacher, Pong or a Gymnasium id" })
        .option("steps", { type: "number", describe: "timesteps (default: the config's n_timesteps)" })
        .option("seed", { type: "number", default: 0 })
        .option("out", { type: "string", describe: "run directory (default runs/pretrain-ENV-sSEED)" })
        .option("force", { type: "boolean", default: false, describe: "overwrite an existing model.zip in --out" })
        .option("json", { type: "string", describe: "also write the result as JSON to this file" }),
    async (a) => {
      const r = await pretrain({ env: a.env, steps: a.steps, seed: a.seed, out: a.out, force: a.force, sidecar: sidecarOptions(a) });
      log(`saved ${r.files.join(", ")} after ${r.steps} steps in ${fmt(r.seconds)} s (${fmt(r.fps)} steps/s)`);
      printJson(r, a.json);
    },
  )
  .command(
    "train",
    "ULTRA end to end: base policy → identify → improve (with baselines) → evaluate → report",
    (y: Argv) =>
      y
        .option("env", {
          type: "string",
          demandOption: true,
          describe: "HalfCheetah, Hopper, Walker2d, Reacher, Pong, Sparse*, or a Gymnasium id",
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
          describe: "who names critical states: local (default: the embedded LLM), local:PATH.gguf, openai:MODEL, replay:RUN_DIR, rollout",
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
  )
  .command(
    "sweep",
    "a grid of envs × variants × seeds (with the baselines) on Ray: a local instance, or --ray auto|ray://HOST:PORT",
    (y: Argv) =>
      y
        .option("file", { type: "string", describe: "a sweep file (configs/sweeps/*.yaml); flags override it" })
        .option("envs", { type: "string", describe: "e.g. HalfCheetah,Hopper,Walker2d,Reacher,Pong" })
        .option("variants", { type: "string", describe: "ULTRA variants, e.g. RA,R,A" })
        .option("baselines", {
          type: "string",
          describe:
            "all | none | names among continue_ppo,rice_reset,random_critical,rice; all is the first three, all,rice adds RICE (default all)",
        })
        .option("seeds", { type: "string", describe: "e.g. 0-4 (default 0)" })
        .option("profile", { type: "string", describe: "quick | paper | ... (configs/ultra.yaml; default paper)" })
        .option("adviser", { type: "string", describe: "as for train (default: configs/ultra.yaml's)" })
        .option("ray", {
          type: "string",
          describe: "auto (this machine's cluster) or ray://HOST:PORT; default: start a local Ray instance",
        })
        .option("max-parallel", { type: "number", describe: "trials at once (default 2)" })
        .option("cpus-per-trial", { type: "number", describe: "Ray CPUs each trial's sidecar reserves (default 1)" })
        .option("gpus-per-trial", { type: "number", describe: "Ray GPUs each trial's sidecar reserves (default 0; > 0 trains on cuda)" })
        .option("max-attempts", { type: "number", describe: "a trial failing this often is marked failed (default 3)" })
        .option("out", { type: "string", describe: "sweep directory (default runs/sweep-DATE); on a cluster, a path every node mounts" })
        .option("resume", {
          type: "boolean",
          default: false,
          describe: "continue a sweep: finished trials are kept, the others (failed ones too) resume from their checkpoints",
        })
        .option("dry-run", {
          type: "boolean",
          default: false,
          describe: "print the grid's trials as JSON and stop (no Ray, nothing written)",
        }),
    async (a) => {
      const out = sweepRoot(a.out);
      const flags = {
        ...flagsToSpec(a),
        profile: a.profile,
        adviser: a.adviser,
        ray: a.ray,
        max_parallel: a.maxParallel,
        cpus_per_trial: a.cpusPerTrial,
        gpus_per_trial: a.gpusPerTrial,
        max_attempts: a.maxAttempts,
      };
      const spec = resolveSweep(a.file, flags, a.resume ? storedSweep(out)?.spec : undefined);
      if (a.dryRun) {
        printJson({
          dir: out,
          spec,
          trials: trialsOf(spec).map(({ id, env, dir, baselines, donor }) => ({
            id,
            dir,
            baselines,
            base_from: spec.agents?.[env]?.model ?? donor,
          })),
        });
        return;
      }
      const r = await sweep({ spec, out, resume: a.resume, sidecar: sidecarOptions(a) });
      log(`sweep: ${r.done} trials done, ${r.failed} failed in ${fmt(r.seconds)} s; report: ${r.report}`);
      printJson(r);
      if (r.failed) process.exitCode = 1;
    },
  )
  .command(
    PHASES.map((phase) => ({
      command: phase,
      describe: `run the ${phase} phase of an existing run directory again (later phases are redone by train --resume)`,
      builder: (y: Argv) =>
        y
          .option("run", { type: "string", demandOption: true, describe: "the run directory" })
          .option("base", { type: "string", describe: "base phase only: your own SB3 PPO model.zip" }),
      handler: async (a: { run: string; base?: string }) => {
        await phaseCommand(phase, a.run, { sidecar: sidecarOptions(a), base: a.base });
        log(`${phase}: done (${a.run})`);
      },
    })),
  )
  .command(
    "eval",
    "evaluate any SB3 PPO model.zip (with vec_normalize.pkl beside it) and print mean ± std return",
    (y: Argv) =>
      y
        .option("model", { type: "string", demandOption: true })
        .option("env", { type: "string", describe: "env it was trained on (read from the run dir when omitted)" })
        .option("episodes", { type: "number", default: 10 })
        .option("seed", { type: "number", default: 0 })
        .option("deterministic", { type: "boolean", describe: "deterministic actions (default: the env config's eval setting)" })
        .option("trust-model", {
          type: "boolean",
          default: false,
          describe: "unpickle model.zip and vec_normalize.pkl as SB3 does (code in them runs): only for files you trust",
        })
        .option("json", { type: "string", describe: "also write the result as JSON to this file" }),
    async (a) => {
      const r = await evaluate({
        model: a.model,
        env: a.env,
        episodes: a.episodes,
        seed: a.seed,
        deterministic: a.deterministic,
        trustModel: a.trustModel,
        sidecar: sidecarOptions(a),
      });
      log(
        `${r.env_id}: return ${fmt(r.mean)} ± ${fmt(r.std)} over ${r.episodes} episodes (${r.deterministic ? "deterministic" : "stochastic"})`,
      );
      printJson(r, a.json);
    },
  )
  .command(
    "fidelity",
    "StateMask's fidelity test of a finished run's critical states against value drops, random steps and a mask net (no training)",
    (y: Argv) =>
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
  )
  .command(
    "explain",
    "train (RICE's recipe: rice.mask_steps, rice.alpha) or load a mask net for a run's base policy into DIR/explain/; fidelity scores it, the rice arm reuses it",
    (y: Argv) =>
      y
        .option("run", { type: "string", demandOption: true, describe: "a run directory whose base phase has finished" })
        .option("mask", {
          type: "string",
          describe:
            "load this mask net zip (trained for the run's base policy, e.g. RICE's masknet/best_model.zip) instead of training one",
        })
        .option("steps", { type: "number", describe: "mask net training steps (default: the run's rice.mask_steps; RICE: 300000)" }),
    async (a) => {
      const r = await explain(a.run, { mask: a.mask, steps: a.steps, sidecar: sidecarOptions(a) });
      log(`explain: ${r.mask} in ${a.run} (${r.env_steps} mask-net env steps, ${fmt(r.seconds)} s)`);
      printJson(r);
    },
  )
  .command(
    "inspect <model>",
    "show a model.zip's spaces, policy architecture, hyperparameters and SB3 version (nothing unpickled)",
    (y: Argv) => y.positional("model", { type: "string", demandOption: true }).option("json", { type: "boolean", default: false }),
    async (a) => {
      const d = await inspectModel(a.model as string);
      if (a.json) printJson(d);
      else process.stdout.write(formatDescription(d) + "\n");
    },
  )
  .command("bench", "benchmarks (JSON on stdout; with --record also bench/results/<name>.json)", (y: Argv) =>
    y
      .option("record", {
        type: "boolean",
        default: false,
        describe: "write bench/results/<name>.json, the committed figures (make bench does)",
      })
      .command(
        "bridge",
        "round-trip p50/p99 and MB/s for a large chunk, over ipc and tcp, beside a bare pyzmq/msgpack floor",
        (b: Argv) =>
          b
            .option("json", { type: "string", describe: "write the result to this file too" })
            .option("round-trips", { type: "number", default: 5000 })
            .option("payload-mb", { type: "number", default: 10 })
            .option("repeats", { type: "number", default: 30 }),
        async (a) => {
          const results = await benchBridge({ roundTrips: a.roundTrips, payloadMb: a.payloadMb, repeats: a.repeats });
          for (const r of results)
            log(
              `${r.transport}: round trip p50 ${fmt(r.sidecar.p50_us)} µs (floor ${fmt(r.floor.p50_us)}, ${fmt(r.ratio.round_trip)}×), p99 ${fmt(r.sidecar.p99_us)} µs; ` +
                `${r.payload_mb} MB down ${fmt(r.sidecar.download_mb_s)} MB/s (floor ${fmt(r.floor.download_mb_s)}, ${fmt(r.ratio.download)}×), ` +
                `up+back ${fmt(r.sidecar.upload_mb_s)} MB/s (floor ${fmt(r.floor.upload_mb_s)}, ${fmt(r.ratio.upload)}×)`,
            );
          printJson(writeResult("bridge", { results }, a));
        },
      )
      .command(
        "overhead",
        "steps/s of SB3's PPO.learn() vs the project's modulated PPO (empty table; a table of N critical states), alternating runs",
        (b: Argv) =>
          b
            .option("env", { type: "string", default: "HalfCheetah" })
            .option("steps", { type: "number", default: 20000, describe: "timesteps per run" })
            .option("repeats", { type: "number", default: 3, describe: "runs of each contender" })
            .option("table-states", { type: "number", default: 100 })
            .option("radius", {
              type: "number",
              describe: "of the synthetic critical states (normalised obs, RMS; default: the env's modulation.radius)",
            })
            .option("seed", { type: "number", default: 0 })
            .option("json", { type: "string", describe: "write the result to this file too" }),
        async (a) => {
          const r = await benchOverhead({
            ...learnBench(a),
            repeats: a.repeats,
            tableStates: a.tableStates,
            radius: a.radius ?? envRadius(a.env),
          });
          const sps = Object.entries(r.steps_per_s)
            .map(([k, v]) => `${k} ${fmt(v.median)}`)
            .join(", ");
          const ratios = Object.entries(r.ratio)
            .map(([k, v]) => `${k} ${v.toFixed(3)}× (goal ≥ ${r.goals[k]})`)
            .join(", ");
          log(`overhead ${r.env}: steps/s ${sps}; ratio to sb3: ${ratios}; goals ${r.met ? "met" : "NOT met"}`);
          printJson(writeResult(`overhead-${r.env.replace(/\W+/g, "_")}`, r, a));
        },
      )
      .command(
        "determinism",
        "SB3's PPO.learn() and the project's path (empty table), same seed: bitwise-equal parameters, env steps and returns?",
        (b: Argv) =>
          b
            .option("env", { type: "string", default: "HalfCheetah" })
            .option("steps", { type: "number", default: 4096 })
            .option("seed", { type: "number", default: 0 })
            .option("json", { type: "string", describe: "write the result to this file too" }),
        async (a) => {
          const r = await benchDeterminism(learnBench(a));
          const diffs = Object.entries(r.comparisons).map(([k, v]) => `${k}: ${v.equal ? "equal" : `differ at ${v.first_difference}`}`);
          const c = r.compared;
          log(
            `determinism ${r.env}, ${r.steps} steps, ${c.tensors} tensors, ${c.env_steps} env steps, ${c.episodes} episodes: equal: ${r.equal} (${diffs.join("; ")})`,
          );
          if (r.nothing_compared) log(`determinism ${r.env}: FAILED: ${r.nothing_compared}`);
          printJson(writeResult(`determinism-${r.env.replace(/\W+/g, "_")}`, r, a));
          if (!r.ok) process.exitCode = 1;
        },
      )
      .command(
        "scale",
        "steps/s of the project's PPO for several n_envs, DummyVecEnv and SubprocVecEnv",
        (b: Argv) =>
          b
            .option("env", { type: "string", default: "HalfCheetah" })
            .option("steps", { type: "number", default: 16384 })
            .option("n-envs", { type: "string", default: "1,2,4,8" })
            .option("vec-envs", { type: "string", default: "dummy,subproc" })
            .option("seed", { type: "number", default: 0 })
            .option("json", { type: "string", describe: "write the result to this file too" }),
        async (a) => {
          const vecEnvs = a.vecEnvs.split(",").map((v) => {
            if (v !== "dummy" && v !== "subproc") throw new UltraError(`--vec-envs takes dummy and/or subproc, got "${v}"`);
            return v;
          });
          const r = await benchScale({ ...learnBench(a), nEnvs: parseIntList(a.nEnvs, "--n-envs"), vecEnvs });
          log(`scale ${r.env} on ${r.device}: ${r.rows.map((x) => `${x.vec_env}×${x.n_envs} ${fmt(x.steps_per_s)}`).join(", ")} steps/s`);
          printJson(writeResult(`scale-${r.env.replace(/\W+/g, "_")}-${r.device}`, r, a));
        },
      )
      .command(
        "faults",
        "SIGKILL the sidecar of real `ultra train` runs at random moments; each must fail clearly, leave no process, and resume to the same numbers",
        (b: Argv) =>
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
      )
      .command(
        "sweep",
        "trials/hour and CPU utilisation of plain runs vs a local Ray sweep with 1 and 2 trials at once; Ray's per-trial overhead",
        (b: Argv) =>
          b
            .option("env", { type: "string", default: "HalfCheetah" })
            .option("seeds", { type: "number", default: 2, describe: "trials (one seed each)" })
            .option("profile", { type: "string", default: "quick" })
            .option("adviser", { type: "string", default: "rollout" })
            .option("json", { type: "string", describe: "write the result to this file too" }),
        async (a) => {
          const r = await benchSweep({ env: a.env, seeds: a.seeds, profile: a.profile, adviser: a.adviser });
          const rows = r.rows
            .map((x) => `${x.mode}×${x.parallel} ${fmt(x.trials_per_hour)} trials/h (CPU ${Math.round(100 * x.cpu_utilisation)}%)`)
            .join(", ");
          log(
            `sweep ${r.env}: ${rows}; Ray overhead per trial ${(100 * r.ray_overhead_per_trial).toFixed(1)}% (goal ≤ 5%: ${r.met ? "met" : "NOT met"})`,
          );
          printJson(writeResult(`sweep-${r.env.replace(/\W+/g, "_")}`, r, a));
        },
      )
      .command(
        "llm",
        "the embedded model on a run's recorded episodes, per identification mode: prompt, reused and completion tokens, seconds, valid replies",
        (b: Argv) =>
          b
            .option("run", {
              type: "string",
              demandOption: true,
              describe: "a run directory whose identify phase recorded episodes (trajectories/)",
            })
            .option("episodes", { type: "number", default: 2 })
            .option("modes", { type: "string", default: "candidates,episode", describe: "identification modes, in this order" })
            .option("model", {
              type: "string",
              default: "",
              describe: "a GGUF path or an embedded model's name (default: the embedded default)",
            })
            .option("prompt-chars", { type: "number", describe: "episode mode's text budget (default: the run's identify.prompt_chars)" })
            .option("json", { type: "string", describe: "write the result to this file too" }),
        async (a) => {
          const modes = a.modes.split(",").map((m) => {
            if (m !== "candidates" && m !== "episode") throw new UltraError(`--modes takes candidates and/or episode, got "${m}"`);
            return m;
          });
          const r = await benchLlm({ run: a.run, episodes: a.episodes, modes, model: a.model, promptChars: a.promptChars });
          log(formatLlmRows(r.rows));
          const goals = Object.entries(r.met).map(
            ([k, v]) => `${k} ≤ ${r.goals[k as keyof typeof r.goals]}: ${v === null ? "not measured" : v ? "met" : "NOT met"}`,
          );
          log(
            `llm ${r.model} on ${r.env}: ${goals.join("; ")} (1-min load ${r.load_1min.before.toFixed(1)} before, ${r.load_1min.after.toFixed(1)} after)`,
          );
          printJson(writeResult(`llm-${r.env.replace(/\W+/g, "_")}`, r, a));
        },
      )
      .demandCommand(1, "name a benchmark: bridge, overhead, determinism, scale, faults, sweep, llm"),
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
