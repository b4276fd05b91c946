"""PPO through the sidecar: train a tiny model in the test, save, load, evaluate, collect; bad model files."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import HALF_CHEETAH, SidecarError
from stable_baselines3 import A2C


def test_learn_streams_progress_and_saves_normalisation(tiny_model):
    names = sorted(Path(f).name for f in tiny_model["files"])
    assert names == ["model.zip", "vec_normalize.pkl"]


def test_load_evaluate_and_predict(sidecar, tiny_model):
    env = sidecar.call("env_make", spec={**HALF_CHEETAH, "vec_normalize_path": tiny_model["files"][1], "training": False})[
        "env"
    ]
    model = sidecar.call("model_load", path=tiny_model["path"], env=env)
    assert model["vec_normalize"] is True
    ev = sidecar.call("model_evaluate", model=model["model"], env=env, episodes=2)
    assert ev["returns"].shape == (2,) and ev["lengths"].tolist() == [1000, 1000]
    assert ev["mean"] == pytest.approx(float(ev["returns"].mean()))
    obs = sidecar.call("env_reset", env=env)["obs"]
    pred = sidecar.call("model_predict", model=model["model"], obs=obs)
    assert pred["actions"].shape == (1, 6) and pred["actions"].dtype == np.float32 and pred["values"].shape == (1,)
    with pytest.raises(SidecarError, match=r"obs shape \(5,\) does not fit"):
        sidecar.call("model_predict", model=model["model"], obs=np.zeros(5, dtype=np.float32))


def test_collect_streams_whole_episodes_with_snapshots(sidecar, tiny_model):
    events = []
    r = sidecar.call(
        "collect", events, model=tiny_model["model"], env=tiny_model["env"], episodes=2, chunk_steps=300, snapshot_every=10
    )
    chunks = [e["data"] for e in events if e["event"] == "chunk"]
    assert r["steps"] == 2000 and [c["start"] for c in chunks] == [0, 300, 600, 900] * 2
    assert r["snapshot_s"] > 0  # time in snapshot(), for ultra bench snapshots
    for ep in (0, 1):
        mine = [c for c in chunks if c["episode"] == ep]
        rewards = np.concatenate([c["rewards"] for c in mine])
        assert rewards.shape == (1000,) and mine[-1]["final"] and mine[-1]["dones"][-1]
        assert float(rewards.sum()) == pytest.approx(r["episodes"][ep]["return"], abs=1e-3)
        assert sum(len(c["snapshots"]) for c in mine) == 100
        assert all(c["obs"].shape == (len(c["rewards"]), 17) for c in mine)


def test_missing_corrupt_and_non_ppo_models_are_named(sidecar, tmp_path):
    env = sidecar.call("env_make", spec={"env_id": "CartPole-v1"})["env"]
    with pytest.raises(SidecarError, match="model file not found"):
        sidecar.call("model_load", path=str(tmp_path / "nope.zip"), env=env)
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(SidecarError, match="not a zip archive"):
        sidecar.call("model_load", path=str(tmp_path / "bad.zip"), env=env)
    A2C("MlpPolicy", "CartPole-v1", n_steps=8).save(tmp_path / "a2c.zip")
    with pytest.raises(SidecarError, match="is a A2C model, not PPO"):
        sidecar.call("model_load", path=str(tmp_path / "a2c.zip"), env=env)
    assert "time" in sidecar.call("ping")


def test_model_for_another_observation_shape_is_refused(sidecar, tiny_model):
    hopper = sidecar.call("env_make", spec={"env_id": "Hopper-v5"})["env"]
    with pytest.raises(SidecarError, match=r"expects observations of shape \(17,\), the env gives \(11,\)"):
        sidecar.call("model_load", path=tiny_model["path"], env=hopper)


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/ultra-pwned",))


def test_crafted_vec_normalize_pickle_does_not_run(sidecar, tmp_path):
    evil = tmp_path / "vec_normalize.pkl"
    evil.write_bytes(pickle.dumps(_Payload()))
    marker = Path("/tmp/ultra-pwned")
    marker.unlink(missing_ok=True)
    with pytest.raises(SidecarError, match="posix.system|os.system"):
        sidecar.call("env_make", spec={**HALF_CHEETAH, "vec_normalize_path": str(evil)})
    assert not marker.exists()
