// Shared helpers of the interpreters: fixed-digit numbers (prompts must be byte-for-byte deterministic) and
// shape checks that fail loudly when a normalised or differently-configured observation comes in.
import { UltraError } from "../errors.js";

/** `x` with `digits` decimals; never "-0.00". */
export function num(x: number, digits = 2): string {
  if (!Number.isFinite(x)) return String(x);
  const s = x.toFixed(digits);
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

/** As `num`, with an explicit "+" on non-negative values (signs carry meaning for angles and torques). */
export function signed(x: number, digits = 2): string {
  const s = num(x, digits);
  return s.startsWith("-") || !Number.isFinite(x) ? s : `+${s}`;
}

export function expectLength(env: string, v: ArrayLike<number>, n: number, what = "observation"): void {
  if (v.length !== n)
    throw new UltraError(
      `${env}: expected a ${what} of ${n} numbers, got ${v.length} (the interpreter needs the raw, un-normalised observation of the default env)`,
    );
}

/** A continuous action as the env applies it: SB3 stores the unclipped sample, the env receives it clipped. */
export function boxAction(env: string, action: ArrayLike<number> | number, n: number, low = -1, high = 1): number[] {
  const a = typeof action === "number" ? [action] : Array.from(action, Number);
  expectLength(env, a, n, "action");
  return a.map((x) => Math.min(high, Math.max(low, x)));
}

export const sumSquares = (a: readonly number[]) => a.reduce((s, x) => s + x * x, 0);

/** "back thigh +0.50, back shin -0.20, ..." */
export const listed = (names: readonly string[], values: readonly number[], digits = 2) =>
  names.map((n, i) => `${n} ${signed(values[i], digits)}`).join(", ");

/** Torques of a MuJoCo body with their quadratic control cost, the one reward term an action pays at once. */
export function describeTorques(
  env: string,
  joints: readonly string[],
  ctrlCostWeight: number,
  action: ArrayLike<number> | number,
): string {
  const a = boxAction(env, action, joints.length);
  return `torques ${listed(joints, a)} (control cost ${num(ctrlCostWeight * sumSquares(a), 3)})`;
}
