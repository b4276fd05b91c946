// The LLM adviser: sends the episode's prompt with the reply schema to any LlmClient and reads back
// {"critical_states": [...]}. A reply that is not that object gets one repair request (the reply and what is
// wrong with it); if that fails too, the episode gets no advice and the failure is counted, never thrown.
// The states themselves are not checked here: identify's validateAdvice clips, rejects and counts them.
import { z } from "zod";
import type { Prompt } from "../../describe/prompts.js";
import type { Episode } from "../episodes.js";
import type { CachedClient } from "../llm/cache.js";
import type { LlmClient, LlmReply, LlmRequest } from "../llm/types.js";
import { mixSeed } from "../rng.js";
import { CARDS_DISTINCT } from "../../describe/cards.js";
import type { AdviceContext, AdviceResult, Adviser, EpisodeQuery } from "./types.js";

export interface LlmAdviserOptions {
  maxTokens: number;
  temperature: number;
}

/** What the adviser spent and how its replies went, for run.json. */
export type AdviserUsage = {
  calls: number;
  prompt_tokens: number;
  /** of prompt_tokens, those a local model reused from the previous prompt's evaluated prefix */
  cached_prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number;
  seconds: number;
  /** replies that were not the JSON object, so a repair was asked for */
  repairs: number;
  /** episodes left without advice because the repair failed too */
  failures: number;
  /** replies whose choices the local model scored from its probabilities (LlmReply.decoding "score"), not generated */
  scored: number;
};

const Reply = z.object({ critical_states: z.array(z.unknown()) });

/** The critical_states of a reply, or why there are none. A surrounding Markdown fence is tolerated. */
export function parseReply(text: string): { states: unknown[] } | { error: string } {
  const body = text.trim().replace(/^```(?:json)?\s*([\s\S]*?)\s*```$/, "$1");
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (e) {
    return { error: `not valid JSON (${(e as Error).message})` };
  }
  const r = Reply.safeParse(json);
  return r.success ? { states: r.data.critical_states } : { error: `not a {"critical_states": [...]} object: ${z.prettifyError(r.error)}` };
}

const repairPrompt = (p: Prompt, reply: string, error: string): Prompt => ({
  system: p.system,
  user:
    `${p.user}\n\n## Your previous reply\n\n${reply}\n\n## What is wrong with it\n\n${error}\n\n` +
    `Reply again with only the JSON object {"critical_states": [...]} described above, nothing before or after it.`,
});

/** What an LLM is asked about episode `episode` of a run seeded `seed` (identify, and `ultra bench llm`). */
export function llmRequest(
  query: EpisodeQuery,
  episode: number,
  seed: number,
  llm: { maxTokens: number; temperature: number },
): LlmRequest {
  return {
    prompt: query.prompt,
    schema: query.schema,
    maxTokens: llm.maxTokens,
    temperature: llm.temperature,
    seed: mixSeed(seed, episode) & 0x7fffffff, // some servers read the seed as a signed 32-bit int
    // each entry a different card (the prompt says so); a client that can hold the reply to it does
    ...(query.mode === "candidates" ? { distinct: [...CARDS_DISTINCT] } : {}),
    ...(query.calibration ? { calibration: query.calibration } : {}),
  };
}

export class LlmAdviser implements Adviser {
  readonly name: string;
  private readonly totals: AdviserUsage = {
    calls: 0,
    prompt_tokens: 0,
    cached_prompt_tokens: 0,
    completion_tokens: 0,
    cost_usd: 0,
    seconds: 0,
    repairs: 0,
    failures: 0,
    scored: 0,
  };

  constructor(
    private readonly client: LlmClient,
    private readonly opts: LlmAdviserOptions,
  ) {
    this.name = client.name;
  }

  get contextTokens(): number {
    return this.client.contextTokens;
  }

  usage(): AdviserUsage & { cache_hits?: number; cache_misses?: number } {
    const cache = this.client as Partial<CachedClient>;
    return { ...this.totals, ...(cache.hits === undefined ? {} : { cache_hits: cache.hits, cache_misses: cache.misses }) };
  }

  async advise(ep: Episode, query: EpisodeQuery, ctx: AdviceContext): Promise<AdviceResult> {
    const { prompt } = query;
    const req = llmRequest(query, ep.episode, ctx.seed, this.opts);
    const request: Record<string, unknown> = {
      client: this.client.name,
      seed: req.seed,
      max_tokens: req.maxTokens,
      temperature: req.temperature,
    };
    const first = await this.ask(req);
    const texts = [first.text];
    // how each reply was made, where the client says (the local model: generated under a grammar, or scored)
    const decoding = first.decoding ? [first.decoding] : [];
    let parsed = parseReply(texts[0]);
    if ("error" in parsed) {
      this.totals.repairs++;
      request.repair = parsed.error;
      const again = await this.ask({ ...req, prompt: repairPrompt(prompt, texts[0], parsed.error) });
      texts.push(again.text);
      if (again.decoding) decoding.push(again.decoding);
      parsed = parseReply(texts[1]);
    }
    const how = decoding.length ? { decoding } : {};
    if ("error" in parsed) {
      this.totals.failures++;
      return { request, reply: { texts, ...how, error: parsed.error }, advice: [] };
    }
    return { request, reply: { texts, ...how }, advice: query.toAdvice(parsed.states) };
  }

  async close(): Promise<void> {
    await this.client.close?.();
  }

  private async ask(req: LlmRequest): Promise<LlmReply> {
    const reply = await this.client.complete(req);
    const t = this.totals;
    t.calls++;
    t.prompt_tokens += reply.usage.promptTokens;
    t.cached_prompt_tokens += reply.usage.cachedPromptTokens ?? 0;
    t.completion_tokens += reply.usage.completionTokens;
    t.cost_usd += reply.usage.costUsd;
    t.seconds += reply.seconds;
    if (reply.decoding?.method === "score") t.scored++;
    return reply;
  }
}
