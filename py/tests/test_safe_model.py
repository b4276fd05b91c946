"""model.zip files from elsewhere load without unpickling anything; a crafted pickle in one does not run."""

import base64
import json
import os
import pickle
import zipfile

import pytest
import torch
from conftest import HALF_CHEETAH
from stable_baselines3 import PPO

from ultra_sidecar.envs import make_env
from ultra_sidecar.models import load_ppo
from ultra_sidecar.protocol import ProtocolError


class _Payload:
    """Unpickling this runs `touch <marker>`."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _model(tmp_path):
    """A model SB3 saves with pickled policy_kwargs (activation and optimizer classes), as RL-Zoo models are."""
    venv = make_env(HALF_CHEETAH)
    kwargs = {
        "activation_fn": torch.nn.ReLU,
        "optimizer_class": torch.optim.AdamW,
        "net_arch": {"pi": [16], "vf": [16]},
        "log_std_init": -2.0,
    }
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=32, n_epochs=1, policy_kwargs=kwargs, seed=0, device="cpu")
    model.learn(64)
    path = tmp_path / "model.zip"
    model.save(path)
    return model, path, venv


def _rewrite(path, change):
    """Rewrite the zip's `data` entry with change(data)."""
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    data = json.loads(entries["data"])
    change(data)
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, b in entries.items():
            z.writestr(n, b)


def _pickled(obj) -> dict:
    return {":type:": "<class 'object'>", ":serialized:": base64.b64encode(pickle.dumps(obj)).decode()}


def test_a_model_with_pickled_policy_kwargs_loads_without_unpickling(tmp_path):
    model, path, venv = _model(tmp_path)
    data = json.loads(zipfile.ZipFile(path).read("data"))
    assert ":serialized:" in data["policy_kwargs"] and ":serialized:" in data["policy_class"]
    loaded = load_ppo(str(path), venv, "cpu")
    assert loaded.policy_kwargs["activation_fn"] is torch.nn.ReLU and loaded.policy_kwargs["net_arch"] == {
        "pi": [16],
        "vf": [16],
    }
    assert isinstance(loaded.policy.optimizer, torch.optim.AdamW)
    for (name, a), b in zip(model.policy.state_dict().items(), loaded.policy.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("where", ["extra entry", "policy_class", "policy_kwargs class"])
def test_a_crafted_pickle_does_not_run(tmp_path, where):
    _, path, venv = _model(tmp_path)
    marker = tmp_path / "pwned"

    def plant(data):
        if where == "extra entry":
            data["evil"] = _pickled(_Payload(str(marker)))
        elif where == "policy_class":
            data["policy_class"][":serialized:"] = _pickled(_Payload(str(marker)))[":serialized:"]
        else:
            data["policy_kwargs"]["activation_fn"] = "<class 'posix.system'>"
            data["policy_kwargs"][":serialized:"] = _pickled(_Payload(str(marker)))[":serialized:"]

    _rewrite(path, plant)
    key = {"extra entry": "evil", "policy_class": "policy_class", "policy_kwargs class": "policy_kwargs"}[where]
    with pytest.raises(ProtocolError, match=f"entry '{key}' is pickled code ULTRA will not run .*--trust-model"):
        load_ppo(str(path), venv, "cpu")
    assert not marker.exists()
    if where == "extra entry":  # the flag is real: trusted, SB3 unpickles the file and the payload runs
        load_ppo(str(path), venv, "cpu", trust=True)
        assert marker.exists()
