"""RICE's pretrained MuJoCo agents (../shared/rice/, see its README) load with the safe (pickle-free) loader into
Gymnasium's v4 envs, which keep the v3/v2 observation layouts they were trained on, and run."""

import numpy as np
import pytest
from conftest import ROOT

from ultra_sidecar.collect import evaluate
from ultra_sidecar.envs import make_env
from ultra_sidecar.models import load_ppo
from ultra_sidecar.protocol import ProtocolError

RICE = ROOT.parent / "shared" / "rice"
pytestmark = pytest.mark.skipif(
    not RICE.is_dir(), reason=f"RICE's agents are not here ({RICE}); CI has ../shared beside the repo"
)

# RICE's env -> the Gymnasium id that keeps its layout, observation and action dims
AGENTS = {
    "halfcheetah": ("HalfCheetah-v4", 17, 6),  # RICE: HalfCheetah-v3
    "hopper": ("Hopper-v4", 11, 3),  # Hopper-v3
    "walker2d": ("Walker2d-v4", 17, 6),  # Walker2d-v3
    "reacher": ("Reacher-v4", 11, 2),  # Reacher-v2: 11 dims; Reacher-v5 has 10
}
STEPS = 100  # one short episode: the time limit cut to this


def _load(name: str, env_id: str):
    model_dir = RICE / name / "near_optimal" / "model"
    stats = model_dir / "vec_normalize.pkl"
    spec = {"env_id": env_id, "n_envs": 1, "seed": 0, "training": False, "env_kwargs": {"max_episode_steps": STEPS}}
    if stats.is_file():  # halfcheetah, walker2d
        spec["vec_normalize_path"] = str(stats)
    venv = make_env(spec)
    return venv, load_ppo(str(model_dir / "best_model.zip"), venv, "cpu")  # trust=False: nothing is unpickled


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_a_rice_agent_loads_into_its_v4_env_and_runs(name):
    env_id, obs_dim, act_dim = AGENTS[name]
    venv, model = _load(name, env_id)
    assert model.observation_space.shape == venv.observation_space.shape == (obs_dim,)
    assert model.action_space.shape == venv.action_space.shape == (act_dim,)
    res = evaluate(model, venv, 1, True, lambda *_: None)
    assert 0 < res["lengths"][0] <= STEPS and np.isfinite(res["returns"][0])


def test_the_reacher_v2_agent_does_not_fit_reacher_v5():
    with pytest.raises(ProtocolError, match=r"expects observations of shape \(11,\), the env gives \(10,\)"):
        _load("reacher", "Reacher-v5")
