"""The learning runs behind `ultra bench overhead|determinism|scale`: SB3's own PPO and the project's ModulatedPPO,
built alike from one env spec and one set of hyperparameters. Only `learn()` is timed, inside this process, so
the bridge is not in the figures."""

from __future__ import annotations

import time

import numpy as np
import torch
from stable_baselines3 import PPO

from .envs import find_vec_normalize, make_env
from .models import new_ppo
from .modulation import ModulatedPPO, ModulationTable
from .protocol import ProtocolError, int_in
from .snapshot import snapshot

IMPLS = {"sb3": PPO, "ultra": ModulatedPPO}


def synthetic_table(spec: dict, n: int, seed: int, radius: float) -> dict:
    """n critical states as identify would give them: observations and snapshots along a random-action rollout
    of a separate copy of the env (the trained env is not touched), random actions, small rewards."""
    venv = make_env({**spec, "n_envs": 1, "training": False})
    rng = np.random.default_rng(seed)
    venv.action_space.seed(seed)
    vn = find_vec_normalize(venv)
    states, obs = [], venv.reset()
    for _ in range(n):
        for _ in range(int(rng.integers(1, 20))):  # spread the states along the trajectory
            obs, _, _, _ = venv.step(np.array([venv.action_space.sample()]))
        raw = vn.get_original_obs()[0] if vn is not None else obs[0]
        states.append({"obs": raw, "action": venv.action_space.sample(), "reward": float(rng.uniform(-1, 1)), "snapshot": snapshot(venv, 0)})
    venv.close()
    return {"variant": "RA", "radius": radius, "reset_prob": 0.25, "reward_scale": 1.0, "seed": seed, "states": states}


def learn_run(args: dict) -> dict:
    """args: spec (env), ppo (hyperparameters incl. seed), steps, impl (sb3 | ultra), threads (torch threads, set
    before the model is built), table_states (ultra only: None = no table, 0 = an empty one, n = a synthetic table
    of n critical states within table_radius), params (return the policy's tensors)."""
    impl, n_states = args["impl"], args.get("table_states")
    if impl not in IMPLS:
        raise ProtocolError("bad_args", f"impl must be one of {', '.join(IMPLS)}, got {impl!r}")
    if n_states is not None and impl != "ultra":
        raise ProtocolError("bad_args", "a modulation table needs impl 'ultra'")
    threads, ppo = int_in(args["threads"], "threads", 1, 256), args["ppo"]
    if not isinstance(ppo, dict):
        raise ProtocolError("bad_args", "ppo must be a map of PPO hyperparameters")
    venv = make_env(args["spec"])
    torch.set_num_threads(threads)
    seed = int(ppo.get("seed") or 0)
    table = None if n_states is None else synthetic_table(args["spec"], int(n_states), seed, float(args.get("table_radius", 0.1)))
    model = new_ppo(venv, {"device": "cpu", **ppo}, IMPLS[impl])
    if table is not None:
        model.modulation = ModulationTable(table, venv)
    t0 = time.perf_counter()
    model.learn(int(args["steps"]))
    seconds = time.perf_counter() - t0
    returns = [float(r) for rs in venv.env_method("get_episode_rewards") for r in rs]  # Monitor's, per sub-env
    out = {
        "seconds": seconds,
        "steps": model.num_timesteps,
        "steps_per_s": model.num_timesteps / seconds,
        "episode_returns": returns,
        "modulation": model.modulation_stats if impl == "ultra" else None,
    }
    if args.get("params"):
        out["params"] = {k: v.detach().cpu().numpy() for k, v in model.policy.state_dict().items()}
    venv.close()
    return out
