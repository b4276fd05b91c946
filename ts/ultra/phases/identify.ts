// Phase 2, identification: roll out the base policy with snapshots, ask the adviser for each episode's
// critical states (with a suggested action and a reward), validate and count what it proposes.
import { makeAdviser } from "../advisers/index.js";
import type { Adviser } from "../advisers/types.js";
import { emptyCounts, validateAdvice, type CriticalState, type CriticalStatesFile, type Radius } from "../critical.js";
import { collectEpisodes, type Episode } from "../episodes.js";
import type { SpaceInfo } from "../../bridge/ops.js";
import { interpreterFor } from "../../envs/index.js";
import { actionSpaceText, renderPrompt, type Prompt } from "../../identify/prompts.js";
import { summarizeEpisode, type EpisodeSummary } from "../../identify/summarize.js";
import { calibrateRadius, randomStates, storeStates, type StateStore } from "../modulation.js";
import type { NDArray } from "../../protocol.js";
import { verifyAdvice } from "../verify.js";
import { progressBar, log } from "../../progress.js";
import { loadModel, specFor, type RunContext } from "../context.js";

export const episodeFile = (i: number) => `trajectories/episode-${String(i).padStart(3, "0")}.msgpack`;
const identifyFile = (i: number, ext: string) => `identify/episode-${String(i).padStart(3, "0")}.${ext}`;

/** The episode in words, as an LLM adviser reads it. The interpreter gets raw_obs, the physical state in the
 * units it prints (m, m/s, rad); ep.obs is VecNormalize'd for the policy and would print as nonsense. */
export function episodePrompt(
  ep: Episode,
  configName: string,
  opts: { maxChars: number; minSeparation: number; maxCriticalStates: number; actionSpace: SpaceInfo },
): { summary: EpisodeSummary; prompt: Prompt } {
  const { raw_obs: rawObs, actions, rewards, values, ram } = ep;
  const summary = summarizeEpisode({ rawObs, actions, rewards, values, ram }, interpreterFor(configName), {
    maxChars: opts.maxChars,
    minSeparation: opts.minSeparation,
  });
  const prompt = renderPrompt(configName, { episode: summary.text, maxCriticalStates: opts.maxCriticalStates, actionSpace: actionSpaceText(opts.actionSpace) });
  return { summary, prompt };
}

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
  // One sub-env: episodes come one at a time, so only one episode's per-step snapshots are held (Atari's are large).
  const { env, model, actionSpace } = await loadModel(ctx, "base", { training: false, nEnvs: 1, seedOffset: 1000 });
  const candidates = actionSpace.type === "Discrete" ? actionSpace.n! : settings.rollout_adviser.candidates;
  const { env: counterfactualEnv } = await sc.call("env_make", { spec: specFor(ctx, "base", { training: false, nEnvs: candidates }) });
  // verification's common-random-number groups (two policy samples and the suggestion) run side by side, up to 16 at a time
  const verifyEnvs = 3 * Math.min(settings.verification.pairs, 16);
  const { env: verifyEnv } = await sc.call("env_make", { spec: specFor(ctx, "base", { training: false, nEnvs: verifyEnvs }) });
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
    // kept for every adviser, so runs can be compared
    const { prompt } = episodePrompt(ep, cfg.name, {
      maxChars: promptChars, minSeparation: settings.identify.min_separation, maxCriticalStates: settings.identify.max_critical_states, actionSpace,
    });
    run.write(identifyFile(i, "prompt.md"), `# system\n\n${prompt.system}\n\n# user\n\n${prompt.user}\n`);
    const adviceCtx = { sc, model, counterfactualEnv, actionSpace, cfg, settings, seed: ctx.seed };
    const res = await adviser.advise(ep, prompt, adviceCtx);
    const valid = validateAdvice(res.advice, ep, actionSpace, adviser.name, counts);
    const { kept: accepted, verdicts } = settings.verify ? await verifyAdvice(valid, ep, adviceCtx, verifyEnv, counts) : { kept: valid, verdicts: [] };
    run.writeJson(identifyFile(i, "json"), { adviser: adviser.name, request: res.request, reply: res.reply, verification: verdicts, accepted });
    // The random-critical baseline gets as many states from the same episode, at random steps.
    const picked = randomStates(accepted.length, ep, ctx.seed);
    storeStates([...accepted, ...picked], ep, store);
    states.push(...accepted);
    random.push(...picked);
    bar.update(i + 1, { critical: states.length });
  }
  bar.stop();
  const radius = await radiusFor(ctx, env, states, random, store);
  for (const h of [counterfactualEnv, verifyEnv, model, env]) await sc.call("close", { handle: h });
  const file: CriticalStatesFile = { env_id: cfg.env_id, adviser: adviser.name, counts, radius, states };
  run.writeJson("critical_states.json", file);
  run.writeJson("identify/random_states.json", random);
  run.writeMessage("identify/states.msgpack", store);
  log(`identify: returns of the base policy ${returns.map((r) => r.toFixed(1)).join(", ")}`);
  log(`identify: ${states.length} critical states accepted (${counts.proposed} proposed, ${counts.clipped} clipped, ${counts.rejected} rejected, ${counts.unverified} failed verification)`);
  return { episodes: returns.length, critical_states: states.length, counts, radius, ...(adviser.usage ? { usage: adviser.usage() } : {}) };
}

/** Each state set's radius, calibrated on the episodes just recorded (read back one at a time: Atari's are large). */
async function radiusFor(ctx: RunContext, env: string, states: CriticalState[], random: CriticalState[], store: StateStore): Promise<Radius> {
  const { radius, match_fraction } = ctx.settings.modulation;
  if (match_fraction === null) return { states: radius, random: radius, match_fraction };
  const obs = (i: number) => {
    const ep = ctx.run.readMessage<{ obs: NDArray; raw_obs?: NDArray }>(episodeFile(i));
    return ep.raw_obs ?? ep.obs;
  };
  const calibrate = (set: CriticalState[]) => calibrateRadius(ctx.sc, env, set, store, ctx.settings.identify.episodes, obs, match_fraction);
  // with no state from another episode to compare with, only exact matches (and resets) remain: radius 0
  const r = { states: (await calibrate(states)) ?? 0, random: (await calibrate(random)) ?? 0, match_fraction };
  log(`identify: radius ${r.states.toPrecision(3)} (adviser's states), ${r.random.toPrecision(3)} (random states): ${match_fraction * 100}% of the base policy's states lie within it`);
  return r;
}
