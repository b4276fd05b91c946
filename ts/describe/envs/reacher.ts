// Reacher-v5 (gymnasium/envs/mujoco/reacher_v5.py _get_obs): 10-dim obs = cos(q0), cos(q1), sin(q0), sin(q1),
// target x, y, dq0, dq1, then (fingertip - target) x, y. v5 dropped the always-zero z component that v4 had
// (11 dims, the layout of RICE's Reacher-v2 agent): both are read.
// Reward = -|fingertip - target| - 0.1 |a|^2 over 50 steps, no early termination: the distance is the state's worth.
import { describeTorques, expectLength, num, signed } from "../format.js";
import type { StateInterpreter } from "./types.js";

const JOINTS = ["shoulder", "elbow"] as const; // joint0 (link to the fixed base), joint1 (between the links)

export const reacher: StateInterpreter = {
  name: "Reacher",
  features(obs) {
    if (obs.length !== 11) expectLength("Reacher", obs, 10);
    const [c0, c1, s0, s1, tx, ty, v0, v1, dx, dy] = Array.from(obs);
    return {
      distance: Math.hypot(dx, dy),
      dx,
      dy,
      target_x: tx,
      target_y: ty,
      fingertip_x: tx + dx,
      fingertip_y: ty + dy,
      shoulder_angle: Math.atan2(s0, c0),
      elbow_angle: Math.atan2(s1, c1),
      shoulder_velocity: v0,
      elbow_velocity: v1,
    };
  },
  describe(obs) {
    const f = this.features(obs);
    return (
      `fingertip ${num(f.distance, 3)} m from the target (fingertip - target: x ${signed(f.dx, 3)}, y ${signed(f.dy, 3)}), ` +
      `fingertip at (${signed(f.fingertip_x, 3)}, ${signed(f.fingertip_y, 3)}), target at (${signed(f.target_x, 3)}, ${signed(f.target_y, 3)}); ` +
      `joint angles: shoulder ${signed(f.shoulder_angle)} rad, elbow ${signed(f.elbow_angle)} rad; ` +
      `joint velocities: shoulder ${signed(f.shoulder_velocity)} rad/s, elbow ${signed(f.elbow_velocity)} rad/s`
    );
  },
  actionNames: ["shoulder", "elbow"],
  actionSemantics: "2 torques in [-1, 1]: shoulder (joint between the fixed base and the first link), elbow (joint between the two links)",
  describeAction(action) {
    return describeTorques("Reacher", JOINTS, 0.1, action);
  },
  keyFeatures: [
    { name: "distance", label: "distance to target", unit: "m", digits: 3 },
    { name: "shoulder_velocity", label: "shoulder velocity", unit: "rad/s" },
    { name: "elbow_velocity", label: "elbow velocity", unit: "rad/s" },
  ],
};
