// The language-model side of the LLM advisers: one interface for the embedded local model, any
// OpenAI-compatible endpoint, and the reply cache / exact replay that wraps them.
import type { Prompt } from "../../identify/prompts.js";

/** What is sent: the rendered prompt, the JSON schema the reply must follow, and sampling parameters. */
export interface LlmRequest {
  prompt: Prompt;
  /** JSON schema of the reply ({"critical_states": [...]}, with the env's action shape and ranges) */
  schema: Record<string, unknown>;
  maxTokens: number;
  temperature: number;
  seed: number;
}

export interface LlmUsage {
  promptTokens: number;
  completionTokens: number;
  /** estimated cost in USD, when the client knows its price; 0 for local models */
  costUsd: number;
  /** prompt tokens served from an evaluated prefix instead of computed again (local models) */
  cachedPromptTokens?: number;
}

export interface LlmReply {
  /** the raw text the model returned, verbatim */
  text: string;
  usage: LlmUsage;
  /** which model answered (for the cache key and the report) */
  model: string;
  seconds: number;
}

export interface LlmClient {
  /** e.g. "local:SmolLM2-135M-Instruct-Q8_0", "openai:gpt-4o-mini" */
  readonly name: string;
  /** context window in tokens: prompts are summarised to fit it */
  readonly contextTokens: number;
  complete(req: LlmRequest): Promise<LlmReply>;
  close?(): Promise<void>;
}
