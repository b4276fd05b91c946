"""Trajectory collection and evaluation: the per-step loops stay here, results stream to TS in chunks."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

from .envs import find_vec_normalize
from .models import PROGRESS_INTERVAL_S
from .snapshot import base_env, snapshot

Emit = Callable[[str, dict], None]
FIELDS = ("obs", "raw_obs", "ram", "actions", "rewards", "values", "log_probs")


def _ram(venv: VecEnv, i: int) -> np.ndarray | None:
    """ALE's 128-byte RAM (paddles, ball, score) for the state interpreter; None for other envs."""
    u = base_env(venv, i).unwrapped
    return u.ale.getRAM().copy() if hasattr(u, "ale") else None


def _chunks(episode: int, env_index: int, steps: dict, snaps: list, snap_steps: list, size: int, ret: float, terminated: bool):
    """Split one finished episode into chunks of at most `size` steps. raw_obs is sent only when it differs
    from obs (under VecNormalize): on Atari it would double the largest array."""
    n = len(steps["rewards"])
    arrays = {k: np.asarray(v) for k, v in steps.items() if v}
    arrays["rewards"] = arrays["rewards"].astype(np.float32)
    dones = np.zeros(n, dtype=bool)
    dones[-1] = True
    arrays["dones"] = dones
    snap_steps = np.asarray(snap_steps, dtype=np.int32)
    for start in range(0, n, size):
        end = min(start + size, n)
        sel = (snap_steps >= start) & (snap_steps < end)
        yield {
            "episode": episode,
            "env_index": env_index,
            "start": start,
            "length": n,
            "final": end == n,
            "return": ret if end == n else None,
            "terminated": terminated if end == n else None,
            **{k: a[start:end] for k, a in arrays.items()},
            "snapshot_steps": snap_steps[sel],
            "snapshots": [s for s, keep in zip(snaps, sel) if keep],
        }


def collect(
    model: PPO, venv: VecEnv, episodes: int, deterministic: bool, snapshot_every: int, chunk_steps: int, emit: Emit
) -> dict:
    """Roll out until `episodes` episodes finished; stream each as chunks (obs, action, reward, value, log-prob,
    done, snapshots). Unfinished episodes at the end are dropped."""
    vn = find_vec_normalize(venv)
    n = venv.num_envs
    box = isinstance(venv.action_space, spaces.Box)
    new_buf = lambda: ({k: [] for k in FIELDS}, [], [])
    bufs = [new_buf() for _ in range(n)]
    obs = venv.reset()
    finished, total_steps, summary, last_emit = 0, 0, [], time.perf_counter()
    snapshot_s = 0.0  # time in snapshot() (ultra bench snapshots reports it beside the transfer's cost)
    while finished < episodes:
        raw = vn.get_original_obs() if vn is not None else None
        rams = [_ram(venv, i) for i in range(n)]  # before the step, like obs
        for i in range(n):
            t = len(bufs[i][0]["rewards"])
            if snapshot_every and t % snapshot_every == 0:
                t0 = time.perf_counter()
                bufs[i][1].append(snapshot(venv, i))
                snapshot_s += time.perf_counter() - t0
                bufs[i][2].append(t)
        with torch.no_grad():
            obs_t, _ = model.policy.obs_to_tensor(obs)
            actions, values, log_probs = model.policy(obs_t, deterministic=deterministic)
        actions = actions.cpu().numpy()
        env_actions = np.clip(actions, venv.action_space.low, venv.action_space.high) if box else actions
        next_obs, rewards, dones, infos = venv.step(env_actions)
        if vn is not None:
            rewards = vn.get_original_reward()
        values, log_probs = values.cpu().numpy().reshape(-1), log_probs.cpu().numpy().reshape(-1)
        for i in range(n):
            steps = bufs[i][0]
            state = (obs[i], None if raw is None else raw[i], rams[i], env_actions[i], rewards[i], values[i], log_probs[i])
            for key, val in zip(FIELDS, state):
                if val is not None:
                    steps[key].append(val)
            if dones[i]:
                ep = infos[i].get("episode")
                ret = float(ep["r"]) if ep else float(np.sum(steps["rewards"]))
                # the env's own ending (a fall, a lost game) rather than the time limit: the adviser is told which
                terminated = not infos[i].get("TimeLimit.truncated", False)
                if finished < episodes:
                    for chunk in _chunks(finished, i, steps, bufs[i][1], bufs[i][2], chunk_steps, ret, terminated):
                        emit("chunk", chunk)
                    summary.append({"episode": finished, "env_index": i, "return": ret, "length": len(steps["rewards"])})
                    total_steps += len(steps["rewards"])
                    finished += 1
                bufs[i] = new_buf()
        obs = next_obs
        if time.perf_counter() - last_emit > PROGRESS_INTERVAL_S:  # liveness while a long episode runs
            last_emit = time.perf_counter()
            emit("progress", {"episodes": finished, "total": episodes})
    return {"episodes": summary, "steps": total_steps, "snapshot_s": snapshot_s}


def evaluate(model: PPO, venv: VecEnv, episodes: int, deterministic: bool, emit: Emit) -> dict:
    last = [time.perf_counter()]

    def on_step(local_vars: dict, _globals: dict) -> None:
        if time.perf_counter() - last[0] > PROGRESS_INTERVAL_S:
            last[0] = time.perf_counter()
            emit("progress", {"episodes": int(np.sum(local_vars["episode_counts"])), "total": episodes})

    returns, lengths = evaluate_policy(
        model, venv, n_eval_episodes=episodes, deterministic=deterministic, return_episode_rewards=True, callback=on_step
    )
    r = np.asarray(returns, dtype=np.float64)
    return {"returns": r, "lengths": np.asarray(lengths, dtype=np.int64), "mean": float(r.mean()), "std": float(r.std())}
