// Phase 2, identification: roll out the base policy with snapshots, ask the adviser for each episode's
// critical states (with a suggested action and a reward), validate and count what it proposes.
import { makeAdviser } from "../advisers/index.js";
import type { Adviser } from "../advisers/types.js";
import { emptyCounts, validateAdvice, type CriticalState, type CriticalStatesFile, type Radius } from "../critical.js";
import { collectEpisodes, type Episode } from "../episodes.js";
import type { SpaceInfo } from "../../bridge/ops.js";
import { Sidecar } from "../../bridge/sidecar.js";
import { interpreterFor } from "../../describe/envs/index.js";
import {
  actionMenu,
  adviceFromCards,
  cardsSchema,
  pickCards,
  renderBlankCards,
  renderCards,
  renderMenu,
  renderOverview,
} from "../../describe/cards.js";
import { actionSpaceText, renderCandidatesPrompt, renderPrompt, type Prompt } from "../../describe/prompts.js";
import { replySchema } from "../llm/schema.js";
import type { Settings } from "../settings.js";
import type { EpisodeQuery, IdentifyMode } from "../advisers/types.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { summarizeEpisode, type EpisodeSummary } from "../../describe/summarize.js";
import { addRewards, calibrateRadius, emptyMoments, randomStates, rewardUnitOf, storeStates, type StateStore } from "../modulation.js";
import { countingSidecar } from "../budget.js";
import type { NDArray } from "../../protocol.js";
import { verifyAdvice, type Verdict } from "../verify.js";
import { progressBar, log } from "../../progress.js";
import { loadModel, specFor, type RunContext } from "../context.js";
import type { RunDir } from "../rundir.js";

export const episodeFile = (i: number) => `trajectories/episode-${String(i).padStart(3, "0")}.msgpack`;
export const identifyFile = (i: number, ext: string) => `identify/episode-${String(i).padStart(3, "0")}.${ext}`;

/** Each verification verdict of a run's identify phase (identify/episode-NNN.json), in episode order. */
export function verdictsOf(run: RunDir): Verdict[] {
  const out: Verdict[] = [];
  for (let i = 0; run.exists(identifyFile(i, "json")); i++)
    out.push(...(run.readJson<{ verification?: Verdict[] }>(identifyFile(i, "json")).verification ?? []));
  return out;
}

/** The episode in words, as an LLM adviser reads it. The interpreter gets raw_obs, the physical state in the
 * units it prints (m, m/s, rad); ep.obs is VecNormalize'd for the policy and would print as nonsense. */
export function episodePrompt(
  ep: Episode,
  configName: string,
  opts: { maxChars: number; minSeparation: number; maxCriticalStates: number; actionSpace: SpaceInfo },
): { summary: EpisodeSummary; prompt: Prompt } {
  const { raw_obs: rawObs, actions, rewards, values, ram } = ep;
  const summary = summarizeEpisode({ rawObs, actions, rewards, values, ram, terminated: ep.terminated }, interpreterFor(configName), {
    maxChars: opts.maxChars,
    minSeparation: opts.minSeparation,
  });
  const prompt = renderPrompt(configName, {
    episode: summary.text,
    maxCriticalStates: opts.maxCriticalStates,
    actionSpace: actionSpaceText(opts.actionSpace),
  });
  return { summary, prompt };
}

/** The paper's mode: the whole episode as text; the reply names steps and writes actions. */
export function episodeQuery(prompt: Prompt, actionSpace: SpaceInfo, maxCriticalStates: number): EpisodeQuery {
  return { mode: "episode", prompt, schema: replySchema(actionSpace, maxCriticalStates), toAdvice: (items) => items };
}

/** Candidates mode: the episode's overview and lettered cards; the reply picks letters and menu changes. */
export function candidatesQuery(
  ep: Episode,
  configName: string,
  opts: { cards: number; minSeparation: number; maxCriticalStates: number; actionSpace: SpaceInfo },
): EpisodeQuery {
  const interp = interpreterFor(configName);
  const cards = pickCards(ep, { k: opts.cards, minSeparation: opts.minSeparation });
  const menu = actionMenu(opts.actionSpace, interp);
  const render = (overview: string, shown: string) =>
    renderCandidatesPrompt(configName, {
      overview,
      cards: shown,
      menu: renderMenu(menu, opts.actionSpace, interp),
      maxCriticalStates: opts.maxCriticalStates,
    });
  return {
    mode: "candidates",
    prompt: render(renderOverview(ep, interp), renderCards(cards, ep, opts.actionSpace, interp)),
    calibration: render("N/A", renderBlankCards(cards)),
    schema: cardsSchema(cards, menu, opts.maxCriticalStates),
    toAdvice: (items) => adviceFromCards(items, cards, ep, opts.actionSpace, interp),
    cards,
  };
}

/** `auto`: candidates for a local model (too small to read a whole episode) and its control `chance`, episode for any other adviser; a
 * replayed run keeps the mode it was recorded in (its prompts are what its replies answer). */
export function identifyMode(
  settings: Settings,
  runRecord?: (dir: string) => { phases?: { identify?: { result?: unknown } } } | null,
): IdentifyMode {
  const { mode } = settings.identify;
  if (mode !== "auto") return mode;
  const spec = settings.adviser;
  if (spec === "local" || spec.startsWith("local:") || spec === "chance") return "candidates";
  if (spec.startsWith("replay:") && runRecord) {
    const recorded = (runRecord(spec.slice("replay:".length))?.phases?.identify?.result as { mode?: IdentifyMode } | undefined)?.mode;
    if (recorded) return recorded;
  }
  return "episode";
}

/** run.json of another run directory, if there is one (for a replay's mode). */
function readRunRecord(dir: string): { phases?: { identify?: { result?: unknown } } } | null {
  try {
    return JSON.parse(readFileSync(join(dir, "run.json"), "utf8"));
  } catch {
    return null;
  }
}

export async function identify(ctx: RunContext): Promise<Record<string, unknown>> {
  const { run, settings, sc, cfg } = ctx;
  // the run's sidecar finds an embedded model's file when it runs here (a sweep's Ray actor may run on another node)
  const local = sc instanceof Sidecar ? sc : undefined;
  const adviser = await makeAdviser(settings.adviser, settings, run.root, ctx.llmCache, local);
  try {
    return await identifyWith(ctx, adviser);
  } finally {
    await adviser.close?.();
  }
}

async function identifyWith(ctx: RunContext, adviser: Adviser): Promise<Record<string, unknown>> {
  const { run, settings, sc, cfg } = ctx;
  // an LLM's context (~3 characters a token, a quarter kept for the instructions and the reply) bounds the episode text
  const promptChars = Math.min(
    settings.identify.prompt_chars,
    adviser.contextTokens ? Math.floor(adviser.contextTokens * 3 * 0.75) : Infinity,
  );
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
  const envSteps = { collect: 0, adviser: 0, verify: 0 }; // the preparation cost of the arms that use these states
  const moments = emptyMoments(); // of the raw per-step rewards: the adviser reward's unit
  const mode = identifyMode(settings, readRunRecord);
  const shown: Record<string, number> = { cards: 0, prompt_chars: 0 };
  const bar = progressBar(`identify (${adviser.name}${adviser.usage ? `, ${mode} mode` : ""})`, settings.identify.episodes, "episodes");
  for (let i = 0; i < settings.identify.episodes; i++) {
    const [collected] = await collectEpisodes(sc, { model, env, episodes: 1, deterministic: settings.identify.deterministic });
    const ep = { ...collected, episode: i };
    const { snapshots: _, raw_obs, ...stored } = ep;
    run.writeMessage(episodeFile(i), raw_obs === ep.obs ? stored : { ...stored, raw_obs }); // no copy of obs twice
    returns.push(ep.return);
    envSteps.collect += ep.length;
    addRewards(moments, ep.rewards.data);
    // kept for every adviser, so runs can be compared
    const { min_separation: minSeparation, max_critical_states: maxCriticalStates } = settings.identify;
    const query =
      mode === "candidates"
        ? candidatesQuery(ep, cfg.name, { cards: settings.identify.cards, minSeparation, maxCriticalStates, actionSpace })
        : episodeQuery(
            episodePrompt(ep, cfg.name, { maxChars: promptChars, minSeparation, maxCriticalStates, actionSpace }).prompt,
            actionSpace,
            maxCriticalStates,
          );
    const { prompt } = query;
    run.write(identifyFile(i, "prompt.md"), `# system\n\n${prompt.system}\n\n# user\n\n${prompt.user}\n`);
    shown.cards += query.cards?.length ?? 0;
    shown.prompt_chars += prompt.system.length + prompt.user.length;
    const adviceCtx = {
      sc: countingSidecar(sc, envSteps, "adviser"),
      model,
      counterfactualEnv,
      actionSpace,
      cfg,
      settings,
      seed: ctx.seed,
    };
    const res = await adviser.advise(ep, query, adviceCtx);
    const valid = validateAdvice(res.advice, ep, actionSpace, adviser.name, counts);
    const { kept: accepted, verdicts } = settings.verify
      ? await verifyAdvice(valid, ep, { ...adviceCtx, sc: countingSidecar(sc, envSteps, "verify") }, verifyEnv, counts)
      : { kept: valid, verdicts: [] };
    run.writeJson(identifyFile(i, "json"), {
      adviser: adviser.name,
      mode,
      ...(query.cards ? { cards: query.cards } : {}),
      request: res.request,
      reply: res.reply,
      // the adviser's valid proposals before verification: what it selected (ultra fidelity scores them)
      proposed: valid.map(({ step, action, reward }) => ({ step, action, reward })),
      verification: verdicts,
      accepted,
    });
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
  const reward_unit = rewardUnitOf(moments);
  const file: CriticalStatesFile = { env_id: cfg.env_id, adviser: adviser.name, counts, radius, reward_unit, env_steps: envSteps, states };
  run.writeJson("critical_states.json", file);
  run.writeJson("identify/random_states.json", random);
  run.writeMessage("identify/states.msgpack", store);
  log(`identify: returns of the base policy ${returns.map((r) => r.toFixed(1)).join(", ")}`);
  log(
    `identify: ${states.length} critical states accepted (${counts.proposed} proposed, ${counts.clipped} clipped, ${counts.rejected} rejected, ${counts.unverified} failed verification)`,
  );
  const basis = { std: "the std", mean_abs: "the mean |r| (their std is 0)", fallback: "1.0, a fallback: all were 0" }[reward_unit.basis];
  log(
    `identify: reward unit ${reward_unit.value.toPrecision(3)}: ${basis} of ${reward_unit.steps} raw per-step rewards; env steps ${envSteps.collect} collect, ${envSteps.adviser} adviser, ${envSteps.verify} verify`,
  );
  return {
    episodes: returns.length,
    critical_states: states.length,
    counts,
    radius,
    reward_unit,
    env_steps: envSteps,
    ...(adviser.usage ? { mode, usage: { ...adviser.usage(), ...shown } } : {}),
  };
}

/** Each state set's radius, calibrated on the episodes just recorded (read back one at a time: Atari's are large). */
async function radiusFor(
  ctx: RunContext,
  env: string,
  states: CriticalState[],
  random: CriticalState[],
  store: StateStore,
): Promise<Radius> {
  const { radius, match_fraction } = ctx.settings.modulation;
  if (match_fraction === null) return { states: radius, random: radius, match_fraction };
  const obs = (i: number) => {
    const ep = ctx.run.readMessage<{ obs: NDArray; raw_obs?: NDArray }>(episodeFile(i));
    return ep.raw_obs ?? ep.obs;
  };
  const calibrate = (set: CriticalState[]) => calibrateRadius(ctx.sc, env, set, store, ctx.settings.identify.episodes, obs, match_fraction);
  // with no state from another episode to compare with, only exact matches (and resets) remain: radius 0
  const r = { states: (await calibrate(states)) ?? 0, random: (await calibrate(random)) ?? 0, match_fraction };
  log(
    `identify: radius ${r.states.toPrecision(3)} (adviser's states), ${r.random.toPrecision(3)} (random states): ${match_fraction * 100}% of the base policy's states lie within it`,
  );
  return r;
}
