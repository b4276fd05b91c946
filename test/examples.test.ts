// The runnable examples (examples/*/README.md): each README's command, and what it says you should see.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../ts/paths.js";
import { readJson, ultra } from "./helpers.js";

describe("examples/custom-adviser", () => {
  it("runs as its README says: the module's proposals are the steps before each early end, with the other action", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "ultra-example-adviser-")), "run");
    const r = await ultra(
      "train",
      "--env",
      "CartPole-v1",
      "--profile",
      "smoke",
      "--adviser",
      "module:examples/custom-adviser/adviser.mjs",
      "--verify",
      "off",
      "--baselines",
      "continue_ppo",
      "--out",
      out,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("identify (before-the-end)");
    const crit = readJson(join(out, "critical_states.json"));
    expect(crit.adviser).toBe("before-the-end");
    expect(crit.states.length).toBeGreaterThan(0);
    for (const ep of [0, 1]) {
      const reply = readJson(join(out, "identify", `episode-00${ep}.json`));
      const { length, terminated } = reply.request;
      const steps = crit.states.filter((s: { episode: number }) => s.episode === ep).map((s: { step: number }) => s.step);
      expect(steps).toEqual(terminated ? [length - 4, length - 7].filter((s) => s >= 0) : []);
    }
    for (const s of crit.states)
      expect(s).toMatchObject({ reward: 0.5, reason: expect.stringMatching(/steps before the episode ended early/) });
    const m = readJson(join(out, "refined", "progress.json")).modulation.reduce(
      (n: number, x: { overridden_actions: number }) => n + x.overridden_actions,
      0,
    );
    expect(m).toBeGreaterThan(0); // the report's "Modulation" table: the ULTRA arm overrode actions at those states
    expect(readFileSync(join(out, "report.md"), "utf8")).toContain("before-the-end");
  });

  it("a module that is not an adviser is refused, naming what it must export", async () => {
    const r = await ultra(
      "train",
      "--env",
      "CartPole-v1",
      "--profile",
      "smoke",
      "--adviser",
      "module:examples/custom-adviser/README.md",
      "--out",
      join(mkdtempSync(join(tmpdir(), "ultra-example-bad-")), "run"),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/adviser module .*README.md/);
  });
});

describe("examples/new-env", () => {
  const yaml = join(ROOT, "examples", "new-env", "pendulum.yaml");

  it("runs as its README says: the config, its interpreter module and its prompt template are what the run uses", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "ultra-example-env-")), "run");
    const args = ["--env", "examples/new-env/pendulum.yaml", "--profile", "smoke", "--adviser", "rollout", "--baselines", "continue_ppo"];
    const r = await ultra("train", ...args, "--out", out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`run Pendulum-v1 seed 0 → ${out}`);
    expect(r.stderr).toContain("identify (rollout): 2/2 episodes");
    expect(r.stderr).toContain(`report: ${join(out, "report.md")}`);
    // the config was used: the run is named after it and remembers the file
    expect(readJson(join(out, "run.json"))).toMatchObject({ env: "Pendulum", env_id: "Pendulum-v1", env_config: yaml });
    // the prompt: the template beside the YAML (not prompts/generic.md), the episode in the interpreter's words
    const promptFile = join(out, "identify", "episode-000.prompt.md");
    const prompt = readFileSync(promptFile, "utf8");
    expect(prompt).toContain("# The task: Pendulum (Gymnasium Pendulum-v1, swing-up)");
    expect(prompt).not.toContain("No description of this environment is available");
    expect(prompt).toContain("1 torque in [-2, 2] N·m at the pivot (positive turns the pendulum counter-clockwise)"); // actionSemantics
    expect(prompt).toMatch(/angle from upright mean -?[\d.]+, range [\d.]+ to [\d.]+ rad; angular velocity mean/); // keyFeatures
    expect(prompt).toMatch(
      /State: pendulum \d+° from upright \((upright|tilted (counter-)?clockwise)\), tip [+-][\d.]+ m above the pivot; angular velocity [+-][\d.]+ rad\/s, [a-z ]+\. Action: torque [+-][\d.]+ N·m \((counter-)?clockwise\)/,
    ); // describe, describeAction
    expect(prompt).not.toMatch(/obs\[0\]/);
    expect(readFileSync(join(out, "report.md"), "utf8")).toContain("# ULTRA report — Pendulum-v1, seed 0");

    // a phase command in a new process finds the config file and the interpreter module through run.json
    writeFileSync(promptFile, "");
    const again = await ultra("identify", "--run", out);
    expect(again.code, again.stderr).toBe(0);
    expect(readFileSync(promptFile, "utf8")).toContain("# The task: Pendulum (Gymnasium Pendulum-v1, swing-up)");
    expect(readFileSync(promptFile, "utf8")).toMatch(/State: pendulum \d+° from upright/);
  });

  it("a bad interpreter module or prompt path is refused before anything trains, naming the file and what to fix", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ultra-example-env-bad-"));
    const config = readFileSync(yaml, "utf8");
    writeFileSync(join(dir, "interpreter.mjs"), "export default { features: (obs) => ({}), actionSemantics: 'a torque' };\n");
    writeFileSync(join(dir, "pendulum.md"), "# {{envName}}\n");
    writeFileSync(join(dir, "bad-module.yaml"), config.replace(/^name: Pendulum$/m, "name: BadModule"));
    writeFileSync(join(dir, "bad-prompt.yaml"), config.replace("prompt: pendulum.md", "prompt: nowhere.md"));
    const out = join(dir, "run");
    const bad = await ultra("train", "--env", join(dir, "bad-module.yaml"), "--profile", "smoke", "--out", out);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(
      `interpreter module ${join(dir, "interpreter.mjs")} lacks describe (a function), describeAction (a function)`,
    );
    const noPrompt = await ultra("train", "--env", join(dir, "bad-prompt.yaml"), "--profile", "smoke", "--out", out);
    expect(noPrompt.code).toBe(1);
    expect(noPrompt.stderr).toContain(`env config ${join(dir, "bad-prompt.yaml")}: prompt: nowhere.md is not a file`);
    expect(existsSync(out)).toBe(false); // refused before the run directory or a sidecar
  });
});
