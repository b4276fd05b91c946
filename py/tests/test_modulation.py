"""ULTRA's improvement phase: ModulatedPPO against SB3's PPO, and each variant on real HalfCheetah rollouts."""

import numpy as np
import pytest
import torch
from conftest import HALF_CHEETAH, TINY_PPO, SidecarError
from stable_baselines3 import PPO

from ultra_sidecar.envs import find_vec_normalize, make_env
from ultra_sidecar.models import load_ppo, new_ppo, save_ppo
from ultra_sidecar.modulation import ModulatedPPO, ModulationTable
from ultra_sidecar.protocol import ProtocolError
from ultra_sidecar.snapshot import restore, snapshot

N_STEPS = 128
SMALL_PPO = {
    "policy": "MlpPolicy",
    "n_steps": N_STEPS,
    "batch_size": 64,
    "n_epochs": 2,
    "seed": 0,
    "device": "cpu",
    "policy_kwargs": {"net_arch": [16, 16]},
}
HALF = np.full(6, 0.5, dtype=np.float32)  # the suggested action: no Gaussian sample hits it exactly


def _env(**spec):
    """Two HalfCheetahs under frozen, non-trivial VecNormalize statistics: matching must normalise, and two
    envs made alike normalise alike."""
    venv = make_env({**HALF_CHEETAH, "n_envs": 2, "training": False, **spec})
    vn, rng = find_vec_normalize(venv), np.random.default_rng(0)
    vn.obs_rms.mean, vn.obs_rms.var = rng.normal(size=17), rng.uniform(0.25, 4.0, size=17)
    return venv


def _trajectory(venv, actions):
    """Raw observations (steps + 1, envs, 17) and the rewards PPO sees when `venv` takes `actions` from reset."""
    vn = find_vec_normalize(venv)
    venv.reset()
    raw, rewards = [vn.get_original_obs()], []
    for a in actions:
        rewards.append(venv.step(a)[1])
        raw.append(vn.get_original_obs())
    return np.array(raw), np.array(rewards)


def _table(variant, states, **kw):
    return {
        "variant": variant,
        "radius": 1e-3,
        "fire_on": "entry",
        "reset_prob": 0.0,
        "reward_scale": 0.5,
        "reward_unit": 1.0,
        "action_tolerance": 0.5,
        "seed": 0,
        "states": states,
        **kw,
    }


def _one_rollout(model, table=None):
    """One rollout with train() disabled: the buffer holds what was stored, under the policy that stored it."""
    model.modulation = table
    model.train = lambda: None
    model.learn(N_STEPS * model.n_envs)
    return model.rollout_buffer


def test_without_a_table_it_is_sb3_ppo_bit_for_bit():
    def train(cls, table=None):
        venv = make_env(HALF_CHEETAH)  # VecNormalize in training mode, as in real runs
        hp = {k: v for k, v in SMALL_PPO.items() if k != "policy"}
        model = cls("MlpPolicy", venv, **{**hp, "n_steps": 256})
        if table is not None:
            model.modulation = ModulationTable(table, venv)
        model.learn(1024)
        return list(model.policy.parameters())

    native = train(PPO)
    for params in (train(ModulatedPPO), train(ModulatedPPO, _table("RA", [], reset_prob=1.0))):
        assert all(torch.equal(a, b) for a, b in zip(native, params, strict=True))


def test_a_saved_model_is_plain_ppo(tmp_path):
    venv = _env()
    model = new_ppo(venv, SMALL_PPO)
    assert isinstance(model, ModulatedPPO)
    model.modulation = ModulationTable(_table("A", [{"obs": np.zeros(17), "action": HALF}]), venv)
    path = save_ppo(model, str(tmp_path / "model.zip"))[0]
    plain = PPO.load(path, device="cpu")
    assert "modulation" not in plain.__dict__
    assert all(torch.equal(a, b) for a, b in zip(model.policy.parameters(), plain.policy.parameters(), strict=True))
    loaded = load_ppo(path, venv, "cpu")
    assert isinstance(loaded, ModulatedPPO) and loaded.modulation is None


@pytest.mark.parametrize("variant", ["A", "RA"])
def test_actions_are_overridden_exactly_at_critical_states(variant):
    k = 6  # the table names sub-env 0's first k states along the suggested action's trajectory
    raw, rewards = _trajectory(_env(), [np.stack([HALF, HALF])] * k)
    bonus = np.arange(1.0, k + 1)
    model = new_ppo(_env(), SMALL_PPO)
    table = ModulationTable(
        _table(variant, [{"obs": raw[t, 0], "action": HALF, "reward": bonus[t]} for t in range(k)]), model.get_env()
    )
    buf = _one_rollout(model, table)

    # Sub-env 0 followed the suggestion for k steps, reaching one more state on that path that no entry names.
    vn = find_vec_normalize(model.get_env())
    assert np.array_equal(buf.observations[: k + 1, 0], vn.normalize_obs(raw[: k + 1, 0]))
    critical = np.zeros((N_STEPS, 2), dtype=bool)
    critical[:k, 0] = True
    assert np.array_equal((buf.actions == HALF).all(-1), critical)
    # Every stored log-prob is its stored action's under the rollout's policy, overridden ones included.
    with torch.no_grad():
        _, log_probs, _ = model.policy.evaluate_actions(
            torch.as_tensor(buf.observations.reshape(-1, 17)), torch.as_tensor(buf.actions.reshape(-1, 6))
        )
    np.testing.assert_allclose(buf.log_probs.reshape(-1), log_probs.numpy(), rtol=0, atol=1e-5)
    added = 0.5 * bonus if variant == "RA" else 0.0
    np.testing.assert_allclose(buf.rewards[:k, 0], rewards[:, 0] + added, rtol=0, atol=1e-5)
    expected = {
        "matched_steps": k,
        "near_steps": k,
        "restored_start_matches": 0,
        "overridden_actions": k,
        "reward_added_steps": k if variant == "RA" else 0,
        "critical_resets": 0,
    }
    assert model.modulation_stats == expected


def test_variant_r_adds_reward_only_at_critical_states_for_the_action_taken():
    plain = _one_rollout(new_ppo(_env(), SMALL_PPO))
    taken = np.clip(plain.actions, -1.0, 1.0)
    raw, _ = _trajectory(_env(), taken)  # the states that rollout visited
    # two reward-only states (paid whatever the action) and two with a suggestion (paid by closeness to it)
    picks, bonus = [(3, 0), (40, 1), (41, 0), (100, 1)], [1.0, -2.0, 3.0, 4.0]
    suggestion = [None, None, taken[41, 0] + 0.25, taken[100, 1] * 0.0 + 0.5]
    states = [
        {"obs": raw[t, i], "action": a if a is None else np.clip(a, -1, 1).astype(np.float32), "reward": r}
        for (t, i), r, a in zip(picks, bonus, suggestion)
    ]
    model = new_ppo(_env(), SMALL_PPO)
    buf = _one_rollout(model, ModulationTable(_table("R", states, action_tolerance=2.0), model.get_env()))

    added = np.zeros_like(plain.rewards)
    for ((t, i), r), s in zip(zip(picks, bonus), states):
        d = 0.0 if s["action"] is None else np.sqrt(np.mean((taken[t, i] - s["action"]) ** 2))  # half-range 1
        added[t, i] = 0.5 * r * max(0.0, 1.0 - d / 2.0)
    assert 0 < added[41, 0] < 0.5 * 3.0  # partly paid: near the suggestion, not on it
    np.testing.assert_allclose(buf.rewards - plain.rewards, added, rtol=0, atol=1e-5)
    assert np.array_equal(buf.actions, plain.actions)  # same seed, and R leaves actions alone
    paid = int((added != 0).sum())
    assert model.modulation_stats == {
        "matched_steps": 4,
        "near_steps": 4,
        "restored_start_matches": 0,
        "overridden_actions": 0,
        "reward_added_steps": paid,
        "critical_resets": 0,
    }


def test_the_bonus_is_in_reward_units_converted_as_vec_normalize_converts_rewards():
    """reward 1.0 is one `reward_unit` of raw reward; under VecNormalize(norm_reward) PPO sees it divided by
    sqrt(ret_rms.var + epsilon) with the statistics at the rollout's start, as the env's own rewards are."""

    def run(table):
        venv = _env()
        vn = find_vec_normalize(venv)
        assert vn.norm_reward
        model = new_ppo(venv, SMALL_PPO)
        t = None if table is None else ModulationTable(table, venv)
        vn.ret_rms.var = np.float64(9.0)  # after the table is made: the current statistics count
        return _one_rollout(model, t), model, vn

    plain, _, _ = run(None)
    everywhere = _table(
        "R", [{"obs": np.zeros(17), "action": None, "reward": 2.0}], radius=1e9, fire_on="step", reward_unit=0.7
    )
    buf, model, vn = run(everywhere)
    expected = 0.5 * 2.0 * 0.7 / np.sqrt(9.0 + vn.epsilon)
    np.testing.assert_allclose(buf.rewards - plain.rewards, expected, rtol=0, atol=1e-5)
    assert model.modulation_stats["reward_added_steps"] == N_STEPS * 2


def test_variant_r_pays_a_discrete_suggestion_only_when_it_is_taken():
    def run(table):
        venv = make_env({"env_id": "CartPole-v1", "n_envs": 2, "seed": 0})
        model = new_ppo(venv, SMALL_PPO)
        return _one_rollout(model, None if table is None else ModulationTable(table, venv)), model

    plain, _ = run(None)
    buf, model = run(
        _table("R", [{"obs": np.zeros(4), "action": 1, "reward": 1.0}], radius=1e9, fire_on="step", reward_unit=2.0)
    )
    assert np.array_equal(buf.actions, plain.actions)
    took = plain.actions[..., 0] == 1
    assert 0 < took.sum() < took.size  # every step matched; some took the suggestion, some did not
    np.testing.assert_allclose(buf.rewards - plain.rewards, np.where(took, 0.5 * 1.0 * 2.0, 0.0), rtol=0, atol=1e-6)
    stats = model.modulation_stats
    assert stats["matched_steps"] == took.size and stats["reward_added_steps"] == int(took.sum())


def test_reset_variant_restarts_ended_episodes_at_critical_states():
    short = {"env_kwargs": {"max_episode_steps": 40}}
    src = _env(**short)
    src.reset()
    for _ in range(30):
        src.step(np.stack([HALF, HALF]))
    raw = find_vec_normalize(src).get_original_obs()[0]
    states = [
        {"obs": raw, "action": HALF, "reward": 1.0, "snapshot": snapshot(src, 0)},  # 10 steps before its time limit
        {"obs": raw + 1.0, "action": HALF, "reward": 1.0, "snapshot": None},  # never a start: no snapshot
    ]
    model = new_ppo(_env(**short), SMALL_PPO)
    buf = _one_rollout(model, ModulationTable(_table("reset", states, reset_prob=1.0), model.get_env()))

    starts = buf.episode_starts.astype(bool)
    starts[0] = False  # the first episodes start from env.reset()
    # Episodes end at step 40, then every 10 steps: restarts at 40, 50, ..., 120 in both sub-envs.
    assert starts.sum(0).tolist() == [9, 9]
    restored = find_vec_normalize(model.get_env()).normalize_obs(raw[None])[0]
    assert (buf.observations[starts] == restored).all()
    assert not (buf.actions[starts] == HALF).all(-1).any()
    assert model.modulation_stats == {
        "matched_steps": 18,
        "near_steps": 18,
        "restored_start_matches": 18,
        "overridden_actions": 0,
        "reward_added_steps": 0,
        "critical_resets": 18,
    }


def _resting_cheetah(steps: int = 60):
    """A HalfCheetah state after `steps` zero actions from reset (at rest on the floor), with its snapshot."""
    src = _env(env_kwargs={"max_episode_steps": 200})
    src.reset()
    for _ in range(steps):
        src.step(np.zeros((2, 6), dtype=np.float32))
    return {
        "obs": find_vec_normalize(src).get_original_obs()[0],
        "action": np.zeros(6, dtype=np.float32),
        "reward": 1.0,
        "snapshot": snapshot(src, 0),
    }


@pytest.mark.parametrize("fire_on", ["step", "entry"])
def test_a_hold_still_suggestion_cannot_lock_the_agent_at_its_state(fire_on):
    """The quick HalfCheetah run's collapse: episodes restart at an entry whose suggestion is "all zero", which keeps
    the cheetah inside the entry's radius, so firing on every step inside overrode 86% of all steps. Firing on
    entry modulates once per visit, so the agent's own actions take it away again."""
    model = new_ppo(_env(env_kwargs={"max_episode_steps": 200}), SMALL_PPO)
    table = ModulationTable(_table("RA", [_resting_cheetah()], radius=0.5, reset_prob=1.0, fire_on=fire_on), model.get_env())
    model.modulation, model.train = table, lambda: None
    model.learn(4 * N_STEPS * 2)  # 1024 steps: 2 sub-envs, each 1 natural episode then restored ones
    s = model.modulation_stats
    steps = 4 * N_STEPS * 2
    assert s["critical_resets"] >= 6 and s["restored_start_matches"] == s["critical_resets"]
    if fire_on == "step":  # locked in: the suggestion keeps the agent inside, where it is suggested again
        assert s["matched_steps"] == s["near_steps"] == s["overridden_actions"] > 0.3 * steps, s
    else:  # a visit is a restored start (the entry's own state) or one entering from a natural episode
        assert s["restored_start_matches"] <= s["matched_steps"] <= s["restored_start_matches"] + 2, s
        assert s["overridden_actions"] == s["matched_steps"] < 0.02 * steps and s["near_steps"] < 0.1 * steps, s


def test_fire_on_entry_rearms_when_the_agent_leaves_or_the_episode_ends():
    """Everywhere is within the radius: an entry fires at the first step of each episode (fresh or restored), never
    again inside it. With a radius of 0 nothing is near, and nothing fires."""
    short = {"env_kwargs": {"max_episode_steps": 40}}
    model = new_ppo(_env(**short), SMALL_PPO)
    buf = _one_rollout(
        model, ModulationTable(_table("A", [{"obs": np.zeros(17), "action": HALF}], radius=1e9), model.get_env())
    )
    starts = buf.episode_starts.astype(bool)
    starts[0] = True
    assert np.array_equal(
        (buf.actions == HALF).all(-1), starts
    )  # overridden exactly at episode starts: 128/40 → 4 per sub-env
    assert model.modulation_stats["matched_steps"] == 8 and model.modulation_stats["near_steps"] == N_STEPS * 2


CHEETAH_STATE = {"obs": np.zeros(17), "action": HALF, "reward": 0.0, "snapshot": None}


@pytest.mark.parametrize(
    "env_id, change, field",
    [
        ("HalfCheetah-v5", {"variant": "B"}, "modulation.variant"),
        ("HalfCheetah-v5", {"radius": -0.1}, "modulation.radius"),
        ("HalfCheetah-v5", {"fire_on": "visit"}, "modulation.fire_on must be one of entry, step"),
        ("HalfCheetah-v5", {"reset_prob": 1.5}, "modulation.reset_prob"),
        ("HalfCheetah-v5", {"reward_unit": 0.0}, "modulation.reward_unit must be a finite number > 0"),
        ("HalfCheetah-v5", {"action_tolerance": -1.0}, "modulation.action_tolerance"),
        ("HalfCheetah-v5", {"seed": None}, "modulation.seed"),
        (
            "HalfCheetah-v5",
            {"states": [{**CHEETAH_STATE, "obs": np.zeros(5)}]},
            r"modulation.states\[0\].obs has shape \(5,\)",
        ),
        (
            "HalfCheetah-v5",
            {"states": [CHEETAH_STATE, {**CHEETAH_STATE, "action": np.full(6, 1.5)}]},
            r"states\[1\].action lies outside",
        ),
        ("HalfCheetah-v5", {"states": [{**CHEETAH_STATE, "action": np.zeros(3)}]}, r"states\[0\].action has shape \(3,\)"),
        ("CartPole-v1", {"states": [{"obs": np.zeros(4), "action": 2}]}, r"states\[0\].action must be an int in \[0, 2\)"),
    ],
)
def test_bad_tables_name_the_field(env_id, change, field):
    venv = make_env({"env_id": env_id})
    with pytest.raises(ProtocolError, match=field) as e:
        ModulationTable({**_table("A", [CHEETAH_STATE]), **change}, venv)
    assert e.value.code == "bad_args"


def test_model_learn_applies_a_table_for_that_call_only(sidecar):
    env = sidecar.call("env_make", spec=HALF_CHEETAH)["env"]
    model = sidecar.call("model_new", env=env, ppo={**TINY_PPO, "n_steps": 64})["model"]
    everywhere = _table(
        "A", [{"obs": np.zeros(17), "action": HALF, "reward": 0.0, "snapshot": None}], radius=1e9, fire_on="step"
    )
    events = []
    res = sidecar.call("model_learn", events, model=model, steps=128, modulation=everywhere)
    assert res["modulation"] == {
        "matched_steps": 128,
        "near_steps": 128,
        "restored_start_matches": 0,
        "overridden_actions": 128,
        "reward_added_steps": 0,
        "critical_resets": 0,
    }
    assert events and all("modulation" in e["data"] for e in events)
    assert sidecar.call("model_learn", model=model, steps=64)["modulation"] is None
    with pytest.raises(SidecarError, match="modulation.variant") as e:
        sidecar.call("model_learn", model=model, steps=64, modulation={**everywhere, "variant": "X"})
    assert e.value.code == "bad_args"


def _hopper_snapshot(steps: int = 20):
    """A snapshot of a Hopper (under Monitor) `steps` steps into an episode, and the env it was taken in."""
    venv = make_env({"env_id": "Hopper-v5", "n_envs": 1, "seed": 0})
    venv.reset()
    for _ in range(steps):
        venv.step(np.zeros((1, 3), dtype=np.float32))
    return venv, snapshot(venv, 0)


def test_critical_resets_keep_the_envs_reset_randomness():
    """Restoring a snapshot as an episode start must not rewind the env's reset RNG: the natural resets after it
    stay as varied as a plain env's. Rewinding it (a replay restore) makes every later reset the same state."""
    venv, snap = _hopper_snapshot()
    env = venv.envs[0]

    def starts(start_episode: bool) -> int:
        qpos = set()
        for _ in range(10):
            restore(venv, 0, snap, start_episode=start_episode)
            env.reset()  # the natural reset that follows an episode begun at the snapshot
            qpos.add(env.unwrapped.data.qpos.tobytes())
        return len(qpos)

    assert starts(start_episode=True) == 10
    assert starts(start_episode=False) == 1  # an exact replay restores the RNG too (resume, counterfactuals)


def test_an_episode_restored_at_a_critical_state_logs_only_its_own_rewards():
    venv, snap = _hopper_snapshot(steps=20)
    assert len(venv.envs[0].rewards) == 20  # the Monitor's episode so far: the snapshot's prefix
    restore(venv, 0, snap, start_episode=True)
    collected = []
    while True:
        _, r, done, info = venv.step(np.ones((1, 3), dtype=np.float32))
        collected.append(float(r[0]))
        if done[0]:
            break
    ep = info[0]["episode"]
    assert ep["l"] == len(collected)
    assert ep["r"] == pytest.approx(sum(collected), abs=1e-4)
