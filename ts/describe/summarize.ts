// An episode as text for the adviser: the episode split into segments (steps, return, value change, key
// features), with the steps where the value estimate drops most, the candidate critical states, described
// in full. The text always fits a character budget: the least informative segments lose detail first, and
// no level of detail ever drops the step index of a listed value drop. Output is deterministic.
import { UltraError } from "../errors.js";
import { num, signed } from "./format.js";
import { largestDrops } from "./drops.js";
import type { KeyFeature, StateInterpreter } from "./envs/types.js";

/** An NDArray (ts/protocol.ts) or anything shaped like one: row-major data with a shape. */
export interface ArrayWithShape {
  shape: number[];
  data: ArrayLike<number | bigint>;
}
export type Rows = readonly ArrayLike<number>[] | ArrayWithShape;
export type Column = ArrayLike<number> | ArrayWithShape;

export interface EpisodeInput {
  /** raw observations, one row per step: the env's own units (m, m/s, rad), which the interpreters label.
   * Never the VecNormalize'd obs the policy sees (Episode.obs); pass Episode.raw_obs. */
  rawObs: Rows;
  /** one row per step (Box), or one integer per step (Discrete) */
  actions: Rows | Column;
  rewards: Column;
  /** the critic's V(s_t) for each step's state */
  values: Column;
  /** ALE RAM per step, for interpreters that read it (Pong) */
  ram?: Rows;
  /** real index of the first row, when the rows are a later part of an episode (default 0) */
  startStep?: number;
  /** true: ended by the env's termination condition; false: by the time limit; unset: not stated */
  terminated?: boolean;
}

export interface SummaryOptions {
  maxChars: number;
  /** steps per segment; by default the most segments that fit maxChars with full detail */
  segmentSteps?: number;
  /** value drops per segment, besides the episode's largest ones (default 2) */
  dropsPerSegment?: number;
  /** the episode's largest drops, listed in the header and described in their segments (default 5) */
  topDrops?: number;
  /** minimum steps between two listed drops, so one event is not listed as several (default 5) */
  minSeparation?: number;
  /** drops smaller than this fraction of the episode's largest are critic noise, not listed (default 0.05) */
  minRelativeDrop?: number;
}

/** V(s_step) - V(s_step+1): the value lost after the action at `step`. */
export interface ValueDrop {
  step: number;
  drop: number;
  before: number;
  after: number;
}

export interface FeatureSummary {
  label: string;
  unit?: string;
  mean: number;
  min: number;
  max: number;
  last: number;
}

export type Detail = "full" | "brief" | "minimal";

export interface Segment {
  /** real step indices, inclusive */
  start: number;
  end: number;
  return: number;
  valueStart: number;
  valueEnd: number;
  features: Record<string, FeatureSummary>;
  /** most severe first */
  drops: ValueDrop[];
  /** nonzero rewards, listed only when rewards are sparse (at most 10% of steps) */
  rewardEvents: { step: number; reward: number }[];
  /** the detail this segment got in `text` */
  detail: Detail;
  text: string;
}

export interface EpisodeSummary {
  text: string;
  segments: Segment[];
  /** the episode's largest value drops (the header's list), most severe first */
  topDrops: ValueDrop[];
}

const LEVELS: Detail[] = ["full", "brief", "minimal"];
const MAX_SEGMENTS = 20;
const MIN_SEGMENT_STEPS = 25;
const MAX_REWARD_EVENTS = 10;

// ---- input access -------------------------------------------------------------------------------------

const hasShape = (x: unknown): x is ArrayWithShape =>
  typeof x === "object" && x !== null && "shape" in x && "data" in x && Array.isArray((x as ArrayWithShape).shape);

function column(x: Column, field: string, n: number): number[] {
  const out = hasShape(x) ? Array.from(x.data, Number) : Array.from(x, Number);
  if (out.length !== n) throw new UltraError(`summarizeEpisode: ${field} has ${out.length} entries for ${n} steps`);
  return out;
}

function rowCount(x: Rows | Column): number {
  return hasShape(x) ? (x.shape[0] ?? 0) : x.length;
}

type Row = ArrayLike<number> | number;

/** Row t of a 2-D input (a view, not a copy, for typed arrays: Pong rows are whole frames); a number for
 * 1-D inputs (Discrete actions). */
function rowAccess(x: Rows | Column, field: string, n: number): (t: number) => Row {
  if (rowCount(x) !== n) throw new UltraError(`summarizeEpisode: ${field} has ${rowCount(x)} rows for ${n} steps`);
  if (hasShape(x)) {
    const width = x.shape.slice(1).reduce((a, b) => a * b, 1);
    const data = x.data;
    if (x.shape.length === 1) return (t) => Number(data[t]);
    if (ArrayBuffer.isView(data) && !(data instanceof BigInt64Array || data instanceof BigUint64Array))
      return (t) => (data as Float64Array).subarray(t * width, (t + 1) * width);
    return (t) => Array.from({ length: width }, (_, j) => Number(data[t * width + j]));
  }
  return (t) => (x as ArrayLike<Row>)[t];
}

const asRow = (r: Row): ArrayLike<number> => (typeof r === "number" ? [r] : r);

// ---- analysis -----------------------------------------------------------------------------------------

function keyFeaturesOf(interp: StateInterpreter, sample: Record<string, number>): KeyFeature[] {
  if (interp.keyFeatures.length) return [...interp.keyFeatures];
  return Object.keys(sample)
    .slice(0, 4)
    .map((name) => ({ name, label: name }));
}

function summarise(key: KeyFeature, vals: number[]): FeatureSummary | undefined {
  const finite = vals.filter(Number.isFinite);
  if (!finite.length) return undefined;
  return {
    label: key.label,
    unit: key.unit,
    mean: finite.reduce((a, b) => a + b, 0) / finite.length,
    min: finite.reduce((a, b) => Math.min(a, b)),
    max: finite.reduce((a, b) => Math.max(a, b)),
    last: finite[finite.length - 1],
  };
}

// ---- rendering ----------------------------------------------------------------------------------------

interface Context {
  interp: StateInterpreter;
  keys: KeyFeature[];
  s0: number;
  obs: (t: number) => Row;
  ram?: (t: number) => Row;
  action: (t: number) => Row;
  rewards: number[];
  sparse: boolean;
}

function featureLine(seg: Segment, keys: KeyFeature[]): string {
  const parts = keys.flatMap((k) => {
    const s = seg.features[k.name];
    if (!s) return [];
    const d = k.digits ?? 2;
    const unit = k.unit ? ` ${k.unit}` : "";
    if (k.summary === "last") return [`${k.label} ${num(s.last, d)}${unit} at step ${seg.end}`];
    return [`${k.label} mean ${num(s.mean, d)}, range ${num(s.min, d)} to ${num(s.max, d)}${unit}`];
  });
  return parts.join("; ");
}

function rewardLine(seg: Segment): string {
  const ev = seg.rewardEvents;
  const shown = ev.slice(0, MAX_REWARD_EVENTS).map((e) => `${signed(e.reward, 2)} at step ${e.step}`);
  const more = ev.length > MAX_REWARD_EVENTS ? `, and ${ev.length - MAX_REWARD_EVENTS} more` : "";
  return `nonzero rewards: ${shown.join(", ")}${more}`;
}

const dropShort = (d: ValueDrop) => `step ${d.step} (${signed(-d.drop, 3)})`;

function renderSegment(seg: Segment, i: number, count: number, level: Detail, ctx: Context): string {
  const steps = seg.end - seg.start + 1;
  const head =
    `Segment ${i + 1}/${count}, steps ${seg.start}-${seg.end}: return ${num(seg.return)} (${num(seg.return / steps, 3)} per step); ` +
    `V ${num(seg.valueStart)} -> ${num(seg.valueEnd)} (${signed(seg.valueEnd - seg.valueStart)}).`;
  if (level === "minimal") {
    const steps = seg.drops.map((d) => d.step).join(", ");
    const drops = seg.drops.length > 1 ? ` Value drops at steps ${steps}.` : seg.drops.length ? ` Value drop at step ${steps}.` : "";
    const ev = seg.rewardEvents.length ? ` ${seg.rewardEvents.length} nonzero reward(s).` : "";
    return head + drops + ev;
  }
  const lines = [head];
  const feats = featureLine(seg, ctx.keys);
  if (feats) lines.push(`  ${feats}.`);
  if (seg.rewardEvents.length) lines.push(`  ${rewardLine(seg)}.`);
  if (level === "brief") {
    if (seg.drops.length) lines.push(`  Value drops at ${seg.drops.map(dropShort).join(", ")}.`);
    return lines.join("\n");
  }
  for (const d of seg.drops) {
    const t = d.step - ctx.s0;
    const state = ctx.interp.describe(asRow(ctx.obs(t)), ctx.ram ? asRow(ctx.ram(t)) : undefined);
    lines.push(
      `  Value drop at step ${d.step}: V ${num(d.before)} -> ${num(d.after)} (${signed(-d.drop, 3)}), reward ${num(ctx.rewards[t], 3)}. ` +
        `State: ${state}. Action: ${ctx.interp.describeAction(ctx.action(t))}.`,
    );
  }
  return lines.join("\n");
}

function renderHeader(
  n: number,
  s0: number,
  ret: number,
  values: number[],
  top: ValueDrop[],
  ep: EpisodeInput,
  rewards: number[],
  interp: StateInterpreter,
): string {
  const end =
    ep.terminated === true ? ", ended early by the termination condition" : ep.terminated === false ? ", ended by the time limit" : "";
  const argOf = (better: (a: number, b: number) => boolean) => values.reduce((bi, v, i) => (better(v, values[bi]) ? i : bi), 0);
  const lo = argOf((a, b) => a < b);
  const hi = argOf((a, b) => a > b);
  const lines = [
    `${interp.name} episode of ${n} steps (steps ${s0}-${s0 + n - 1}), return ${num(ret)}${end}.`,
    `Value estimate V: ${num(values[0])} at step ${s0}, ${num(values[n - 1])} at step ${s0 + n - 1}; ` +
      `lowest ${num(values[lo])} at step ${s0 + lo}, highest ${num(values[hi])} at step ${s0 + hi}.`,
    top.length
      ? `Largest one-step value drops (candidate critical states; "step t" means V fell from step t to step t+1): ${top.map(dropShort).join(", ")}.`
      : "The value estimate never drops from one step to the next.",
  ];
  const first = rewards.findIndex((r) => r !== 0);
  if (first > 0) lines.push(`The reward is 0 until step ${s0 + first}.`);
  else if (first < 0) lines.push("Every reward in this episode is 0.");
  return lines.join("\n");
}

// ---- budget -------------------------------------------------------------------------------------------

interface Layout {
  segments: Segment[];
  texts: string[][]; // [segment][level]
  levels: number[];
}

function totalLength(header: string, layout: Layout): number {
  return header.length + layout.segments.reduce((s, _, i) => s + 1 + layout.texts[i][layout.levels[i]].length, 0);
}

/** Lower detail, least informative segment first, one level at a time, until the text fits. */
function fit(header: string, layout: Layout, maxChars: number): boolean {
  const severity = (s: Segment) => (s.drops.length ? s.drops[0].drop : 0);
  const order = layout.segments.map((s, i) => i).sort((a, b) => severity(layout.segments[a]) - severity(layout.segments[b]) || a - b);
  for (let level = 0; level < LEVELS.length; level++) {
    for (const i of order) {
      layout.levels[i] = Math.max(layout.levels[i], level);
      if (totalLength(header, layout) <= maxChars) return true;
    }
  }
  return false;
}

// ---- entry point --------------------------------------------------------------------------------------

export function summarizeEpisode(ep: EpisodeInput, interp: StateInterpreter, opts: SummaryOptions): EpisodeSummary {
  if (!ep.rawObs) throw new UltraError("summarizeEpisode: rawObs (the raw, un-normalised observations) is missing");
  const n = rowCount(ep.rawObs);
  if (n === 0) throw new UltraError("summarizeEpisode: the episode has no steps");
  if (!(opts.maxChars > 0)) throw new UltraError(`summarizeEpisode: maxChars must be positive, got ${opts.maxChars}`);
  if (opts.segmentSteps !== undefined && !(Number.isInteger(opts.segmentSteps) && opts.segmentSteps > 0))
    throw new UltraError(`summarizeEpisode: segmentSteps must be a positive integer, got ${opts.segmentSteps}`);
  const s0 = ep.startStep ?? 0;
  const rewards = column(ep.rewards, "rewards", n);
  const values = column(ep.values, "values", n);
  const obs = rowAccess(ep.rawObs, "rawObs", n);
  const ram = ep.ram ? rowAccess(ep.ram, "ram", n) : undefined;
  const action = rowAccess(ep.actions, "actions", n);
  const sep = opts.minSeparation ?? 5;
  const perSegment = opts.dropsPerSegment ?? 2;

  const feats = Array.from({ length: n }, (_, t) => interp.features(asRow(obs(t)), ram ? asRow(ram(t)) : undefined));
  const keys = keyFeaturesOf(interp, feats[0]);
  const nonzero = rewards.filter((r) => r !== 0).length;
  const ctx: Context = { interp, keys, s0, obs, ram, action, rewards, sparse: nonzero > 0 && nonzero <= 0.1 * n };

  const drop = (t: number): ValueDrop => ({ step: s0 + t, drop: values[t] - values[t + 1], before: values[t], after: values[t + 1] });
  let largest = 0;
  for (let t = 0; t + 1 < n; t++) largest = Math.max(largest, values[t] - values[t + 1]);
  const floor = largest * (opts.minRelativeDrop ?? 0.05);
  const steps = (lo: number, hi: number, k: number) => largestDrops(values, { k, minSeparation: sep, lo, hi, floor }).map((d) => d.step);
  const top = steps(0, n - 1, opts.topDrops ?? 5);
  const ret = rewards.reduce((a, b) => a + b, 0);
  const header = renderHeader(n, s0, ret, values, top.map(drop), ep, rewards, interp);

  const layoutFor = (size: number): Layout => {
    const segments: Segment[] = [];
    for (let lo = 0; lo < n; lo += size) {
      const hi = Math.min(n, lo + size) - 1;
      const own = steps(lo, hi, perSegment);
      const picked = [...new Set([...own, ...top.filter((t) => t >= lo && t <= hi)])];
      const drops = picked.map(drop).sort((a, b) => b.drop - a.drop || a.step - b.step);
      const features: Record<string, FeatureSummary> = {};
      for (const k of keys) {
        const s = summarise(
          k,
          feats.slice(lo, hi + 1).map((f) => f[k.name] ?? NaN),
        );
        if (s) features[k.name] = s;
      }
      const rewardEvents = [];
      if (ctx.sparse) for (let t = lo; t <= hi; t++) if (rewards[t] !== 0) rewardEvents.push({ step: s0 + t, reward: rewards[t] });
      segments.push({
        start: s0 + lo,
        end: s0 + hi,
        return: rewards.slice(lo, hi + 1).reduce((a, b) => a + b, 0),
        valueStart: values[lo],
        valueEnd: values[hi],
        features,
        drops,
        rewardEvents,
        detail: "full",
        text: "",
      });
    }
    const texts = segments.map((s, i) => LEVELS.map((level) => renderSegment(s, i, segments.length, level, ctx)));
    return { segments, texts, levels: segments.map(() => 0) };
  };

  const chosen = chooseLayout(n, header, layoutFor, opts);
  chosen.segments.forEach((s, i) => {
    s.detail = LEVELS[chosen.levels[i]];
    s.text = chosen.texts[i][chosen.levels[i]];
  });
  const text = [header, ...chosen.segments.map((s) => s.text)].join("\n");
  return { text, segments: chosen.segments, topDrops: top.map(drop) };
}

/** The given segment size, made coarser only if even minimal detail overflows; by default the most
 * segments whose full detail fits, else the most that keep at least one segment in full, else any fit. */
function chooseLayout(n: number, header: string, layoutFor: (size: number) => Layout, opts: SummaryOptions): Layout {
  const tooSmall = (need: number) =>
    new UltraError(
      `summarizeEpisode: maxChars ${opts.maxChars} is too small; the shortest summary that keeps every value-drop step needs ${need} characters`,
    );
  if (opts.segmentSteps !== undefined) {
    for (let size = opts.segmentSteps; ; size *= 2) {
      const layout = layoutFor(Math.min(size, n));
      if (fit(header, layout, opts.maxChars)) return layout;
      if (size >= n) throw tooSmall(totalLength(header, layout));
    }
  }
  const maxSegments = Math.min(MAX_SEGMENTS, Math.max(1, Math.ceil(n / MIN_SEGMENT_STEPS)));
  const sizes = [...new Set(Array.from({ length: maxSegments }, (_, k) => Math.ceil(n / (maxSegments - k))))];
  const layouts = sizes.map(layoutFor);
  const full = layouts.find((l) => totalLength(header, l) <= opts.maxChars);
  if (full) return full;
  const fitted = layouts.filter((l) => fit(header, l, opts.maxChars));
  const best = fitted.find((l) => l.levels.includes(0)) ?? fitted[0];
  if (best) return best;
  throw tooSmall(Math.min(...layouts.map((l) => totalLength(header, l))));
}
