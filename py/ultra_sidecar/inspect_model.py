"""Describe a SB3 model.zip without unpickling: spaces, policy architecture, hyperparameters, versions.
Called from TS through pythonia (`ultra inspect`)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import torch

from .model_objects import pickled_class_name
from .protocol import ProtocolError
from .zipinfo import algo_of, read_zip

HYPERPARAMETERS = (
    "learning_rate",
    "n_steps",
    "batch_size",
    "n_epochs",
    "gamma",
    "gae_lambda",
    "clip_range",
    "clip_range_vf",
    "ent_coef",
    "vf_coef",
    "max_grad_norm",
    "normalize_advantage",
    "target_kl",
    "use_sde",
    "n_envs",
    "num_timesteps",
    "seed",
)


def _space(entry) -> dict:
    if not isinstance(entry, dict):
        return {"type": "unknown"}
    kind = str(entry.get(":type:", "")).rsplit(".", 1)[-1].rstrip("'>")
    out = {"type": kind}
    for key in ("_shape", "dtype", "n", "low", "high"):
        if key in entry:
            out[key.lstrip("_")] = entry[key]
    return out


def _schedule(entry):
    """Serialized schedules keep a readable repr beside the pickle (e.g. ConstantSchedule(val=0.1))."""
    if isinstance(entry, dict):
        return next((str(v) for k, v in entry.items() if not k.startswith(":") and "Schedule" in str(v)), entry.get(":type:"))
    return entry


def describe(path: str) -> dict:
    """The description, or {"error": message}: pythonia drops exception messages on the way to JS."""
    try:
        return _describe(path)
    except ProtocolError as e:
        return {"error": str(e)}


def _describe(path: str) -> dict:
    info = read_zip(path)
    data = info["data"]
    hp = {k: _schedule(data[k]) for k in HYPERPARAMETERS if k in data}
    layers, total = [], 0
    if "policy.pth" in info["files"]:
        with zipfile.ZipFile(path) as z:
            state = torch.load(io.BytesIO(z.read("policy.pth")), map_location="cpu", weights_only=True)
        for name, t in state.items():
            layers.append({"name": name, "shape": list(t.shape)})
            total += t.numel()
    kwargs = data.get("policy_kwargs")
    p = Path(path)
    return {
        "path": str(p.resolve()),
        "algo": algo_of(data),
        "sb3_version": info["sb3_version"],
        "system_info": info["system_info"].strip().splitlines(),
        "observation_space": _space(data.get("observation_space")),
        "action_space": _space(data.get("action_space")),
        "policy_class": pickled_class_name(data["policy_class"]) if isinstance(data.get("policy_class"), dict) else None,
        "policy_kwargs": {k: v for k, v in kwargs.items() if not k.startswith(":")} if isinstance(kwargs, dict) else kwargs,
        "hyperparameters": hp,
        "parameters": total,
        "layers": layers,
        "files": info["files"],
        "vec_normalize": [f.name for f in (p.parent / "vec_normalize.pkl", p.parent / "vecnormalize.pkl") if f.exists()],
    }
