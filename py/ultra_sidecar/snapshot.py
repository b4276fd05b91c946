"""Full env state of one sub-env of a VecEnv, as plain msgpack-able data (no pickle crosses the wire).

A snapshot holds: the simulator (MuJoCo integration state incl. warm-start, or the ALE state incl. its RNG),
the reset RNG, the per-episode state of known Gymnasium wrappers, and the per-env slice of the VecEnv
wrappers (frame stack, normalisation return, last observation). Restoring it and replaying the same actions
reproduces the same observations bit for bit.

One known gap: ALE's sticky actions (repeat_action_probability > 0) repeat the previous action, which
ALEState does not hold; replays then diverge once a sticky repeat happens. The project's Atari config uses
repeat_action_probability 0 (the NoFrameskip-v4 setting RL-Zoo's Pong numbers come from).
"""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import PassiveEnvChecker
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecFrameStack, VecNormalize, VecTransposeImage

from .protocol import ProtocolError

# Per-episode attributes of wrappers that hold state between steps; other wrappers are stateless per step.
WRAPPER_STATE = {
    "TimeLimit": ("_elapsed_steps",),
    "Monitor": ("rewards", "needs_reset"),
    "OrderEnforcing": ("_has_reset",),
    "EpisodicLifeEnv": ("lives", "was_real_done"),
}


def _base_state(env: gym.Env) -> dict:
    u = env.unwrapped
    if hasattr(u, "ale"):
        return {"kind": "ale", "state": u.ale.cloneState(include_rng=True).serialize()}
    if hasattr(u, "data") and hasattr(u, "model") and type(u.data).__module__.startswith("mujoco"):
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(u.model, spec), dtype=np.float64)
        mujoco.mj_getState(u.model, u.data, state, spec)
        return {"kind": "mujoco", "state": state}
    if isinstance(getattr(u, "state", None), (np.ndarray, tuple, list)):  # classic control
        return {"kind": "classic", "state": np.array(u.state, dtype=np.float64)}
    raise ProtocolError("unsupported", f"snapshot is not supported for {type(u).__name__} (MuJoCo, ALE, classic control are)")


def _set_base_state(env: gym.Env, base: dict) -> None:
    u = env.unwrapped
    kind = base.get("kind")
    if kind == "ale" and hasattr(u, "ale"):
        import ale_py

        u.ale.restoreState(ale_py.ALEState(bytes(base["state"])))
    elif kind == "mujoco" and hasattr(u, "data"):
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.asarray(base["state"], dtype=np.float64)
        if state.size != mujoco.mj_stateSize(u.model, spec):
            raise ProtocolError("bad_args", "snapshot state size does not match this MuJoCo model")
        # No mj_forward: derived quantities are recomputed by the next mj_step, as in the original run.
        mujoco.mj_setState(u.model, u.data, state, spec)
    elif kind == "classic":
        u.state = np.array(base["state"], dtype=np.float64)
    else:
        raise ProtocolError("bad_args", f"snapshot of kind {kind!r} does not fit {type(u).__name__}")


def _wrapper_chain(env: gym.Env) -> list[gym.Env]:
    chain = [env]
    while isinstance(chain[-1], gym.Wrapper):
        chain.append(chain[-1].env)
    return chain


def _vec_chain(venv: VecEnv) -> list[VecEnv]:
    chain = [venv]
    while hasattr(chain[-1], "venv"):
        chain.append(chain[-1].venv)
    if not isinstance(chain[-1], DummyVecEnv):
        raise ProtocolError("unsupported", "snapshots need a DummyVecEnv at the bottom of the VecEnv stack")
    return chain


def base_env(venv: VecEnv, index: int):
    """Sub-env `index` under every VecEnv wrapper (its gym wrappers still on)."""
    return _vec_chain(venv)[-1].envs[index]


def _check_index(venv: VecEnv, index: int) -> None:
    if not isinstance(index, int) or not 0 <= index < venv.num_envs:
        raise ProtocolError("bad_args", f"env index {index!r} out of range 0..{venv.num_envs - 1}")


def snapshot(venv: VecEnv, index: int) -> dict:
    _check_index(venv, index)
    chain = _vec_chain(venv)
    env = chain[-1].envs[index]
    wrappers = []
    for w in _wrapper_chain(env):
        attrs = WRAPPER_STATE.get(type(w).__name__, ())
        wrappers.append([type(w).__name__, {a: _plain(getattr(w, a)) for a in attrs}])
    vec = {}
    for v in chain:
        if isinstance(v, DummyVecEnv):
            vec["obs"] = np.copy(v.buf_obs[None][index])
        elif isinstance(v, VecNormalize):
            vec["norm_old_obs"] = np.copy(v.old_obs[index])
            vec["norm_return"] = float(v.returns[index])
        elif isinstance(v, VecFrameStack):
            vec["stacked_obs"] = np.copy(v.stacked_obs.stacked_obs[index])
    rng = env.unwrapped.np_random.bit_generator.state
    return {"base": _base_state(env), "rng": json.dumps(rng), "wrappers": wrappers, "vec": vec}


def restore(venv: VecEnv, index: int, snap: dict, start_episode: bool = False) -> np.ndarray:
    """Put sub-env `index` into the snapshot's state; return the observation the agent sees there.

    start_episode: the snapshot is where a new episode of this env starts (a critical-state reset), not a replay
    of the episode it came from. The env's reset RNG is then left as it is (rewinding it would make every later
    natural reset replay the snapshot's episode's start), the Monitor counts only the rewards collected from here
    (not the snapshot's prefix, which another policy earned), and VecNormalize's return accumulator starts at 0,
    as after any reset. The simulator state (and ALE's own RNG inside it) is the snapshot's either way."""
    _check_index(venv, index)
    if not isinstance(snap, dict) or not {"base", "rng", "wrappers", "vec"} <= snap.keys():
        raise ProtocolError("bad_args", "snapshot must be a map with base, rng, wrappers, vec (from env_snapshot)")
    chain = _vec_chain(venv)
    env = chain[-1].envs[index]
    wrappers = _wrapper_chain(env)
    names = [type(w).__name__ for w in wrappers]
    if names != [n for n, _ in snap["wrappers"]]:
        raise ProtocolError(
            "bad_args", f"snapshot was taken under wrappers {[n for n, _ in snap['wrappers']]}, env has {names}"
        )
    _set_base_state(env, snap["base"])
    if not start_episode:
        env.unwrapped.np_random.bit_generator.state = json.loads(snap["rng"])
    for w, (_, attrs) in zip(wrappers, snap["wrappers"]):
        for a, value in attrs.items():
            setattr(w, a, list(value) if isinstance(getattr(w, a), list) else value)
        if start_episode and isinstance(w, Monitor):
            w.rewards, w.needs_reset = [], False
        if isinstance(w, PassiveEnvChecker):
            # its one-time checks of the first steps compare with data from a reset this env may never have had
            # (a snapshot from step 0 would run them): they were done where the snapshot was taken
            w.checked_reset = w.checked_step = w.checked_data_reuse = True
    vec, obs = snap["vec"], None
    for v in reversed(chain):  # innermost first, so each layer sees the observation below it
        if isinstance(v, DummyVecEnv):
            v.buf_obs[None][index] = vec["obs"]
            obs = np.copy(vec["obs"])
        elif isinstance(v, VecNormalize):
            if (
                getattr(v, "old_obs", None) is None or len(v.old_obs) != v.num_envs
            ):  # never reset, or stats from another env count
                v.old_obs = np.zeros((v.num_envs, *np.shape(vec["norm_old_obs"])), dtype=np.float32)
            v.old_obs[index] = vec["norm_old_obs"]
            v.returns[index] = 0.0 if start_episode else vec["norm_return"]
            obs = v.normalize_obs(np.asarray(vec["norm_old_obs"])[None])[0]
        elif isinstance(v, VecFrameStack):
            v.stacked_obs.stacked_obs[index] = vec["stacked_obs"]
            obs = np.copy(vec["stacked_obs"])
        elif isinstance(v, VecTransposeImage):
            obs = v.transpose_image(obs)
    return obs


def _plain(x):
    if isinstance(x, (list, tuple)):
        return [_plain(i) for i in x]
    if isinstance(x, np.generic):
        return x.item()
    return x
