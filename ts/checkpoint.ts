// A training job's exact checkpoint (improve's arms, pretrain): a directory (model.zip, vec_normalize.pkl,
// resume.msgpack with env states and RNGs, progress.json) written whole under NEW, then swapped in through OLD, so
// that a kill at any point leaves one complete checkpoint.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SidecarClient } from "./bridge/client.js";

export const CHECKPOINT = "checkpoint";
const NEW = "checkpoint.new";
const OLD = "checkpoint.old";

/** Whether `dir` holds a complete checkpoint (dir/checkpoint); an OLD left by a kill between the swaps is promoted. */
export function hasCheckpoint(dir: string): boolean {
  const done = (d: string) => existsSync(join(dir, d, "progress.json"));
  if (!done(CHECKPOINT) && done(OLD)) renameSync(join(dir, OLD), join(dir, CHECKPOINT));
  return done(CHECKPOINT);
}

export function readCheckpointProgress<T>(dir: string): T {
  return JSON.parse(readFileSync(join(dir, CHECKPOINT, "progress.json"), "utf8")) as T;
}

export async function writeCheckpoint(sc: SidecarClient, dir: string, model: string, progress: unknown): Promise<void> {
  // a stale NEW or OLD is what an earlier kill left: CHECKPOINT (or OLD, promoted by hasCheckpoint) is the checkpoint
  for (const d of [NEW, OLD]) rmSync(join(dir, d), { recursive: true, force: true });
  await sc.call("model_save", { model, path: join(dir, NEW, "model.zip"), resume: true });
  mkdirSync(join(dir, NEW), { recursive: true });
  writeFileSync(join(dir, NEW, "progress.json"), JSON.stringify(progress, null, 2) + "\n");
  if (existsSync(join(dir, CHECKPOINT))) renameSync(join(dir, CHECKPOINT), join(dir, OLD));
  renameSync(join(dir, NEW), join(dir, CHECKPOINT));
  rmSync(join(dir, OLD), { recursive: true, force: true });
}
