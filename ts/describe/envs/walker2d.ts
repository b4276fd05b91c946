// Walker2d-v5 (gymnasium/envs/mujoco/walker2d_v5.py): 17-dim obs = z, torso angle, 6 joint angles (right leg
// thigh/leg/foot, then left), then x/z/angular velocity and the 6 joint velocities; 6 torques in the same
// joint order. Healthy (else terminated): 0.8 < z < 2.0 and -1 < angle < 1 (the code checks qpos[2], i.e.
// obs[1]; the docstring's "observation[2]" is a typo). Reward = 1 (healthy) + dx/dt - 1e-3 |a|^2.
// The XML names the right leg's joints without a suffix ("thigh_joint") and the left ones "*_left_joint".
import { uprightInterpreter } from "./upright.js";

export const walker2d = uprightInterpreter({
  name: "Walker2d",
  jointKeys: ["right_thigh", "right_leg", "right_foot", "left_thigh", "left_leg", "left_foot"],
  joints: ["right thigh", "right leg", "right foot", "left thigh", "left leg", "left foot"],
  healthyZ: [0.8, 2.0],
  healthyAngle: [-1, 1],
  ctrlCostWeight: 1e-3,
});
