"""Read what a SB3 model.zip says about itself without unpickling anything (its `data` entry is JSON)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from .protocol import ProtocolError

# Keys only an on-policy PPO saves; A2C, SAC, TD3, DQN lack some of them.
PPO_KEYS = ("clip_range", "n_epochs", "batch_size", "n_steps")


def read_zip(path: str | Path) -> dict:
    """Return {data, files, sb3_version, system_info} or raise model_error naming what is wrong."""
    p = Path(path)
    if not p.exists():
        raise ProtocolError("model_error", f"model file not found: {p}")
    if not zipfile.is_zipfile(p):
        raise ProtocolError("model_error", f"{p} is not a zip archive; SB3 models are saved as model.zip")
    try:
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
            if "data" not in names:
                raise ProtocolError("model_error", f"{p} has no `data` entry; it is not a Stable-Baselines3 model")
            data = json.loads(z.read("data"))
            version = z.read("_stable_baselines3_version").decode().strip() if "_stable_baselines3_version" in names else "?"
            sysinfo = z.read("system_info.txt").decode(errors="replace") if "system_info.txt" in names else ""
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        raise ProtocolError("model_error", f"{p} is corrupt: {type(e).__name__}: {e}") from None
    return {"data": data, "files": names, "sb3_version": version, "system_info": sysinfo}


def algo_of(data: dict) -> str:
    """Best guess of the algorithm from the saved attributes."""
    if all(k in data for k in PPO_KEYS):
        return "PPO"
    for algo, key in (("DQN", "exploration_rate"), ("SAC", "ent_coef_optimizer"), ("TD3", "target_policy_noise")):
        if key in data:
            return algo
    return "A2C" if "n_steps" in data else "unknown"


def space_shape(data: dict, key: str) -> list[int] | None:
    """The `_shape` SB3 writes beside a serialized space: a list, or "(17,)" in old files."""
    space = data.get(key)
    shape = space.get("_shape") if isinstance(space, dict) else None
    if isinstance(shape, list):
        return [int(x) for x in shape]
    if isinstance(shape, str):
        try:
            return [int(x) for x in shape.strip("()[]").split(",") if x.strip()]
        except ValueError:
            return None
    return None


def check_ppo(path: str | Path) -> dict:
    info = read_zip(path)
    algo = algo_of(info["data"])
    if algo != "PPO":
        raise ProtocolError("model_error", f"{path} is a {algo} model, not PPO; ULTRA refines PPO policies only")
    return info
