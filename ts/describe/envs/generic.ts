// The fallback for envs without an interpreter: names obs[i] and reports the numbers, so an adviser still
// sees the trajectory (and the summary its rewards and values) without any claim about what they mean.
import { num, signed } from "../format.js";
import type { StateInterpreter } from "./types.js";

const MAX_LISTED = 24; // beyond this (images, long vectors) list the first ones and summary statistics
const MAX_FEATURES = 64; // naming every pixel of a frame helps no one and costs memory per step

export function genericInterpreter(name: string): StateInterpreter {
  return {
    name,
    features(obs) {
      const f: Record<string, number> = {};
      for (let i = 0; i < Math.min(obs.length, MAX_FEATURES); i++) f[`obs[${i}]`] = Number(obs[i]);
      return f;
    },
    describe(obs) {
      const v = Array.from(obs, Number);
      const shown = v
        .slice(0, MAX_LISTED)
        .map((x, i) => `obs[${i}] ${signed(x, 3)}`)
        .join(", ");
      if (v.length <= MAX_LISTED) return shown;
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const min = v.reduce((a, b) => Math.min(a, b));
      const max = v.reduce((a, b) => Math.max(a, b));
      return `${v.length} numbers, of which ${shown}, ...; mean ${num(mean, 3)}, min ${num(min, 3)}, max ${num(max, 3)}`;
    },
    actionSemantics: "not described for this env: a vector of numbers (continuous actions) or an integer index (discrete actions)",
    describeAction(action) {
      if (typeof action === "number") return `action ${action}`;
      return `action [${Array.from(action, (x) => signed(Number(x), 3)).join(", ")}]`;
    },
    keyFeatures: [],
  };
}
