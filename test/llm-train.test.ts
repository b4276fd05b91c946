// An LLM adviser through `ultra train`: a stand-in OpenAI-compatible server on 127.0.0.1 answers, then the
// run is replayed from its cache with no server at all, and must give the same critical states and returns.
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readJson as json, ultraWith as ultra } from "./helpers.js";
import { chat, standIn } from "./standin.js";

/** Two good states and two bad ones (a step past the episode, a short action), for every chat completion. */
const REPLY = JSON.stringify({
  critical_states: [
    { step: 12, reason: "the torso pitches up", action: [0.9, -0.9, 0.5, -0.5, 0.3, -0.3], reward: 0.5 },
    { step: 40, reason: "back foot slips", action: [-0.4, 0.4, 0.2, 0.1, -0.2, 1.7], reward: 0.2 },
    { step: 5000, reason: "invented", action: [0, 0, 0, 0, 0, 0], reward: 1 },
    { step: 60, reason: "short", action: [0.1], reward: 0.1 },
  ],
});
const standInTrain = () => standIn(() => chat(REPLY, { prompt_tokens: 1000, completion_tokens: 100 }), 100);

describe("LLM adviser through ultra train", () => {
  it("validates and counts what the LLM proposes, and replays bit-identically without it", async () => {
    const root = mkdtempSync(join(tmpdir(), "ultra-llm-"));
    const server = await standInTrain();
    const live = join(root, "live");
    const r = await ultra(
      { OPENAI_BASE_URL: server.url },
      "train",
      "--env",
      "HalfCheetah",
      "--profile",
      "smoke",
      "--adviser",
      "openai:stand-in",
      "--out",
      live,
    );
    await server.close();
    expect(r.code, r.stderr).toBe(0);
    expect(server.seen.length).toBe(2); // one per episode
    const crit = json(join(live, "critical_states.json"));
    expect(crit.adviser).toBe("openai:stand-in");
    expect(crit.counts).toMatchObject({ proposed: 8, valid: 4, clipped: 2, rejected: 4 });
    expect(crit.counts.rejections).toEqual({ "step does not exist in the episode": 2, "action is not 6 finite numbers": 2 });
    expect(crit.counts.valid).toBe(crit.states.length + crit.counts.unverified);
    expect(readdirSync(join(live, "identify", "cache"))).toHaveLength(2);
    const usage = json(join(live, "run.json")).phases.identify.result.usage;
    expect(usage).toMatchObject({ calls: 2, prompt_tokens: 2000, completion_tokens: 200, cache_misses: 2 });
    expect(readFileSync(join(live, "report.md"), "utf8")).toContain(
      "LLM calls: 2 (0 served from the cache), 2000 prompt + 200 completion tokens",
    );

    const replayed = join(root, "replayed");
    const rr = await ultra(
      { OPENAI_BASE_URL: "http://127.0.0.1:9/v1" },
      "train",
      "--env",
      "HalfCheetah",
      "--profile",
      "smoke",
      "--adviser",
      `replay:${live}`,
      "--out",
      replayed,
    );
    expect(rr.code, rr.stderr).toBe(0);
    expect(readFileSync(join(replayed, "critical_states.json"), "utf8")).toBe(readFileSync(join(live, "critical_states.json"), "utf8"));
    const returns = (dir: string) => Object.values<any>(json(join(dir, "eval.json")).arms).map((a) => a.returns);
    expect(returns(replayed)).toEqual(returns(live));

    const other = await ultra(
      {},
      "train",
      "--env",
      "HalfCheetah",
      "--profile",
      "smoke",
      "--seed",
      "5",
      "--adviser",
      `replay:${live}`,
      "--out",
      join(root, "miss"),
    );
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(
      /has no reply for this request \(key [0-9a-f]{64}, model openai:stand-in, seed \d+, prompt starting ".*"\): the run cannot be replayed without the LLM/,
    );
  }, 300_000);
});

describe("the default adviser: the embedded local LLM", () => {
  it("runs ultra train offline with no --adviser, counts its advice, and replays bit-identically", async () => {
    const root = mkdtempSync(join(tmpdir(), "ultra-local-"));
    const live = join(root, "live");
    const offline = { OPENAI_BASE_URL: "http://127.0.0.1:9/v1", OPENAI_API_KEY: "" };
    // verification off: this test is about what the model picks (verification has its own tests)
    const r = await ultra(offline, "train", "--env", "HalfCheetah", "--profile", "smoke", "--verify", "off", "--out", live);
    expect(r.code, r.stderr).toBe(0);
    expect(json(join(live, "run.json")).settings.adviser).toBe("local");
    const crit = json(join(live, "critical_states.json"));
    expect(crit.adviser).toMatch(/^local:gemma-3-270m/);
    const c = crit.counts;
    expect(c.proposed).toBe(c.valid + c.rejected); // every proposal is either valid or rejected with a reason
    expect(c.valid).toBe(crit.states.length + c.unverified);
    const result = json(join(live, "run.json")).phases.identify.result;
    expect(result.mode).toBe("candidates"); // auto: a local model reads cards
    expect(result.usage.calls).toBe(2); // smoke: 2 episodes, one request each
    expect(result.usage.scored).toBe(2); // scored decoding is the default for candidates mode
    expect(result.usage.prompt_tokens).toBeGreaterThan(1000); // real episode cards went in
    expect(result.usage.prompt_tokens / 2).toBeLessThanOrEqual(2400); // ~390 of them the system prompt
    // the model's picks: accepted, and every accepted step is one of the cards shown for its episode
    expect(crit.states.length).toBeGreaterThan(0);
    for (const s of crit.states) {
      const shown = json(join(live, "identify", `episode-${String(s.episode).padStart(3, "0")}.json`)).cards as {
        letter: string;
        step: number;
      }[];
      expect(shown.find((card) => card.letter === s.card.letter)?.step).toBe(s.step);
    }
    expect(readFileSync(join(live, "report.md"), "utf8")).toMatch(
      /Of the \d+ accepted states picked from cards, \d+ (is|are) the episode's top value-drop card/,
    );
    expect(readFileSync(join(live, "report.md"), "utf8")).toContain(
      `| ${crit.adviser} | ${c.proposed} | ${c.valid} | ${c.clipped} | ${c.rejected} | ${c.unverified} | ${crit.states.length} |`,
    );

    const replayed = join(root, "replayed");
    const rr = await ultra(
      offline,
      "train",
      "--env",
      "HalfCheetah",
      "--profile",
      "smoke",
      "--verify",
      "off",
      "--adviser",
      `replay:${live}`,
      "--out",
      replayed,
    );
    expect(rr.code, rr.stderr).toBe(0);
    expect(readFileSync(join(replayed, "critical_states.json"), "utf8")).toBe(readFileSync(join(live, "critical_states.json"), "utf8"));
    const returns = (dir: string) => Object.values<any>(json(join(dir, "eval.json")).arms).map((a) => a.returns);
    expect(returns(replayed)).toEqual(returns(live));
  }, 600_000);
});
