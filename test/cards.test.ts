// Candidates mode: cards, menu, per-episode reply schema and the mapping back to steps and actions, on a
// HalfCheetah-shaped episode whose critical steps are planted.
import { describe, expect, it } from "vitest";
import type { SpaceInfo } from "../ts/bridge/ops.js";
import { interpreterFor } from "../ts/describe/envs/index.js";
import {
  actionMenu,
  adviceFromCards,
  applyChange,
  cardsSchema,
  oneDecimal,
  pickCards,
  REASON_CHARS,
  type CardEpisode,
} from "../ts/describe/cards.js";
import { emptyCounts, validateAdvice } from "../ts/ultra/critical.js";
import type { Episode } from "../ts/ultra/episodes.js";
import { grammarSchema } from "../ts/ultra/llm/local.js";
import { candidatesQuery } from "../ts/ultra/phases/identify.js";
import { NDArray } from "../ts/protocol.js";
import { rng } from "../ts/ultra/rng.js";
import { chanceClient } from "../ts/ultra/llm/chance.js";
import { CARDS_DISTINCT } from "../ts/describe/cards.js";

const BOX: SpaceInfo = { type: "Box", shape: [6], low: Array(6).fill(-1), high: Array(6).fill(1) };
const cheetah = interpreterFor("HalfCheetah");

/** n steps; V falls by 5 after step 300 and by 3 after step 700, the reward is -4 at step 500. */
function episode(n = 1000, terminated = false): CardEpisode & Episode {
  const r = rng(3);
  const values = Float32Array.from({ length: n }, (_, t) => 10 - (t > 300 ? 5 : 0) - (t > 700 ? 3 : 0) + 0.01 * r());
  const rewards = Float32Array.from({ length: n }, (_, t) => (t === 500 ? -4 : 1 + 0.1 * r()));
  const obs = Float32Array.from({ length: n * 17 }, () => 0.2 * (r() - 0.5));
  const actions = Float32Array.from({ length: n * 6 }, () => 1.6 * (r() - 0.5));
  return {
    episode: 0,
    length: n,
    return: rewards.reduce((a, b) => a + b, 0),
    terminated,
    obs: new NDArray("float32", [n, 17], obs),
    raw_obs: new NDArray("float32", [n, 17], obs),
    actions: new NDArray("float32", [n, 6], actions),
    rewards: new NDArray("float32", [n], rewards),
    values: new NDArray("float32", [n], values),
    log_probs: new NDArray("float32", [n], new Float32Array(n)),
    snapshots: [],
  } as unknown as CardEpisode & Episode;
}

describe("candidate cards", () => {
  it("show the planted drops, at most k, apart, in time order, with the top value drop marked", () => {
    const cards = pickCards(episode(), { k: 6, minSeparation: 10 });
    expect(cards.length).toBe(6);
    expect(cards.map((c) => c.letter).join("")).toBe("ABCDEF");
    const steps = cards.map((c) => c.step);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    for (let i = 1; i < steps.length; i++) expect(steps[i] - steps[i - 1]).toBeGreaterThanOrEqual(10);
    expect(steps).toContain(300);
    expect(steps).toContain(700);
    expect(steps).toContain(500);
    expect(cards.find((c) => c.step === 300)!.top_value_drop).toBe(true);
    expect(cards.filter((c) => c.top_value_drop)).toHaveLength(1);
    expect(cards.find((c) => c.step === 500)!.kinds).toContain("reward drop");
  });

  it("add the state shortly before an early end, and none for the time limit", () => {
    const ended = pickCards(episode(400, true), { k: 4, minSeparation: 10 });
    expect(ended.find((c) => c.kinds.includes("before the end"))?.step).toBe(389);
    expect(pickCards(episode(400, false), { k: 4, minSeparation: 10 }).some((c) => c.kinds.includes("before the end"))).toBe(false);
  });

  it("turn menu changes into actions: a nudge of one part (clipped), keep = no action, all zero", () => {
    const ep = episode();
    const own = Array.from(ep.actions.row(300) as Float32Array);
    const up = applyChange("back thigh +", ep, 300, BOX, cheetah) as number[];
    expect(up[0]).toBeCloseTo(Math.min(1, own[0] + 0.5), 6);
    expect(up.slice(1)).toEqual(own.slice(1));
    const down = applyChange("front foot -", ep, 300, BOX, cheetah) as number[];
    expect(down[5]).toBeCloseTo(Math.max(-1, own[5] - 0.5), 6);
    expect(applyChange("keep", ep, 300, BOX, cheetah)).toBeNull();
    expect(applyChange("all zero", ep, 300, BOX, cheetah)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(applyChange("tail +", ep, 300, BOX, cheetah)).toBeUndefined();
    const pong = interpreterFor("Pong");
    expect(actionMenu({ type: "Discrete", shape: [], n: 6 }, pong).map((c) => c.id)).toEqual([
      "keep",
      "NOOP",
      "FIRE",
      "RIGHT",
      "LEFT",
      "RIGHTFIRE",
      "LEFTFIRE",
    ]);
  });

  it("build a reply schema that admits only the letters shown and the menu's ids, reason first", () => {
    const ep = episode();
    const cards = pickCards(ep, { k: 4, minSeparation: 10 });
    const menu = actionMenu(BOX, cheetah);
    const schema = cardsSchema(cards, menu, 5) as any;
    const item = schema.properties.critical_states.items;
    expect(Object.keys(item.properties)).toEqual(["reason", "card", "change", "reward"]);
    expect(item.properties.card.enum).toEqual(["A", "B", "C", "D"]);
    expect(item.properties.change.enum).toEqual(menu.map((c) => c.id));
    expect(schema.properties.critical_states.maxItems).toBe(4); // no more entries than cards
    const g = grammarSchema(schema) as any;
    expect(g.properties.critical_states.items.properties.card.enum).toEqual(["A", "B", "C", "D"]);
  });

  it("map a reply back to the cards' steps; a letter not shown is rejected by identify's validation", () => {
    const ep = episode();
    const q = candidatesQuery(ep, "HalfCheetah", { cards: 4, minSeparation: 10, maxCriticalStates: 3, actionSpace: BOX });
    const reply = [
      { reason: "V falls", card: "B", change: "back shin -", reward: 1 },
      { reason: "keep it", card: "C", change: "keep", reward: -0.5 },
      { reason: "made up", card: "Z", change: "keep", reward: 1 },
    ];
    const counts = emptyCounts();
    const states = validateAdvice(q.toAdvice(reply), ep, BOX, "test", counts);
    expect(states.map((s) => s.step)).toEqual([q.cards![1].step, q.cards![2].step]);
    expect(states[0].card).toMatchObject({ letter: "B", change: "back shin -" });
    expect(states[1].action).toBeNull();
    expect(counts.rejected).toBe(1);
    expect(q.prompt.user).toContain("Card D");
    expect(q.prompt.user).not.toContain("Card E");
    expect(q.prompt.user).not.toMatch(/\{\{/);
  });

  it("render each card on one line, numbers at one decimal, the action's parts named once in the menu", () => {
    const ep = episode();
    const q = candidatesQuery(ep, "HalfCheetah", { cards: 6, minSeparation: 10, maxCriticalStates: 3, actionSpace: BOX });
    const lines = q.prompt.user.split("\n").filter((l) => l.startsWith("Card "));
    expect(lines).toHaveLength(6);
    for (const l of lines) {
      expect(l).toMatch(/^Card [A-F], .* at \d+%: V -?\d+\.\d -> -?\d+\.\d, reward [+-]\d+\.\d\. .*\. Action( [+-]\d\.\d){6}\.$/);
      expect(l).not.toMatch(/\d\.\d\d/);
    }
    expect(q.prompt.user).toContain(
      "NAME one of: back thigh, back shin, back foot, front thigh, front shin, front foot (a card's Action: the policy's own 6 numbers, in this order)",
    );
    expect(oneDecimal("velocity +0.25 m/s, pitch -0.04 rad, 3.14159, 2.5")).toBe("velocity +0.3 m/s, pitch 0.0 rad, 3.1, 2.5");
    // the reason is capped, and the prompt says so
    expect((q.schema as any).properties.critical_states.items.properties.reason.maxLength).toBe(REASON_CHARS);
    expect(q.prompt.system).toContain(`at most ${REASON_CHARS} characters`);
  });
});

describe("the chance adviser (an LLM's control in candidates mode)", () => {
  const ep = episode();
  const q = candidatesQuery(ep, "HalfCheetah", { cards: 6, minSeparation: 10, maxCriticalStates: 4, actionSpace: BOX });
  const request = (seed: number) => ({
    prompt: q.prompt,
    schema: q.schema,
    maxTokens: 64,
    temperature: 0.2,
    seed,
    distinct: [...CARDS_DISTINCT],
  });
  const entries = async (seed: number) => JSON.parse((await chanceClient().complete(request(seed))).text).critical_states;

  it("answers with as many entries as the schema allows, distinct cards, every value from the schema's enums", async () => {
    const menu = actionMenu(BOX, cheetah).map((c) => c.id);
    for (const seed of [1, 2, 3]) {
      const e = await entries(seed);
      expect(e).toHaveLength(4);
      expect(new Set(e.map((x: { card: string }) => x.card)).size).toBe(4);
      for (const x of e) {
        expect(["A", "B", "C", "D", "E", "F"]).toContain(x.card);
        expect(menu).toContain(x.change);
        expect([-1, -0.5, 0, 0.5, 1]).toContain(x.reward);
      }
      const states = validateAdvice(q.toAdvice(e), ep, BOX, "chance", emptyCounts());
      expect(states).toHaveLength(4); // identify takes every entry
    }
    expect(await entries(7)).toEqual(await entries(7)); // seeded by the request: a run replays
  });

  it("picks uniformly: over 600 requests each card leads about a sixth of the time", async () => {
    const counts: Record<string, number> = {};
    for (let seed = 0; seed < 600; seed++) {
      const first = (await entries(seed))[0].card as string;
      counts[first] = (counts[first] ?? 0) + 1;
    }
    expect(Object.keys(counts).sort()).toEqual(["A", "B", "C", "D", "E", "F"]);
    for (const n of Object.values(counts)) expect(Math.abs(n - 100)).toBeLessThan(40); // ±4 sd of a binomial(600, 1/6)
  });

  it("refuses a request without choices to pick from (episode mode), saying to use candidates mode", async () => {
    const schema = {
      type: "object",
      properties: { critical_states: { type: "array", items: { properties: { step: { type: "integer" } } } } },
    };
    await expect(chanceClient().complete({ ...request(1), schema })).rejects.toThrow(
      /needs candidates mode: set identify\.mode: candidates/,
    );
  });
});
