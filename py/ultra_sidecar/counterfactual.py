"""Counterfactual rollouts from a snapshot: which first action does best when the policy takes over after it?

All candidates run in lockstep in one VecEnv (one sub-env per candidate), so the policy sees one batch per step.
Used by the `rollout` adviser to pick actions, and to verify any adviser's suggestions."""

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
) -> np.ndarray:
    """Estimated return of: candidate action i, then the policy for `horizon` − 1 steps, then the critic's
    V(s_H) for what would follow (so sparse rewards beyond the horizon still count). Rewards are the ones the
    model learned from (normalised under VecNormalize), in the critic's units. Sub-env i runs candidate i."""
    n = venv.num_envs
    if len(candidates) != n:
        raise ProtocolError("bad_args", f"{len(candidates)} candidate actions for an env with {n} sub-envs; make the env with n_envs = candidates")
    box = isinstance(venv.action_space, spaces.Box)
    obs = np.stack([restore(venv, i, snap) for i in range(n)])
    vn = find_vec_normalize(venv)
    if vn is not None and vn.training:
        raise ProtocolError("bad_args", "counterfactual rollouts need an env with frozen normalisation (training: false)")
    returns, alive, discount = np.zeros(n), np.ones(n, dtype=bool), 1.0
    actions = np.asarray(candidates)
    for t in range(horizon):
        if t > 0:
            with torch.no_grad():
                obs_t, _ = model.policy.obs_to_tensor(obs)
                actions = model.policy._predict(obs_t, deterministic=deterministic).cpu().numpy()
        env_actions = np.clip(actions, venv.action_space.low, venv.action_space.high) if box else actions
        obs, rewards, dones, _ = venv.step(env_actions)
        returns += discount * rewards * alive
        alive &= ~dones
        discount *= gamma
        if not alive.any():
            return returns
    with torch.no_grad():
        obs_t, _ = model.policy.obs_to_tensor(obs)
        values = model.policy.predict_values(obs_t).cpu().numpy().reshape(-1)
    return returns + discount * values * alive
