// `ultra bench llm --run DIR`: the embedded model on a run's recorded episodes, per identification mode: the
// prompt identify would send (the run's own settings), the reply, its tokens and seconds, and whether it is
// valid advice. The prompts are built exactly as identify builds them, and each mode's episodes go one after
// another, as in a run, so the client's reused prefix counts as it would there.
import { existsSync, readdirSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { UltraError } from "../errors.js";
import type { SpaceInfo } from "../bridge/ops.js";
import { envSpec, resolveEnv, runEnv } from "../config.js";
import { loadInterpreter } from "../describe/envs/index.js";
import { llmRequest, parseReply } from "../ultra/advisers/llm.js";
import type { EpisodeQuery, IdentifyMode } from "../ultra/advisers/types.js";
import { emptyCounts, validateAdvice, type AdviceCounts } from "../ultra/critical.js";
import type { Episode } from "../ultra/episodes.js";
import { localClient } from "../ultra/llm/local.js";
import { candidatesQuery, episodeFile, episodePrompt, episodeQuery } from "../ultra/phases/identify.js";
import { RunDir } from "../ultra/rundir.js";
import { log } from "../progress.js";
import { defineCommand, printJson } from "../commands/common.js";
import { startedSidecar, writeResult } from "./common.js";

export interface LlmBenchOptions {
  /** a run directory whose identify phase recorded trajectories/episode-NNN.msgpack */
  run: string;
  episodes: number;
  modes: IdentifyMode[];
  /** localClient's spec: "" = the embedded default model, a name, or a .gguf path */
  model?: string;
  /** episode mode's text budget; default the run's identify.prompt_chars */
  promptChars?: number;
}

export interface LlmBenchRow {
  mode: IdentifyMode;
  episode: number;
  prompt_tokens: number;
  /** of prompt_tokens, reused from the previous prompt's evaluated prefix */
  cached_prompt_tokens: number;
  completion_tokens: number;
  seconds: number;
  /** the reply parsed as {"critical_states": [...]} */
  parsed: boolean;
  /** validateAdvice's counts for this reply */
  counts: Pick<AdviceCounts, "proposed" | "valid" | "clipped" | "rejected">;
  /** parsed, and no entry rejected */
  valid: boolean;
  /** how the client made the reply ("score": choices from the model's probabilities; "grammar": generated) */
  decoding?: "grammar" | "score";
  /** scored: the model's evaluations, tokens sampled one at a time, and the seconds of the first (the prompt's) */
  evaluations?: number;
  sampled_tokens?: number;
  prompt_seconds?: number;
  /** candidates mode: the letters the reply picked, in its order */
  picked?: string[];
  /** scored candidates mode: the first entry's card probabilities, normalised over the letters shown */
  first_card?: Record<string, number>;
  /** the 1-minute load average when the reply came (other work on the machine slows the model) */
  load_1min?: number;
}

/** The goals of issue 12: a candidates reply within 6 s once the shared prefix is evaluated; an episode-mode
 * prompt within 4000 tokens. */
export const LLM_GOALS = { candidates_seconds_after_first: 6, episode_prompt_tokens: 4000 };

/** What identify reads from run.json's settings (older runs may lack a key: the defaults are configs/ultra.yaml's). */
interface RunSettings {
  identify?: { max_critical_states?: number; min_separation?: number; prompt_chars?: number; cards?: number };
  llm?: { max_tokens?: number; temperature?: number };
}

/** A recorded episode as identify held it; files written before raw_obs and terminated were stored lack them. */
function readEpisode(run: RunDir, i: number): Episode {
  const ep = run.readMessage<Episode & { raw_obs?: Episode["raw_obs"]; terminated?: boolean }>(episodeFile(i));
  return { ...ep, episode: i, raw_obs: ep.raw_obs ?? ep.obs, terminated: ep.terminated ?? false, snapshots: [] };
}

/** The env's action space, from the sidecar (run.json does not record it). */
async function actionSpaceOf(envName: string): Promise<SpaceInfo> {
  return startedSidecar({}, async (sc) => {
    const { env, action_space } = await sc.call("env_make", { spec: envSpec(resolveEnv(envName), { seed: 0, training: false, nEnvs: 1 }) });
    await sc.call("close", { handle: env });
    return action_space;
  });
}

export async function benchLlm(o: LlmBenchOptions) {
  const run = new RunDir(o.run);
  if (!existsSync(join(o.run, "run.json"))) throw new UltraError(`${o.run} is not a run directory (no run.json): pass --run DIR of a run whose identify phase finished`);
  const record = run.record;
  const recorded = existsSync(join(o.run, "trajectories")) ? readdirSync(join(o.run, "trajectories")).filter((f) => /^episode-\d{3}\.msgpack$/.test(f)).length : 0;
  if (recorded < o.episodes) throw new UltraError(`${o.run} has ${recorded} recorded episodes, fewer than --episodes ${o.episodes}: run its identify phase first, or ask for fewer`);
  const s = record.settings as RunSettings;
  const id = { max_critical_states: 5, min_separation: 10, prompt_chars: 12000, cards: 6, ...s.identify };
  const llm = { max_tokens: 1024, temperature: 0.2, ...s.llm };
  const promptChars = o.promptChars ?? id.prompt_chars;
  await loadInterpreter(runEnv(record)); // an env from a config file of your own: its config and interpreter module
  const actionSpace = await actionSpaceOf(record.env);
  const episodes = Array.from({ length: o.episodes }, (_, i) => readEpisode(run, i));
  const opts = { minSeparation: id.min_separation, maxCriticalStates: id.max_critical_states, actionSpace };
  const query = (ep: Episode, mode: IdentifyMode): EpisodeQuery =>
    mode === "candidates"
      ? candidatesQuery(ep, record.env, { ...opts, cards: id.cards })
      : episodeQuery(episodePrompt(ep, record.env, { ...opts, maxChars: promptChars }).prompt, actionSpace, id.max_critical_states);

  const load = [os.loadavg()[0]];
  const client = await localClient(o.model);
  const rows: LlmBenchRow[] = [];
  try {
    for (const mode of o.modes)
      for (const ep of episodes) {
        const q = query(ep, mode);
        const reply = await client.complete(llmRequest(q, ep.episode, record.seed, { maxTokens: llm.max_tokens, temperature: llm.temperature }));
        const parsed = parseReply(reply.text);
        const counts = emptyCounts();
        if ("states" in parsed) validateAdvice(q.toAdvice(parsed.states), ep, actionSpace, client.name, counts);
        const { proposed, valid, clipped, rejected } = counts;
        const row: LlmBenchRow = {
          mode,
          episode: ep.episode,
          prompt_tokens: reply.usage.promptTokens,
          cached_prompt_tokens: reply.usage.cachedPromptTokens ?? 0,
          completion_tokens: reply.usage.completionTokens,
          seconds: reply.seconds,
          parsed: "states" in parsed,
          counts: { proposed, valid, clipped, rejected },
          valid: "states" in parsed && rejected === 0,
          ...(reply.decoding ? { decoding: reply.decoding.method } : {}),
          ...(reply.decoding?.method === "score" ? { evaluations: reply.decoding.evaluations, sampled_tokens: reply.decoding.sampled_tokens, prompt_seconds: reply.decoding.prompt_seconds } : {}),
          ...(mode === "candidates" && "states" in parsed ? { picked: parsed.states.map((x) => String((x as { card?: unknown })?.card)) } : {}),
          ...(reply.decoding?.choices?.[0] ? { first_card: reply.decoding.choices.find((c) => c.field.endsWith(".card"))?.options } : {}),
          load_1min: os.loadavg()[0],
        };
        rows.push(row);
        log(`llm ${mode} episode ${ep.episode}: ${row.prompt_tokens} prompt tokens (${row.cached_prompt_tokens} reused), ${row.completion_tokens} completion, ${row.seconds.toFixed(1)} s (load ${os.loadavg()[0].toFixed(2)}), ${row.valid ? "valid" : "INVALID"} (${proposed} proposed, ${rejected} rejected)${row.decoding ? `, ${row.decoding}` : ""}${row.evaluations ? ` (${row.prompt_seconds?.toFixed(1)} s prompt, ${row.evaluations} evaluations, ${row.sampled_tokens} sampled)` : ""}${row.picked ? ` [${row.picked.join("")}]` : ""}`);
      }
  } finally {
    await client.close?.();
  }
  load.push(os.loadavg()[0]);
  return { run: o.run, env: record.env, model: client.name, episodes: o.episodes, prompt_chars: promptChars, settings: { identify: id, llm }, load_1min: { before: load[0], after: load[1] }, rows, ...llmSummary(rows) };
}

/** Per mode: the largest prompt, the first episode's seconds and the slowest after it, valid replies; and the goals. */
export function llmSummary(rows: LlmBenchRow[]) {
  const modes: Record<string, { max_prompt_tokens: number; first_seconds: number; max_seconds_after_first: number | null; valid: number; replies: number }> = {};
  for (const mode of new Set(rows.map((r) => r.mode))) {
    const of = rows.filter((r) => r.mode === mode);
    const later = of.slice(1).map((r) => r.seconds);
    modes[mode] = {
      max_prompt_tokens: Math.max(...of.map((r) => r.prompt_tokens)),
      first_seconds: of[0].seconds,
      max_seconds_after_first: later.length ? Math.max(...later) : null,
      valid: of.filter((r) => r.valid).length,
      replies: of.length,
    };
  }
  const c = modes.candidates?.max_seconds_after_first;
  const e = modes.episode?.max_prompt_tokens;
  const met = {
    candidates_seconds_after_first: c === undefined || c === null ? null : c <= LLM_GOALS.candidates_seconds_after_first,
    episode_prompt_tokens: e === undefined ? null : e <= LLM_GOALS.episode_prompt_tokens,
  };
  return { modes, goals: LLM_GOALS, met };
}

/** The table the command prints. */
export function formatLlmRows(rows: LlmBenchRow[]): string {
  const head = "mode        episode  prompt  reused  completion  seconds  valid (proposed/rejected)";
  return [
    head,
    ...rows.map((r) =>
      [r.mode.padEnd(10), String(r.episode).padStart(7), String(r.prompt_tokens).padStart(7), String(r.cached_prompt_tokens).padStart(7), String(r.completion_tokens).padStart(11), r.seconds.toFixed(1).padStart(8), `  ${r.valid ? "yes" : "no"} (${r.counts.proposed}/${r.counts.rejected})`].join(" "),
    ),
  ].join("\n");
}

export const llmBench = defineCommand(
  "llm",
  "the embedded model on a run's recorded episodes, per identification mode: prompt, reused and completion tokens, seconds, valid replies",
  (b) =>
    b
      .option("run", {
        type: "string",
        demandOption: true,
        describe: "a run directory whose identify phase recorded episodes (trajectories/)",
      })
      .option("episodes", { type: "number", default: 2 })
      .option("modes", { type: "string", default: "candidates,episode", describe: "identification modes, in this order" })
      .option("model", {
        type: "string",
        default: "",
        describe: "a GGUF path or an embedded model's name (default: the embedded default)",
      })
      .option("prompt-chars", { type: "number", describe: "episode mode's text budget (default: the run's identify.prompt_chars)" })
      .option("json", { type: "string", describe: "write the result to this file too" }),
  async (a) => {
    const modes = a.modes.split(",").map((m) => {
      if (m !== "candidates" && m !== "episode") throw new UltraError(`--modes takes candidates and/or episode, got "${m}"`);
      return m;
    });
    const r = await benchLlm({ run: a.run, episodes: a.episodes, modes, model: a.model, promptChars: a.promptChars });
    log(formatLlmRows(r.rows));
    const goals = Object.entries(r.met).map(
      ([k, v]) => `${k} ≤ ${r.goals[k as keyof typeof r.goals]}: ${v === null ? "not measured" : v ? "met" : "NOT met"}`,
    );
    log(
      `llm ${r.model} on ${r.env}: ${goals.join("; ")} (1-min load ${r.load_1min.before.toFixed(1)} before, ${r.load_1min.after.toFixed(1)} after)`,
    );
    printJson(writeResult(`llm-${r.env.replace(/\W+/g, "_")}`, r, a));
  },
);
