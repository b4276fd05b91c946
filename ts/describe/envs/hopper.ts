// Hopper-v5 (gymnasium/envs/mujoco/hopper_v5.py): 11-dim obs = z, torso angle, thigh, leg, foot angles, then
// x/z/angular velocity and the three joint velocities; 3 torques. Healthy (else terminated): z > 0.7,
// -0.2 < angle < 0.2, every element of obs[1:] within (-100, 100). Reward = 1 (healthy) + dx/dt - 1e-3 |a|^2.
import { uprightInterpreter } from "./upright.js";

export const hopper = uprightInterpreter({
  name: "Hopper",
  jointKeys: ["thigh", "leg", "foot"],
  joints: ["thigh", "leg", "foot"],
  healthyZ: [0.7, Infinity],
  healthyAngle: [-0.2, 0.2],
  healthyState: [-100, 100],
  ctrlCostWeight: 1e-3,
});
