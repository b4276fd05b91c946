// The language-model side of the LLM advisers: one interface for the embedded local model, any
// OpenAI-compatible endpoint, and the reply cache / exact replay that wraps them.
import type { Prompt } from "../../describe/prompts.js";

/** What is sent: the rendered prompt, the JSON schema the reply must follow, and sampling parameters. */
export interface LlmRequest {
  prompt: Prompt;
  /** JSON schema of the reply ({"critical_states": [...]}, with the env's action shape and ranges) */
  schema: Record<string, unknown>;
  maxTokens: number;
  temperature: number;
  seed: number;
  /** fields of the reply's critical_states entries whose value must differ from entry to entry (candidates mode:
   * the card); a client that can hold a reply to it does (the local client's scored decoding), others leave it
   * to identify's validation, which rejects a repeat */
  distinct?: string[];
  /** a content-free version of the prompt (candidates mode: the episode and cards blanked): a client that picks
   * choices from the model's probabilities divides them by the probabilities this prompt gets (contextual
   * calibration), so a choice made by position alone (a small model's "A") does not win by default */
  calibration?: Prompt;
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
  /** how the reply was made, where the client says (the local client) */
  decoding?: LlmDecoding;
}

/** One choice among a schema's enum values (or, for an array, whether to add another entry), made from the
 * model's next-token probabilities. */
export interface LlmChoice {
  /** where in the reply, e.g. "critical_states[1].card"; "critical_states[1]" for "another entry or stop" */
  field: string;
  /** each option's probability, normalised over the options allowed here; options whose tokens agree up to where
   * the model was asked share one entry ("0 | 0.5"), and their split further on is not recorded */
  options: Record<string, number>;
  picked: string;
  /** calibrated choices: the model's own probabilities (options are these divided by `prior`, renormalised) */
  raw?: Record<string, number>;
  /** calibrated choices: the probabilities the content-free prompt got (LlmRequest.calibration) */
  prior?: Record<string, number>;
}

/** How a local model wrote the reply: `grammar`, generated token by token under the schema's grammar; `score`, the
 * JSON's fixed parts written by the client, its strings generated, and every enum picked from the model's
 * probabilities of the options (sampled at the request's temperature). */
export interface LlmDecoding {
  method: "grammar" | "score";
  /** `score`: the choices, in reply order */
  choices?: LlmChoice[];
  /** `score`: tokens sampled one decoding step at a time (the strings); the rest of the reply was evaluated in batches */
  sampled_tokens?: number;
  /** `score`: the model's evaluations (calls), each one batch: the first evaluates the prompt's new tokens */
  evaluations?: number;
  /** `score`: seconds of the first evaluation (the prompt's tokens after the reused prefix, and the reply's first) */
  prompt_seconds?: number;
  /** `score`: whether the choices were calibrated against LlmRequest.calibration, and the seconds that cost (0 when
   * an earlier request's calibration was reused) */
  calibrated?: boolean;
  calibration_seconds?: number;
}

export interface LlmClient {
  /** e.g. "local:SmolLM2-135M-Instruct-Q8_0", "openai:gpt-4o-mini" */
  readonly name: string;
  /** context window in tokens: prompts are summarised to fit it */
  readonly contextTokens: number;
  complete(req: LlmRequest): Promise<LlmReply>;
  close?(): Promise<void>;
}
