"""Counterfactual rollouts from a snapshot: which first action does best when the policy takes over after it?

All candidates run in lockstep in one VecEnv (one sub-env per candidate), so the policy sees one batch per step.
Used by the `rollout` adviser to pick actions, and to verify any adviser's suggestions. Both ops return
`env_steps`, the sub-env steps they took, which the improvement phase counts in ULTRA's budget."""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv

from .envs import find_vec_normalize
from .protocol import ProtocolError
from .snapshot import restore


def rollout_returns(
    model: PPO, venv: VecEnv, snap: dict, candidates: np.ndarray, horizon: int, gamma: float, deterministic: bool = True
) -> dict:
    """Estimated return of: candidate action i, then the policy for `horizon` − 1 steps, then the critic's
    V(s_H) for what would follow (so sparse rewards beyond the horizon still count). Rewards are the ones the
    model learned from (normalised under VecNormalize), in the critic's units. Sub-env i runs candidate i.
    Returns {returns, env_steps}."""
    n = venv.num_envs
    if len(candidates) != n:
        raise ProtocolError(
            "bad_args",
            f"{len(candidates)} candidate actions for an env with {n} sub-envs; make the env with n_envs = candidates",
        )
    obs = np.stack([restore(venv, i, snap) for i in range(n)])
    vn = find_vec_normalize(venv)
    if vn is not None and vn.training:
        raise ProtocolError("bad_args", "counterfactual rollouts need an env with frozen normalisation (training: false)")

    def act(t: int, obs: np.ndarray) -> np.ndarray:
        if t == 0:
            return np.asarray(candidates)
        with torch.no_grad():
            obs_t, _ = model.policy.obs_to_tensor(obs)
            return model.policy._predict(obs_t, deterministic=deterministic).cpu().numpy()

    returns, steps = _returns(model, venv, obs, act, horizon, gamma)
    return {"returns": returns, "env_steps": steps}


def _returns(model: PPO, venv: VecEnv, obs: np.ndarray, act, horizon: int, gamma: float) -> tuple[np.ndarray, int]:
    """Per sub-env: Σ γ^t r_t over `horizon` steps from `obs` (rewards stop where its episode ends), plus γ^H·V(s_H)
    where it is still running. act(t, obs) gives step t's actions. Also the sub-env steps taken: every sub-env
    is stepped until all have ended (one that ended early runs on in its next episode: those steps cost too)."""
    box = isinstance(venv.action_space, spaces.Box)
    returns, alive, discount = np.zeros(venv.num_envs), np.ones(venv.num_envs, dtype=bool), 1.0
    steps = 0
    for t in range(horizon):
        actions = act(t, obs)
        env_actions = np.clip(actions, venv.action_space.low, venv.action_space.high) if box else actions
        obs, rewards, dones, _ = venv.step(env_actions)
        steps += venv.num_envs
        returns += discount * rewards * alive
        alive &= ~dones
        discount *= gamma
        if not alive.any():
            return returns, steps
    with torch.no_grad():
        obs_t, _ = model.policy.obs_to_tensor(obs)
        values = model.policy.predict_values(obs_t).cpu().numpy().reshape(-1)
    return returns + discount * values * alive, steps


def _policy_noise(model: PPO, rng: np.random.Generator) -> np.ndarray:
    """One step's noise for one rollout: a standard normal per action dim (Gaussian policies), Gumbel noise per
    action (categorical ones). The same noise drives both rollouts of a pair."""
    space = model.action_space
    if isinstance(space, spaces.Box):
        return rng.standard_normal(space.shape[0])
    if isinstance(space, spaces.Discrete):
        return rng.gumbel(size=int(space.n))
    raise ProtocolError("unsupported", f"paired rollouts support Box and Discrete actions, not {type(space).__name__}")


def _sample(model: PPO, obs: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """a ~ π(·|obs) with the given noise (reparameterised): mean + std·ε, or argmax(logits + Gumbel)."""
    with torch.no_grad():
        obs_t, _ = model.policy.obs_to_tensor(obs)
        dist = model.policy.get_distribution(obs_t).distribution
        noise_t = torch.as_tensor(noise, dtype=torch.float32, device=model.device)
        if isinstance(model.action_space, spaces.Discrete):
            return (dist.logits + noise_t).argmax(-1).cpu().numpy()
        if model.policy.squash_output or getattr(model.policy, "use_sde", False):
            raise ProtocolError("unsupported", "paired rollouts need a plain diagonal Gaussian policy (no gSDE, no squashing)")
        return (dist.mean + dist.stddev * noise_t).cpu().numpy()


def paired_returns(model: PPO, venv: VecEnv, snap: dict, action, pairs: int, horizon: int, seed: int) -> dict:
    """Common-random-number rollouts from a snapshot, to judge one suggested first action against the policy.

    Group k runs three sub-envs from the same state: two take fresh samples of π(·|s) as their first action, one
    the suggestion; afterwards all three follow π driven by the same noise (seeded by (seed, k)), and the env's own
    randomness is the snapshot's in each. So differences within a group are the first actions' effects, not noise:
    suggested − own is the suggestion's gain, own − own_again how much two of the policy's own actions differ.
    Returns are discounted with the model's γ over `horizon` steps, plus γ^H·V(s_H) (the critic's units: normalised
    rewards under VecNormalize). Returns {own, suggested, own_again}: one return per group each, and env_steps
    (a last, partial batch still steps every sub-env)."""
    n = venv.num_envs
    if n % 3 or n < 3:
        raise ProtocolError(
            "bad_args", f"paired rollouts run in groups of 3 sub-envs; the env has {n}, make it a multiple of 3"
        )
    vn = find_vec_normalize(venv)
    if vn is not None and vn.training:
        raise ProtocolError("bad_args", "paired rollouts need an env with frozen normalisation (training: false)")
    suggested = np.asarray(action, dtype=venv.action_space.dtype)
    if suggested.shape != venv.action_space.shape:
        raise ProtocolError("bad_args", f"action has shape {suggested.shape}, the action space {venv.action_space.shape}")
    gamma, per_batch = float(model.gamma), n // 3
    out, env_steps = np.zeros((0, 3)), 0
    for first in range(0, pairs, per_batch):
        rngs = [np.random.default_rng([seed, k]) for k in range(first, first + per_batch)]
        obs = np.stack([restore(venv, i, snap) for i in range(n)])

        def act(t: int, obs: np.ndarray) -> np.ndarray:
            noise = np.repeat(np.stack([_policy_noise(model, r) for r in rngs]), 3, axis=0)  # noqa: B023 - called within this batch
            if t == 0:  # the policy's two first actions need noise of their own; the suggestion takes none
                noise[2::3] = np.stack([_policy_noise(model, r) for r in rngs])  # noqa: B023 - called within this batch
            actions = _sample(model, obs, noise)
            if t == 0:
                actions[1::3] = suggested
            return actions

        returns, steps = _returns(model, venv, obs, act, horizon, gamma)
        env_steps += steps
        out = np.concatenate([out, returns.reshape(per_batch, 3)[: pairs - first]])
    return {"own": out[:, 0], "suggested": out[:, 1], "own_again": out[:, 2], "env_steps": env_steps}


def segment_returns(model: PPO, venv: VecEnv, snap: dict, actions: np.ndarray, horizon: int) -> dict:
    """StateMask's fidelity rollouts from a snapshot at a critical segment's first step. Sub-env 0 follows the
    policy's deterministic actions through the segment (the baseline); sub-env i ≥ 1 takes actions[i − 1] there
    (l steps). After the segment all follow the deterministic policy for up to `horizon` steps or until their
    episode ends. Returns {returns: the undiscounted raw env rewards from the snapshot on, one per sub-env (m + 1),
    env_steps}. Raw, not normalised: fidelity compares return changes across episodes of one env."""
    n = venv.num_envs
    actions = np.asarray(actions)
    if actions.ndim < 2 or actions.shape[0] != n - 1:
        raise ProtocolError(
            "bad_args",
            f"actions must be (m, l, *action_shape) with m = {n - 1} (the env's {n} sub-envs less the baseline), got shape {actions.shape}",
        )
    if actions.shape[2:] != venv.action_space.shape:
        raise ProtocolError(
            "bad_args", f"actions' per-step shape is {actions.shape[2:]}, the action space's {venv.action_space.shape}"
        )
    vn = find_vec_normalize(venv)
    if vn is not None and vn.training:
        raise ProtocolError("bad_args", "segment rollouts need an env with frozen normalisation (training: false)")
    box = isinstance(venv.action_space, spaces.Box)
    seg = actions.shape[1]
    obs = np.stack([restore(venv, i, snap) for i in range(n)])
    returns, alive, steps = np.zeros(n), np.ones(n, dtype=bool), 0
    for t in range(seg + horizon):
        with torch.no_grad():
            obs_t, _ = model.policy.obs_to_tensor(obs)
            act = model.policy._predict(obs_t, deterministic=True).cpu().numpy()
        if t < seg:
            act[1:] = actions[:, t]
        env_actions = np.clip(act, venv.action_space.low, venv.action_space.high) if box else act
        obs, rewards, dones, _ = venv.step(env_actions)
        if vn is not None:
            rewards = vn.get_original_reward()
        steps += n
        returns += rewards * alive  # a sub-env that ended runs on in its next episode: those rewards are not its
        alive &= ~dones
        if not alive.any():
            break
    return {"returns": returns.astype(np.float64), "env_steps": steps}
