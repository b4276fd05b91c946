// Any OpenAI-compatible chat-completions endpoint: OpenAI itself, or vLLM, llama.cpp's server, Ollama...
// (OPENAI_BASE_URL). The SDK retries 429/5xx/timeouts with backoff and honours Retry-After; this adds the
// reply schema (strict json_schema, or json_object where a server rejects it), usage and cost.
import OpenAI from "openai";
import { UltraError } from "../../errors.js";
import { llmSlots } from "./limit.js";
import type { LlmClient, LlmReply, LlmRequest } from "./types.js";

export interface OpenAIOptions {
  baseURL?: string;
  apiKey?: string;
  /** per attempt */
  timeoutS?: number;
  maxRetries?: number;
  /** "auto": json_schema, falling back to json_object (remembered) when the server rejects it */
  structured?: "auto" | "json_schema" | "json_object";
  /** USD per million tokens; known OpenAI models have a default, anything else costs 0 */
  pricePerMTokens?: { input: number; output: number };
  /** the model's context window; known models have a default, anything else 8192 */
  contextTokens?: number;
}

interface Known {
  price: { input: number; output: number };
  context: number;
}

// Published list prices (USD per 1M tokens), an estimate only: pass pricePerMTokens to override.
const KNOWN: Record<string, Known> = {
  "gpt-4o": { price: { input: 2.5, output: 10 }, context: 128_000 },
  "gpt-4o-mini": { price: { input: 0.15, output: 0.6 }, context: 128_000 },
  "gpt-4.1": { price: { input: 2, output: 8 }, context: 1_047_576 },
  "gpt-4.1-mini": { price: { input: 0.4, output: 1.6 }, context: 1_047_576 },
  "gpt-4.1-nano": { price: { input: 0.1, output: 0.4 }, context: 1_047_576 },
  "gpt-5": { price: { input: 1.25, output: 10 }, context: 400_000 },
  "gpt-5-mini": { price: { input: 0.25, output: 2 }, context: 400_000 },
  "gpt-5-nano": { price: { input: 0.05, output: 0.4 }, context: 400_000 },
  "o4-mini": { price: { input: 1.1, output: 4.4 }, context: 200_000 },
};

/** The longest known name the model starts with, so dated snapshots (gpt-4o-mini-2024-07-18) match. */
function known(model: string): Known | undefined {
  const name = Object.keys(KNOWN)
    .filter((k) => model === k || model.startsWith(`${k}-`))
    .sort((a, b) => b.length - a.length)[0];
  return name ? KNOWN[name] : undefined;
}

// Reasoning models take max_completion_tokens and only their default temperature.
const isReasoning = (model: string) => /^(o\d|gpt-5)/.test(model);

/** A 400 that says the server does not do json_schema response formats. */
const rejectsSchema = (e: unknown) => e instanceof OpenAI.BadRequestError && /response_format|json_schema/i.test(e.message);

export function openaiClient(model: string, opts: OpenAIOptions = {}): LlmClient {
  const name = `openai:${model}`;
  const baseURL = opts.baseURL ?? process.env.OPENAI_BASE_URL;
  const apiKey = opts.apiKey ?? process.env.OPENAI_API_KEY;
  if (!apiKey && !baseURL)
    throw new UltraError(
      `${name}: no API key: set OPENAI_API_KEY (or OPENAI_BASE_URL for a local OpenAI-compatible server: vLLM, llama.cpp, Ollama)`,
    );
  const timeoutS = opts.timeoutS ?? 120;
  const maxRetries = opts.maxRetries ?? 3;
  // Local servers ignore the key, but the SDK insists on one.
  const sdk = new OpenAI({ apiKey: apiKey || "none", baseURL, timeout: Math.round(timeoutS * 1000), maxRetries });
  const info = known(model);
  const price = opts.pricePerMTokens ?? info?.price ?? { input: 0, output: 0 };
  let mode: "json_schema" | "json_object" = opts.structured === "json_object" ? "json_object" : "json_schema";

  const create = (req: LlmRequest) =>
    sdk.chat.completions.create({
      model,
      messages: [
        { role: "system", content: req.prompt.system },
        { role: "user", content: req.prompt.user },
      ],
      response_format:
        mode === "json_schema"
          ? { type: "json_schema", json_schema: { name: "critical_states", schema: req.schema, strict: true } }
          : { type: "json_object" },
      ...(isReasoning(model) ? { max_completion_tokens: req.maxTokens } : { max_tokens: req.maxTokens, temperature: req.temperature }),
      seed: req.seed,
    });

  async function complete(req: LlmRequest): Promise<LlmReply> {
    const t0 = performance.now();
    try {
      let res;
      try {
        res = await create(req);
      } catch (e) {
        if (opts.structured === "json_schema" || mode !== "json_schema" || !rejectsSchema(e)) throw e;
        mode = "json_object"; // for good: this server will not take a schema
        res = await create(req);
      }
      const msg = res.choices[0]?.message;
      const promptTokens = res.usage?.prompt_tokens ?? 0;
      const completionTokens = res.usage?.completion_tokens ?? 0;
      return {
        text: msg?.content ?? msg?.refusal ?? "",
        usage: { promptTokens, completionTokens, costUsd: (promptTokens * price.input + completionTokens * price.output) / 1e6 },
        model: res.model || model,
        seconds: (performance.now() - t0) / 1000,
      };
    } catch (e) {
      if (!(e instanceof OpenAI.APIError)) throw e;
      const hint =
        e instanceof OpenAI.APIConnectionTimeoutError
          ? ` (timeout ${timeoutS} s per attempt, ${maxRetries} retries)`
          : e instanceof OpenAI.AuthenticationError
            ? " (check OPENAI_API_KEY)"
            : "";
      throw new UltraError(`${name} at ${sdk.baseURL}: ${e.message}${hint}`, { cause: e });
    }
  }

  return {
    name,
    contextTokens: opts.contextTokens ?? info?.context ?? 8192,
    complete: (req) => llmSlots.run(() => complete(req)),
  };
}
