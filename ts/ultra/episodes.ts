// Trajectories of the base policy, assembled from the sidecar's streamed chunks and stored in trajectories/.
import type { Snapshot, TrajectoryChunk } from "../bridge/ops.js";
import type { SidecarClient } from "../bridge/client.js";
import { NDArray, type TypedArray } from "../protocol.js";

export interface Episode {
  episode: number;
  length: number;
  return: number;
  /** true: the env ended the episode (a fall, a lost game); false: the time limit did */
  terminated: boolean;
  obs: NDArray;
  /** un-normalised observations (what the interpreter and the modulation table use); = obs without VecNormalize */
  raw_obs: NDArray;
  /** ALE RAM per step (Atari), read by the Pong interpreter */
  ram?: NDArray;
  actions: NDArray;
  rewards: NDArray<Float32Array>;
  values: NDArray<Float32Array>;
  log_probs: NDArray<Float32Array>;
  /** one per step: the env state before the step's action */
  snapshots: Snapshot[];
}

/** Rows of several arrays, in order, as one array. */
export function concat(parts: NDArray[]): NDArray {
  const first = parts[0];
  const rows = parts.reduce((n, p) => n + p.shape[0], 0);
  const Ctor = first.data.constructor as { new (n: number): TypedArray };
  const data = new Ctor(parts.reduce((n, p) => n + p.size, 0));
  let offset = 0;
  for (const p of parts) {
    (data as any).set(p.data, offset);
    offset += p.size;
  }
  return new NDArray(first.dtype, [rows, ...first.shape.slice(1)], data);
}

/** Join one episode's chunks (in order) into an Episode. */
export function assemble(chunks: TrajectoryChunk[]): Episode {
  const last = chunks[chunks.length - 1];
  const field = (k: keyof TrajectoryChunk) => concat(chunks.map((c) => c[k] as NDArray));
  const obs = field("obs");
  return {
    episode: last.episode,
    length: last.length,
    return: last.return ?? 0,
    terminated: last.terminated ?? false,
    obs,
    raw_obs: chunks[0].raw_obs ? field("raw_obs") : obs, // absent when the env is not normalised
    ...(chunks[0].ram ? { ram: field("ram") } : {}),
    actions: field("actions"),
    rewards: field("rewards") as NDArray<Float32Array>,
    values: field("values") as NDArray<Float32Array>,
    log_probs: field("log_probs") as NDArray<Float32Array>,
    snapshots: chunks.flatMap((c) => c.snapshots),
  };
}

/** Steps per streamed chunk collectEpisodes asks for (ultra bench snapshots asks the same). */
export const COLLECT_CHUNK_STEPS = 1000;

/** Roll out `episodes` episodes with a snapshot at every step. */
export async function collectEpisodes(
  sc: SidecarClient,
  args: { model: string; env: string; episodes: number; deterministic: boolean },
): Promise<Episode[]> {
  const chunks = new Map<number, TrajectoryChunk[]>();
  await sc.call(
    "collect",
    { ...args, snapshot_every: 1, chunk_steps: COLLECT_CHUNK_STEPS },
    {
      onEvent: (event, data) => {
        if (event !== "chunk") return;
        const c = data as TrajectoryChunk;
        chunks.set(c.episode, [...(chunks.get(c.episode) ?? []), c]);
      },
    },
  );
  return [...chunks.keys()].sort((a, b) => a - b).map((k) => assemble(chunks.get(k)!));
}
