// The runnable examples (examples/*/README.md): each README's command, and what it says you should see.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
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
