// Prompt templates (prompts/) rendered by ts/describe/prompts.ts. The golden files under test/golden/ are the
// reviewed prompts for a fixed small episode; UPDATE_GOLDEN=1 rewrites them, otherwise they must match.
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { interpreterFor } from "../ts/describe/envs/index.js";
import { actionSpaceText, PROMPTS_DIR, renderPrompt, renderTemplate, type Prompt } from "../ts/describe/prompts.js";
import { summarizeEpisode } from "../ts/describe/summarize.js";
import { ROOT } from "../ts/paths.js";

const GOLDEN = join(ROOT, "test", "golden");
const asText = (p: Prompt) => `===== system =====\n${p.system}\n===== user =====\n${p.user}\n`;

function expectGolden(name: string, text: string) {
  const file = join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN === "1") writeFileSync(file, text);
  expect(existsSync(file), `${file} is missing: run with UPDATE_GOLDEN=1 once, then review it`).toBe(true);
  expect(text).toBe(readFileSync(file, "utf8"));
}

/** 30 steps of a cheetah that trips at step 17: speed and pitch go wrong, V drops. */
function cheetahEpisode() {
  const n = 30;
  const rawObs = Array.from({ length: n }, (_, t) =>
    Array.from({ length: 17 }, (_, i) => {
      if (i === 8) return t < 18 ? 2.5 + 0.05 * t : 1.2;
      if (i === 1) return t < 18 ? 0.05 : 0.05 + 0.2 * (t - 17);
      return Math.round(100 * 0.2 * Math.sin(t / 3 + i)) / 100;
    }),
  );
  const actions = Array.from({ length: n }, (_, t) => Array.from({ length: 6 }, (_, i) => Math.round(100 * Math.cos(t / 4 + i)) / 100));
  const rewards = rawObs.map((o) => o[8] - 0.25);
  const values = Array.from({ length: n }, (_, t) => (t <= 17 ? 150 - 0.1 * t : 120 - 0.2 * t));
  return { rawObs, actions, rewards, values };
}

/** 24 Pong steps: the ball comes toward the agent below its paddle, the paddle goes up, the point is lost. */
function pongEpisode() {
  const n = 24;
  const ram = Array.from({ length: n }, (_, t) => {
    const r = new Array(128).fill(0);
    Object.assign(r, {
      13: t >= 22 ? 4 : 3,
      14: 2,
      50: 90 + t,
      51: 130 - 2 * t,
      49: Math.min(205, 100 + 5 * t),
      54: t >= 22 ? 0 : 150 + t,
    });
    return r;
  });
  const rawObs = Array.from({ length: n }, () => new Array(4).fill(0)); // stands in for frames: Pong reads the RAM
  const actions = Array.from({ length: n }, (_, t) => (t < 6 ? 0 : 2));
  const rewards = Array.from({ length: n }, (_, t) => (t === 21 ? -1 : 0));
  const values = Array.from({ length: n }, (_, t) => (t <= 8 ? 0.3 : t <= 15 ? -0.2 : -0.7));
  return { rawObs, actions, rewards, values, ram };
}

const boxSpace = (dim: number) => ({ type: "Box", shape: [dim], low: new Array(dim).fill(-1), high: new Array(dim).fill(1) });

describe("prompts", () => {
  it("HalfCheetah: the rendered prompt matches its golden file", () => {
    const ep = summarizeEpisode(cheetahEpisode(), interpreterFor("HalfCheetah"), { maxChars: 3000 });
    expect(ep.topDrops[0].step).toBe(17);
    const p = renderPrompt("HalfCheetah", { episode: ep.text, maxCriticalStates: 3, actionSpace: actionSpaceText(boxSpace(6)) });
    expectGolden("halfcheetah.prompt.txt", asText(p));
  });

  it("Pong: the rendered prompt matches its golden file", () => {
    const ep = summarizeEpisode(pongEpisode(), interpreterFor("Pong"), { maxChars: 3000 });
    const p = renderPrompt("Pong", {
      episode: ep.text,
      maxCriticalStates: 2,
      actionSpace: actionSpaceText({ type: "Discrete", shape: [], n: 6 }),
    });
    expectGolden("pong.prompt.txt", asText(p));
  });

  it("a missing variable is an error that names it", () => {
    const vars = { episode: "e", maxCriticalStates: 3, actionSpace: "a" };
    for (const k of ["episode", "maxCriticalStates", "actionSpace"] as const) {
      const { [k]: _, ...rest } = vars;
      expect(() => renderPrompt("Hopper", rest as typeof vars)).toThrow(`prompt variable "${k}" is missing`);
    }
    expect(() => renderPrompt("Hopper", { ...vars, maxCriticalStates: 0 })).toThrow(/"maxCriticalStates" must be a positive integer/);
  });

  it("an unknown placeholder is an error that names it and its file", () => {
    expect(() => renderTemplate("Goal: {{goal}}", { episode: "x" }, "prompts/x.md")).toThrow("prompts/x.md: unknown placeholder {{goal}}");
    expect(() => renderTemplate("a {{ episode", { episode: "x" }, "prompts/x.md")).toThrow(/does not open a \{\{name\}\} placeholder/);
    const dir = mkdtempSync(join(tmpdir(), "ultra-prompts-"));
    cpSync(PROMPTS_DIR, dir, { recursive: true });
    writeFileSync(join(dir, "hopper.md"), "# Hopper\n{{healthyRange}}\n");
    expect(() => renderPrompt("Hopper", { episode: "e", maxCriticalStates: 3, actionSpace: "a" }, { dir })).toThrow(
      "prompts/hopper.md: unknown placeholder {{healthyRange}}",
    );
  });

  it("inserted text is not scanned for placeholders", () => {
    expect(renderTemplate("[{{episode}}]", { episode: "{{notAVariable}}" }, "t")).toBe("[{{notAVariable}}]");
  });

  it("every env renders its own goal, reward terms and termination, with nothing left unfilled", () => {
    const facts: Record<string, string[]> = {
      HalfCheetah: ["0.1 * (sum of the squared torques)", "never ends early", "6 torques in [-1, 1]: back thigh"],
      Hopper: ["not above 0.7 m", "strictly between -0.2 and 0.2 rad", "healthy_reward = 1", "0.001 * (sum of the squared torques)"],
      Walker2d: ["strictly between 0.8 and 2.0 m", "strictly between -1 and 1 rad", "right thigh, right leg, right foot, left thigh"],
      Reacher: ["-1.0 * (distance from the fingertip to the target", "50 steps", "2 torques in [-1, 1]: shoulder"],
      Pong: ["+1 when the opponent misses the ball, -1 when the agent misses it", "reaches 21 points", "2 RIGHT (move paddle up)"],
      SparseHopper: ["if it is beyond 0.6 m, else 0", "not above 0.7 m"],
      SparseWalker2d: ["if it is beyond 0.6 m, else 0", "strictly between 0.8 and 2.0 m"],
      SparseHalfCheetah: ["if it is beyond 5 m, else 0", "never ends early"],
      "CartPole-v1": ["No description of this environment is available", "not described for this env"],
    };
    for (const [env, expected] of Object.entries(facts)) {
      const p = renderPrompt(env, { episode: "EPISODE-TEXT", maxCriticalStates: 4, actionSpace: "ACTION-FORMAT" });
      for (const f of expected) expect(p.user, env).toContain(f);
      expect(p.user, env).toContain("EPISODE-TEXT");
      expect(p.user, env).toContain("Write an action as ACTION-FORMAT.");
      expect(p.system, env).toContain("as ACTION-FORMAT.");
      expect(p.system, env).toContain("At most 4 entries");
      expect(p.system + p.user, env).not.toContain("{{");
    }
  });

  it("action spaces read as the reply format needs them", () => {
    expect(actionSpaceText(boxSpace(3))).toBe("a JSON list of 3 numbers, each in [-1, 1]");
    expect(actionSpaceText({ type: "Discrete", shape: [], n: 6 })).toBe("an integer from 0 to 5");
    expect(actionSpaceText({ type: "Box", shape: [2], low: [0, -2], high: [1, 2] })).toBe(
      "a JSON list of 2 numbers, number i in [low[i], high[i]] with low = [0, -2] and high = [1, 2]",
    );
  });
});
