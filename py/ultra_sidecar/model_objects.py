"""Loading a SB3 model.zip without unpickling anything.

SB3 stores some attributes of a model in its `data` entry as cloudpickle (policy class, spaces, schedules, buffers,
sometimes policy_kwargs), so a plain `PPO.load` of a file from elsewhere can run code. Here every pickled entry
is replaced through SB3's `custom_objects` by an object rebuilt from the env, from the readable repr SB3 writes
beside each pickle, or by what SB3 re-creates at learn() anyway; a class is taken only from an allowlist after
reading its name with pickletools (nothing executed). The weights load with torch's weights_only (SB3 does that).
An entry that cannot be rebuilt is refused by name: `--trust-model` loads the file as SB3 would.
"""

from __future__ import annotations

import ast
import base64
import pickletools
import re
from collections.abc import Callable
from typing import Any

import torch
from stable_baselines3.common import buffers, policies, torch_layers
from stable_baselines3.common.utils import ConstantSchedule
from stable_baselines3.common.vec_env import VecEnv

from .protocol import ProtocolError

# Reset by SB3 when training starts (set_env / _setup_learn), so nothing is lost by not unpickling them.
RECREATED = ("_last_obs", "_last_episode_starts", "_last_original_obs", "ep_info_buffer", "ep_success_buffer")
_SB3_CLASSES = {
    (m.__name__, name): getattr(m, name)
    for m, names in (
        (policies, ("ActorCriticPolicy", "ActorCriticCnnPolicy", "MultiInputActorCriticPolicy")),
        (buffers, ("RolloutBuffer", "DictRolloutBuffer")),
        (torch_layers, ("FlattenExtractor", "NatureCNN", "CombinedExtractor")),
    )
    for name in names
}


def allowed_class(module: str, name: str) -> type | None:
    """SB3's policies, buffers and feature extractors; torch activations and optimizers. Nothing else."""
    if (module, name) in _SB3_CLASSES:
        return _SB3_CLASSES[(module, name)]
    for prefix, ns, base in (
        ("torch.nn.modules.", torch.nn, torch.nn.Module),
        ("torch.optim.", torch.optim, torch.optim.Optimizer),
    ):
        cls = getattr(ns, name, None)
        if module.startswith(prefix) and isinstance(cls, type) and issubclass(cls, base) and cls.__module__ == module:
            return cls
    return None


def pickled_class_name(entry: Any) -> str | None:
    """A class pickled by reference is (module, name) before STACK_GLOBAL (or one GLOBAL "module name" in
    older protocols): read them, run nothing."""
    try:
        ops = list(pickletools.genops(base64.b64decode(entry[":serialized:"])))
    except Exception:  # noqa: BLE001 - an entry that does not parse is simply not a known object
        return None
    pushed = []
    for op, arg, _ in ops:
        if op.name == "GLOBAL" and isinstance(arg, str):
            return arg.replace(" ", ".")
        if isinstance(arg, str):
            pushed.append(arg)
        elif op.name == "STACK_GLOBAL" and len(pushed) >= 2:
            return f"{pushed[-2]}.{pushed[-1]}"
    return None


def schedule_start(entry: Any, default: float | None) -> float | None:
    """The value of a saved schedule, from the repr SB3 writes beside the pickle (e.g. "ConstantSchedule(val=0.1)";
    a linear schedule gives its start value)."""
    if isinstance(entry, (int, float)) and not isinstance(entry, bool):
        return float(entry)
    m = re.search(r"(?:val|start|initial_value)=([0-9.eE+-]+)", str(entry))
    return float(m.group(1)) if m else default


def _refuse(key: str, why: str) -> ProtocolError:
    return ProtocolError(
        "model_error",
        f"model.zip entry {key!r} is pickled code ULTRA will not run ({why}); if you trust the file, load it with --trust-model",
    )


def _class(key: str, entry: Any) -> type:
    name = pickled_class_name(entry)
    if name is None:
        raise _refuse(key, "not a class pickled by reference")
    module, _, cls = name.rpartition(".")
    found = allowed_class(module, cls)
    if found is None:
        raise _refuse(key, f"{name} is not an SB3 or torch class")
    return found


def _policy_kwargs(entry: dict) -> dict:
    """Each item from its repr: "<class 'torch.nn.modules.activation.ReLU'>" through the allowlist, anything else
    as a Python literal ("{'pi': [64], 'vf': [64]}", "-2.0")."""
    out = {}
    for k, text in entry.items():
        if k.startswith(":"):
            continue
        m = re.fullmatch(r"<class '([\w.]+)\.(\w+)'>", str(text))
        if m:
            cls = allowed_class(m.group(1), m.group(2))
            if cls is None:
                raise _refuse("policy_kwargs", f"{k} is {m.group(1)}.{m.group(2)}, not an SB3 or torch class")
            out[k] = cls
            continue
        try:
            out[k] = ast.literal_eval(str(text))
        except (ValueError, SyntaxError):
            raise _refuse("policy_kwargs", f"{k} = {str(text)[:60]} is neither a class nor a literal") from None
    return out


Schedule = float | Callable[[float], float]


def _as_schedule(value: Schedule) -> Callable[[float], float]:
    return value if callable(value) else ConstantSchedule(value)


def custom_objects(data: dict, venv: VecEnv, lr: Schedule, clip: Schedule | None, trust: bool = False) -> dict:
    """custom_objects for SB3's load that leave no pickled entry of `data` to unpickle. lr and clip: the learning
    rate and clip range to train with, numbers or schedules (None: the saved clip range). trust: only spaces and
    schedules, as RL-Zoo does (old pickles reference `gym`); SB3 unpickles the rest."""
    clip = clip if clip is not None else schedule_start(data.get("clip_range"), 0.2)  # SB3's default
    out: dict[str, Any] = {
        "observation_space": venv.observation_space,
        "action_space": venv.action_space,
        "learning_rate": lr,
        "lr_schedule": _as_schedule(lr),
        "clip_range": _as_schedule(clip),
    }
    if trust:
        return out
    for key, entry in data.items():
        if key in out or not (isinstance(entry, dict) and ":serialized:" in entry):
            continue
        if key in RECREATED:
            out[key] = None
        elif key in ("policy_class", "rollout_buffer_class"):
            out[key] = _class(key, entry)
        elif key == "policy_kwargs":
            out[key] = _policy_kwargs(entry)
        elif key == "clip_range_vf":
            value = schedule_start(entry, None)
            if value is None:
                raise _refuse(key, "no readable value beside the pickle")
            out[key] = ConstantSchedule(value)
        else:
            raise _refuse(key, "not an entry ULTRA knows how to rebuild")
    return out
