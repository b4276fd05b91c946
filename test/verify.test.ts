// Verified advice against the real sidecar: common-random-number groups from a snapshot, judged by the paired
// test of ts/ultra/verify.ts. A suggestion that is just a sample of the policy must rarely pass; one that is
// clearly better by the env's physics must nearly always pass.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Snapshot } from "../ts/bridge/ops.js";
import type { Sidecar } from "../ts/bridge/sidecar.js";
import { NDArray } from "../ts/protocol.js";
import { resolveSettings } from "../ts/ultra/settings.js";
import { judge } from "../ts/ultra/verify.js";
import { startSidecar, TINY_PPO } from "./helpers.js";

const TRIALS = 100;
// the defaults of configs/ultra.yaml; min_effect 1.25 with 32 groups was chosen on the two Pendulum tests below
// (measured: 100 and 7 of 100 pass; 16 groups with min_effect 1.0 gave 98 and 11)
const { pairs: GROUPS, min_effect: MIN_EFFECT } = resolveSettings({ profile: "paper" }).verification;
const HORIZON = 25; // the quick profile's rollout horizon

let sc: Sidecar;
beforeAll(async () => {
  sc = await startSidecar();
});
afterAll(async () => {
  await sc?.close();
});

/** A real snapshot of `envId`, moved to the classic-control state `state` (observation `obs`). */
async function snapshotAt(envId: string, state: number[], obs: number[]): Promise<Snapshot> {
  const { env } = await sc.call("env_make", { spec: { env_id: envId, n_envs: 1, seed: 0 } });
  await sc.call("env_reset", { env });
  const { snapshot } = await sc.call("env_snapshot", { env, index: 0 });
  const s = snapshot as any;
  s.base.state = new NDArray("float64", [state.length], Float64Array.from(state));
  s.vec.obs = NDArray.float32(obs);
  return snapshot;
}

/** How many of TRIALS suggestions verification accepts; `suggest(i)` gives trial i's action. */
async function acceptance(envId: string, snapshot: Snapshot, suggest: (i: number) => Promise<NDArray | number>) {
  const { env } = await sc.call("env_make", { spec: { env_id: envId, n_envs: 3 * GROUPS, seed: 1 } });
  const { env: own } = await sc.call("env_make", { spec: { env_id: envId, n_envs: 1, seed: 2 } });
  const { model } = await sc.call("model_new", { env: own, ppo: TINY_PPO });
  let accepted = 0;
  for (let i = 0; i < TRIALS; i++) {
    const r = await sc.call("paired_returns", { model, env, snapshot, action: await suggest(i), pairs: GROUPS, horizon: HORIZON, seed: i });
    const own = r.own.toNumbers();
    const again = r.own_again.toNumbers();
    expect(own.length).toBe(GROUPS);
    const v = judge(
      r.suggested.toNumbers().map((x, k) => x - own[k]),
      own.map((x, k) => x - again[k]),
      MIN_EFFECT,
    );
    if (v.accepted) accepted++;
  }
  return { accepted, model, obs: (snapshot as any).vec.obs as NDArray };
}

const policySample = (model: () => string, obs: () => NDArray, discrete: boolean) => async () => {
  const { actions } = await sc.call("model_predict", { model: model(), obs: obs(), deterministic: false });
  return discrete ? Number(actions.data[0]) : NDArray.float32(actions.toNumbers());
};

describe("verification", () => {
  // Pendulum, θ = 0.3 rad from upright and falling further at 1 rad/s: a full torque of −2 against the fall
  // slows it (θ̇' = θ̇ + (15 sin θ + 3u)·0.05), which the rest of the short horizon rewards.
  const PENDULUM = { state: [0.3, 1.0], obs: [Math.cos(0.3), Math.sin(0.3), 1.0] };

  it("accepts a planted, clearly better action (Pendulum: full torque against the fall) in ≥ 90% of trials", async () => {
    const snap = await snapshotAt("Pendulum-v1", PENDULUM.state, PENDULUM.obs);
    const { accepted } = await acceptance("Pendulum-v1", snap, async () => NDArray.float32([-2]));
    expect(accepted).toBeGreaterThanOrEqual(90);
  });

  it("accepts a sample of the policy itself (Pendulum) in ≤ 10% of trials", async () => {
    const snap = await snapshotAt("Pendulum-v1", PENDULUM.state, PENDULUM.obs);
    let model = "";
    const obs = NDArray.float32(PENDULUM.obs, [1, 3]);
    const { accepted } = await acceptance("Pendulum-v1", snap, async () => {
      if (!model) {
        const { env } = await sc.call("env_make", { spec: { env_id: "Pendulum-v1", n_envs: 1, seed: 3 } });
        model = (await sc.call("model_new", { env, ppo: TINY_PPO })).model; // same seed: the same policy as the verifier's
      }
      return policySample(
        () => model,
        () => obs,
        false,
      )();
    });
    expect(accepted).toBeLessThanOrEqual(10);
  });

  it("accepts a sample of the policy itself (CartPole, one step from falling) in ≤ 10% of trials", async () => {
    // the pole leans 0.2 rad (it falls at 0.2095) and turns further at 0.3 rad/s: one action saves it for a step
    const state = [0, 0, 0.2, 0.3];
    const snap = await snapshotAt("CartPole-v1", state, state);
    let model = "";
    const obs = NDArray.float32(state, [1, 4]);
    const { accepted } = await acceptance("CartPole-v1", snap, async () => {
      if (!model) {
        const { env } = await sc.call("env_make", { spec: { env_id: "CartPole-v1", n_envs: 1, seed: 3 } });
        model = (await sc.call("model_new", { env, ppo: TINY_PPO })).model;
      }
      return policySample(
        () => model,
        () => obs,
        true,
      )();
    });
    expect(accepted).toBeLessThanOrEqual(10);
  });

  it("counts the env steps it takes (Pendulum cannot end within the horizon): pairs × 3 × horizon", async () => {
    const snap = await snapshotAt("Pendulum-v1", PENDULUM.state, PENDULUM.obs);
    const { env } = await sc.call("env_make", { spec: { env_id: "Pendulum-v1", n_envs: 6, seed: 0 } }); // two groups at a time
    const { model } = await sc.call("model_new", { env, ppo: TINY_PPO });
    const r = await sc.call("paired_returns", {
      model,
      env,
      snapshot: snap,
      action: NDArray.float32([-2]),
      pairs: 4,
      horizon: HORIZON,
      seed: 0,
    });
    expect(r.env_steps).toBe(4 * 3 * HORIZON);
    const candidates = NDArray.float32([-2, 0, 0.5, 1, 1.5, 2], [6, 1]);
    const c = await sc.call("counterfactual", { model, env, snapshot: snap, candidates, horizon: HORIZON, gamma: 0.99 });
    expect(c.env_steps).toBe(6 * HORIZON);
  });

  it("refuses an env whose sub-envs are not groups of three", async () => {
    const snap = await snapshotAt("Pendulum-v1", PENDULUM.state, PENDULUM.obs);
    const { env } = await sc.call("env_make", { spec: { env_id: "Pendulum-v1", n_envs: 4, seed: 0 } });
    const { model } = await sc.call("model_new", { env, ppo: TINY_PPO });
    await expect(
      sc.call("paired_returns", { model, env, snapshot: snap, action: NDArray.float32([0]), pairs: 4, horizon: 5, seed: 0 }),
    ).rejects.toThrow(/groups of 3 sub-envs; the env has 4/);
  });
});
