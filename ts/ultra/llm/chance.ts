// `chance`: the control for an LLM adviser in candidates mode. It answers the request a model would get (the same
// cards, action menu and reply schema) by picking every choice uniformly at random, seeded by the request, and as
// many entries as the schema allows (what the embedded model picks nearly always). Identify and verification then
// treat its picks as a model's: a model's choices carry judgement only where they do better than these.
import { UltraError } from "../../errors.js";
import { rng } from "../rng.js";
import type { LlmClient, LlmReply, LlmRequest } from "./types.js";

type Property = { enum?: unknown[] };

export function chanceClient(): LlmClient {
  return {
    name: "chance",
    contextTokens: 1 << 20, // reads nothing: never summarise a prompt for it
    async complete(req: LlmRequest): Promise<LlmReply> {
      const list = (req.schema.properties as Record<string, { items?: { properties?: Record<string, Property> }; maxItems?: number }>)
        ?.critical_states;
      const fields = Object.entries(list?.items?.properties ?? {});
      if (!fields.some(([, p]) => Array.isArray(p.enum)))
        throw new UltraError(
          "the chance adviser picks among cards and an action menu, so it needs candidates mode: set identify.mode: candidates",
        );
      const draw = rng(req.seed);
      const used = new Map<string, Set<unknown>>();
      const states = Array.from({ length: list?.maxItems ?? 1 }, () =>
        Object.fromEntries(
          fields.map(([k, p]) => {
            if (!Array.isArray(p.enum)) return [k, ""]; // the reason: there is none
            const seen = used.get(k) ?? used.set(k, new Set()).get(k)!;
            const options = req.distinct?.includes(k) ? p.enum.filter((v) => !seen.has(v)) : p.enum;
            const v = options[Math.floor(draw() * options.length)];
            seen.add(v);
            return [k, v];
          }),
        ),
      );
      return {
        text: JSON.stringify({ critical_states: states }),
        usage: { promptTokens: 0, completionTokens: 0, costUsd: 0 },
        model: "chance",
        seconds: 0,
      };
    },
  };
}
