"""Vectorised envs built from a resolved config spec (RL-Zoo layout: make_vec_env -> VecNormalize -> VecFrameStack)."""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecFrameStack, VecNormalize, VecTransposeImage

from . import sparse
from .protocol import ProtocolError, check_keys, int_in
from .safe_load import load_vec_normalize_stats

try:  # ALE registers its ids on import; Pong needs it, MuJoCo does not
    import ale_py

    gym.register_envs(ale_py)
except ImportError:  # pragma: no cover - ale-py is a declared dependency
    pass
sparse.register()

# Short names from RL-Zoo configs; any other value is a dotted path "module.Class".
KNOWN_WRAPPERS = {"AtariWrapper": "stable_baselines3.common.atari_wrappers.AtariWrapper"}
VEC_ENVS = {"dummy": DummyVecEnv, "subproc": SubprocVecEnv}
MAX_ENVS = 1024


def _import(path: str) -> Any:
    module, _, name = KNOWN_WRAPPERS.get(path, path).rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise ProtocolError("env_error", f"cannot import wrapper {path!r}: {e}") from None


def _wrapper_class(wrappers: list) -> Any:
    """RL-Zoo `env_wrapper` entries: "Name" or {"Name": {kwargs}}, applied in order."""
    if not wrappers:
        return None
    chain = []
    for w in wrappers:
        name, kwargs = (w, {}) if isinstance(w, str) else next(iter(w.items()))
        chain.append((_import(name), kwargs or {}))

    def wrap(env: gym.Env) -> gym.Env:
        for cls, kwargs in chain:
            env = cls(env, **kwargs)
        return env

    return wrap


def make_env(spec: dict) -> VecEnv:
    """spec: protocol.json's env_spec (its keys and what each means)."""
    env_id = spec.get("env_id") if isinstance(spec, dict) else None
    if not isinstance(env_id, str):
        raise ProtocolError("bad_args", "spec.env_id must be a Gymnasium id such as 'HalfCheetah-v5'")
    check_keys(spec, "env_spec", "spec")
    try:
        gym.spec(env_id)
    except gym.error.Error as e:
        raise ProtocolError(
            "env_error", f"unknown environment id {env_id!r} ({e}); check the spelling and the version suffix"
        ) from None
    n_envs = int_in(spec.get("n_envs", 1), "spec.n_envs", 1, MAX_ENVS)
    vec_env = spec.get("vec_env", "dummy")
    if vec_env not in VEC_ENVS:
        raise ProtocolError("bad_args", f"spec.vec_env must be one of {', '.join(VEC_ENVS)}, got {vec_env!r}")
    try:
        venv = make_vec_env(
            env_id,
            n_envs=n_envs,
            seed=spec.get("seed"),
            env_kwargs=spec.get("env_kwargs") or {},
            wrapper_class=_wrapper_class(spec.get("wrappers") or []),
            vec_env_cls=VEC_ENVS[vec_env],
        )
    except ProtocolError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure of a third-party env is reported by name
        raise ProtocolError("env_error", f"cannot make {env_id!r}: {type(e).__name__}: {e}") from None
    training = bool(spec.get("training", True))
    if spec.get("vec_normalize_path"):
        venv = load_vec_normalize_stats(spec["vec_normalize_path"], venv, bool(spec.get("trust_model")))
        venv.training = training
    elif spec.get("normalize"):
        kwargs = spec["normalize"] if isinstance(spec["normalize"], dict) else {}
        venv = VecNormalize(venv, **kwargs)
        venv.training = training
    if spec.get("frame_stack"):
        venv = VecFrameStack(venv, n_stack=int(spec["frame_stack"]))
    space = venv.observation_space
    if is_image_space(space) and not is_image_space_channels_first(space):
        venv = VecTransposeImage(venv)  # what PPO would add; done here so snapshots see the agent's view
    return venv


def describe_space(space: gym.Space) -> dict:
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": np.asarray(space.low, dtype=np.float64).ravel()[:64].tolist() if space.shape else [],
            "high": np.asarray(space.high, dtype=np.float64).ravel()[:64].tolist() if space.shape else [],
        }
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "shape": []}
    return {"type": type(space).__name__, "shape": list(space.shape or [])}


def find_vec_normalize(venv: VecEnv) -> VecNormalize | None:
    while True:
        if isinstance(venv, VecNormalize):
            return venv
        if not hasattr(venv, "venv"):
            return None
        venv = venv.venv
