"""PPO models: create from RL-Zoo-style hyperparameters, load any SB3 PPO model.zip, learn with progress events."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from . import model_objects, resume
from .envs import find_vec_normalize
from .modulation import ModulatedPPO, ModulationTable
from .protocol import ProtocolError
from .zipinfo import check_ppo, space_shape

Emit = Callable[[str, dict], None]
# How often long ops report progress; the TS side's inactivity timeout is far above this.
PROGRESS_INTERVAL_S = 0.5


def schedule(value: Any) -> Any:
    """RL-Zoo notation: a number, or "lin_X" = X decaying linearly to 0 over training."""
    try:
        if isinstance(value, str) and value.startswith("lin_"):
            return LinearSchedule(float(value[4:]), 0.0, 1.0)
        return float(value) if isinstance(value, (int, float, str)) else value
    except ValueError:
        raise ProtocolError("bad_args", f"{value!r} is not a number or lin_NUMBER (RL-Zoo's linear schedule)") from None


def policy_kwargs(raw: dict | None) -> dict:
    kwargs = dict(raw or {})
    if isinstance(kwargs.get("activation_fn"), str):  # "ReLU" -> torch.nn.ReLU
        name = kwargs["activation_fn"].removeprefix("nn.")
        if not hasattr(torch.nn, name):
            raise ProtocolError("bad_args", f"unknown activation_fn {name!r}; use a torch.nn class name such as ReLU or Tanh")
        kwargs["activation_fn"] = getattr(torch.nn, name)
    return kwargs


def new_ppo(venv: VecEnv, ppo: dict, cls: type[PPO] = ModulatedPPO) -> PPO:
    """ppo: policy, seed, device, tensorboard_log and PPO constructor hyperparameters. cls: SB3's PPO only for
    the benchmarks that compare against it."""
    hp = dict(ppo)
    policy = hp.pop("policy", "MlpPolicy")
    for key in ("learning_rate", "clip_range"):
        if key in hp:
            hp[key] = schedule(hp[key])
    hp["policy_kwargs"] = policy_kwargs(hp.get("policy_kwargs"))
    try:
        return cls(policy, venv, verbose=0, **hp)
    except TypeError as e:
        raise ProtocolError("bad_args", f"bad PPO hyperparameter: {e}") from None


def load_ppo(
    path: str,
    venv: VecEnv,
    device: str,
    train: dict | None = None,
    seed: int | None = None,
    trust: bool = False,
    with_resume: bool = False,
) -> ModulatedPPO:
    """train: protocol.json's train shape, to continue training the loaded model; without it
    the model is for inference (learning rate 0). seed: seeds torch, numpy and the env, so that rollouts
    (sampled actions included) replay exactly. trust: unpickle what the file pickled (code from the file runs);
    otherwise nothing is unpickled (model_objects.py). with_resume: continue exactly where the checkpoint's
    training stood (its resume.msgpack)."""
    info = check_ppo(path)
    env_shape = list(venv.observation_space.shape or [])
    model_shape = space_shape(info["data"], "observation_space")
    if model_shape is not None and model_shape != env_shape:
        raise ProtocolError(
            "model_error",
            f"{path} expects observations of shape {tuple(model_shape)}, the env gives {tuple(env_shape)}; "
            "load it with the env (and wrappers) it was trained on",
        )
    # As RL-Zoo does, spaces and schedules come from the env and the settings, not from the file's pickles (which
    # may reference the old `gym` package or Python 3.7 lambdas); untrusted, every other pickle is rebuilt too.
    # a number, or "lin_X" (a pretraining resumed from its checkpoint keeps its linear schedules)
    lr = schedule(train["learning_rate"]) if train else 0.0
    clip = (schedule(train["clip_range"]) if train.get("clip_range") is not None else None) if train else 0.0
    custom = model_objects.custom_objects(info["data"], venv, lr, clip, trust)
    extra = {"tensorboard_log": train["tensorboard_log"]} if train and train.get("tensorboard_log") else {}
    try:
        model = ModulatedPPO.load(path, env=venv, device=device, custom_objects=custom, **extra)
    except Exception as e:  # noqa: BLE001 - SB3 raises many types for a bad zip
        raise ProtocolError("model_error", f"cannot load {path}: {type(e).__name__}: {e}") from None
    if seed is not None:
        model.set_random_seed(int(seed))
    if with_resume:
        resume.load(model, Path(path).parent)
    return model


def _replace(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temp file and rename: a kill mid-write leaves the old file, never a torn one."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_ppo(model: PPO, path: str, with_resume: bool = False) -> list[str]:
    """model.zip and vec_normalize.pkl; with_resume: also resume.msgpack, for exact resume (resume.py)."""
    out = Path(path)
    out = out if out.suffix == ".zip" else out.with_suffix(".zip")
    out.parent.mkdir(parents=True, exist_ok=True)
    _replace(out, lambda tmp: tmp.write_bytes(_zip_bytes(model)))
    files = [str(out)]
    vn = find_vec_normalize(model.get_env())
    if vn is not None:
        stats = out.parent / "vec_normalize.pkl"
        _replace(stats, lambda tmp: vn.save(str(tmp)))
        files.append(str(stats))
    if with_resume:
        files.append(resume.save(model, out.parent))
    return files


def _zip_bytes(model: PPO) -> bytes:
    buf = io.BytesIO()
    model.save(buf)
    return buf.getvalue()


class ProgressCallback(BaseCallback):
    """Streams progress (steps, steps/s, recent episode returns) to the TS side every PROGRESS_INTERVAL_S."""

    def __init__(self, emit: Emit, total: int):
        super().__init__()
        self.emit, self.total = emit, total
        self.start_steps, self.t0, self.last = 0, 0.0, 0.0

    def _on_training_start(self) -> None:
        self.start_steps, self.t0 = self.model.num_timesteps, time.perf_counter()

    def _on_step(self) -> bool:
        now = time.perf_counter()
        if now - self.last >= PROGRESS_INTERVAL_S:
            self.last = now
            self.emit("progress", self.stats(now))
        return True

    def stats(self, now: float) -> dict:
        done = self.model.num_timesteps - self.start_steps
        eps = list(self.model.ep_info_buffer or [])
        return {
            "steps": done,
            "total": self.total,
            "timesteps": self.model.num_timesteps,
            "fps": done / max(now - self.t0, 1e-9),
            "ep_rew_mean": float(np.mean([e["r"] for e in eps])) if eps else None,
            "ep_len_mean": float(np.mean([e["l"] for e in eps])) if eps else None,
            "episodes": self.model._episode_num,
            "modulation": getattr(self.model, "modulation_stats", None),  # None for a plain PPO (mask_train)
        }


def learn(
    model: ModulatedPPO,
    steps: int,
    emit: Emit,
    tb_log_name: str = "PPO",
    modulation: dict | None = None,
    schedule_total: int | None = None,
) -> dict:
    """modulation: the wire map of a ModulationTable, in force for this call only (None: plain PPO).
    schedule_total: this call is one segment of a job of that many timesteps (counted as num_timesteps is), so
    that "lin_X" schedules decay over the job as one uninterrupted learn() would (None: over this call)."""
    cb = ProgressCallback(emit, steps)
    t0 = time.perf_counter()
    model.modulation = None if modulation is None else ModulationTable(modulation, model.get_env())
    model.schedule_total = schedule_total
    try:
        model.learn(total_timesteps=steps, callback=cb, reset_num_timesteps=False, tb_log_name=tb_log_name)
        final = cb.stats(time.perf_counter())
    finally:
        if model.modulation is not None:
            model.modulation.close()
        model.modulation, model.schedule_total = None, None
    emit("progress", final)
    return {**final, "seconds": time.perf_counter() - t0}


def check_obs(model: PPO, obs: np.ndarray) -> np.ndarray:
    shape = tuple(model.observation_space.shape or ())
    obs = np.asarray(obs)
    if obs.shape != shape and obs.shape[1:] != shape:
        raise ProtocolError(
            "bad_args", f"obs shape {obs.shape} does not fit the model's observation space {shape} (or (n, *{shape}))"
        )
    return obs


def predict(model: PPO, obs: np.ndarray, deterministic: bool) -> dict:
    obs = check_obs(model, obs)
    actions, _ = model.predict(obs, deterministic=deterministic)
    batch = obs if obs.shape != tuple(model.observation_space.shape or ()) else obs[None]
    with torch.no_grad():
        obs_t, _ = model.policy.obs_to_tensor(batch)
        values = model.policy.predict_values(obs_t).cpu().numpy().reshape(-1).astype(np.float32)
    return {"actions": np.asarray(actions), "values": values}
