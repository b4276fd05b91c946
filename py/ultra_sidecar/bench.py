"""The learning runs behind `ultra bench overhead|determinism|scale`: SB3's own PPO and the project's ModulatedPPO,
built alike from one env spec and one set of hyperparameters. Only `learn()` is timed, inside this process, so
the bridge is not in the figures."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from .envs import find_vec_normalize, make_env
from .models import new_ppo
from .modulation import ModulatedPPO, ModulationTable
from .protocol import ProtocolError, int_in
from .snapshot import snapshot

IMPLS = {"sb3": PPO, "ultra": ModulatedPPO}


def synthetic_table(spec: dict, n: int, seed: int, radius: float) -> dict:
    """n critical states as identify would give them: observations and snapshots along a random-action rollout
    of a separate copy of the env (the trained env is not touched), random actions, small rewards. fire_on step:
    every step within the radius is modulated, the overhead's worst case."""
    venv = make_env({**spec, "n_envs": 1, "training": False})
    rng = np.random.default_rng(seed)
    venv.action_space.seed(seed)
    vn = find_vec_normalize(venv)
    states, obs = [], venv.reset()
    for _ in range(n):
        for _ in range(int(rng.integers(1, 20))):  # spread the states along the trajectory
            obs, _, _, _ = venv.step(np.array([venv.action_space.sample()]))
        raw = vn.get_original_obs()[0] if vn is not None else obs[0]
        states.append(
            {
                "obs": raw,
                "action": venv.action_space.sample(),
                "reward": float(rng.uniform(-1, 1)),
                "snapshot": snapshot(venv, 0),
            }
        )
    venv.close()
    return {
        "variant": "RA",
        "radius": radius,
        "fire_on": "step",
        "reset_prob": 0.25,
        "reward_scale": 1.0,
        "reward_unit": 1.0,
        "action_tolerance": 0.5,
        "seed": seed,
        "states": states,
    }


def _digest(x) -> bytes:
    """8 bytes of BLAKE2b over an array's dtype, shape and bytes (a dict observation: over its keys in order)."""
    h = hashlib.blake2b(digest_size=8)
    for k, a in sorted(x.items()) if isinstance(x, dict) else [("", x)]:
        a = np.ascontiguousarray(a)
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.digest()


def _rows(digests: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(len(digests), 8).copy()


class StepTrace(BaseCallback):
    """Every vectorised env step of learn(), as both SB3's PPO and ModulatedPPO hand it to their callback (the same
    locals in both collect_rollouts): the rewards PPO got (before its time-limit bootstrap), and digests of the
    actions the env was stepped with and of the observations it returned. Compared between runs, these check a
    short run step by step, where a bench-sized budget may finish no episode (Pong) and so compare no return."""

    def __init__(self) -> None:
        super().__init__()
        self.rewards: list[np.ndarray] = []
        self.actions: list[bytes] = []
        self.observations: list[bytes] = []

    def _on_step(self) -> bool:
        self.rewards.append(np.array(self.locals["rewards"], dtype=np.float64))  # a copy: PPO edits it in place
        self.actions.append(_digest(self.locals["clipped_actions"]))
        self.observations.append(_digest(self.locals["new_obs"]))
        return True

    def result(self, n_envs: int) -> dict:
        """rewards: [steps, n_envs] float64; actions, observations: [steps, 8] uint8 digests."""
        rewards = np.stack(self.rewards) if self.rewards else np.zeros((0, n_envs), dtype=np.float64)
        return {"rewards": rewards, "actions": _rows(self.actions), "observations": _rows(self.observations)}


def learn_run(args: dict) -> dict:
    """args: spec (env), ppo (hyperparameters incl. seed), steps, impl (sb3 | ultra), threads (torch threads, set
    before the model is built), table_states (ultra only: None = no table, 0 = an empty one, n = a synthetic table
    of n critical states within table_radius), params (return the policy's tensors), trace (return every env
    step's rewards and action and observation digests: StepTrace)."""
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
    table = (
        None if n_states is None else synthetic_table(args["spec"], int(n_states), seed, float(args.get("table_radius", 0.1)))
    )
    model = new_ppo(venv, {"device": "cpu", **ppo}, IMPLS[impl])
    if table is not None:
        model.modulation = ModulationTable(table, venv)
    trace = StepTrace() if args.get("trace") else None
    t0 = time.perf_counter()
    model.learn(int(args["steps"]), callback=trace)
    seconds = time.perf_counter() - t0
    returns = [float(r) for rs in venv.env_method("get_episode_rewards") for r in rs]  # Monitor's, per sub-env
    out = {
        "seconds": seconds,
        "steps": model.num_timesteps,
        "steps_per_s": model.num_timesteps / seconds,
        "episode_returns": returns,
        "modulation": model.modulation_stats if impl == "ultra" else None,
    }
    if trace is not None:
        out["trace"] = trace.result(venv.num_envs)
    if args.get("params"):
        out["params"] = {k: v.detach().cpu().numpy() for k, v in model.policy.state_dict().items()}
    venv.close()
    return out
