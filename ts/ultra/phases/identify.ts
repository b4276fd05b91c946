// Phase 2, identification: roll out the base policy with snapshots, ask the adviser for each episode's
// critical states (with a suggested action and a reward), validate and count what it proposes.
import { makeAdviser } from "../advisers/index.js";
import { emptyCounts, validateAdvice, type CriticalStatesFile } from "../critical.js";
import { collectEpisodes } from "../episodes.js";
import { randomStates, storeStates, type StateStore } from "../modulation.js";
import { progressBar, log } from "../../progress.js";
import { loadModel, specFor, type RunContext } from "../context.js";

export const episodeFile = (i: number) => `trajectories/episode-${String(i).padStart(3, "0")}.msgpack`;

export async function identify(ctx: RunContext): Promise<Record<string, unknown>> {
  const { run, settings, sc, cfg } = ctx;
  const adviser = makeAdviser(settings.adviser);
  const { env, model, actionSpace } = await loadModel(ctx, "base", { training: false, seedOffset: 1000 });
  const n = settings.identify.episodes;
  const bar = progressBar("collect", n, "episodes");
  const episodes = await collectEpisodes(sc, { model, env, episodes: n, deterministic: settings.identify.deterministic }, bar);
  bar.stop();
  for (const { snapshots: _, ...ep } of episodes) run.writeMessage(episodeFile(ep.episode), ep);
  log(`identify: ${episodes.length} episodes, returns ${episodes.map((e) => e.return.toFixed(1)).join(", ")}`);

  const candidates = actionSpace.type === "Discrete" ? actionSpace.n! : settings.rollout_adviser.candidates;
  const { env: counterfactualEnv } = await sc.call("env_make", { spec: specFor(ctx, "base", { training: false, nEnvs: candidates }) });
  const counts = emptyCounts();
  const states: CriticalStatesFile["states"] = [];
  const advise = progressBar(`advise (${adviser.name})`, episodes.length, "episodes");
  for (const ep of episodes) {
    const res = await adviser.advise(ep, { sc, model, counterfactualEnv, actionSpace, cfg, settings, seed: ctx.seed });
    const accepted = validateAdvice(res.advice, ep, actionSpace, adviser.name, counts);
    states.push(...accepted);
    run.writeJson(`identify/episode-${String(ep.episode).padStart(3, "0")}.json`, { adviser: adviser.name, request: res.request, reply: res.reply, accepted });
    advise.update(ep.episode + 1, { critical: states.length });
  }
  advise.stop();
  for (const h of [counterfactualEnv, model, env]) await sc.call("close", { handle: h });
  const file: CriticalStatesFile = { env_id: cfg.env_id, adviser: adviser.name, counts, states };
  run.writeJson("critical_states.json", file);
  // Keep observations and snapshots only where a table may need them: the critical states and, for the
  // random-critical baseline, as many random ones (per-step snapshots of every episode would be huge on Atari).
  const random = randomStates(Math.max(states.length, 1), episodes, ctx.seed);
  run.writeJson("identify/random_states.json", random);
  const store: StateStore = {};
  storeStates([...states, ...random], new Map(episodes.map((e) => [e.episode, e])), store);
  run.writeMessage("identify/states.msgpack", store);
  log(`identify: ${states.length} critical states accepted (${counts.proposed} proposed, ${counts.clipped} clipped, ${counts.rejected} rejected)`);
  return { episodes: episodes.length, critical_states: states.length, counts };
}
