// Shared by Hopper and Walker2d (v5, exclude_current_positions_from_observation=True): obs = rootz, rooty,
// k joint angles, then root x/z/angular velocity and k joint velocities, velocities clipped to [-10, 10].
// Both terminate when the torso leaves a healthy height or angle range, so how close a state is to those
// bounds is what makes it critical; each description states the margins.
import { describeTorques, expectLength, listed, num, signed } from "../format.js";
import type { StateInterpreter } from "./types.js";

export interface UprightSpec {
  name: string;
  jointKeys: readonly string[];
  joints: readonly string[];
  /** open intervals, as in the env's is_healthy (strict inequalities) */
  healthyZ: readonly [number, number];
  healthyAngle: readonly [number, number];
  /** Hopper only: every element of obs[1:] must lie in this open interval (the env checks unclipped velocities) */
  healthyState?: readonly [number, number];
  ctrlCostWeight: number;
}

const inside = (x: number, [lo, hi]: readonly [number, number]) => lo < x && x < hi;
const margin = (x: number, [lo, hi]: readonly [number, number]) => Math.min(x - lo, hi - x);
const rangeText = ([lo, hi]: readonly [number, number], digits: number) =>
  hi === Infinity ? `above ${num(lo, digits)}` : `between ${num(lo, digits)} and ${num(hi, digits)}`;

/** rooty is a hinge about +y: a positive angle tips the top of the torso forward (+x), checked with MuJoCo. */
function lean(angle: number): string {
  if (Math.abs(angle) < 0.02) return "upright";
  return angle > 0 ? "leaning forward" : "leaning back";
}

export function uprightInterpreter(spec: UprightSpec): StateInterpreter {
  const k = spec.joints.length;
  const nObs = 2 * k + 5;
  return {
    name: spec.name,
    features(obs) {
      expectLength(spec.name, obs, nObs);
      const f: Record<string, number> = { height: obs[0], angle: obs[1] };
      spec.jointKeys.forEach((key, i) => (f[`${key}_angle`] = obs[2 + i]));
      f.forward_velocity = obs[k + 2];
      f.vertical_velocity = obs[k + 3];
      f.angular_velocity = obs[k + 4];
      spec.jointKeys.forEach((key, i) => (f[`${key}_velocity`] = obs[k + 5 + i]));
      f.height_margin = margin(obs[0], spec.healthyZ);
      f.angle_margin = margin(obs[1], spec.healthyAngle);
      const stateOk =
        !spec.healthyState ||
        Array.from(obs)
          .slice(1)
          .every((x) => inside(x, spec.healthyState!));
      f.healthy = inside(obs[0], spec.healthyZ) && inside(obs[1], spec.healthyAngle) && stateOk ? 1 : 0;
      return f;
    },
    describe(obs) {
      const f = this.features(obs);
      const problems = [
        !inside(f.height, spec.healthyZ) && `torso height not ${rangeText(spec.healthyZ, 2)} m`,
        !inside(f.angle, spec.healthyAngle) && `torso angle not ${rangeText(spec.healthyAngle, 2)} rad`,
        f.healthy === 0 &&
          inside(f.height, spec.healthyZ) &&
          inside(f.angle, spec.healthyAngle) &&
          "a joint angle or velocity out of range",
      ].filter(Boolean);
      const health = problems.length
        ? `UNHEALTHY (${problems.join("; ")}): the episode terminates here`
        : `healthy (margins: height ${num(f.height_margin)} m, angle ${num(f.angle_margin)} rad)`;
      return (
        `torso height ${num(f.height)} m (healthy ${rangeText(spec.healthyZ, 2)}), ` +
        `torso angle ${signed(f.angle)} rad (${lean(f.angle)}; healthy ${rangeText(spec.healthyAngle, 2)}), ` +
        `forward velocity ${signed(f.forward_velocity)} m/s, vertical velocity ${signed(f.vertical_velocity)} m/s, ` +
        `torso angular velocity ${signed(f.angular_velocity)} rad/s; ` +
        `joint angles (rad): ${listed(
          spec.joints,
          spec.jointKeys.map((key) => f[`${key}_angle`]),
        )}; ` +
        `joint velocities (rad/s): ${listed(
          spec.joints,
          spec.jointKeys.map((key) => f[`${key}_velocity`]),
        )}; ${health}`
      );
    },
    brief(obs) {
      const full = this.describe(obs);
      return `${full.split("; ")[0]}; ${full.split("; ").slice(-1)[0]}`; // the body, and whether it is healthy
    },
    actionNames: spec.joints,
    actionSemantics: `${k} torques in [-1, 1]: ${spec.joints.join(", ")}`,
    describeAction(action) {
      return describeTorques(spec.name, spec.joints, spec.ctrlCostWeight, action);
    },
    keyFeatures: [
      { name: "forward_velocity", label: "forward velocity", unit: "m/s" },
      { name: "height", label: "torso height", unit: "m" },
      { name: "angle", label: "torso angle", unit: "rad" },
      { name: "angle_margin", label: "angle margin to termination", unit: "rad" },
    ],
  };
}
