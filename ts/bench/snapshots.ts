// `ultra bench snapshots`: what identify's (and fidelity's) collection pays for streaming every step's env snapshot
// to TS (collectEpisodes asks snapshot_every 1; TS then sends back only the few states it names). The same episodes
// (a fresh env and model of one seed in every run) are collected with snapshot_every 1 and 0, alternating, and
// compared per step: wall time in TS (collect and assembly, as collectEpisodes), the sidecar's own time in
// snapshot() (collect's snapshot_s), bytes received (counted once per mode on the TS side), and TS memory held by
// the assembled episodes (heap + external after full GCs; RSS beside it).
import { createHash } from "node:crypto";
import os from "node:os";
import v8 from "node:v8";
import vm from "node:vm";
import type { Snapshot, TrajectoryChunk } from "../bridge/ops.js";
import type { Sidecar } from "../bridge/sidecar.js";
import { envSpec, resolveEnv } from "../config.js";
import { findVecNormalize } from "../paths.js";
import { NDArray, pack } from "../protocol.js";
import { fmt, log, progressBar } from "../progress.js";
import { COLLECT_CHUNK_STEPS, assemble, type Episode } from "../ultra/episodes.js";
import { defineCommand, printJson, sidecarOptions } from "../commands/common.js";
import { startedSidecar, writeResult } from "./common.js";
import { median } from "../ultra/stats.js";

export interface SnapshotsOptions {
  env: string;
  /** episodes per run */
  episodes: number;
  /** runs of each mode */
  repeats: number;
  seed: number;
  /** a saved PPO model; default a fresh one (model_new) of the env's hyperparameters */
  model?: string;
  deterministic: boolean;
}

/** One timed collection. */
export interface SnapshotRun {
  repeat: number;
  snapshot_every: 0 | 1;
  steps: number;
  seconds: number;
  /** the sidecar's time in snapshot() */
  snapshot_s: number;
  snapshots: number;
  /** TS memory grown while the assembled episodes are held (what collectEpisodes returns): heap + external after
   * full GCs, and RSS */
  held_bytes: number;
  rss_bytes: number;
  /** the same at the peak, while the received chunks and the assembled episodes are both held */
  peak_bytes: number;
  /** of the episodes' lengths, actions and rewards: the same in every run when all collected the same episodes */
  digest: string;
}

/** What one collection sent (every run collects the same episodes, so it is counted once per mode, in the untimed
 * first runs): the payload of the arrays and binaries plus the rest msgpack-encoded, and of it the snapshots. */
export interface Sizes {
  steps: number;
  bytes: number;
  snapshot_bytes: number;
  snapshots: number;
  /** the first snapshot's bytes by part: base (the simulator), rng, wrappers, and each of vec's buffers */
  snapshot_parts?: Record<string, number>;
}

/** The cost the decision on keeping snapshots in the sidecar is judged by (bench/README.md). */
export const LARGE_COST = { time_share: 0.3, held_mb_per_episode: 100 };

/** Per-step medians of each mode, and the snapshots' share: of the time (paired by repeat, so both runs of a
 * share saw the same load), split into snapshot() in the sidecar and the rest (encoding, transfer, decoding: what
 * handles would save at most); of the bytes received; of the memory TS holds. */
export function summarize(runs: SnapshotRun[], sizes: { with: Sizes; without: Sizes }, episodes: number) {
  const on = runs.filter((r) => r.snapshot_every === 1);
  const off = runs.filter((r) => r.snapshot_every === 0);
  if (!on.length || !off.length) throw new Error("summarize needs runs with and without snapshots");
  const perStep = (rs: SnapshotRun[], f: (r: SnapshotRun) => number) => median(rs.map((r) => f(r) / r.steps));
  const mode = (rs: SnapshotRun[], z: Sizes) => ({
    us_per_step: perStep(rs, (r) => r.seconds * 1e6),
    bytes_per_step: z.bytes / z.steps,
    held_bytes_per_step: perStep(rs, (r) => r.held_bytes),
    peak_bytes_per_step: perStep(rs, (r) => r.peak_bytes),
    rss_bytes_per_step: perStep(rs, (r) => r.rss_bytes),
  });
  const pairs = on.flatMap((a) => off.filter((b) => b.repeat === a.repeat).map((b) => [a, b] as const));
  const time = median(pairs.map(([a, b]) => 1 - b.seconds / b.steps / (a.seconds / a.steps)));
  const inSnapshot = median(on.map((r) => r.snapshot_s / r.seconds));
  const withSnapshots = mode(on, sizes.with);
  const without = mode(off, sizes.without);
  const stepsPerEpisode = median(runs.map((r) => r.steps)) / episodes;
  const mb = (perStep: number) => (perStep * stepsPerEpisode) / 1e6;
  const perEpisode = (k: "bytes_per_step" | "held_bytes_per_step" | "peak_bytes_per_step") => ({
    with: mb(withSnapshots[k]),
    without: mb(without[k]),
  });
  const held = perEpisode("held_bytes_per_step");
  const heldSnapshotsMb = held.with - held.without;
  return {
    same_episodes: new Set(runs.map((r) => r.digest)).size === 1,
    steps_per_episode: stepsPerEpisode,
    with_snapshots: withSnapshots,
    without_snapshots: without,
    snapshot: {
      bytes: sizes.with.snapshot_bytes / sizes.with.snapshots,
      us_in_snapshot_fn: perStep(on, (r) => r.snapshot_s * 1e6),
    },
    share: {
      time,
      time_in_snapshot_fn: inSnapshot,
      time_outside_snapshot_fn: time - inSnapshot,
      bytes: sizes.with.snapshot_bytes / sizes.with.bytes,
      held: heldSnapshotsMb / held.with,
    },
    per_episode: {
      received_mb: perEpisode("bytes_per_step"),
      held_mb: held,
      held_snapshots_mb: heldSnapshotsMb,
      peak_mb: perEpisode("peak_bytes_per_step"),
    },
    large_cost: { ...LARGE_COST, met: time >= LARGE_COST.time_share || heldSnapshotsMb >= LARGE_COST.held_mb_per_episode },
  };
}

/** The bytes `value` crosses the bridge as: the payload of its arrays and binaries, plus the rest msgpack-encoded
 * (the few bytes of each array's header aside), without encoding the payload again. */
export function wireBytes(value: unknown): number {
  let payload = 0;
  const skeleton = (x: unknown): unknown => {
    if (x instanceof NDArray) return void (payload += x.data.byteLength);
    if (x instanceof Uint8Array) return void (payload += x.byteLength);
    if (Array.isArray(x)) return x.map(skeleton);
    if (x && typeof x === "object") return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, skeleton(v)]));
    return x;
  };
  const rest = pack(skeleton(value)).reduce((n, f) => n + f.byteLength, 0); // first: it counts the payload
  return payload + rest;
}

/** Full GCs (V8's gc, exposed at run time), each followed by a turn of the event loop so that the finalizers of
 * freed native buffers (ZeroMQ's frames) run, then heap + external and RSS. */
async function memory(): Promise<{ held: number; rss: number }> {
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const m = process.memoryUsage();
  return { held: m.heapUsed + m.external, rss: m.rss };
}

/** A snapshot's bytes by part (vec's buffers each on its own). */
export function snapshotParts(snap: Snapshot): Record<string, number> {
  const { vec, ...rest } = snap as { vec?: Record<string, unknown> };
  const parts = Object.entries(rest).map(([k, v]) => [k, wireBytes(v)]);
  for (const [k, v] of Object.entries(vec ?? {})) parts.push([`vec.${k}`, wireBytes(v)]);
  return Object.fromEntries(parts);
}

function digest(eps: Episode[]): string {
  const h = createHash("sha256");
  for (const ep of eps) {
    h.update(`${ep.episode}:${ep.length};`);
    for (const a of [ep.actions, ep.rewards]) h.update(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength));
  }
  return h.digest("hex").slice(0, 16);
}

/** One collection in a fresh env and model of the seed, timed like collectEpisodes, then its memory measured;
 * `size`: also count what it sent (its memory figures are then not used). */
async function collectRun(sc: Sidecar, o: SnapshotsOptions, every: 0 | 1, repeat: number, size = false) {
  const cfg = resolveEnv(o.env);
  const vecNormalizePath = o.model ? (findVecNormalize(o.model) ?? undefined) : undefined;
  const { env } = await sc.call("env_make", { spec: envSpec(cfg, { seed: o.seed, training: false, nEnvs: 1, vecNormalizePath }) });
  const { model } = o.model
    ? await sc.call("model_load", { path: o.model, env, seed: o.seed })
    : await sc.call("model_new", { env, ppo: { ...cfg.ppo, seed: o.seed } });
  let chunks: TrajectoryChunk[] = [];
  const before = await memory();
  const t0 = process.hrtime.bigint();
  const res = await sc.call(
    "collect",
    { model, env, episodes: o.episodes, deterministic: o.deterministic, snapshot_every: every, chunk_steps: COLLECT_CHUNK_STEPS },
    { onEvent: (event, data) => void (event === "chunk" && chunks.push(data as TrajectoryChunk)), timeoutS: 600 },
  );
  const byEpisode = new Map<number, TrajectoryChunk[]>();
  for (const c of chunks) byEpisode.set(c.episode, [...(byEpisode.get(c.episode) ?? []), c]);
  const eps = [...byEpisode.keys()].sort((a, b) => a - b).map((k) => assemble(byEpisode.get(k)!));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // Like collectEpisodes, assembly reads the frames before any GC; a ZeroMQ frame read so (here the last chunk's
  // observations, the same in both modes) then stays counted after it is dropped, which the difference of the
  // two modes cancels.
  const peak = await memory();
  const snapshots = eps.reduce((n, ep) => n + ep.snapshots.length, 0);
  const sizes: Sizes | undefined = size
    ? {
        steps: res.steps,
        bytes: wireBytes(chunks),
        snapshot_bytes: wireBytes(chunks.map((c) => c.snapshots)),
        snapshots,
        ...(snapshots ? { snapshot_parts: snapshotParts(eps[0].snapshots[0]) } : {}),
      }
    : undefined;
  byEpisode.clear();
  chunks = []; // collectEpisodes keeps only the assembled episodes
  const after = await memory();
  const run: SnapshotRun = {
    repeat,
    snapshot_every: every,
    steps: res.steps,
    seconds,
    snapshot_s: res.snapshot_s,
    snapshots,
    held_bytes: after.held - before.held,
    rss_bytes: after.rss - before.rss,
    peak_bytes: peak.held - before.held,
    digest: digest(eps),
  };
  for (const h of [model, env]) await sc.call("close", { handle: h });
  return { run, sizes };
}

export async function benchSnapshots(o: SnapshotsOptions, sidecar: Parameters<typeof startedSidecar>[0] = {}) {
  const cfg = resolveEnv(o.env);
  const load = [os.loadavg()[0]];
  const runs: SnapshotRun[] = [];
  const bar = progressBar(`snapshots ${cfg.env_id}`, 2 + 2 * o.repeats, "runs");
  const sizes = await startedSidecar(sidecar, async (sc) => {
    // untimed first runs, one per mode: they warm up (ROM, torch) and count the bytes
    const sized = { with: await collectRun(sc, o, 1, -1, true), without: await collectRun(sc, o, 0, -1, true) };
    runs.push(sized.with.run, sized.without.run);
    bar.update(2);
    for (let r = 0; r < o.repeats; r++)
      for (const every of r % 2 ? ([0, 1] as const) : ([1, 0] as const)) {
        runs.push((await collectRun(sc, o, every, r)).run); // alternate the order so drift in load hits both alike
        bar.update(runs.length);
      }
    return { with: sized.with.sizes!, without: sized.without.sizes! };
  });
  bar.stop();
  load.push(os.loadavg()[0]);
  const timed = runs.filter((r) => r.repeat >= 0);
  return {
    env: cfg.env_id,
    episodes: o.episodes,
    repeats: o.repeats,
    seed: o.seed,
    model: o.model ?? "fresh PPO (model_new, the env's hyperparameters)",
    deterministic: o.deterministic,
    chunk_steps: COLLECT_CHUNK_STEPS,
    load_1min: { start: load[0], end: load[1] },
    ...summarize(timed, sizes, o.episodes),
    // same_episodes covers the sizing runs too: their bytes count the episodes the timed runs collected
    same_episodes: new Set(runs.map((r) => r.digest)).size === 1,
    sizes,
    runs: timed,
  };
}

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;

export const snapshotsBench = defineCommand(
  "snapshots",
  "what streaming every step's snapshot to TS costs during collect: the same episodes with and without, alternating",
  (b) =>
    b
      .option("env", { type: "string", default: "Pong" })
      .option("episodes", { type: "number", default: 1, describe: "episodes per run" })
      .option("repeats", { type: "number", default: 5, describe: "runs with and without snapshots each" })
      .option("seed", { type: "number", default: 0 })
      .option("model", { type: "string", describe: "a saved PPO model (default: a fresh one, model_new)" })
      .option("deterministic", { type: "boolean", default: false, describe: "as identify.deterministic (configs/ultra.yaml)" })
      .option("json", { type: "string", describe: "write the result to this file too" }),
  async (a) => {
    const o = { env: a.env, episodes: a.episodes, repeats: a.repeats, seed: a.seed, model: a.model, deterministic: a.deterministic };
    const r = await benchSnapshots(o, sidecarOptions(a));
    const [w, n, s] = [r.with_snapshots, r.without_snapshots, r.share];
    log(
      `snapshots ${r.env}: ${fmt(r.steps_per_episode)} steps/episode, same episodes: ${r.same_episodes}; ` +
        `${fmt(w.us_per_step)} µs/step with snapshots, ${fmt(n.us_per_step)} without (${pct(s.time)} of the time: ` +
        `${pct(s.time_in_snapshot_fn)} in snapshot(), ${pct(s.time_outside_snapshot_fn)} outside); ` +
        `${fmt(w.bytes_per_step / 1e3)} kB/step received (${pct(s.bytes)} snapshots, ${fmt(r.snapshot.bytes / 1e3)} kB each); ` +
        `TS holds ${fmt(r.per_episode.held_mb.with)} MB/episode (${fmt(r.per_episode.held_snapshots_mb)} MB snapshots; ` +
        `peak ${fmt(r.per_episode.peak_mb.with)} MB with chunks); ` +
        `load ${r.load_1min.start.toFixed(1)}-${r.load_1min.end.toFixed(1)}; large cost: ${r.large_cost.met}`,
    );
    printJson(writeResult(`snapshots-${resolveEnv(a.env).name}`, r, a));
  },
);
