// StateMask's fidelity test (Cheng et al. 2023) for a finished run's critical states, with no training: randomise
// the agent's actions over a segment starting at a selector's step and see how much the episode's return changes.
// A selector whose segments change it more (per step of segment) found states that matter more. A mask net (ultra
// explain's, or --mask) selects too, as RICE's fid_test does: the longest run among the most important steps.
import { existsSync } from "node:fs";
import { basename, resolve } from "node:path";
import { z } from "zod";
import type { SpaceInfo, Snapshot } from "../bridge/ops.js";
import { UltraError } from "../errors.js";
import type { SidecarClient } from "../bridge/client.js";
import { runEnv } from "../config.js";
import { dropOnset, largestDrops } from "../describe/drops.js";
import { log, progressBar } from "../progress.js";
import { NDArray } from "../protocol.js";
import { loadModel, specFor, type RunContext } from "./context.js";
import { CriticalStatesFile } from "./critical.js";
import { collectEpisodes } from "./episodes.js";
import { currentExplanation } from "./explain.js";
import { episodeFile, identifyFile } from "./phases/identify.js";
import { mixSeed, rng } from "./rng.js";
import { RunDir } from "./rundir.js";
import type { Settings } from "./settings.js";
import { ci95, mean } from "./stats.js";

/** Steps before a value drop searched for its onset (the highest V): 0.4 s of simulated time on Hopper (dt 0.008 s). */
const ONSET_WINDOW = 50;

export const RATIOS = [0.1, 0.2, 0.3, 0.4];
/** d/d_max below this counts as this: a segment that changed nothing would score −∞ */
export const MIN_RELATIVE_D = 1e-6;

export interface FidelityOptions {
  samples: number;
  /** the run's first N identify episodes (default all) */
  episodes?: number;
  /** other runs (of the same base policy and seed) whose critical_states.json to score too */
  compare: string[];
  /** seeds the random steps and actions; default the run's seed */
  seed?: number;
  /** steps after the segment at most (an episode's end stops a rollout sooner) */
  horizon: number;
  ratios?: number[];
  command?: string;
  /** a mask net zip for the run's base policy to select segments too; default DIR/explain's (ultra explain) if there */
  mask?: string;
}

export interface Score {
  selector: string;
  episode: number;
  step: number;
  /** the segment's first step (the step, moved back where the segment would run past the episode's end) */
  start: number;
  k: number;
  /** segment length round(k·L), episode length */
  l: number;
  L: number;
  /** mean |R_random − R_baseline| over the samples (raw reward) */
  d: number;
  d_max: number;
  fidelity: number;
}

export interface Stat {
  mean: number;
  ci95: number | null;
  n: number;
}

/** The segment of ratio k at `step` of an L-step episode: l = round(k·L) (at least 1), clipped to fit. */
export function segmentOf(step: number, L: number, k: number): { start: number; l: number } {
  const l = Math.min(L, Math.max(1, Math.round(k * L)));
  return { start: Math.max(0, Math.min(step, L - l)), l };
}

/** RICE's fid_test: of the `n` most important steps (ties: the earlier), the longest run of consecutive steps (of
 * equally long runs, the earliest); its first step. The segment starting there has the length every selector's has. */
export function maskSegmentStart(importance: ArrayLike<number>, n: number): number {
  const top = Array.from(importance, (x, step) => ({ x, step }))
    .sort((a, b) => b.x - a.x || a.step - b.step)
    .slice(0, Math.max(1, n))
    .map((p) => p.step)
    .sort((a, b) => a - b);
  let [best, bestLen, start] = [top[0], 1, top[0]];
  for (let i = 1; i < top.length; i++) {
    if (top[i] !== top[i - 1] + 1) start = top[i];
    if (top[i] - start + 1 > bestLen) [best, bestLen] = [start, top[i] - start + 1];
  }
  return best;
}

/** StateMask's score log(d/d_max) − log(l/L): ≤ −log(l/L); d/d_max is floored at MIN_RELATIVE_D. */
export function fidelityScore(d: number, dMax: number, l: number, L: number): number {
  return Math.log(Math.max(d / dMax, MIN_RELATIVE_D)) - Math.log(l / L);
}

export const stat = (xs: number[]): Stat => ({ mean: xs.length ? mean(xs) : NaN, ci95: xs.length > 1 ? ci95(xs) : null, n: xs.length });

/** Per selector: per k and over all k. */
export function summarize(scores: Score[], ratios: number[]): Record<string, { by_k: Record<string, Stat>; all: Stat }> {
  const out: Record<string, { by_k: Record<string, Stat>; all: Stat }> = {};
  for (const sel of [...new Set(scores.map((s) => s.selector))]) {
    const mine = scores.filter((s) => s.selector === sel);
    out[sel] = {
      by_k: Object.fromEntries(ratios.map((k) => [String(k), stat(mine.filter((s) => s.k === k).map((s) => s.fidelity))])),
      all: stat(mine.map((s) => s.fidelity)),
    };
  }
  return out;
}

/** m random action sequences of l steps, uniform over the action space (Box: within its bounds). */
export function randomActions(space: SpaceInfo, m: number, l: number, seed: number): NDArray {
  const r = rng(seed);
  if (space.type === "Discrete") {
    return new NDArray(
      "int64",
      [m, l],
      BigInt64Array.from({ length: m * l }, () => BigInt(Math.floor(r() * space.n!))),
    );
  }
  if (space.type === "Box" && space.low && space.high) {
    const dim = space.shape.reduce((a, b) => a * b, 1);
    if (space.low.length !== dim)
      throw new UltraError(`fidelity: the ${space.shape} action space is too large to sample from its described bounds`);
    const data = Float32Array.from({ length: m * l * dim }, (_, i) => {
      const [lo, hi] = [space.low![i % dim], space.high![i % dim]];
      return lo + r() * (hi - lo);
    });
    return new NDArray("float32", [m, l, ...space.shape], data);
  }
  throw new UltraError(`fidelity supports Box and Discrete action spaces, not ${space.type}`);
}

interface StoredEpisode {
  length: number;
  /** agent-facing observations (normalised where the env is), what a mask net scores */
  obs: NDArray;
  rewards: NDArray;
  values: NDArray;
}

/** The settings fidelity reads (so older runs, whose settings lack later fields, still qualify). */
const Needed = z.object({
  trust_model: z.boolean().default(false),
  identify: z.object({ episodes: z.number().int().positive(), deterministic: z.boolean(), min_separation: z.number().int().nonnegative() }),
});

// only what fidelity reads: older runs' files, which lack later fields, still qualify
const StatesOnly = CriticalStatesFile.pick({ env_id: true, adviser: true, states: true });
type StatesOnly = z.infer<typeof StatesOnly>;

function openRunDir(dir: string): { run: RunDir; states: StatesOnly } {
  const run = new RunDir(dir);
  if (!run.exists("run.json"))
    throw new UltraError(`${run.root} is not a run directory (no run.json); start one with \`ultra train --out DIR\``);
  if (!run.exists("critical_states.json"))
    throw new UltraError(
      `${run.root} has no critical_states.json: its identify phase has not finished; run it (ultra identify --run ${dir})`,
    );
  return { run, states: run.readChecked("critical_states.json", StatesOnly) };
}

/** Steps of the adviser's valid proposals for episode i (identify/episode-NNN.json `proposed`; a run from before it
 * was recorded: the steps verification judged and those it accepted). */
function proposedSteps(run: RunDir, i: number): number[] {
  const file = identifyFile(i, "json");
  if (!run.exists(file)) return [];
  const rec = run.readJson<{ proposed?: { step: number }[]; verification?: { step: number }[]; accepted?: { step: number }[] }>(file);
  const steps = rec.proposed ?? [...(rec.verification ?? []), ...(rec.accepted ?? [])];
  return [...new Set(steps.map((s) => s.step))];
}

const sameRewards = (a: NDArray, b: NDArray) => a.size === b.size && a.data.every((x, i) => x === b.data[i]);

export interface FidelityResult {
  file: string;
  markdown: string;
  summary: ReturnType<typeof summarize>;
}

export async function fidelity(dir: string, o: FidelityOptions, sc: SidecarClient): Promise<FidelityResult> {
  const { run, states } = openRunDir(dir);
  const record = run.record;
  const parsed = Needed.safeParse(record.settings);
  if (!parsed.success)
    throw new UltraError(
      `${run.path("run.json")} has invalid settings (${z.prettifyError(parsed.error)}); it may come from another version`,
    );
  const settings = parsed.data;
  // loadModel and specFor read only trust_model of the settings
  const ctx: RunContext = { run, cfg: runEnv(record), settings: settings as unknown as Settings, seed: record.seed, sc };
  const seed = o.seed ?? record.seed;
  const ratios = o.ratios ?? RATIOS;
  if (!Number.isInteger(o.samples) || o.samples < 1) throw new UltraError(`--samples must be a positive integer, got ${o.samples}`);
  const available = settings.identify.episodes;
  const nEpisodes = Math.min(o.episodes ?? available, available);
  const episodes: StoredEpisode[] = [];
  for (let i = 0; i < nEpisodes; i++) {
    if (!run.exists(episodeFile(i)))
      throw new UltraError(`${run.path(episodeFile(i))} is missing; re-run identify (ultra identify --run ${dir})`);
    episodes.push(run.readMessage<StoredEpisode>(episodeFile(i)));
  }

  // Selectors: name → episode → k (index in ratios) → steps. Only the mask net's depend on k.
  const selectors = new Map<string, number[][][]>();
  const everyK = (steps: number[][]) => steps.map((s) => ratios.map(() => s));
  const byEpisode = (file: StatesOnly) => episodes.map((_, i) => file.states.filter((s) => s.episode === i).map((s) => s.step));
  const adviser = byEpisode(states);
  selectors.set(`adviser (${states.adviser})`, everyK(adviser));
  // what the adviser selected before verification judged its actions: its choice of states alone
  const proposals = episodes.map((_, i) => proposedSteps(run, i));
  if (proposals.some((p, i) => p.join() !== adviser[i].join())) selectors.set(`adviser's proposals (${states.adviser})`, everyK(proposals));
  const minSeparation = settings.identify.min_separation;
  // as many as the adviser named there, at least one: the same number of segments per episode as the adviser's
  const count = (i: number) => Math.max(1, adviser[i].length, proposals[i].length);
  selectors.set(
    "value drops",
    everyK(episodes.map((ep, i) => largestDrops(ep.values.toNumbers(), { k: count(i), minSeparation }).map((p) => p.step))),
  );
  selectors.set(
    `value-drop onsets (${ONSET_WINDOW} steps)`,
    everyK(
      episodes.map((ep, i) => {
        const v = ep.values.toNumbers();
        return largestDrops(v, { k: count(i), minSeparation }).map((p) => dropOnset(v, p.step, ONSET_WINDOW));
      }),
    ),
  );
  selectors.set(
    "random",
    everyK(
      episodes.map((ep, i) => {
        const r = rng(mixSeed(seed, i, 0x7a5d));
        return Array.from({ length: count(i) }, () => Math.floor(r() * ep.length));
      }),
    ),
  );
  for (const other of o.compare) {
    const { run: orun, states: ostates } = openRunDir(other);
    if (ostates.env_id !== states.env_id)
      throw new UltraError(`--compare ${other} is a run of ${ostates.env_id}, this run of ${states.env_id}`);
    // its steps mean the same states only if its episodes are this run's (the same base policy, seed and settings)
    for (let i = 0; i < nEpisodes; i++) {
      const same = orun.exists(episodeFile(i)) && sameRewards(orun.readMessage<StoredEpisode>(episodeFile(i)).rewards, episodes[i].rewards);
      if (!same)
        throw new UltraError(
          `--compare ${other}: its episode ${i} differs from ${run.root}'s; compare runs that share the base policy and seed (a sweep's arms, a replayed adviser)`,
        );
    }
    let name = `${basename(orun.root)} (${ostates.adviser})`;
    while (selectors.has(name)) name += "'";
    const accepted = byEpisode(ostates);
    selectors.set(name, everyK(accepted));
    const proposed = episodes.map((_, i) => proposedSteps(orun, i));
    if (proposed.some((p, i) => p.join() !== accepted[i].join())) selectors.set(`${name}'s proposals`, everyK(proposed));
  }
  const mask = maskFor(run, o.mask);
  if (mask !== null) {
    // one segment per episode and k, as in RICE's fid_test; the stored observations are those of the episodes
    // re-collected below (checked by their rewards)
    const importance: number[][] = [];
    for (const ep of episodes)
      importance.push((await sc.call("mask_importance", { mask, obs: ep.obs, trust_model: settings.trust_model })).importance.toNumbers());
    selectors.set(
      "mask net",
      episodes.map((ep, i) => ratios.map((k) => [maskSegmentStart(importance[i], segmentOf(0, ep.length, k).l)])),
    );
  }

  // Plan: per episode and k, the distinct segment starts (selectors that share one share its rollouts).
  const plan = episodes.map((ep, i) =>
    ratios.map((k, ki) => new Set([...selectors.values()].flatMap((steps) => steps[i][ki].map((s) => segmentOf(s, ep.length, k).start)))),
  );
  const total = plan.reduce((n, byK) => n + byK.reduce((a, s) => a + s.size, 0), 0);

  const { env, model, actionSpace } = await loadModel(ctx, "base", { training: false, nEnvs: 1, seedOffset: 1000 });
  const { env: segEnv } = await sc.call("env_make", { spec: specFor(ctx, "base", { training: false, nEnvs: o.samples + 1 }) });
  const bar = progressBar("fidelity", total, "segments");
  const scores: Score[] = [];
  const reproduced: boolean[] = [];
  const skipped: string[] = [];
  let envSteps = 0;
  let done = 0;
  try {
    for (let i = 0; i < nEpisodes; i++) {
      const ep = episodes[i];
      // identify's episode i, collected again the way identify did (same env seed, model seed, one at a time): the
      // stored trajectory has no snapshots. Checked against the stored rewards: a different episode would make the
      // selectors' steps point at other states.
      const [again] = await collectEpisodes(sc, { model, env, episodes: 1, deterministic: settings.identify.deterministic });
      reproduced.push(sameRewards(again.rewards, ep.rewards));
      if (!reproduced[i])
        throw new UltraError(
          `fidelity: re-collecting episode ${i} of ${run.root} gave another episode (length ${again.length} vs ${ep.length}, return ${again.return.toFixed(3)} vs ${ep.rewards
            .toNumbers()
            .reduce((a, b) => a + b, 0)
            .toFixed(3)}); ` +
            `the run's identify phase was not reproducible here (another sidecar version or device?); re-run identify on this machine (ultra identify --run ${dir})`,
        );
      const L = ep.length;
      const d = new Map<string, number>(); // `${k}:${start}` → mean |ΔR|
      for (const [ki, k] of ratios.entries()) {
        const { l } = segmentOf(0, L, k);
        const actions = randomActions(actionSpace, o.samples, l, mixSeed(seed, i, ki));
        for (const start of plan[i][ki]) {
          const snapshot: Snapshot = again.snapshots[start];
          const r = await sc.call("segment_returns", { model, env: segEnv, snapshot, actions, horizon: o.horizon });
          const R = r.returns.toNumbers();
          envSteps += r.env_steps;
          d.set(`${k}:${start}`, mean(R.slice(1).map((x) => Math.abs(x - R[0]))));
          bar.update(++done, { episode: i });
        }
      }
      const dMax = Math.max(...d.values());
      if (!(dMax > 0)) {
        skipped.push(`episode ${i}: no segment changed its return (d_max = 0)`);
        continue;
      }
      for (const [name, steps] of selectors)
        for (const [ki, k] of ratios.entries())
          for (const step of steps[i][ki]) {
            const { start, l } = segmentOf(step, L, k);
            const dk = d.get(`${k}:${start}`)!;
            scores.push({ selector: name, episode: i, step, start, k, l, L, d: dk, d_max: dMax, fidelity: fidelityScore(dk, dMax, l, L) });
          }
    }
  } finally {
    bar.stop();
    for (const h of [segEnv, model, env]) await sc.call("close", { handle: h }).catch(() => undefined);
  }

  const summary = summarize(scores, ratios);
  const settingsOut = {
    samples: o.samples,
    ratios,
    horizon: o.horizon,
    seed,
    episodes: nEpisodes,
    deterministic: settings.identify.deterministic,
    compare: o.compare,
    mask,
  };
  const file = run.writeJson("fidelity.json", {
    run: run.root,
    env_id: states.env_id,
    command: o.command ?? null,
    settings: settingsOut,
    episodes: { reproduced, source: "re-collected with identify's env and model seeds; rewards equal the stored trajectories'" },
    env_steps: envSteps,
    skipped,
    summary,
    scores,
  });
  let plot: string | null = null;
  try {
    const bars = Object.fromEntries(
      ratios.map((k) => [
        `k = ${k}`,
        Object.fromEntries(
          Object.entries(summary).map(([s, v]) => [s, [v.by_k[String(k)].mean, v.by_k[String(k)].ci95 ?? NaN] as [number, number]]),
        ),
      ]),
    );
    plot = (
      await sc.call("plot_bars", {
        bars,
        path: run.path("fidelity.png"),
        title: `fidelity of critical states, ${states.env_id}`,
        ylabel: "fidelity score (mean, 95% CI)",
      })
    ).path;
  } catch (e) {
    log(`fidelity: no plot (${(e as Error).message})`);
  }
  const markdown = renderMarkdown(summary, ratios, { env: states.env_id, settings: settingsOut, skipped, envSteps, plot: plot !== null });
  run.write("fidelity.md", markdown);
  log(`fidelity: ${scores.length} scores over ${nEpisodes} episodes, ${envSteps} env steps; ${file}`);
  return { file, markdown, summary };
}

/** --mask, else DIR/explain's mask net when it explains the run's base policy, else none (saying why, if stale). */
function maskFor(run: RunDir, given: string | undefined): string | null {
  if (given !== undefined) {
    const path = resolve(given);
    if (!existsSync(path))
      throw new UltraError(
        `--mask ${path} does not exist: give a mask net zip trained for the run's base policy, or train one with \`ultra explain --run ${run.root}\``,
      );
    return path;
  }
  const cur = currentExplanation(run);
  if (cur.explanation !== null) return cur.path;
  if (run.exists("explain")) log(`fidelity: no mask net selector: ${cur.why}`);
  return null;
}

const cell = (s: Stat) => (s.n === 0 ? "–" : `${s.mean.toFixed(2)} ± ${s.ci95 === null ? "–" : s.ci95.toFixed(2)} (n ${s.n})`);

function renderMarkdown(
  summary: ReturnType<typeof summarize>,
  ratios: number[],
  o: { env: string; settings: Record<string, unknown>; skipped: string[]; envSteps: number; plot: boolean },
): string {
  const head = `| selector | ${ratios.map((k) => `k = ${k}`).join(" | ")} | all |`;
  const rows = Object.entries(summary).map(
    ([s, v]) => `| ${s} | ${ratios.map((k) => cell(v.by_k[String(k)])).join(" | ")} | ${cell(v.all)} |`,
  );
  return [
    `# Fidelity of critical states: ${o.env}`,
    "",
    "StateMask's fidelity test: a segment of l = round(k·L) steps starts at each selected step; the agent's actions there are",
    "replaced by uniformly random ones (the same sequences for every selector), its deterministic policy acts before and after.",
    "d = mean |return change| over the samples; score = log(d/d_max) − log(l/L), d_max the largest d in that episode.",
    "Higher = randomising the segment changes the return more per step of segment: the states matter more (at most about −log k).",
    ...(o.settings.mask
      ? [
          "Mask net: its segment starts at the longest run of consecutive steps among the round(k·L) most important (P(not blind)), as RICE's fid_test picks it; one per episode and k.",
        ]
      : []),
    "",
    head,
    `|${"---|".repeat(ratios.length + 2)}`,
    ...rows,
    "",
    "Mean ± 95% CI half-width (Student's t), n scores (one per selected step and episode).",
    "",
    `Settings: ${JSON.stringify(o.settings)}; ${o.envSteps} env steps.`,
    ...(o.skipped.length ? ["", `Skipped: ${o.skipped.join("; ")}.`] : []),
    ...(o.plot ? ["", "![fidelity](fidelity.png)"] : []),
    "",
  ].join("\n");
}
