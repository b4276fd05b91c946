"""Envs and snapshots in-process (the TS tests repeat the round trip over the bridge)."""

import numpy as np
import pytest
from conftest import PONG

from ultra_sidecar.envs import make_env
from ultra_sidecar.protocol import ProtocolError
from ultra_sidecar.snapshot import restore, snapshot


def _roll(venv, actions):
    out = []
    for a in actions:
        obs, rew, done, _ = venv.step(a)
        out.append((np.copy(obs), np.copy(rew), np.copy(done)))
    return out


@pytest.mark.parametrize(
    "spec",
    [
        {"env_id": "HalfCheetah-v5", "n_envs": 2, "seed": 1, "normalize": {"gamma": 0.98}},
        {"env_id": "Reacher-v5", "n_envs": 1, "seed": 1},
        PONG,
    ],
    ids=["HalfCheetah", "Reacher", "Pong"],
)
def test_restore_replays_bit_identical_observations(spec):
    venv = make_env(spec)
    venv.reset()
    rng = np.random.default_rng(0)
    sample = lambda: np.stack([venv.action_space.sample() for _ in range(venv.num_envs)])
    venv.action_space.seed(0)
    _roll(venv, [sample() for _ in range(30)])
    if hasattr(venv, "training"):
        venv.training = False  # frozen statistics so both replays normalise alike
    snaps = [snapshot(venv, i) for i in range(venv.num_envs)]
    actions = [sample() for _ in range(25)]
    first = _roll(venv, actions)
    _roll(venv, [sample() for _ in range(int(rng.integers(5, 15)))])  # wander off
    for i, s in enumerate(snaps):
        restore(venv, i, s)
    second = _roll(venv, actions)
    for (o1, r1, d1), (o2, r2, d2) in zip(first, second):
        assert np.array_equal(o1, o2) and np.array_equal(r1, r2) and np.array_equal(d1, d2)


def test_restore_returns_the_observation_at_the_snapshot():
    venv = make_env(PONG)
    obs = venv.reset()
    for _ in range(10):
        obs, *_ = venv.step(np.array([2, 3]))
    snap = snapshot(venv, 1)
    venv.step(np.array([0, 0]))
    assert np.array_equal(restore(venv, 1, snap), obs[1])


def test_a_snapshot_from_step_0_steps_in_an_env_never_reset():
    """Gymnasium's passive checker runs its first-step checks against reset data; a restored env has none."""
    source = make_env({"env_id": "Reacher-v5", "n_envs": 1, "seed": 0})
    source.reset()
    snap = snapshot(source, 0)  # before the first step: the checker had not checked a step yet
    target = make_env({"env_id": "Reacher-v5", "n_envs": 2, "seed": 1})
    for i in range(2):
        restore(target, i, snap)
    obs, *_ = target.step(np.zeros((2, 2), dtype=np.float32))
    assert obs.shape == (2, 10)


def test_snapshot_from_another_env_is_refused():
    cheetah, pong = make_env({"env_id": "HalfCheetah-v5"}), make_env(PONG)
    cheetah.reset(), pong.reset()
    with pytest.raises(ProtocolError, match="wrappers"):
        restore(cheetah, 0, snapshot(pong, 0))


def test_unknown_env_id_names_it():
    with pytest.raises(ProtocolError, match="unknown environment id 'HalfCheeta-v5'") as e:
        make_env({"env_id": "HalfCheeta-v5"})
    assert e.value.code == "env_error"


def test_sparse_variants_pay_x_only_past_the_threshold():
    venv = make_env({"env_id": "ultra/SparseHalfCheetah-v5", "seed": 0, "env_kwargs": {"threshold": 5.0}})
    venv.reset()
    data = venv.envs[0].unwrapped.data
    for x, paid in ((1.0, False), (4.9, False), (6.0, True), (7.5, True)):
        data.qpos[0] = x  # place the torso; the next step integrates from there
        _, r, _, infos = venv.step(np.zeros((1, 6)))
        assert infos[0]["x_position"] == pytest.approx(x, abs=0.05)
        assert r[0] == (pytest.approx(infos[0]["x_position"], rel=1e-5) if paid else 0.0)
        assert infos[0]["dense_reward"] != 0.0
