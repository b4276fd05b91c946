// Where the project's parts live, resolved from this file (works from ts/ under vitest and from dist/ts/).
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
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
