// Where the project's parts live, resolved from this file (works from ts/ under vitest and from dist/ts/).
import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

function findRoot(start: string): string {
  let dir = start;
  while (!existsSync(join(dir, "protocol", "protocol.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the ULTRA project root above ${start}`);
    dir = up;
  }
  return dir;
}

export const ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));
export const PROTOCOL_JSON = join(ROOT, "protocol", "protocol.json");
export const CONFIGS_DIR = join(ROOT, "configs");

/** The sidecar's interpreter: $ULTRA_PYTHON, else the project's venv made by `make setup`. */
export function pythonPath(): string {
  return process.env.ULTRA_PYTHON ? resolve(process.env.ULTRA_PYTHON) : join(ROOT, ".venv", "bin", "python");
}

/** Normalisation statistics beside a model: ours/hub (vec_normalize.pkl), RL-Zoo (vecnormalize.pkl, also in <dir>/<env>/). */
export function findVecNormalize(modelPath: string): string | null {
  const dir = dirname(modelPath);
  const stem = basename(modelPath, ".zip");
  const candidates = [
    join(dir, "vec_normalize.pkl"),
    join(dir, "vecnormalize.pkl"),
    join(dir, stem, "vecnormalize.pkl"),
    join(dir, stem, "vec_normalize.pkl"),
  ];
  return candidates.find(existsSync) ?? null;
}
