// Shared test helpers: real sidecars, the real CLI, process checks.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { Sidecar, type SidecarOptions } from "../ts/bridge/sidecar.js";
import { ROOT } from "../ts/paths.js";

export const ULTRA = join(ROOT, "bin", "ultra.js");

/** Run the `ultra` CLI as a user would, with extra environment variables; a non-zero exit is returned, not thrown. */
export async function ultraWith(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [ULTRA, ...args], {
      maxBuffer: 64 << 20,
      env: { ...process.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (e: any) {
    return { code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string };
  }
}
export const ultra = (...args: string[]) => ultraWith({}, ...args);

export const readJson = (file: string) => JSON.parse(readFileSync(file, "utf8"));

export const startSidecar = (opts: SidecarOptions = {}) => Sidecar.start({ heartbeatS: 0, ...opts });

export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

export const HALF_CHEETAH = { env_id: "HalfCheetah-v5", n_envs: 1, seed: 0 };
export const PONG = {
  env_id: "ALE/Pong-v5",
  n_envs: 2,
  seed: 1,
  env_kwargs: { frameskip: 1, repeat_action_probability: 0.0 },
  wrappers: ["AtariWrapper"],
  frame_stack: 4,
};
export const TINY_PPO = { policy: "MlpPolicy", n_steps: 256, batch_size: 64, n_epochs: 2, seed: 0, policy_kwargs: { net_arch: [32, 32] } };
