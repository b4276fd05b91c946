// Phase 2, identification: roll out the base policy with snapshots, ask the adviser for each episode's
// critical states (with a suggested action and a reward), validate and count what it proposes.
import { makeAdviser } from "../advisers/index.js";
import type { Adviser } from "../advisers/types.js";
import { emptyCounts, validateAdvice, type CriticalState, type CriticalStatesFile } from "../critical.js";
import { collectEpisodes } from "../episodes.js";
import { interpreterFor } from "../../envs/index.js";
import { actionSpaceText, renderPrompt } from "../../identify/prompts.js";
import { summarizeEpisode } from "../../identify/summarize.js";
import { randomStates, storeStates, type StateStore } from "../modulation.js";
import { verifyAdvice } from "../verify.js";
import { progressBar, log } from "../../progress.js";
import { loadModel, specFor, type RunContext } from "../context.js";

export const episodeFile = (i: number) => `trajectories/episode-${String(i).padStart(3, "0")}.msgpack`;
const identifyFile = (i: number, ext: string) => `identify/episode-${String(i).padStart(3, "0")}.${ext}`;

export async function identify(ctx: RunContext): Promise<Record<string, unknown>> {
  const { run, settings, sc, cfg } = ctx;
  const adviser = await makeAdviser(settings.adviser, settings, run.root, ctx.llmCache);
  try {
    return await identifyWith(ctx, adviser);
  } finally {
    await adviser.close?.();
  }
}

async function identifyWith(ctx: RunContext, adviser: Adviser): Promise<Record<string, unknown>> {
  const { run, settings, sc, cfg } = ctx;
  // an LLM's context (~3 characters a token, a quarter kept for the instructions and the reply) bounds the episode text
  const promptChars = Math.min(settings.identify.prompt_chars, adviser.contextTokens ? Math.floor(adviser.contextTokens * 3 * 0.75) : Infinity);
  const interp = interpreterFor(cfg.name);
  // One sub-env: episodes come one at a time, so only one episode's per-step snapshots are held (Atari's are large).
  const { env, model, actionSpace } = await loadModel(ctx, "base", { training: false, nEnvs: 1, seedOffset: 1000 });
  const candidates = actionSpace.type === "Discrete" ? actionSpace.n! : settings.rollout_adviser.candidates;
  const { env: counterfactualEnv } = await sc.call("env_make", { spec: specFor(ctx, "base", { training: false, nEnvs: candidates }) });
  const counts = emptyCounts();
  const states: CriticalState[] = [];
  const random: CriticalState[] = [];
  const store: StateStore = {};
  const returns: number[] = [];
  const bar = progressBar(`identify (${adviser.name})`, settings.identify.episodes, "episodes");
  for (let i = 0; i < settings.identify.episodes; i++) {
    const [collected] = await collectEpisodes(sc, { model, env, episodes: 1, deterministic: settings.identify.deterministic });
    const ep = { ...collected, episode: i };
    const { snapshots: _, raw_obs, ...stored } = ep;
    run.writeMessage(episodeFile(i), raw_obs === ep.obs ? stored : { ...stored, raw_obs }); // no copy of obs twice
    returns.push(ep.return);
    // The episode in words, as an LLM adviser reads it (kept for every adviser, so runs can be compared).
    const { text } = summarizeEpisode(ep, interp, { maxChars: promptChars, minSeparation: settings.identify.min_separation });
    const prompt = renderPrompt(cfg.name, { episode: text, maxCriticalStates: settings.identify.max_critical_states, actionSpace: actionSpaceText(actionSpace) });
    run.write(identifyFile(i, "prompt.md"), `# system\n\n${prompt.system}\n\n# user\n\n${prompt.user}\n`);
    const adviceCtx = { sc, model, counterfactualEnv, actionSpace, cfg, settings, seed: ctx.seed };
    const res = await adviser.advise(ep, prompt, adviceCtx);
    const valid = validateAdvice(res.advice, ep, actionSpace, adviser.name, counts);
    const accepted = settings.verify ? await verifyAdvice(valid, ep, adviceCtx, candidates, counts) : valid;
    run.writeJson(identifyFile(i, "json"), { adviser: adviser.name, request: res.request, reply: res.reply, accepted });
    // The random-critical baseline gets as many states from the same episode, at random steps.
    const picked = randomStates(accepted.length, ep, ctx.seed);
    storeStates([...accepted, ...picked], ep, store);
    states.push(...accepted);
    random.push(...picked);
    bar.update(i + 1, { critical: states.length });
  }
  bar.stop();
  for (const h of [counterfactualEnv, model, env]) await sc.call("close", { handle: h });
  const file: CriticalStatesFile = { env_id: cfg.env_id, adviser: adviser.name, counts, states };
  run.writeJson("critical_states.json", file);
  run.writeJson("identify/random_states.json", random);
  run.writeMessage("identify/states.msgpack", store);
  log(`identify: returns of the base policy ${returns.map((r) => r.toFixed(1)).join(", ")}`);
  log(`identify: ${states.length} critical states accepted (${counts.proposed} proposed, ${counts.clipped} clipped, ${counts.rejected} rejected, ${counts.unverified} failed verification)`);
  return { episodes: returns.length, critical_states: states.length, counts, ...(adviser.usage ? { usage: adviser.usage() } : {}) };
}
