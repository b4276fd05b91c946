"""Exact resume of training from a checkpoint.

A model.zip (with vec_normalize.pkl) holds the weights, the optimizer and the counters, but not where training
stood: each sub-env's state, the last observation, the RNGs. They go beside it in `resume.msgpack` (the wire
encoding, no pickle), so that training resumed from a checkpoint continues bit for bit as if never stopped."""

from __future__ import annotations

import os
import random
from collections import deque
from pathlib import Path

import msgpack
import numpy as np
import torch
from stable_baselines3 import PPO

from . import protocol
from .protocol import ProtocolError
from .snapshot import restore, snapshot

FILE = "resume.msgpack"


def save(model: PPO, directory: str | Path) -> str:
    venv = model.get_env()
    state = {
        "num_timesteps": model.num_timesteps,
        "envs": [snapshot(venv, i) for i in range(venv.num_envs)],
        "last_obs": model._last_obs,
        "last_obs_axes": _memory_order(model._last_obs),
        "last_episode_starts": np.asarray(model._last_episode_starts, dtype=np.uint8),
        "ep_info_buffer": [{k: float(v) for k, v in e.items()} for e in model.ep_info_buffer or []],
        "rng": {"torch": torch.get_rng_state().numpy(), "numpy": np.random.get_state(), "python": random.getstate()},
    }
    path = Path(directory) / FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgpack.packb([bytes(f) for f in protocol.pack(state)], use_bin_type=True))
    os.replace(tmp, path)
    return str(path)


def load(model: PPO, directory: str | Path) -> None:
    """Put `model` (just loaded from the checkpoint in `directory`, with a fresh env) where training stood."""
    path = Path(directory) / FILE
    try:
        state = protocol.unpack(msgpack.unpackb(path.read_bytes(), raw=False))
    except (OSError, ValueError, msgpack.UnpackException) as e:
        raise ProtocolError("model_error", f"cannot resume from {path}: {type(e).__name__}: {e}") from None
    venv = model.get_env()
    if state["num_timesteps"] != model.num_timesteps or len(state["envs"]) != venv.num_envs:
        raise ProtocolError(
            "model_error",
            f"{path} belongs to another checkpoint ({state['num_timesteps']} steps, {len(state['envs'])} envs; "
            f"the model has {model.num_timesteps} steps, the env {venv.num_envs})",
        )
    for i, snap in enumerate(state["envs"]):
        restore(venv, i, snap)
    model._last_obs = _in_memory_order(np.array(state["last_obs"]), state.get("last_obs_axes"))
    model._last_episode_starts = np.asarray(state["last_episode_starts"], dtype=bool)
    model.ep_info_buffer = deque(state["ep_info_buffer"], maxlen=model._stats_window_size)
    model.ep_success_buffer = deque(maxlen=model._stats_window_size)  # SB3 makes both or neither
    rng = state["rng"]
    torch.set_rng_state(torch.from_numpy(np.array(rng["torch"], dtype=np.uint8)))
    name, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))


# The last observation's memory order: image observations reach the policy as a transposed view (VecTransposeImage),
# and a convolution over a view runs another kernel than over a contiguous copy, which changes the last bits of its
# outputs; a resumed run must see the same order, or it drifts from the uninterrupted one.
def _memory_order(obs) -> list[int] | None:
    if not isinstance(obs, np.ndarray):
        return None
    return [int(i) for i in np.argsort([-s for s in obs.strides], kind="stable")]


def _in_memory_order(obs: np.ndarray, axes: list[int] | None) -> np.ndarray:
    """`obs` (contiguous) laid out in memory with its axes in `axes`' order, as the view it was saved from."""
    if axes is None or list(axes) == sorted(axes) or len(axes) != obs.ndim:
        return obs
    return np.ascontiguousarray(obs.transpose(axes)).transpose(np.argsort(axes))
