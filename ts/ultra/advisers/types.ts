// The adviser interface of the identification phase: one episode in, its critical states out.
import type { SpaceInfo } from "../../bridge/ops.js";
import type { SidecarClient } from "../../bridge/client.js";
import type { EnvConfig } from "../../config.js";
import type { Card } from "../../describe/cards.js";
import type { Prompt } from "../../describe/prompts.js";
import type { Episode } from "../episodes.js";
import type { Settings } from "../settings.js";

export type { CriticalStateAdvice } from "../critical.js";

export interface AdviceContext {
  sc: SidecarClient;
  /** the base policy, loaded in the sidecar */
  model: string;
  /** an env with one sub-env per counterfactual candidate (frozen normalisation) */
  counterfactualEnv: string;
  actionSpace: SpaceInfo;
  cfg: EnvConfig;
  settings: Settings;
  seed: number;
}

/** What an LLM adviser is asked about one episode, in either identification mode: `episode` (the paper's: the
 * whole episode as text, free step numbers and actions) or `candidates` (lettered cards and an action menu,
 * for small models; ts/describe/cards.ts). */
export interface EpisodeQuery {
  mode: IdentifyMode;
  prompt: Prompt;
  /** the reply's JSON schema */
  schema: Record<string, unknown>;
  /** a reply's critical_states entries as advice ({step, reason, action, reward}), for validateAdvice */
  toAdvice(items: unknown[]): unknown[];
  /** candidates mode: the cards shown */
  cards?: Card[];
  /** candidates mode: the same prompt with the episode and the cards' content blanked, for a client that calibrates
   * its choices (the local client's scored decoding) */
  calibration?: Prompt;
}

export type IdentifyMode = "episode" | "candidates";

export interface AdviceResult {
  /** what was asked and what came back, verbatim, for identify/episode-NNN.json */
  request: unknown;
  reply: unknown;
  advice: unknown[];
}

export interface Adviser {
  readonly name: string;
  /** an LLM's context window in tokens: episode texts are summarised to fit it */
  readonly contextTokens?: number;
  /** tokens, cost and reply failures so far, for run.json and the report */
  usage?(): Record<string, number>;
  /** `query`: the episode rendered from prompts/ with its reply schema (LLM advisers send it; the rollout adviser does not need it). */
  advise(episode: Episode, query: EpisodeQuery, ctx: AdviceContext): Promise<AdviceResult>;
  /** free what the adviser holds (a local model's memory) */
  close?(): Promise<void>;
}
