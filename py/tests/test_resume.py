"""Training resumed from a checkpoint (model.zip + vec_normalize.pkl + resume.msgpack) continues bit for bit."""

import numpy as np
import pytest
import torch

from conftest import HALF_CHEETAH, TINY_PPO
from ultra_sidecar.envs import make_env
from ultra_sidecar.models import learn, load_ppo, new_ppo, save_ppo
from ultra_sidecar.protocol import ProtocolError

PPO_HP = {**TINY_PPO, "n_steps": 128, "device": "cpu"}
SEGMENT = 384  # not a multiple of 1000: the checkpoint falls inside an episode


def _env_for(ckpt_dir=None, n_envs=2):
    spec = {**HALF_CHEETAH, "n_envs": n_envs, "seed": 3}
    return make_env({**spec, "normalize": False, "vec_normalize_path": f"{ckpt_dir}/vec_normalize.pkl"} if ckpt_dir else spec)


def _state(model):
    params = [p.detach().clone() for p in model.policy.parameters()]
    opt = model.policy.optimizer.state_dict()["state"]
    return params, [v.clone() for s in opt.values() for v in s.values() if torch.is_tensor(v)]


def _same(a, b):
    return all(torch.equal(x, y) for xs, ys in zip(a, b, strict=True) for x, y in zip(xs, ys, strict=True))


def test_a_resumed_run_continues_bit_for_bit(tmp_path):
    quiet = lambda *_: None  # noqa: E731
    table = {"variant": "RA", "radius": 0.5, "reset_prob": 0.5, "reward_scale": 1.0, "seed": 0, "states": []}

    straight = new_ppo(_env_for(), {**PPO_HP})
    learn(straight, SEGMENT, quiet, modulation=table)
    save_ppo(straight, str(tmp_path / "model.zip"), with_resume=True)
    learn(straight, SEGMENT, quiet, modulation=table)

    resumed = load_ppo(str(tmp_path / "model.zip"), _env_for(tmp_path), "cpu", {"learning_rate": 3e-4}, seed=99, with_resume=True)
    learn(resumed, SEGMENT, quiet, modulation=table)

    assert resumed.num_timesteps == straight.num_timesteps
    assert _same(_state(resumed), _state(straight))
    assert np.array_equal(resumed._last_obs, straight._last_obs)

    # without the resume state the same checkpoint does not continue the same way: the test can fail
    plain = load_ppo(str(tmp_path / "model.zip"), _env_for(tmp_path), "cpu", {"learning_rate": 3e-4}, seed=99)
    learn(plain, SEGMENT, quiet, modulation=table)
    assert not _same(_state(plain), _state(straight))


def test_a_resume_state_of_another_checkpoint_is_refused(tmp_path):
    model = new_ppo(_env_for(), {**PPO_HP})
    learn(model, 256, lambda *_: None)
    save_ppo(model, str(tmp_path / "model.zip"), with_resume=True)
    learn(model, 256, lambda *_: None)
    save_ppo(model, str(tmp_path / "model.zip"))  # a newer model.zip beside the older resume.msgpack
    with pytest.raises(ProtocolError, match="belongs to another checkpoint"):
        load_ppo(str(tmp_path / "model.zip"), _env_for(tmp_path), "cpu", {"learning_rate": 3e-4}, with_resume=True)


def test_a_corrupt_resume_state_is_named(tmp_path):
    model = new_ppo(_env_for(), {**PPO_HP})
    learn(model, 128, lambda *_: None)
    save_ppo(model, str(tmp_path / "model.zip"), with_resume=True)
    (tmp_path / "resume.msgpack").write_bytes(b"\x93\x01")  # a truncated msgpack array
    with pytest.raises(ProtocolError, match=r"cannot resume from .*resume\.msgpack: "):
        load_ppo(str(tmp_path / "model.zip"), _env_for(tmp_path), "cpu", {"learning_rate": 3e-4}, with_resume=True)
