"""Models users already hold: hub / RL-Zoo files saved under the old `gym` package (SB3 1.x, Python 3.7).
Their `data` pickles gym spaces and their vec_normalize.pkl pickles gym classes; both must load here,
where no `gym` module exists, without unpickling the space entries."""

import base64
import json
import pickle
import sys
import types
import zipfile

import gymnasium
import numpy as np
import pytest
from conftest import HALF_CHEETAH

# A protocol-0 pickle of `gym.spaces.box.Box()`: unpickling it needs the old gym package.
GYM_BOX_PICKLE = base64.b64encode(b"cgym.spaces.box\nBox\n)\x81.").decode()


def _rewrite_as_gym(src: str, dst: str) -> None:
    """Copy a model.zip, replacing its pickled spaces and schedules by ones that reference `gym`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "data":
                d = json.loads(data)
                for key in ("observation_space", "action_space", "lr_schedule", "clip_range"):
                    d[key][":serialized:"] = GYM_BOX_PICKLE
                data = json.dumps(d).encode()
            zout.writestr(item, data)


def _vec_normalize_pickled_with_gym(src: str, dst: str) -> None:
    """Re-pickle vec_normalize.pkl with its spaces as `gym.spaces.box.Box`, as old files have them."""
    with open(src, "rb") as f:
        vn = pickle.load(f)
    vn.venv, vn.class_attributes, vn.returns = None, {}, np.zeros(1)  # what __getstate__ expects to drop
    gym_mod, spaces_mod, box_mod = (types.ModuleType(n) for n in ("gym", "gym.spaces", "gym.spaces.box"))
    OldBox = type("Box", (gymnasium.spaces.Box,), {"__module__": "gym.spaces.box"})
    box_mod.Box = OldBox
    saved = {n: sys.modules.get(n) for n in ("gym", "gym.spaces", "gym.spaces.box")}
    sys.modules.update({"gym": gym_mod, "gym.spaces": spaces_mod, "gym.spaces.box": box_mod})
    try:
        space = vn.observation_space
        vn.observation_space = OldBox(space.low, space.high, dtype=space.dtype)
        with open(dst, "wb") as f:
            pickle.dump(vn, f)
    finally:
        for n, m in saved.items():
            sys.modules.pop(n) if m is None else sys.modules.__setitem__(n, m)
    with open(dst, "rb") as f:
        assert b"gym.spaces.box" in f.read()


def test_model_and_statistics_saved_under_gym_load_and_evaluate(sidecar, tiny_model, tmp_path):
    assert "gym" not in sys.modules
    old_zip, old_stats = tmp_path / "ppo-HalfCheetah-v3.zip", tmp_path / "vec_normalize.pkl"
    _rewrite_as_gym(tiny_model["path"], str(old_zip))
    _vec_normalize_pickled_with_gym(tiny_model["files"][1], str(old_stats))
    with pytest.raises(ModuleNotFoundError, match="gym"):
        pickle.loads(base64.b64decode(GYM_BOX_PICKLE))  # what a plain PPO.load would run into
    env = sidecar.call("env_make", spec={**HALF_CHEETAH, "vec_normalize_path": str(old_stats), "training": False})["env"]
    model = sidecar.call("model_load", path=str(old_zip), env=env)["model"]
    ev = sidecar.call("model_evaluate", model=model, env=env, episodes=1)
    assert np.isfinite(ev["mean"]) and ev["lengths"].tolist() == [1000]
