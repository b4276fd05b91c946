// Advisers by name: `rollout` now; the LLM advisers (local, openai:MODEL, replay:RUN) plug in here.
import { UltraError } from "../../bridge/errors.js";
import { RolloutAdviser } from "./rollout.js";
import type { Adviser } from "./types.js";

export function makeAdviser(spec: string): Adviser {
  if (spec === "rollout") return new RolloutAdviser();
  throw new UltraError(`unknown adviser "${spec}": available: rollout`);
}
