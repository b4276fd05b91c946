import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Sidecar } from "../ts/bridge/sidecar.js";
import { envFileOf, envSpec, loadConfigs, resolveEnv, runEnv } from "../ts/config.js";
import { INTERPRETERS, interpreterFor, interpreterOf, loadInterpreter } from "../ts/describe/envs/index.js";
import { PROMPTS_DIR, renderPrompt } from "../ts/describe/prompts.js";
import { ROOT } from "../ts/paths.js";
import { contextFor } from "../ts/ultra/run.js";
import { RunDir, type RunRecord } from "../ts/ultra/rundir.js";
import { resolveSettings } from "../ts/ultra/settings.js";

describe("env configs", () => {
  it("every env of the paper has a config with RL-Zoo hyperparameters", () => {
    const names = loadConfigs().map((c) => c.name);
    expect(names).toEqual(["HalfCheetah", "Hopper", "Pong", "Reacher", "SparseHalfCheetah", "SparseHopper", "SparseWalker2d", "Walker2d"]);
    expect(resolveEnv("Hopper").ppo).toMatchObject({ gamma: 0.999, learning_rate: 9.80828e-5, n_epochs: 5 });
  });

  it("short names, ids, aliases and case all resolve", () => {
    for (const n of ["HalfCheetah", "halfcheetah", "HalfCheetah-v5", "cheetah"]) expect(resolveEnv(n).env_id).toBe("HalfCheetah-v5");
    expect(resolveEnv("PongNoFrameskip-v4").env_id).toBe("ALE/Pong-v5");
    // another version of a configured env keeps its settings (RICE's agents run on v4)
    expect(resolveEnv("Hopper-v4")).toMatchObject({
      name: "Hopper",
      env_id: "Hopper-v4",
      normalize: resolveEnv("Hopper").normalize,
      ppo: resolveEnv("Hopper").ppo,
    });
    expect(resolveEnv("Reacher-v4")).toMatchObject({ name: "Reacher", env_id: "Reacher-v4" });
    expect(resolveEnv("CartPole-v1")).toMatchObject({ env_id: "CartPole-v1", ppo: { policy: "MlpPolicy" } });
    expect(() => resolveEnv("Cheetahh")).toThrow(/unknown env "Cheetahh"/);
  });

  it("sparse variants extend their dense twin", () => {
    const sparse = resolveEnv("SparseHopper");
    expect(sparse.env_id).toBe("ultra/SparseHopper-v5");
    expect(sparse.ppo).toEqual(resolveEnv("Hopper").ppo);
  });

  it("Pong's spec carries the Atari wrappers and frame stack", () => {
    const spec = envSpec(resolveEnv("Pong"), { seed: 1, training: true });
    expect(spec).toMatchObject({ env_id: "ALE/Pong-v5", n_envs: 8, wrappers: ["AtariWrapper"], frame_stack: 4, normalize: false });
  });

  it("is the one env registry: each config names an interpreter that exists and a prompt file that exists", () => {
    for (const c of loadConfigs()) {
      expect(existsSync(join(PROMPTS_DIR, c.prompt)), `${c.name}: prompts/${c.prompt}`).toBe(true);
      expect(c.interpreter === null || INTERPRETERS.some((i) => i.name === c.interpreter), c.name).toBe(true);
    }
    expect(interpreterOf(resolveEnv("SparseHopper")).name).toBe("SparseHopper"); // the Hopper interpreter, under its own name
    expect(resolveEnv("SparseHalfCheetah")).toMatchObject({
      interpreter: "HalfCheetah",
      prompt: "sparse-halfcheetah.md",
      env_kwargs: { threshold: 5 },
    });
    expect(() => interpreterOf({ name: "X", interpreter: "Cheetah" })).toThrow(/interpreter "Cheetah" is not one of HalfCheetah, Hopper/);
  });

  it("a run of a v4 env (RICE's agents) keeps its v4 id in every phase, with its v5 twin's config", () => {
    const run = new RunDir(mkdtempSync(join(tmpdir(), "ultra-v4-")));
    const cfg = resolveEnv("Hopper-v4");
    const record: RunRecord = {
      env: cfg.name,
      env_id: cfg.env_id,
      seed: 0,
      profile: "smoke",
      settings: resolveSettings({ profile: "smoke" }),
      created: "",
      git_commit: null,
      versions: {},
      phases: {},
    };
    const ctx = contextFor(run, record, {} as Sidecar);
    expect(ctx.cfg).toMatchObject({ name: "Hopper", env_id: "Hopper-v4", interpreter: "Hopper" });
    expect(envSpec(ctx.cfg, { seed: 0, training: false }).env_id).toBe("Hopper-v4");
  });

  it("an invalid config names the file and the field", () => {
    const dir = mkdtempSync(join(tmpdir(), "ultra-cfg-"));
    writeFileSync(join(dir, "bad.yaml"), "name: Bad\nenv_id: Bad-v0\nn_timesteps: 10\nppo: { policy: MlpPolicy, learning_rate: fast }\n");
    expect(() => loadConfigs(dir)).toThrow(/bad\.yaml is invalid[\s\S]*learning_rate/);
  });
});

describe("env config files of your own (--env PATH.yaml, examples/new-env/)", () => {
  const dir = join(ROOT, "examples", "new-env");
  const example = join(dir, "pendulum.yaml");

  it("resolve prompt and interpreter beside the file; then the env resolves by name and id, its module once loaded", async () => {
    const cfg = resolveEnv(example);
    expect(cfg).toMatchObject({
      name: "Pendulum",
      env_id: "Pendulum-v1",
      prompt: join(dir, "pendulum.md"),
      interpreter: `module:${join(dir, "interpreter.mjs")}`,
      normalize: { gamma: 0.9 },
      ppo: { policy: "MlpPolicy", gamma: 0.9, n_steps: 1024 },
    });
    for (const name of ["pendulum", "Pendulum-v1", example]) expect(resolveEnv(name)).toBe(cfg);
    expect(envFileOf(cfg)).toBe(example);
    expect(envFileOf(resolveEnv("Hopper"))).toBeUndefined();
    expect(runEnv({ env_id: "Pendulum-v1", env_config: example })).toBe(cfg);
    expect(() => interpreterOf(cfg)).toThrow(/interpreter module .*interpreter\.mjs is not loaded yet/);
    const interp = await loadInterpreter(cfg);
    expect(interp.name).toBe("Pendulum");
    expect(interpreterFor("Pendulum")).toBe(interp);
    expect(interp.describe([Math.cos(0.5), Math.sin(0.5), -1])).toBe(
      "pendulum 29° from upright (tilted counter-clockwise), tip +0.88 m above the pivot; angular velocity -1.00 rad/s, swinging toward upright",
    );
    const prompt = renderPrompt("Pendulum", { episode: "EPISODE", maxCriticalStates: 2, actionSpace: "a JSON list of 1 numbers" });
    expect(prompt.user).toContain("# The task: Pendulum (Gymnasium Pendulum-v1, swing-up)");
    expect(prompt.user).toContain("1 torque in [-2, 2] N·m at the pivot");
  });

  it("extend a configured env; a taken name, a missing file or a bad field is an error naming the file", () => {
    const tmp = mkdtempSync(join(tmpdir(), "ultra-envfile-"));
    const file = (name: string, text: string) => (writeFileSync(join(tmp, name), text), join(tmp, name));
    const mine = file("mine.yaml", "extends: Hopper\nname: MyHopper\nenv_kwargs: { terminate_when_unhealthy: false }\n");
    expect(resolveEnv(mine)).toMatchObject({
      name: "MyHopper",
      env_id: "Hopper-v5",
      interpreter: "Hopper",
      prompt: "hopper.md",
      ppo: resolveEnv("Hopper").ppo,
      env_kwargs: { terminate_when_unhealthy: false },
    });
    expect(resolveEnv("Hopper").name).toBe("Hopper"); // the configured env keeps its name and id
    const minimal = "env_id: Hopper-v5\nn_timesteps: 10\nppo: { policy: MlpPolicy }\n";
    expect(() => resolveEnv(file("taken.yaml", `name: hopper\n${minimal}`))).toThrow(
      /the name "hopper" \(or an alias\) is taken by configs\/envs \(Hopper\)/,
    );
    expect(() => resolveEnv(file("again.yaml", `name: MyHopper\n${minimal}`))).toThrow(`is taken by ${mine}`);
    expect(() => resolveEnv(join(tmp, "none.yml"))).toThrow(/env config .*none\.yml does not exist: --env takes a configured env/);
    expect(() => resolveEnv(file("bad.yaml", "name: Bad\nenv_id: Bad-v0\nn_timesteps: ten\nppo: { policy: MlpPolicy }\n"))).toThrow(
      /bad\.yaml is invalid[\s\S]*n_timesteps/,
    );
    expect(() => resolveEnv(file("nomod.yaml", `name: NoMod\ninterpreter: module:gone.mjs\n${minimal}`))).toThrow(
      `env config ${join(tmp, "nomod.yaml")}: interpreter: gone.mjs is not a file (${join(tmp, "gone.mjs")})`,
    );
    expect(() => resolveEnv(file("orphan.yaml", `extends: Cheetahh\nname: Orphan\n`))).toThrow(/extends unknown config "Cheetahh"/);
  });
});

describe("committed base agents", () => {
  it("the quick profile starts HalfCheetah from agents/HalfCheetah, a loadable SB3 zip; envs without one pretrain", async () => {
    const { resolveSettings } = await import("../ts/ultra/settings.js");
    const { committedAgent } = await import("../ts/ultra/phases/base.js");
    const quick = resolveSettings({ profile: "quick" });
    const file = committedAgent(quick.base.agent, "HalfCheetah");
    expect(file).toMatch(/agents\/HalfCheetah\/model\.zip$/);
    const { readFileSync } = await import("node:fs");
    expect(readFileSync(file!).subarray(0, 2).toString()).toBe("PK"); // a zip, not a Git LFS pointer
    expect(committedAgent(quick.base.agent, "Walker2d")).toBeNull();
    expect(committedAgent(resolveSettings({ profile: "paper" }).base.agent, "HalfCheetah")).toBeNull();
  });
});
