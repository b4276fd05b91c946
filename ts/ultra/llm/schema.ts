// The JSON schema of an adviser's reply, with the env's action shape and ranges. It keeps to what strict
// structured outputs accept (every property required, no additional properties); what it cannot say
// (per-dimension ranges) identify's validateAdvice still checks.
import type { SpaceInfo } from "../../bridge/ops.js";
import type { CriticalStateAdvice } from "../critical.js";

function actionSchema(space: SpaceInfo): Record<string, unknown> {
  if (space.type === "Discrete") return { type: "integer", minimum: 0, maximum: space.n! - 1 };
  const dim = space.shape.reduce((a, b) => a * b, 1);
  const low = Math.min(...(space.low ?? [-Infinity]));
  const high = Math.max(...(space.high ?? [Infinity]));
  const item = Number.isFinite(low) && Number.isFinite(high) ? { type: "number", minimum: low, maximum: high } : { type: "number" };
  return { type: "array", items: item, minItems: dim, maxItems: dim };
}

export function replySchema(space: SpaceInfo, maxStates: number): Record<string, unknown> {
  // an entry is a CriticalStateAdvice, every key required (what strict structured outputs need)
  const properties = {
    step: { type: "integer", minimum: 0 },
    reason: { type: "string" },
    // null: no better action, only a reward (e.g. a state to learn not to reach)
    action: { anyOf: [actionSchema(space), { type: "null" }] },
    reward: { type: "number", minimum: -1, maximum: 1 },
  } satisfies Record<keyof CriticalStateAdvice, object>;
  const state = { type: "object", properties, required: Object.keys(properties), additionalProperties: false };
  return {
    type: "object",
    properties: { critical_states: { type: "array", items: state, maxItems: maxStates } },
    required: ["critical_states"],
    additionalProperties: false,
  };
}
