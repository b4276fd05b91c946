// Env steps per arm. Identification (episodes shown to the adviser, its rollouts, verification) costs env steps
// that only the arms using its states benefit from; `improve.budget: env_steps` gives the others as many more
// improve steps, so that every arm's total is the same.
import type { SidecarClient } from "../bridge/client.js";
import type { EnvSteps } from "./critical.js";

export type Budget = "updates" | "env_steps";

/** The env steps an arm's preparation took: ULTRA and rice_reset use the adviser's verified states (all of
 * identify), random_critical only the collected episodes, rice its mask net's training (`maskSteps`; 0 when one
 * was given), rice_random and continue_ppo nothing. */
export function prepSteps(arm: string, s: EnvSteps, maskSteps = 0): number {
  if (arm.startsWith("ultra_") || arm === "rice_reset") return s.collect + s.adviser + s.verify;
  if (arm === "rice") return maskSteps;
  if (arm === "rice_random") return 0; // no mask net: a random state of the fresh rollout
  if (arm === "random_critical") return s.collect;
  if (arm === "continue_ppo") return 0;
  throw new Error(`no preparation cost is defined for arm "${arm}"`);
}

export interface ArmBudget {
  prep_env_steps: number;
  /** the improve steps asked of learn() (it may overshoot to whole rollouts: progress.json's steps_done says) */
  improve_steps: number;
}

/** Each arm's preparation and improve steps. `updates`: `steps` each; `env_steps`: `steps` plus what it prepared
 * less than the arm that prepared most, so prep + improve is equal across arms. `chargeMask` false leaves the mask
 * net's training out of that matching (RICE's own accounting, as when its mask net is given): the rice arm trains as
 * long as continue PPO, and its mask net's steps are still reported as its preparation. */
export function armBudgets(
  arms: readonly string[],
  steps: number,
  budget: Budget,
  envSteps: EnvSteps,
  maskSteps = 0,
  chargeMask = true,
): Record<string, ArmBudget> {
  const prep = Object.fromEntries(arms.map((a) => [a, prepSteps(a, envSteps, maskSteps)]));
  const charged = Object.fromEntries(arms.map((a) => [a, a === "rice" && !chargeMask ? 0 : prep[a]]));
  const most = Math.max(0, ...Object.values(charged));
  return Object.fromEntries(
    arms.map((a) => [a, { prep_env_steps: prep[a], improve_steps: budget === "env_steps" ? steps + most - charged[a] : steps }]),
  );
}

/** `sc` whose replies carrying `env_steps` (counterfactual, paired_returns) are added to `steps[key]`. */
export function countingSidecar(sc: SidecarClient, steps: EnvSteps, key: keyof EnvSteps): SidecarClient {
  return new Proxy(sc, {
    get(target, prop) {
      if (prop === "call")
        return async (...args: Parameters<SidecarClient["call"]>) => {
          const res: unknown = await target.call(...args);
          const n = (res as { env_steps?: unknown } | null)?.env_steps;
          if (typeof n === "number") steps[key] += n;
          return res;
        };
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}
