"""Training resumed from a checkpoint (model.zip + vec_normalize.pkl + resume.msgpack) continues bit for bit."""

import numpy as np
import pytest
import torch
from conftest import HALF_CHEETAH, PONG, TINY_PPO

from ultra_sidecar.envs import find_vec_normalize, make_env
from ultra_sidecar.models import learn, load_ppo, new_ppo, save_ppo
from ultra_sidecar.protocol import ProtocolError
from ultra_sidecar.snapshot import snapshot

PPO_HP = {**TINY_PPO, "n_steps": 128, "device": "cpu"}
SEGMENT = 384  # not a multiple of 1000: the checkpoint falls inside an episode


def _env_for(ckpt_dir=None, n_envs=2, **extra):
    spec = {**HALF_CHEETAH, "n_envs": n_envs, "seed": 3, **extra}
    return make_env({**spec, "normalize": False, "vec_normalize_path": f"{ckpt_dir}/vec_normalize.pkl"} if ckpt_dir else spec)


def _state(model):
    params = [p.detach().clone() for p in model.policy.parameters()]
    opt = model.policy.optimizer.state_dict()["state"]
    return params, [v.clone() for s in opt.values() for v in s.values() if torch.is_tensor(v)]


def _same(a, b):
    return all(torch.equal(x, y) for xs, ys in zip(a, b, strict=True) for x, y in zip(xs, ys, strict=True))


def test_a_resumed_run_continues_bit_for_bit(tmp_path):
    quiet = lambda *_: None
    table = {
        "variant": "RA",
        "radius": 0.5,
        "fire_on": "entry",
        "reset_prob": 0.5,
        "reward_scale": 1.0,
        "reward_unit": 1.0,
        "action_tolerance": 0.5,
        "seed": 0,
        "states": [],
    }

    straight = new_ppo(_env_for(), {**PPO_HP})
    learn(straight, SEGMENT, quiet, modulation=table)
    save_ppo(straight, str(tmp_path / "model.zip"), with_resume=True)
    learn(straight, SEGMENT, quiet, modulation=table)

    resumed = load_ppo(
        str(tmp_path / "model.zip"), _env_for(tmp_path), "cpu", {"learning_rate": 3e-4}, seed=99, with_resume=True
    )
    learn(resumed, SEGMENT, quiet, modulation=table)

    assert resumed.num_timesteps == straight.num_timesteps
    assert _same(_state(resumed), _state(straight))
    assert np.array_equal(resumed._last_obs, straight._last_obs)

    # without the resume state the same checkpoint does not continue the same way: the test can fail
    plain = load_ppo(str(tmp_path / "model.zip"), _env_for(tmp_path), "cpu", {"learning_rate": 3e-4}, seed=99)
    learn(plain, SEGMENT, quiet, modulation=table)
    assert not _same(_state(plain), _state(straight))


SHORT = {"env_kwargs": {"max_episode_steps": 100}}  # episodes end inside a segment, so critical resets happen


def _critical_states(count=6, every=10):
    """`count` states of sub-env 0 of an env made as the training env is (same wrappers), each with its raw
    observation, its snapshot, an in-bounds action and a reward: a table that matches, overrides, adds and resets."""
    src, rng = _env_for(**SHORT), np.random.default_rng(7)
    src.reset()
    states = []
    for t in range(1, count * every + 1):
        src.step(rng.uniform(-0.9, 0.9, size=(src.num_envs, 6)).astype(np.float32))
        if t % every == 0:
            raw = find_vec_normalize(src).get_original_obs()[0]
            action = rng.uniform(-0.9, 0.9, size=6).astype(np.float32)
            states.append({"obs": raw.copy(), "action": action, "reward": float(t) / 100, "snapshot": snapshot(src, 0)})
    return states


def test_a_resumed_run_with_a_non_empty_table_continues_bit_for_bit(tmp_path):
    """The table matches, overrides actions, adds rewards and restarts episodes at its states (its own reset RNG)
    in both segments; the resumed second segment still equals the uninterrupted one, counters included. As improve
    does (tableFor), each learn() segment gets the table with a seed of its own."""
    quiet = lambda *_: None
    table = {
        "variant": "RA",
        "radius": 1.0,
        "fire_on": "entry",
        "reset_prob": 0.5,
        "reward_scale": 1.0,
        "reward_unit": 1.0,
        "action_tolerance": 0.5,
        "seed": 5,
        "states": _critical_states(),
    }
    later = {**table, "seed": 6}  # the second segment's table

    straight = new_ppo(_env_for(**SHORT), {**PPO_HP})
    first = learn(straight, SEGMENT, quiet, modulation=table)["modulation"]
    save_ppo(straight, str(tmp_path / "model.zip"), with_resume=True)
    second = learn(straight, SEGMENT, quiet, modulation=later)["modulation"]

    resumed = load_ppo(
        str(tmp_path / "model.zip"), _env_for(tmp_path, **SHORT), "cpu", {"learning_rate": 3e-4}, seed=99, with_resume=True
    )
    again = learn(resumed, SEGMENT, quiet, modulation=later)["modulation"]

    for stats in (first, second):  # every hook of the table fired in each segment
        assert all(stats[k] > 0 for k in ("matched_steps", "overridden_actions", "reward_added_steps", "critical_resets")), (
            stats
        )
    assert again == second
    assert resumed.num_timesteps == straight.num_timesteps
    assert _same(_state(resumed), _state(straight))
    assert np.array_equal(resumed._last_obs, straight._last_obs)

    # the table's own reset draws count: with another seed the same resumed checkpoint continues otherwise
    other = load_ppo(
        str(tmp_path / "model.zip"), _env_for(tmp_path, **SHORT), "cpu", {"learning_rate": 3e-4}, seed=99, with_resume=True
    )
    learn(other, SEGMENT, quiet, modulation={**table, "seed": 7})
    assert not _same(_state(other), _state(straight))


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


LINEAR = {"learning_rate": "lin_3e-4", "clip_range": "lin_0.2"}  # RL-Zoo's notation, as Pong's config has it


def _segments(model, total, segment, **kw):
    """learn() `total` steps as pretrain does: segments of at most `segment`, each counting whole rollouts."""
    done = 0
    while done < total:
        done += learn(model, min(segment, total - done), lambda *_: None, **kw)["steps"]
    return done


def test_a_pretraining_in_segments_with_linear_schedules_ends_as_one_learn_call(tmp_path):
    """`ultra pretrain` learns in checkpointed segments; with schedule_total its lin_ schedules decay over the whole
    job, and a segment resumed from a checkpoint (schedules rebuilt from the same lin_ values) ends bit for bit where
    one uninterrupted learn() call of the job ends."""
    total = 3 * SEGMENT
    straight = new_ppo(_env_for(), {**PPO_HP, **LINEAR})
    learn(straight, total, lambda *_: None)

    first = new_ppo(_env_for(), {**PPO_HP, **LINEAR})
    done = learn(first, SEGMENT, lambda *_: None, schedule_total=total)["steps"]
    save_ppo(first, str(tmp_path / "model.zip"), with_resume=True)
    resumed = load_ppo(str(tmp_path / "model.zip"), _env_for(tmp_path), "cpu", dict(LINEAR), seed=99, with_resume=True)
    assert resumed.schedule_total is None  # not saved: each learn() call says it
    _segments(resumed, total - done, SEGMENT, schedule_total=total)

    assert resumed.num_timesteps == straight.num_timesteps
    assert resumed._current_progress_remaining == pytest.approx(straight._current_progress_remaining)
    assert resumed.policy.optimizer.param_groups[0]["lr"] == straight.policy.optimizer.param_groups[0]["lr"] < 3e-4
    assert _same(_state(resumed), _state(straight))

    # without schedule_total each segment decays its schedules on its own: the test can fail
    alone = new_ppo(_env_for(), {**PPO_HP, **LINEAR})
    _segments(alone, total, SEGMENT)
    assert alone.num_timesteps == straight.num_timesteps
    assert not _same(_state(alone), _state(straight))


def test_a_bad_schedule_in_train_is_named(tmp_path):
    model = new_ppo(_env_for(), {**PPO_HP})
    learn(model, 128, lambda *_: None)
    save_ppo(model, str(tmp_path / "model.zip"))
    with pytest.raises(ProtocolError, match=r"'lin_fast' is not a number or lin_NUMBER"):
        load_ppo(str(tmp_path / "model.zip"), _env_for(tmp_path), "cpu", {"learning_rate": "lin_fast"})


PONG_PPO = {"policy": "CnnPolicy", "n_steps": 64, "batch_size": 64, "n_epochs": 1, "seed": 0, "device": "cpu", **LINEAR}


def test_a_resumed_cnn_pretraining_continues_bit_for_bit(tmp_path):
    """Pong's frames reach the policy as a transposed view (VecTransposeImage), whose memory order changes which
    convolution kernel runs and so the last bits of its outputs: the resumed last observation keeps that order,
    or a resumed Pong base drifts from the uninterrupted one (it did, by 6e-8 in a value, then in its weights)."""
    quiet = lambda *_: None
    straight = new_ppo(make_env(PONG), dict(PONG_PPO))
    learn(straight, 128, quiet, schedule_total=384)
    save_ppo(straight, str(tmp_path / "model.zip"), with_resume=True)
    layout = straight._last_obs.strides
    learn(straight, 256, quiet, schedule_total=384)

    resumed = load_ppo(str(tmp_path / "model.zip"), make_env(PONG), "cpu", dict(LINEAR), seed=7, with_resume=True)
    assert resumed._last_obs.strides == layout != tuple(sorted(layout, reverse=True))  # a view, restored as one
    learn(resumed, 256, quiet, schedule_total=384)
    assert resumed.num_timesteps == straight.num_timesteps
    assert _same(_state(resumed), _state(straight))
