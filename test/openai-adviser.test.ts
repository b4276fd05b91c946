// The OpenAI-compatible client, the reply cache / replay and the LLM adviser, against a stand-in
// chat-completions server on 127.0.0.1 (real HTTP through the openai SDK).
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { UltraError } from "../ts/bridge/errors.js";
import type { SpaceInfo } from "../ts/bridge/ops.js";
import { LlmAdviser, parseReply } from "../ts/ultra/advisers/llm.js";
import { episodeQuery } from "../ts/ultra/phases/identify.js";
import type { AdviceContext, AdviceResult } from "../ts/ultra/advisers/types.js";
import { emptyCounts, validateAdvice } from "../ts/ultra/critical.js";
import type { Episode } from "../ts/ultra/episodes.js";
import { cacheDir, cachedClient, replayClient, requestKey } from "../ts/ultra/llm/cache.js";
import { llmSlots } from "../ts/ultra/llm/limit.js";
import { openaiClient } from "../ts/ultra/llm/openai.js";
import { replySchema } from "../ts/ultra/llm/schema.js";
import type { LlmRequest } from "../ts/ultra/llm/types.js";
import { mixSeed, rng } from "../ts/ultra/rng.js";
import { chat, closeStandIns, standIn, type Answer, type Handler } from "./standin.js";

afterEach(closeStandIns);

const statesJson = (states: unknown[]) => JSON.stringify({ critical_states: states });
const isRepair = (body: any) => String(body.messages[1].content).includes("## Your previous reply");

const box: SpaceInfo = { type: "Box", shape: [2], low: [-1, -1], high: [1, 1] };
const ep = { episode: 2, length: 50 } as Episode;
const ctx = { actionSpace: box, settings: { identify: { max_critical_states: 3 } }, seed: 7 } as unknown as AdviceContext;
const prompt = { system: "You are the adviser. Reply in JSON.", user: "# Hopper\n\nThe episode: ..." };
const query = episodeQuery(prompt, box, 3);
const client = (url: string, opts: Parameters<typeof openaiClient>[1] = {}) =>
  openaiClient("gpt-4o-mini", { baseURL: url, apiKey: "test-key", ...opts });
const adviser = (url: string, opts: Parameters<typeof openaiClient>[1] = {}) =>
  new LlmAdviser(client(url, opts), { maxTokens: 512, temperature: 0.2 });
const good = [
  { step: 4, reason: "falls", action: [0.5, -0.5], reward: 0.4 },
  { step: 9, reason: "stalls", action: null, reward: -0.5 },
];

describe("openai client", () => {
  it("sends the prompt with a strict json_schema and reads the reply, usage and cost", async () => {
    const s = await standIn(() => chat(statesJson(good)));
    const a = adviser(s.url);
    const res = await a.advise(ep, query, ctx);
    expect(res.advice).toEqual(good);
    expect(s.seen).toHaveLength(1);
    const { body, headers } = s.seen[0];
    expect(headers.authorization).toBe("Bearer test-key");
    expect(body).toMatchObject({
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: prompt.system },
        { role: "user", content: prompt.user },
      ],
      response_format: { type: "json_schema", json_schema: { name: "critical_states", strict: true, schema: replySchema(box, 3) } },
      max_tokens: 512,
      temperature: 0.2,
      seed: mixSeed(7, 2) & 0x7fffffff,
    });
    expect(a.name).toBe("openai:gpt-4o-mini");
    const u = a.usage();
    expect(u).toMatchObject({ calls: 1, prompt_tokens: 100, completion_tokens: 50, repairs: 0, failures: 0 });
    expect(u.cost_usd).toBeCloseTo((100 * 0.15 + 50 * 0.6) / 1e6, 12);
    expect(client(s.url).contextTokens).toBe(128_000);
    expect(openaiClient("my-local-model", { baseURL: s.url }).contextTokens).toBe(8192);
  });

  it("falls back to json_object when the server rejects json_schema, and remembers it", async () => {
    const reject: Answer = {
      status: 400,
      body: { error: { message: "response_format json_schema is not supported", type: "invalid_request_error" } },
    };
    const handler: Handler = (body) => (body.response_format.type === "json_schema" ? reject : chat(statesJson(good)));
    const s = await standIn(handler);
    const a = adviser(s.url);
    expect((await a.advise(ep, query, ctx)).advice).toEqual(good);
    expect((await a.advise(ep, query, ctx)).advice).toEqual(good);
    expect(s.seen.map((r) => r.body.response_format.type)).toEqual(["json_schema", "json_object", "json_object"]);
    // Asked for json_schema only: the rejection is an error.
    const strict = await standIn(handler);
    await expect(client(strict.url, { structured: "json_schema" }).complete(request())).rejects.toThrow(
      /400 response_format json_schema is not supported/,
    );
    expect(strict.seen).toHaveLength(1);
  });

  it("waits as long as a 429's Retry-After says, then succeeds", async () => {
    const s = await standIn((_, n) =>
      n === 0 ? { status: 429, headers: { "retry-after": "1" }, body: { error: { message: "slow down" } } } : chat("{}"),
    );
    const t0 = performance.now();
    const reply = await client(s.url, { maxRetries: 1 }).complete(request());
    expect(reply.text).toBe("{}");
    expect(s.seen).toHaveLength(2);
    expect(s.seen[1].at - s.seen[0].at).toBeGreaterThan(950);
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it("retries a 500", async () => {
    const s = await standIn((_, n) => (n === 0 ? { status: 500, body: { error: { message: "boom" } } } : chat('{"critical_states": []}')));
    expect((await client(s.url, { maxRetries: 1 }).complete(request())).text).toBe('{"critical_states": []}');
    expect(s.seen).toHaveLength(2);
  });

  it("gives up on a server that never answers: a timeout error after the retries", async () => {
    const s = await standIn(() => "hang");
    const t0 = performance.now();
    const err = await client(s.url, { timeoutS: 0.2, maxRetries: 1 })
      .complete(request())
      .catch((e) => e);
    expect(err).toBeInstanceOf(UltraError);
    expect(err.message).toMatch(
      /openai:gpt-4o-mini at http:\/\/127\.0\.0\.1:\d+\/v1: Request timed out.*timeout 0\.2 s per attempt, 1 retries/,
    );
    expect(s.seen).toHaveLength(2);
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it("needs OPENAI_API_KEY for the default endpoint, but not for a local server", () => {
    const saved = { key: process.env.OPENAI_API_KEY, url: process.env.OPENAI_BASE_URL };
    delete process.env.OPENAI_API_KEY;
    delete process.env.OPENAI_BASE_URL;
    try {
      expect(() => openaiClient("gpt-4o-mini")).toThrow(UltraError);
      expect(() => openaiClient("gpt-4o-mini")).toThrow(/set OPENAI_API_KEY/);
      process.env.OPENAI_BASE_URL = "http://127.0.0.1:1/v1";
      expect(openaiClient("llama").name).toBe("openai:llama");
    } finally {
      for (const [k, v] of [
        ["OPENAI_API_KEY", saved.key],
        ["OPENAI_BASE_URL", saved.url],
      ] as const)
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });

  it("keeps to the global concurrency limit", async () => {
    const s = await standIn(() => ({ ...chat("{}"), delayMs: 40 }), 6);
    const before = llmSlots.limit;
    llmSlots.limit = 2;
    try {
      const c = client(s.url);
      await Promise.all(Array.from({ length: 6 }, (_, i) => c.complete({ ...request(), seed: i })));
    } finally {
      llmSlots.limit = before;
    }
    expect(s.seen).toHaveLength(6);
    expect(s.peak()).toBe(2);
  });
});

describe("LLM adviser replies", () => {
  it("asks once to repair a truncated reply, and counts a failure when the repair is not JSON either", async () => {
    const truncated = '{"critical_states": [{"step": 3, "rea';
    const s = await standIn((body) => chat(isRepair(body) ? "Sure! Here are the critical states: step 3." : truncated));
    const a = adviser(s.url);
    const res = await a.advise(ep, query, ctx);
    expect(res.advice).toEqual([]);
    expect(res.reply).toMatchObject({
      texts: [truncated, "Sure! Here are the critical states: step 3."],
      error: expect.stringMatching(/^not valid JSON/),
    });
    expect(s.seen).toHaveLength(2);
    const repairUser: string = s.seen[1].body.messages[1].content;
    expect(repairUser.startsWith(prompt.user)).toBe(true);
    expect(repairUser).toContain(truncated);
    expect(repairUser).toMatch(/not valid JSON/);
    expect(a.usage()).toMatchObject({ calls: 2, prompt_tokens: 200, repairs: 1, failures: 1 });
  });

  it("uses a repaired reply", async () => {
    const s = await standIn((body) => chat(isRepair(body) ? statesJson(good) : '{"states": []}'));
    const a = adviser(s.url);
    const res = await a.advise(ep, query, ctx);
    expect(res.advice).toEqual(good);
    expect(res.request).toMatchObject({ repair: expect.stringContaining("critical_states") });
    expect(a.usage()).toMatchObject({ calls: 2, repairs: 1, failures: 0 });
  });

  it("passes out-of-range states through to validateAdvice, which clips, rejects and counts them", async () => {
    const states = [
      { step: 3, reason: "x", action: [3, -0.5], reward: 0.5 }, // clipped to [1, -0.5]
      { step: 5, reason: "x", action: [0, 0, 0], reward: 0.5 }, // wrong shape
      { step: 80, reason: "x", action: [0, 0], reward: 0.5 }, // past the episode's end
      { step: 3, reason: "x", action: [0, 0], reward: 0.5 }, // named twice
      { step: 7, reason: "x", action: null, reward: -1 },
      "step 12 looks bad",
    ];
    const s = await standIn(() => chat(statesJson(states)));
    const res = await adviser(s.url).advise(ep, query, ctx);
    expect(res.advice).toEqual(states);
    const counts = emptyCounts();
    const accepted = validateAdvice(res.advice, ep, box, "openai:gpt-4o-mini", counts);
    expect(accepted.map((c) => [c.step, c.action])).toEqual([
      [3, [1, -0.5]],
      [7, null],
    ]);
    expect(counts).toMatchObject({ proposed: 6, valid: 2, clipped: 1, rejected: 4 });
    expect(counts.rejections).toEqual({
      "action is not 2 finite numbers": 1,
      "step does not exist in the episode": 1,
      "step named twice": 1,
      "not a {step, reason, action, reward} object": 1,
    });
  });

  it("survives 1,000 malformed replies: each is repaired or counted as a failure", async () => {
    // [reply, does it hold a {"critical_states": [...]} object?], labelled by hand.
    const garbage: [string, boolean][] = [
      ["", false],
      ["not json", false],
      ["{", false],
      ['{"critical_states": [', false],
      ['{"states": []}', false],
      ["[]", false],
      ["null", false],
      ["42", false],
      ['{"critical_states": "none"}', false],
      ['{"critical_states": {"step": 1}}', false],
      ['```json\n{"critical_states": [\n```', false],
      ["\u0000\uffff\u00e9{}}", false],
      ['{"critical_states": [{"step": "three"}, 7, null]}', true],
      ['```json\n{"critical_states": [{"step": 1, "reason": "x", "action": [9, 9], "reward": 0.1}]}\n```', true],
      ['{"critical_states": [{"step": 1e999, "action": [0, 0]}]}', true],
      ['  {"critical_states": []}\n', true],
    ];
    const random = rng(1);
    const served = { first: [0, 0], repair: [0, 0] }; // [invalid, valid]
    const s = await standIn((body) => {
      const [text, ok] = garbage[Math.floor(random() * garbage.length)];
      served[isRepair(body) ? "repair" : "first"][ok ? 1 : 0]++;
      return chat(text, { prompt_tokens: 1, completion_tokens: 1 });
    }, 2000);
    const a = adviser(s.url);
    const results: AdviceResult[] = await Promise.all(Array.from({ length: 1000 }, (_, i) => a.advise({ ...ep, episode: i }, query, ctx)));
    const counts = emptyCounts();
    for (const [i, r] of results.entries()) validateAdvice(r.advice, { ...ep, episode: i }, box, a.name, counts);
    const u = a.usage();
    expect(served.first[0] + served.first[1]).toBe(1000);
    expect(u.repairs).toBe(served.first[0]);
    expect(served.repair[0] + served.repair[1]).toBe(u.repairs);
    expect(u.failures).toBe(served.repair[0]);
    expect(u.calls).toBe(s.seen.length);
    expect(results.filter((r) => (r.reply as { error?: string }).error).length).toBe(u.failures);
    expect(u.failures).toBeGreaterThan(0);
    expect(u.repairs - u.failures).toBeGreaterThan(0); // some were repaired
    expect(counts.proposed).toBe(results.reduce((n, r) => n + r.advice.length, 0));
    expect(counts.proposed).toBeGreaterThan(0);
    expect(counts.valid + counts.rejected).toBe(counts.proposed);
  });

  it("parses only {critical_states: [...]}, tolerating a Markdown fence", () => {
    expect(parseReply('```json\n{"critical_states": [1]}\n```')).toEqual({ states: [1] });
    expect(parseReply('{"critical_states": [1]}')).toEqual({ states: [1] });
    expect(parseReply('{"critical_states": 1}')).toHaveProperty("error");
    expect(parseReply("Here: {}")).toHaveProperty("error");
  });
});

function request(over: Partial<LlmRequest> = {}): LlmRequest {
  return { prompt, schema: replySchema(box, 3), maxTokens: 256, temperature: 0, seed: 1, ...over };
}

describe("reply cache and replay", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const runDir = () => {
    const d = mkdtempSync(join(tmpdir(), "ultra-cache-"));
    dirs.push(d);
    return d;
  };

  it("keys requests by content, whatever the key order", () => {
    const a = request({ schema: { type: "object", required: ["x"] } });
    const b = request({ schema: { required: ["x"], type: "object" } });
    expect(requestKey("openai:m", a)).toBe(requestKey("openai:m", b));
    expect(requestKey("openai:m", a)).not.toBe(requestKey("openai:n", a));
    expect(requestKey("openai:m", a)).not.toBe(requestKey("openai:m", { ...a, seed: 2 }));
    expect(requestKey("openai:m", a)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("asks the server once for the same request, and stores request and reply verbatim", async () => {
    const run = runDir();
    const s = await standIn(() => chat(statesJson(good)));
    const c = cachedClient(client(s.url), cacheDir(run));
    const first = await c.complete(request());
    const again = await c.complete(request());
    expect(s.seen).toHaveLength(1);
    expect(again.text).toBe(first.text);
    expect(again.usage.costUsd).toBe(0); // nothing spent on a hit
    expect([c.hits, c.misses]).toEqual([1, 1]);
    const file = join(cacheDir(run), `${requestKey("openai:gpt-4o-mini", request())}.json`);
    expect(JSON.parse(readFileSync(file, "utf8"))).toMatchObject({
      model: "openai:gpt-4o-mini",
      context_tokens: 128_000,
      request: request(),
      reply: first,
    });
    await c.complete(request({ seed: 2 }));
    expect([c.hits, c.misses, s.seen.length]).toEqual([1, 2, 2]);
  });

  it("replays a run with the server down; a request it never saw is an error naming it", async () => {
    const run = runDir();
    const s = await standIn(() => chat(statesJson(good)));
    const live = await new LlmAdviser(cachedClient(client(s.url), cacheDir(run)), { maxTokens: 512, temperature: 0.2 }).advise(
      ep,
      query,
      ctx,
    );
    await s.close();
    const replay = replayClient(run);
    expect(replay.name).toBe("openai:gpt-4o-mini"); // the replayed run records the original adviser
    expect(replay.contextTokens).toBe(128_000);
    const again = await new LlmAdviser(replay, { maxTokens: 512, temperature: 0.2 }).advise(ep, query, ctx);
    expect(again.advice).toEqual(live.advice);
    expect(again.reply).toEqual(live.reply);
    const other = { ...ep, episode: 3 };
    const seed = mixSeed(7, 3) & 0x7fffffff;
    const err = await new LlmAdviser(replay, { maxTokens: 512, temperature: 0.2 }).advise(other, query, ctx).catch((e) => e);
    expect(err).toBeInstanceOf(UltraError);
    const key = requestKey("openai:gpt-4o-mini", { prompt, schema: replySchema(box, 3), maxTokens: 512, temperature: 0.2, seed });
    expect(err.message).toContain(`key ${key}`);
    expect(err.message).toContain("model openai:gpt-4o-mini");
    expect(err.message).toContain('prompt starting "# Hopper"');
    expect(err.message).toMatch(/cannot be replayed without the LLM/);
    expect(() => replayClient(runDir())).toThrow(/has no LLM replies to replay/);
    expect(existsSync(cacheDir(run))).toBe(true);
  });
});
