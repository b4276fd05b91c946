// HalfCheetah-v5 (gymnasium/envs/mujoco/half_cheetah_v5.py, exclude_current_positions_from_observation=True):
// obs = qpos[1:] (rootz, rooty, 6 joint angles) + qvel (9), unclipped; actions = 6 torques in [-1, 1].
// Reward = forward velocity - 0.1 * |a|^2 and the episode never terminates early, so speed and staying
// upright (a cheetah flipped onto its back rarely recovers) are what a state is worth.
import { describeTorques, expectLength, listed, signed } from "../format.js";
import type { StateInterpreter } from "./types.js";

const N_OBS = 17;
export const JOINT_KEYS = ["bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"] as const;
export const JOINTS = ["back thigh", "back shin", "back foot", "front thigh", "front shin", "front foot"] as const;
const CTRL_COST_WEIGHT = 0.1;

/** rooty is a hinge about +y: a positive pitch turns the head (+x end) down (checked with MuJoCo kinematics). */
function posture(pitch: number): string {
  if (Math.cos(pitch) < 0) return "flipped onto its back";
  if (Math.abs(pitch) < 0.1) return "level";
  return pitch > 0 ? "nose down" : "nose up";
}

export const halfCheetah: StateInterpreter = {
  name: "HalfCheetah",
  features(obs) {
    expectLength("HalfCheetah", obs, N_OBS);
    const f: Record<string, number> = { height: obs[0], pitch: obs[1] };
    JOINT_KEYS.forEach((k, i) => (f[`${k}_angle`] = obs[2 + i]));
    f.forward_velocity = obs[8];
    f.vertical_velocity = obs[9];
    f.pitch_rate = obs[10];
    JOINT_KEYS.forEach((k, i) => (f[`${k}_velocity`] = obs[11 + i]));
    return f;
  },
  describe(obs) {
    const f = this.features(obs);
    const angles = JOINT_KEYS.map((k) => f[`${k}_angle`]);
    const speeds = JOINT_KEYS.map((k) => f[`${k}_velocity`]);
    return (
      `forward velocity ${signed(f.forward_velocity)} m/s, torso pitch ${signed(f.pitch)} rad (${posture(f.pitch)}), ` +
      `height change ${signed(f.height)} m, vertical velocity ${signed(f.vertical_velocity)} m/s, pitch rate ${signed(f.pitch_rate)} rad/s; ` +
      `joint angles (rad): ${listed(JOINTS, angles)}; joint velocities (rad/s): ${listed(JOINTS, speeds)}`
    );
  },
  actionNames: JOINTS,
  actionSemantics: `6 torques in [-1, 1]: ${JOINTS.join(", ")}`,
  describeAction(action) {
    return describeTorques("HalfCheetah", JOINTS, CTRL_COST_WEIGHT, action);
  },
  keyFeatures: [
    { name: "forward_velocity", label: "forward velocity", unit: "m/s" },
    { name: "pitch", label: "torso pitch", unit: "rad" },
    { name: "height", label: "height change", unit: "m" },
  ],
};
