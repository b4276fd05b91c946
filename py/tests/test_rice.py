"""The rice arm (rice.py): mask nets load pickle-free and score states in [0, 1]; one trains for any agent; in
ModulatedPPO it restarts episodes at the mask net's most important state and pays an RND bonus, reproducibly."""

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY_PPO
from stable_baselines3.common import save_util

from ultra_sidecar.envs import make_env
from ultra_sidecar.models import learn, load_ppo, new_ppo, save_ppo
from ultra_sidecar.modulation import ModulationTable
from ultra_sidecar.protocol import ProtocolError
from ultra_sidecar.rice import importance, load_mask, save_mask, train_mask

RICE = ROOT.parent / "shared" / "rice"
needs_rice = pytest.mark.skipif(
    not RICE.is_dir(), reason=f"RICE's agents are not here ({RICE}); CI has ../shared beside the repo"
)
HOPPER = {"env_id": "Hopper-v5", "n_envs": 1, "seed": 0, "training": False}
MASK_PPO = {"n_steps": 128, "batch_size": 64, "n_epochs": 1}


@pytest.fixture(autouse=True)
def one_thread():
    """2 shared cores: tiny nets run fastest (and least disturbed) on one thread."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def mask_path(tmp_path_factory):
    """A mask net for a fresh tiny agent, RICE's recipe on a tiny budget."""
    torch.set_num_threads(1)
    venv = make_env(HOPPER)
    agent = new_ppo(venv, {**TINY_PPO, "device": "cpu"})
    mask, _ = train_mask(agent, venv, 256, 0.01, 0, lambda *_: None, MASK_PPO)
    return save_mask(mask, str(tmp_path_factory.mktemp("mask") / "masknet.zip"))


@needs_rice
@pytest.mark.parametrize(
    "name, env_id",
    [("hopper", "Hopper-v4"), ("walker2d", "Walker2d-v4"), ("reacher", "Reacher-v4"), ("halfcheetah", "HalfCheetah-v4")],
)
def test_rice_mask_nets_load_without_unpickling(monkeypatch, name, env_id):
    def refuse(*_):
        raise AssertionError("SB3 unpickled an entry of the mask net's zip")

    monkeypatch.setattr(save_util.cloudpickle, "loads", refuse)
    venv = make_env({"env_id": env_id})
    mask = load_mask(str(RICE / name / "near_optimal" / "masknet" / "best_model.zip"), venv.observation_space)
    imp = importance(mask, np.stack([venv.reset()[0] for _ in range(4)]))
    assert imp.dtype == np.float32 and imp.shape == (4,) and np.all((imp >= 0) & (imp <= 1))


@needs_rice
def test_importance_of_rice_hopper_agent_over_an_episode_lies_in_0_1_and_varies():
    venv = make_env({"env_id": "Hopper-v4", "seed": 0, "training": False, "env_kwargs": {"max_episode_steps": 200}})
    agent = load_ppo(str(RICE / "hopper" / "near_optimal" / "model" / "best_model.zip"), venv, "cpu")
    mask = load_mask(str(RICE / "hopper" / "near_optimal" / "masknet" / "best_model.zip"), venv.observation_space)
    obs, rows = venv.reset(), []
    while True:
        rows.append(obs[0])
        obs, _, dones, _ = venv.step(agent.predict(obs, deterministic=True)[0])
        if dones[0]:
            break
    imp = importance(mask, np.array(rows))
    assert len(imp) == len(rows) and np.all((imp >= 0) & (imp <= 1)) and imp.std() > 0.01


def test_a_mask_net_for_another_observation_space_is_refused(mask_path):
    with pytest.raises(ProtocolError, match=r"scores observations of shape \(11,\), the agent's env gives \(17,\)"):
        load_mask(mask_path, make_env({"env_id": "HalfCheetah-v5"}).observation_space)


def test_mask_train_and_importance_ops(sidecar, tmp_path):
    env = sidecar.call("env_make", spec=HOPPER)["env"]
    model = sidecar.call("model_new", env=env, ppo=TINY_PPO)["model"]
    events = []
    path = str(tmp_path / "m.zip")
    res = sidecar.call("mask_train", events, model=model, env=env, steps=128, alpha=0.01, seed=0, path=path, ppo=MASK_PPO)
    assert res["steps"] == 128 and res["files"] == [path] and 0 <= res["blind_fraction"] <= 1
    assert events and events[-1]["data"]["steps"] == 128
    obs = np.stack([sidecar.call("env_reset", env=env)["obs"][0] for _ in range(3)])
    by_handle = sidecar.call("mask_importance", mask=res["mask"], obs=obs)["importance"]
    by_path = sidecar.call("mask_importance", mask=path, obs=obs)["importance"]
    assert by_handle.dtype == np.float32 and np.array_equal(by_handle, by_path) and np.all((by_handle >= 0) & (by_handle <= 1))


def _rice_table(mask_path, **rice):
    return {
        "variant": "rice",
        "radius": 0.0,
        "fire_on": "entry",
        "reset_prob": 1.0,
        "reward_scale": 0.0,
        "reward_unit": 1.0,
        "action_tolerance": 0.5,
        "seed": 7,
        "states": [],
        "rice": {"mask": mask_path, "env": {**HOPPER, "normalize": True}, "rnd_coef": 0.01, **rice},
    }


def _rice_run(mask_path, **rice):
    """A tiny agent on a VecNormalize'd Hopper refined 2 rollouts with the rice table."""
    venv = make_env({**HOPPER, "normalize": True, "training": True})
    model = new_ppo(venv, {**TINY_PPO, "n_steps": 128, "device": "cpu"})
    model.modulation = ModulationTable(_rice_table(mask_path, **rice), venv)
    model.learn(256)
    return model


def test_the_rice_arm_restores_critical_states_pays_rnd_and_repeats_bit_for_bit(mask_path):
    a, b = _rice_run(mask_path), _rice_run(mask_path)
    stats = a.modulation_stats
    assert stats["rice_resets"] > 0 and stats["rice_rollout_steps"] >= stats["rice_resets"]
    assert stats["rnd_bonus_steps"] == 256 and stats["rnd_bonus_sum"] > 0
    assert stats["critical_resets"] == stats["matched_steps"] == 0
    assert stats == b.modulation_stats
    for (name, x), y in zip(a.policy.state_dict().items(), b.policy.state_dict().values(), strict=True):
        assert torch.equal(x, y), name


def test_rices_random_critical_ablation_needs_no_mask_net_and_starts_elsewhere(mask_path):
    """RICE's ablation: a uniformly random state of the fresh rollout instead of the mask net's argmax."""
    a, b = _rice_run(None, critical="random"), _rice_run(None, critical="random")
    stats = a.modulation_stats
    assert stats["rice_resets"] > 0 and stats["rnd_bonus_steps"] == 256
    assert stats == b.modulation_stats
    assert all(torch.equal(x, y) for x, y in zip(a.policy.parameters(), b.policy.parameters(), strict=True))
    masked = _rice_run(mask_path)
    assert not all(torch.equal(x, y) for x, y in zip(a.policy.parameters(), masked.policy.parameters(), strict=True))


@pytest.mark.parametrize(
    "change, field",
    [
        ({"rice": None}, "modulation.rice must be a map with mask"),
        ({"states": [{"obs": np.zeros(11)}]}, "modulation.states must be empty for the rice variant"),
        ({"rice": {"mask": "x", "env": {}, "rnd_coef": -1}}, "modulation.rice.rnd_coef"),
        (
            {"rice": {"mask": None, "env": HOPPER, "rnd_coef": 0.0, "critical": "best"}},
            "modulation.rice.critical must be mask or random",
        ),
    ],
)
def test_bad_rice_tables_name_the_field(mask_path, change, field):
    with pytest.raises(ProtocolError, match=field):
        ModulationTable({**_rice_table(mask_path), **change}, make_env(HOPPER))


def test_a_resumed_rice_arm_continues_bit_for_bit(mask_path, tmp_path):
    """As improve runs it: a rice table per learn() segment (its own seed; RND afresh), a checkpoint between them.
    The resumed second segment equals the uninterrupted one, its counters included."""
    quiet = lambda *_: None
    spec = {**HOPPER, "n_envs": 2, "seed": 3, "env_kwargs": {"max_episode_steps": 60}}

    def env(ckpt=None):
        extra = {"vec_normalize_path": str(ckpt / "vec_normalize.pkl")} if ckpt else {"normalize": True}
        return make_env({**spec, "training": True, **extra})

    def table(seed):
        return {
            **_rice_table(mask_path),
            "seed": seed,
            "reset_prob": 0.5,
            "rice": {**_rice_table(mask_path)["rice"], "env": {**spec, "normalize": True}},
        }

    straight = new_ppo(env(), {**TINY_PPO, "n_steps": 64, "device": "cpu"})
    learn(straight, 128, quiet, modulation=table(1))
    save_ppo(straight, str(tmp_path / "model.zip"), with_resume=True)
    second = learn(straight, 128, quiet, modulation=table(2))["modulation"]
    resumed = load_ppo(str(tmp_path / "model.zip"), env(tmp_path), "cpu", {"learning_rate": 3e-4}, seed=99, with_resume=True)
    again = learn(resumed, 128, quiet, modulation=table(2))["modulation"]
    assert second["rice_resets"] > 0 and again == second
    for (name, x), y in zip(straight.policy.state_dict().items(), resumed.policy.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
