// Candidates mode of identification, for small models: instead of the whole episode, a short overview and at most
// K lettered cards (the steps where V or the reward fell most, and the state before an early end), each in
// physical units with V before and after. The reply schema is built per episode, so a card can only be one of
// the letters shown and an action one of a menu of changes to the policy's own action: nothing is typed as a
// step number or a float, which is what a 270M model gets wrong (docs/local-llm.md).
import type { SpaceInfo } from "../bridge/ops.js";
import { num, signed } from "./format.js";
import type { StateInterpreter } from "./envs/types.js";
import type { NDArray } from "../protocol.js";
import { largestDrops } from "./drops.js";

export type CardKind = "value drop" | "reward drop" | "before the end";

export interface Card {
  letter: string;
  step: number;
  kinds: CardKind[];
  /** V(s_step), V(s_step+1) (NaN after the last step) and the step's reward */
  v_before: number;
  v_after: number;
  reward: number;
  /** the card of the episode's largest one-step value drop: what the rollout adviser would pick first */
  top_value_drop: boolean;
}

/** One entry of the action menu: an id the reply names, and what it does. */
export interface Change {
  id: string;
  text: string;
}

/** The parts of an Episode the cards read. */
export interface CardEpisode {
  length: number;
  return: number;
  terminated: boolean;
  raw_obs: NDArray;
  ram?: NDArray;
  actions: NDArray;
  rewards: NDArray<Float32Array>;
  values: NDArray<Float32Array>;
}

const LETTERS = "ABCDEFGH";
export const MAX_CARDS = LETTERS.length;
/** A menu change moves one action dimension by this share of its half-range (0.5 on [-1, 1]). */
export const NUDGE = 0.5;
/** The rewards a reply may give, in units of one typical step's reward of the base policy. */
export const CARD_REWARDS = [-1, -0.5, 0, 0.5, 1] as const;

/**
 * At most k cards, at least `minSeparation` steps apart, in time order (so the letter says nothing about rank):
 * the state `minSeparation` steps before an early end (while an action can still matter), up to a quarter of
 * the cards for the lowest rewards, the rest for the largest value drops.
 */
export function pickCards(ep: CardEpisode, opts: { k: number; minSeparation: number }): Card[] {
  const k = Math.min(opts.k, MAX_CARDS);
  const sep = Math.max(1, opts.minSeparation);
  const n = ep.length;
  const values = ep.values.data;
  const rewards = ep.rewards.data;
  const picked = new Map<number, Set<CardKind>>();
  const free = (t: number) => [...picked.keys()].every((s) => Math.abs(s - t) >= sep);
  const add = (t: number, kind: CardKind) => {
    const near = [...picked.keys()].find((s) => Math.abs(s - t) < sep);
    if (near !== undefined) picked.get(near)!.add(kind);
    else if (picked.size < k) picked.set(t, new Set([kind]));
  };
  if (ep.terminated && n > 1) add(Math.max(0, n - 1 - sep), "before the end");
  const drops = largestDrops(values, { k: n, minSeparation: sep });
  const top = drops[0]?.step;
  if (top !== undefined) add(top, "value drop");
  const byReward = Array.from({ length: n }, (_, t) => t).sort((a, b) => rewards[a] - rewards[b] || a - b);
  const median = [...rewards].sort((a, b) => a - b)[Math.floor(n / 2)] ?? 0;
  let rewardCards = 0;
  for (const t of byReward) {
    if (rewardCards >= Math.max(1, Math.floor(k / 4)) || !(rewards[t] < median)) break;
    if (free(t)) {
      add(t, "reward drop");
      rewardCards++;
    }
  }
  for (const d of drops.slice(1)) {
    if (picked.size >= k) break;
    if (free(d.step)) add(d.step, "value drop");
  }
  return [...picked.entries()]
    .sort(([a], [b]) => a - b)
    .map(([step, kinds], i) => ({
      letter: LETTERS[i],
      step,
      kinds: [...kinds],
      v_before: values[step],
      v_after: step + 1 < n ? values[step + 1] : NaN,
      reward: rewards[step],
      top_value_drop: step === top,
    }));
}

const row = (a: NDArray, t: number): ArrayLike<number> => (a.shape.length > 1 ? (a.row(t) as ArrayLike<number>) : [Number(a.data[t])]);
const ownAction = (ep: CardEpisode, t: number, space: SpaceInfo): number[] | number =>
  space.type === "Discrete" ? Number(ep.actions.data[t]) : Array.from(row(ep.actions, t), Number);

/** The menu of actions: "keep" (the policy's own, reward only), then per-dimension nudges of the policy's own
 * action (Box) or each action by name (Discrete). Ids are what the reply writes, so they are short words. */
export function actionMenu(space: SpaceInfo, interp: StateInterpreter): Change[] {
  const keep = { id: "keep", text: "keep the policy's own action (only the reward applies)" };
  if (space.type === "Discrete")
    return [
      keep,
      ...Array.from({ length: space.n! }, (_, a) => ({ id: interp.actionNames?.[a] ?? `action ${a}`, text: interp.describeAction(a) })),
    ];
  const dim = space.shape.reduce((a, b) => a * b, 1);
  const names = Array.from({ length: dim }, (_, i) => interp.actionNames?.[i] ?? `action ${i}`);
  const half = (i: number) => ((space.high?.[i] ?? 1) - (space.low?.[i] ?? -1)) / 2;
  return [
    keep,
    ...names.flatMap((name, i) => [
      { id: `${name} +`, text: `the policy's action with ${name} raised by ${num(NUDGE * half(i))}` },
      { id: `${name} -`, text: `the policy's action with ${name} lowered by ${num(NUDGE * half(i))}` },
    ]),
    { id: "all zero", text: "every action component 0 (no torque)" },
  ];
}

/** The action a menu change makes of the policy's own action at `step` (null: keep), or undefined for an id not in the menu. */
export function applyChange(
  id: string,
  ep: CardEpisode,
  step: number,
  space: SpaceInfo,
  interp: StateInterpreter,
): number[] | number | null | undefined {
  const menu = actionMenu(space, interp);
  const at = menu.findIndex((c) => c.id === id);
  if (at < 0) return undefined;
  if (at === 0) return null;
  if (space.type === "Discrete") return at - 1;
  const own = ownAction(ep, step, space) as number[];
  const lo = (i: number) => space.low?.[i] ?? -Infinity;
  const hi = (i: number) => space.high?.[i] ?? Infinity;
  const clip = (x: number, i: number) => Math.min(hi(i), Math.max(lo(i), x));
  if (id === "all zero") return own.map((_, i) => clip(0, i));
  const dim = Math.floor((at - 1) / 2);
  const sign = (at - 1) % 2 === 0 ? 1 : -1;
  return own.map((x, i) => clip(i === dim ? clip(x, i) + sign * NUDGE * ((hi(i) - lo(i)) / 2) : x, i));
}

const brief = (interp: StateInterpreter, obs: ArrayLike<number>, ram?: ArrayLike<number>) =>
  interp.brief ? interp.brief(obs, ram) : interp.describe(obs, ram).split("; ")[0];

/** Numbers of two or more decimals in `text` at one (a sign kept): a small model's tokenizer spends a token on each
 * digit, and the cards need no more precision than the menu's nudge of 0.5. */
export const oneDecimal = (text: string) =>
  text.replace(/([+-]?)(\d+\.\d{2,})/g, (_, sign: string, x: string) => (sign === "+" ? signed(Number(x), 1) : num(Number(sign + x), 1)));

/** The policy's action on a card: a Discrete action by name; a Box action as its numbers at one decimal (a menu
 * nudge is 0.5 of a half-range), in the order the menu names the parts once for all cards. */
function actionText(interp: StateInterpreter, a: number[] | number): string {
  if (typeof a === "number") return interp.actionNames?.[a] ?? `action ${a}`;
  return a.map((x) => signed(x, 1)).join(" ");
}

/** The menu as the prompt shows it: Box nudges as one line for all parts, Discrete actions one per line. */
export function renderMenu(menu: Change[], space: SpaceInfo, interp: StateInterpreter): string {
  if (space.type === "Discrete") return menu.map((c) => `- "${c.id}": ${c.text}`).join("\n");
  const dim = space.shape.reduce((a, b) => a * b, 1);
  const names = Array.from({ length: dim }, (_, i) => interp.actionNames?.[i] ?? `action ${i}`);
  const size = num(NUDGE * (((space.high?.[0] ?? 1) - (space.low?.[0] ?? -1)) / 2));
  return [
    `- "keep": ${menu[0].text}`,
    `- "NAME +" or "NAME -": the policy's action with that one part raised or lowered by ${size}, NAME one of: ${names.join(", ")} (a card's Action: the policy's own ${dim} numbers, in this order)`,
    `- "all zero": ${menu[menu.length - 1].text}`,
  ].join("\n");
}

/** The cards as the prompt shows them, one line each: they are most of what differs from episode to episode,
 * and every token of it is evaluated again for each episode (docs/local-llm.md), so the wording is terse. */
export function renderCards(cards: Card[], ep: CardEpisode, space: SpaceInfo, interp: StateInterpreter): string {
  return cards
    .map((c) => {
      const t = c.step;
      const v = Number.isNaN(c.v_after) ? `V ${num(c.v_before, 1)} (last step)` : `V ${num(c.v_before, 1)} -> ${num(c.v_after, 1)}`;
      return (
        `Card ${c.letter}, ${c.kinds.join(", ")} at ${Math.round((100 * t) / ep.length)}%: ${v}, reward ${signed(c.reward, 1)}. ` +
        `${oneDecimal(brief(interp, row(ep.raw_obs, t), ep.ram ? row(ep.ram, t) : undefined))}. Action ${actionText(interp, ownAction(ep, t, space))}.`
      );
    })
    .join("\n");
}

/** The cards with their content blanked ("Card A: N/A"): the content-free input of contextual calibration
 * (Zhao et al. 2021, "Calibrate before use"), which measures the choices a small model makes by position alone. */
export function renderBlankCards(cards: Card[]): string {
  return cards.map((c) => `Card ${c.letter}: N/A`).join("\n");
}

/** A few lines on the whole episode: length, return, how it ended, V, and per quarter the return and the key
 * features' means (at one decimal, as the cards). */
export function renderOverview(ep: CardEpisode, interp: StateInterpreter): string {
  const n = ep.length;
  const end = ep.terminated ? "ended early: the env's termination condition (see Episode end)" : "ended by the time limit";
  const lines = [
    `${interp.name} episode of ${n} steps, return ${num(ep.return, 1)}, ${end}. V ${num(ep.values.data[0], 1)} at the start, ${num(ep.values.data[n - 1], 1)} at the last step.`,
  ];
  const quarters = [0, 1, 2, 3].map((q) => [Math.floor((q * n) / 4), Math.floor(((q + 1) * n) / 4)]).filter(([a, b]) => b > a);
  const ret = quarters.map(([a, b]) =>
    num(
      ep.rewards.data.slice(a, b).reduce((s, r) => s + r, 0),
      1,
    ),
  );
  const per = [`return ${ret.join(", ")}`];
  for (const key of interp.keyFeatures.filter((f) => f.summary !== "last")) {
    const means = quarters.map(([a, b]) => {
      let s = 0;
      for (let t = a; t < b; t++) s += interp.features(row(ep.raw_obs, t), ep.ram ? row(ep.ram, t) : undefined)[key.name];
      return num(s / (b - a), Math.min(key.digits ?? 1, 1));
    });
    per.push(`${key.label}${key.unit ? ` (${key.unit})` : ""} mean ${means.join(", ")}`);
  }
  lines.push(`Per quarter of the episode: ${per.join("; ")}.`);
  return lines.join("\n");
}

/** The longest reason a reply may give (characters). */
export const REASON_CHARS = 60;

/** The reply fields whose value differs from entry to entry ("each a different card"): LlmRequest.distinct. */
export const CARDS_DISTINCT = ["card"] as const;

/** The reply schema of one episode: letters of the cards shown, ids of the menu, a reward from CARD_REWARDS; the
 * reason comes first, so a model writes what it sees before it chooses. */
export function cardsSchema(cards: Card[], menu: Change[], maxStates: number): Record<string, unknown> {
  const item = {
    type: "object",
    properties: {
      // terse: a small local model generates it token by token (the choices after it are scored), ~4 characters a token
      reason: { type: "string", maxLength: REASON_CHARS },
      card: { type: "string", enum: cards.map((c) => c.letter) },
      change: { type: "string", enum: menu.map((c) => c.id) },
      reward: { type: "number", enum: [...CARD_REWARDS] },
    },
    required: ["reason", "card", "change", "reward"],
    additionalProperties: false,
  };
  return {
    type: "object",
    properties: { critical_states: { type: "array", items: item, minItems: 1, maxItems: Math.max(1, Math.min(maxStates, cards.length)) } },
    required: ["critical_states"],
    additionalProperties: false,
  };
}

/** A reply's entries as identify's advice ({step, reason, action, reward} plus the card): a letter not shown
 * becomes step -1 and a change not in the menu an invalid action, so validateAdvice rejects and counts them. */
export function adviceFromCards(items: unknown[], cards: Card[], ep: CardEpisode, space: SpaceInfo, interp: StateInterpreter): unknown[] {
  return items.map((raw) => {
    const it = (raw ?? {}) as { reason?: unknown; card?: unknown; change?: unknown; reward?: unknown };
    const card = cards.find((c) => c.letter === it.card);
    if (!card) return { step: -1, reason: String(it.reason ?? ""), action: null, reward: it.reward };
    const action = applyChange(String(it.change), ep, card.step, space, interp);
    // a scored reply writes no reason (LocalClientOptions.reasons): say what was chosen instead
    const reason = String(it.reason ?? "") || `card ${card.letter} (${card.kinds.join(", ")}), ${String(it.change)}`;
    return {
      step: card.step,
      reason,
      action: action === undefined ? [NaN] : action,
      reward: it.reward,
      card: { letter: card.letter, kinds: card.kinds, top_value_drop: card.top_value_drop, change: String(it.change) },
    };
  });
}
