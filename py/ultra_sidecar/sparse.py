"""RICE's sparse MuJoCo variants (after Mazoure et al. 2019): the reward is the torso's x position, paid only
once it passes a threshold, else 0. Registered as ultra/Sparse<Env>-v5; the threshold is an env kwarg, set by the
env's config (configs/envs/sparse-*.yaml: RICE's 0.6 for Hopper and Walker2d, 5 for HalfCheetah)."""

from __future__ import annotations

import gymnasium as gym

BASES = ("Hopper", "Walker2d", "HalfCheetah")


class SparseForwardReward(gym.Wrapper):
    def __init__(self, env: gym.Env, threshold: float):
        super().__init__(env)
        self.threshold = threshold

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        x = float(info["x_position"])
        info["dense_reward"] = reward
        return obs, (x if x > self.threshold else 0.0), terminated, truncated, info


def _make(base: str, threshold: float | None = None, **kwargs) -> gym.Env:
    if threshold is None:
        raise ValueError(
            f"ultra/Sparse{base}-v5 needs env_kwargs threshold (the x position past which reward is paid; configs/envs sets RICE's)"
        )
    return SparseForwardReward(gym.make(f"{base}-v5", **kwargs).unwrapped, float(threshold))


def register() -> None:
    for base in BASES:
        env_id = f"ultra/Sparse{base}-v5"
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=_make, max_episode_steps=1000, kwargs={"base": base})
