// The `ultra` CLI as a user runs it: real processes, real sidecar, real SB3 training.
import { execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { parseBaselines } from "../ts/args.js";
import { pythonPath } from "../ts/paths.js";
import { BASELINES } from "../ts/ultra/settings.js";
import { processExists, ULTRA, ultra, waitFor } from "./helpers.js";

const run = promisify(execFile);

describe("ultra CLI", () => {
  const dir = mkdtempSync(join(tmpdir(), "ultra-cli-"));
  const out = join(dir, "cheetah");
  let pretrained: any;

  beforeAll(async () => {
    const r = await ultra("pretrain", "--env", "HalfCheetah", "--steps", "1024", "--seed", "3", "--out", out);
    expect(r.code, r.stderr).toBe(0);
    pretrained = JSON.parse(r.stdout);
  });

  it("pretrain writes model.zip, vec_normalize.pkl, TensorBoard logs and a config record", () => {
    expect(pretrained.steps).toBe(1024);
    for (const f of ["model.zip", "vec_normalize.pkl", "config.json"]) expect(existsSync(join(out, f)), f).toBe(true);
    const tb = join(out, "tb", readdirSync(join(out, "tb"))[0]);
    expect(readdirSync(tb).some((f) => f.startsWith("events.out.tfevents"))).toBe(true);
    const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(cfg.ppo).toMatchObject({ n_steps: 512, batch_size: 64, gamma: 0.98, seed: 3 });
    expect(cfg.versions["stable-baselines3"]).toMatch(/^2\./);
    expect(cfg.result.steps).toBe(1024);
  });

  it("pretrain refuses to overwrite a model without --force", async () => {
    const r = await ultra("pretrain", "--env", "HalfCheetah", "--steps", "512", "--out", out);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("already holds a model.zip; pass --force");
  });

  it("pretrain refuses a checkpoint interval that is not a positive integer, before training", async () => {
    for (const every of ["0", "2.5"]) {
      const r = await ultra("pretrain", "--env", "HalfCheetah", "--steps", "512", "--checkpoint-every", every, "--out", join(dir, "x"));
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`--checkpoint-every must be a positive integer, got ${every}`);
      expect(existsSync(join(dir, "x"))).toBe(false);
    }
  });

  it("eval loads the model with its normalisation and prints JSON", async () => {
    const json = join(dir, "eval.json");
    const r = await ultra("eval", "--model", join(out, "model.zip"), "--episodes", "2", "--json", json);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(readFileSync(json, "utf8"));
    expect(res.env_id).toBe("HalfCheetah-v5");
    expect(res.vec_normalize).toBe(join(out, "vec_normalize.pkl"));
    expect(res.returns).toHaveLength(2);
    expect(res.mean).toBeCloseTo((res.returns[0] + res.returns[1]) / 2, 5);
    expect(r.stderr).toMatch(/return -?[\d.]+ ± [\d.]+ over 2 episodes/);
  });

  it("eval finds RL-Zoo's vecnormalize.pkl in <dir>/<env>/", async () => {
    const zoo = join(dir, "zoo");
    await run("mkdir", ["-p", join(zoo, "HalfCheetah-v3")]);
    await run("cp", [join(out, "model.zip"), join(zoo, "HalfCheetah-v3.zip")]);
    await run("cp", [join(out, "vec_normalize.pkl"), join(zoo, "HalfCheetah-v3", "vecnormalize.pkl")]);
    const r = await ultra("eval", "--model", join(zoo, "HalfCheetah-v3.zip"), "--env", "HalfCheetah", "--episodes", "1");
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).vec_normalize).toBe(join(zoo, "HalfCheetah-v3", "vecnormalize.pkl"));
  });

  it("inspect shows spaces, architecture and hyperparameters without loading the model", async () => {
    const r = await ultra("inspect", join(out, "model.zip"), "--json");
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.algo).toBe("PPO");
    expect(d.observation_space).toMatchObject({ type: "Box", shape: [17] });
    expect(d.action_space).toMatchObject({ type: "Box", shape: [6] });
    expect(d.policy_class).toBe("stable_baselines3.common.policies.ActorCriticPolicy");
    expect(d.layers.find((l: any) => l.name === "mlp_extractor.policy_net.0.weight").shape).toEqual([256, 17]);
    expect(d.hyperparameters).toMatchObject({ n_steps: 512, n_epochs: 20, gamma: 0.98 });
    expect(d.vec_normalize).toEqual(["vec_normalize.pkl"]);
  });

  it("bad input gets a clear error and exit code 1", async () => {
    const missing = await ultra("eval", "--model", join(dir, "nope.zip"), "--env", "Hopper");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`model file not found: ${join(dir, "nope.zip")}`);
    const unknown = await ultra("pretrain", "--env", "Cheetahh", "--steps", "10", "--out", join(dir, "x"));
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('unknown env "Cheetahh": use one of HalfCheetah, Hopper, Pong, Reacher, SparseHalfCheetah');
    const notSweep = await ultra("control", "--from", join(dir, "no-sweep"));
    expect(notSweep.code).toBe(1);
    expect(notSweep.stderr).toContain(`${join(dir, "no-sweep")} has no trials/: give a sweep's --out directory`);
    mkdirSync(join(dir, "empty-sweep", "trials", "HalfCheetah-RA-s0"), { recursive: true });
    const unfinished = await ultra("control", "--from", join(dir, "empty-sweep"));
    expect(unfinished.code).toBe(1);
    expect(unfinished.stderr).toContain("has finished identify: run or resume the sweep first");
    writeFileSync(join(dir, "corrupt.zip"), "not a zip");
    const corrupt = await ultra("inspect", join(dir, "corrupt.zip"));
    expect(corrupt.code).toBe(1);
    expect(corrupt.stderr).toContain("is not a zip archive");
    const shape = await ultra("eval", "--model", join(out, "model.zip"), "--env", "Hopper", "--episodes", "1");
    expect(shape.code).toBe(1);
    expect(shape.stderr).toMatch(/vec_normalize\.pkl holds statistics for observations of shape \(17,\), the env gives \(11,\)/);
    await run("cp", [join(out, "model.zip"), join(dir, "bare.zip")]); // no run dir around it to tell the env
    const noEnv = await ultra("eval", "--model", join(dir, "bare.zip"));
    expect(noEnv.code).toBe(1);
    expect(noEnv.stderr).toContain("pass --env");
  });

  it("doctor reports versions and a live round trip", async () => {
    const r = await ultra("doctor", "--json");
    expect(r.code, r.stdout).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.ok).toBe(true);
    for (const k of ["node", "torch", "stable-baselines3", "gymnasium", "mujoco", "ale-py", "zeromq.js"])
      expect(d.versions[k], k).toBeTruthy();
    expect(d.checks.find((c: any) => c.name === "sidecar round trip").detail).toMatch(/\d+ µs median/);
  });

  it("Pong trains with CnnPolicy, Atari wrappers and 4 stacked frames, and evaluates", async () => {
    const pong = join(dir, "pong");
    const r = await ultra("pretrain", "--env", "Pong", "--steps", "1024", "--out", pong);
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse((await ultra("inspect", join(pong, "model.zip"), "--json")).stdout);
    expect(d.observation_space.shape).toEqual([4, 84, 84]);
    expect(d.layers.some((l: any) => l.name.startsWith("features_extractor.cnn"))).toBe(true);
    expect(d.hyperparameters.n_envs).toBe(8);
    const ev = await ultra("eval", "--model", join(pong, "model.zip"), "--episodes", "1");
    expect(ev.code, ev.stderr).toBe(0);
    const res = JSON.parse(ev.stdout);
    expect(res.deterministic).toBe(false);
    expect(res.returns[0]).toBeGreaterThanOrEqual(-21);
    expect(res.returns[0]).toBeLessThanOrEqual(21);
  });

  for (const signal of ["SIGINT", "SIGTERM"] as const)
    it(`${signal} stops the CLI and its sidecar, leaving no process behind`, async () => {
      const cli = spawn(
        process.execPath,
        [ULTRA, "pretrain", "--env", "HalfCheetah", "--steps", "1000000", "--out", join(dir, `sig-${signal}`)],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      let stderr = "";
      cli.stderr!.on("data", (d) => (stderr += d));
      await waitFor(() => stderr.includes("PPO MlpPolicy"), 60_000); // the sidecar is up and training
      const children = readFileSync(`/proc/${cli.pid}/task/${cli.pid}/children`, "utf8").trim().split(/\s+/).map(Number);
      expect(children.length).toBe(1);
      const exited = new Promise<number | null>((r) => cli.once("exit", (code) => r(code)));
      const t0 = Date.now();
      cli.kill(signal);
      expect(await exited).toBe(signal === "SIGINT" ? 130 : 143);
      expect(await waitFor(() => !processExists(children[0]), 5000)).toBe(true);
      expect(Date.now() - t0).toBeLessThan(5000);
    });

  it("a killed pretraining resumes from its checkpoint with --resume and ends with the uninterrupted run's model", async () => {
    // linear schedules (Pong's lin_2.5e-4 and lin_0.1) are what a resume could get wrong; VecNormalize too
    const env = join(dir, "lin-cheetah.yaml");
    writeFileSync(
      env,
      "extends: HalfCheetah\nname: LinCheetah\naliases: []\nppo: { learning_rate: lin_3.0e-4, clip_range: lin_0.2, n_steps: 256, n_epochs: 2 }\n",
    );
    const job = ["pretrain", "--env", env, "--steps", "6144", "--seed", "5", "--checkpoint-every", "512"];
    const straight = join(dir, "lin-straight");
    const whole = await ultra(...job.slice(0, -1), "6144", "--out", straight); // one learn() call, no checkpoint
    expect(whole.code, whole.stderr).toBe(0);

    const broken = join(dir, "lin-resumed");
    const cli = spawn(process.execPath, [ULTRA, ...job, "--out", broken], { stdio: "ignore" });
    const exited = new Promise<number | null>((r) => cli.once("exit", (code) => r(code)));
    expect(await waitFor(() => existsSync(join(broken, "checkpoint", "progress.json")), 120_000)).toBe(true);
    cli.kill("SIGTERM");
    expect(await exited).toBe(143); // killed before it finished: the test needs an interrupted job
    const stopped = JSON.parse(readFileSync(join(broken, "checkpoint", "progress.json"), "utf8"));
    expect(stopped.steps_done).toBeLessThan(6144);

    const again = await ultra(...job, "--out", broken);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/holds an interrupted pretraining \(\d+ of 6144 steps\): pass --resume to continue it, or --force/);
    const other = await ultra(...job.map((a) => (a === "5" ? "6" : a)), "--out", broken, "--resume");
    expect(other.code).toBe(1);
    expect(other.stderr).toContain("belongs to another pretraining");
    // the schedules and PPO's settings are rebuilt from the env config: one edited since the checkpoint is named
    const config = readFileSync(env, "utf8");
    writeFileSync(env, config.replace("n_epochs: 2", "n_epochs: 3"));
    const edited = await ultra(...job, "--out", broken, "--resume");
    expect(edited.code).toBe(1);
    expect(edited.stderr).toMatch(/env config of HalfCheetah-v\d changed since .* \(ppo\.n_epochs\)/);
    writeFileSync(env, config);

    const resumed = await ultra(...job, "--out", broken, "--resume");
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming at \d+ of 6144 steps/);
    const r = JSON.parse(resumed.stdout);
    expect(r.sittings).toBe(2);
    expect(r.steps).toBe(JSON.parse(whole.stdout).steps);
    expect(existsSync(join(broken, "checkpoint"))).toBe(false);
    // the weights and the optimizer (Adam's moments, the last learning rate) equal the uninterrupted run's, byte for byte
    const digest = (zip: string) =>
      execFileSync(pythonPath(), [
        "-c",
        "import hashlib, sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); " +
          "print({n: hashlib.sha256(z.read(n)).hexdigest() for n in ('policy.pth', 'policy.optimizer.pth')})",
        zip,
      ]).toString();
    expect(digest(join(broken, "model.zip"))).toBe(digest(join(straight, "model.zip")));
    // and a run that is already finished has nothing to resume
    const done = await ultra(...job, "--out", broken, "--resume");
    expect(done.code, done.stderr).toBe(0);
    expect(done.stderr).toContain("already holds the finished model");
  });
});

// Parsing only: no run starts (an unknown name fails before the sidecar does).
describe("ultra train --baselines", () => {
  it("takes all (the default set, no opt-in arm), none, and names: all,rice adds the opt-in RICE arm", () => {
    expect(parseBaselines("all")).toEqual([...BASELINES]);
    expect(parseBaselines("all,rice")).toEqual([...BASELINES, "rice"]);
    expect(parseBaselines("rice, continue_ppo,rice")).toEqual(["rice", "continue_ppo"]);
    expect(parseBaselines("none")).toEqual([]);
    expect(() => parseBaselines("all,ricee")).toThrow(
      /unknown baseline "ricee" in --baselines all,ricee: use all, none or names among continue_ppo, rice_reset, random_critical, rice/,
    );
  });

  it("refuses an unknown baseline by name before training", async () => {
    const r = await ultra(
      "train",
      "--env",
      "CartPole-v1",
      "--profile",
      "smoke",
      "--baselines",
      "continue_ppo,rise",
      "--out",
      join(mkdtempSync(join(tmpdir(), "ultra-baselines-")), "run"),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown baseline "rise"');
  });
});
