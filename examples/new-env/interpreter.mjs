// A state interpreter for Gymnasium's Pendulum-v1, written outside ts/: `interpreter: module:./interpreter.mjs` in
// pendulum.yaml. Its default export has the shape of StateInterpreter (ts/describe/envs/types.ts), less `name`,
// which is the config's. ULTRA calls it with raw observations (the env's own units, before VecNormalize) to
// write each identify prompt: `describe` for the states it shows in full, `keyFeatures` for each segment's summary.
//
// Pendulum-v1 (gymnasium/envs/classic_control/pendulum.py): obs = [cos θ, sin θ, θ̇], θ = 0 upright, counter-
// clockwise positive; a 1 m pole; action = 1 torque in [-2, 2]; reward = -(θ² + 0.1 θ̇² + 0.001 u²); 200 steps.

const signed = (x, digits = 2) => `${x >= 0 ? "+" : "-"}${Math.abs(x).toFixed(digits)}`;

export default {
  features(obs) {
    const [cos, sin, velocity] = Array.from(obs);
    const angle = Math.atan2(sin, cos); // in [-π, π]: 0 upright, ±π hanging down
    return { angle, angle_from_upright: Math.abs(angle), tip_height: cos, velocity };
  },
  describe(obs) {
    const f = this.features(obs);
    const side = Math.abs(f.angle) < 0.01 ? "upright" : f.angle > 0 ? "tilted counter-clockwise" : "tilted clockwise";
    const motion =
      Math.abs(f.velocity) < 0.05 ? "at rest" : f.angle * f.velocity < 0 ? "swinging toward upright" : "swinging away from upright";
    return (
      `pendulum ${((f.angle_from_upright * 180) / Math.PI).toFixed(0)}° from upright (${side}), ` +
      `tip ${signed(f.tip_height)} m above the pivot; angular velocity ${signed(f.velocity)} rad/s, ${motion}`
    );
  },
  actionNames: ["torque"],
  actionSemantics: "1 torque in [-2, 2] N·m at the pivot (positive turns the pendulum counter-clockwise)",
  describeAction(action) {
    const u = typeof action === "number" ? action : Number(action[0]);
    return `torque ${signed(u)} N·m (${u >= 0 ? "counter-clockwise" : "clockwise"})`;
  },
  keyFeatures: [
    { name: "angle_from_upright", label: "angle from upright", unit: "rad" },
    { name: "velocity", label: "angular velocity", unit: "rad/s" },
  ],
};
