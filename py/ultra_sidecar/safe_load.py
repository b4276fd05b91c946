"""Loading pickled SB3 artefacts without running arbitrary code.

vec_normalize.pkl is a pickle. Old hub / RL-Zoo files pickle `gym` (not gymnasium) classes, so a plain
VecNormalize.load fails with "No module named 'gym'". This unpickler maps gym -> gymnasium and refuses every
class outside a short allowlist, so a crafted file cannot import os.system and friends.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from .protocol import ProtocolError

_ALLOWED_PREFIXES = ("numpy.", "gymnasium.spaces.")
_ALLOWED = {
    ("stable_baselines3.common.vec_env.vec_normalize", "VecNormalize"),
    ("stable_baselines3.common.running_mean_std", "RunningMeanStd"),
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
    ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module == "gym" or module.startswith("gym."):
            module = "gymnasium" + module[3:]
        if module == "numpy" or module.startswith(_ALLOWED_PREFIXES) or (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_vec_normalize_stats(path: str, venv: VecEnv, trusted: bool = False) -> VecNormalize:
    p = Path(path)
    if not p.is_file():
        raise ProtocolError("model_error", f"normalisation statistics not found: {p}")
    try:
        if trusted:
            return VecNormalize.load(str(p), venv)
        with p.open("rb") as f:
            vn = _RestrictedUnpickler(f).load()
    except pickle.UnpicklingError as e:
        raise ProtocolError(
            "model_error", f"{p} holds code that is not loaded without trust ({e}); pass --trust-model if you wrote it"
        ) from None
    except Exception as e:  # noqa: BLE001 - a damaged pickle raises many types
        raise ProtocolError("model_error", f"{p} is not a readable VecNormalize pickle: {type(e).__name__}: {e}") from None
    if not isinstance(vn, VecNormalize):
        raise ProtocolError("model_error", f"{p} holds a {type(vn).__name__}, not VecNormalize statistics")
    saved, given = vn.observation_space.shape, venv.observation_space.shape
    if saved != given:
        raise ProtocolError(
            "model_error",
            f"{p} holds statistics for observations of shape {saved}, the env gives {given}; use the env the model was trained on",
        )
    vn.set_venv(venv)
    return vn
