"""RICE (Cheng et al., ICML 2024, arXiv 2405.03064) as an improvement arm: a StateMask-style mask network scores
states by importance, refinement episodes start with probability p at the most important state of a fresh rollout
of the current agent, and an RND bonus rewards novel states.

The mask network is an SB3 PPO policy over the agent's (agent-facing) observation with a Discrete(2) action:
0 = blind the agent (the env steps with a uniformly random action), 1 = let it act (its deterministic action).
It is trained on the env's raw reward + alpha·(1 − action), so it learns to blind wherever that costs no return;
importance of a state = P(action 1 | state). RICE's own mask nets (../shared/rice/<env>/near_optimal/masknet/) load
with the project's pickle-free loader (model_objects.py).
"""

from __future__ import annotations

import copy
import itertools
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from . import model_objects
from .envs import find_vec_normalize, make_env
from .protocol import ProtocolError
from .snapshot import snapshot
from .zipinfo import check_ppo, space_shape

Emit = Callable[[str, dict], None]
RICE_STATS = ("rice_resets", "rice_rollout_steps", "rnd_bonus_sum", "rnd_bonus_steps")


def check_vector_obs(space: spaces.Space, what: str) -> None:
    """RICE's mask nets and RND are MLPs over vector observations (MuJoCo); frames would need CNNs."""
    if is_image_space(space) or len(space.shape or ()) != 1:
        raise ProtocolError(
            "unsupported", f"{what} needs vector observations (as RICE's MuJoCo tasks have), not shape {space.shape}"
        )


class _KeepGlobalRNGs:
    """Loading a model builds a policy (torch init draws): keep the global RNGs where the agent's training left
    them, so adding a mask net changes none of PPO's own draws."""

    def __enter__(self):
        self.states = (random.getstate(), np.random.get_state(), th.random.get_rng_state())

    def __exit__(self, *exc):
        random.setstate(self.states[0])
        np.random.set_state(self.states[1])
        th.random.set_rng_state(self.states[2])


def load_mask(path: str, observation_space: spaces.Space, device: str = "cpu", trust: bool = False) -> PPO:
    """A mask network zip (SB3 PPO, Discrete(2) actions) for agents whose observations are `observation_space`.
    Untrusted (the default), nothing in the file is unpickled; an entry that would need it is refused by name."""
    info = check_ppo(path)
    data = info["data"]
    saved_obs = space_shape(data, "observation_space")
    if saved_obs is not None and saved_obs != list(observation_space.shape or []):
        raise ProtocolError(
            "model_error",
            f"mask net {path} scores observations of shape {tuple(saved_obs)}, the agent's env gives {observation_space.shape}; "
            "use the mask net trained for this agent (or train one: mask_train)",
        )
    act = str((data.get("action_space") or {}).get(":type:", "")) if isinstance(data.get("action_space"), dict) else ""
    if "Discrete" not in act:
        raise ProtocolError(
            "model_error", f"{path} is not a mask network: its action space is {act or 'unknown'}, a mask net's is Discrete(2)"
        )
    venv = SimpleNamespace(observation_space=observation_space, action_space=spaces.Discrete(2))
    custom = model_objects.custom_objects(data, venv, 0.0, 0.0, trust)  # type: ignore[arg-type]
    try:
        with _KeepGlobalRNGs():
            mask = PPO.load(path, env=None, device=device, custom_objects=custom)
    except Exception as e:  # noqa: BLE001 - SB3 raises many types for a bad zip
        raise ProtocolError("model_error", f"cannot load mask net {path}: {type(e).__name__}: {e}") from None
    return mask  # a file with other than 2 actions fails above: its action_net weights do not fit Discrete(2)


def importance(mask: PPO, obs: np.ndarray) -> np.ndarray:
    """P(not blind | s) per row of `obs` (agent-facing observations): StateMask's importance, float32 in [0, 1]."""
    obs = np.asarray(obs)
    shape = tuple(mask.observation_space.shape or ())
    if obs.shape[1:] != shape:
        raise ProtocolError("bad_args", f"obs must be rows of the mask net's observations {shape}, got shape {obs.shape}")
    with th.no_grad():
        obs_t, _ = mask.policy.obs_to_tensor(obs)
        probs = mask.policy.get_distribution(obs_t).distribution.probs
    return probs[:, 1].cpu().numpy().astype(np.float32)


def _random_actions(space: spaces.Space, n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random env actions from a seeded generator (space.sample() would draw from the space's own RNG)."""
    if isinstance(space, spaces.Box):
        return rng.uniform(space.low, space.high, size=(n, *space.shape)).astype(space.dtype)
    if isinstance(space, spaces.Discrete):
        return (space.start + rng.integers(space.n, size=n)).astype(space.dtype)
    raise ProtocolError("unsupported", f"mask training supports Box and Discrete action spaces, not {type(space).__name__}")


def _agent_actions(agent: PPO, obs: np.ndarray, space: spaces.Space) -> np.ndarray:
    with th.no_grad():
        obs_t, _ = agent.policy.obs_to_tensor(obs)
        a = agent.policy._predict(obs_t, deterministic=True).cpu().numpy()
    if isinstance(space, spaces.Box):
        a = agent.policy.unscale_action(a) if agent.policy.squash_output else np.clip(a, space.low, space.high)
    return a.reshape(len(obs), *space.shape)


class MaskEnv(VecEnvWrapper):
    """The agent's env as the mask net's: Discrete(2) actions, 0 = a uniformly random env action, 1 = the agent's
    deterministic one; reward = the env's raw reward + alpha·(1 − action). A VecEnv wrapper rather than a gym one so
    that the agent and the mask net see the observations the agent was trained on (VecNormalize'd where it is);
    the reward is the raw one (VecNormalize.get_original_reward), as RICE's gym wrapper sees it."""

    def __init__(self, venv: VecEnv, agent: PPO, alpha: float, seed: int):
        super().__init__(venv, action_space=spaces.Discrete(2))
        self.agent, self.alpha = agent, float(alpha)
        self.rng = np.random.default_rng(seed)
        self.vn = find_vec_normalize(venv)
        self.obs: np.ndarray | None = None
        self.mask_actions = np.zeros(venv.num_envs, dtype=np.int64)

    def reset(self):
        self.obs = self.venv.reset()
        return self.obs

    def step_async(self, actions: np.ndarray) -> None:
        space = self.venv.action_space
        self.mask_actions = np.asarray(actions).reshape(-1).astype(np.int64)
        act = _agent_actions(self.agent, self.obs, space)
        blind = self.mask_actions == 0
        if blind.any():
            act[blind] = _random_actions(space, int(blind.sum()), self.rng)
        self.venv.step_async(act)

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        raw = self.vn.get_original_reward() if self.vn is not None else rewards
        self.obs = obs
        return obs, (raw + self.alpha * (1 - self.mask_actions)).astype(np.float32), dones, infos


# SB3's PPO defaults are RICE's mask-net settings; tests pass smaller n_steps / n_epochs.
MASK_PPO_KEYS = ("n_steps", "batch_size", "n_epochs", "learning_rate", "gamma", "gae_lambda", "ent_coef", "policy_kwargs")


def train_mask(
    agent: PPO, venv: VecEnv, steps: int, alpha: float, seed: int, emit: Emit, ppo: dict | None = None
) -> tuple[PPO, dict]:
    """RICE's mask network for `agent` in `venv` (the agent's env: its wrappers and normalisation, frozen):
    SB3 default PPO on MaskEnv for `steps` env steps. Returns (mask, {steps, seconds, ep_rew_mean, blind_fraction})."""
    from .models import ProgressCallback  # models imports modulation, which imports this module

    check_vector_obs(venv.observation_space, "mask training")
    vn = find_vec_normalize(venv)
    if vn is not None and vn.training:
        raise ProtocolError("bad_args", "mask training needs the agent's env with frozen normalisation (training: false)")
    extra = dict(ppo or {})
    unknown = sorted(set(extra) - set(MASK_PPO_KEYS))
    if unknown:
        raise ProtocolError("bad_args", f"mask_train ppo: unknown keys {unknown}; allowed: {', '.join(MASK_PPO_KEYS)}")
    env = MaskEnv(venv, agent, alpha, seed)
    blind = [0, 0]

    class Counting(ProgressCallback):  # progress events as model_learn's, plus how often the mask blinds
        def _on_step(self) -> bool:
            blind[0] += int((env.mask_actions == 0).sum())
            blind[1] += len(env.mask_actions)
            return super()._on_step()

    cb = Counting(emit, steps)
    t0 = time.perf_counter()
    with _KeepGlobalRNGs():  # the agent's own RNG stream is not the mask's business
        mask = PPO("MlpPolicy", env, seed=seed, device=agent.device, verbose=0, **extra)
        mask.learn(total_timesteps=steps, callback=cb)
    final = cb.stats(time.perf_counter())
    emit("progress", final)
    return mask, {
        "steps": int(mask.num_timesteps),
        "seconds": time.perf_counter() - t0,
        "ep_rew_mean": final["ep_rew_mean"],
        "blind_fraction": blind[0] / max(blind[1], 1),
    }


def save_mask(mask: PPO, path: str) -> str:
    """The mask net alone (no vec_normalize.pkl beside it: the agent's env owns its statistics), written through a
    temp file so that a kill leaves no torn zip."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.zip")
    mask.save(str(tmp))
    os.replace(tmp, out)
    return str(out)


class RND:
    """Random network distillation (Burda et al. 2019) as RICE's models.py builds it: a fixed random target
    f (in→128→out) and a trained predictor f̂ (in→128→128→out), orthogonal init (gain √2), zero biases; the raw
    bonus is ||f(s') − f̂(s')||²/2 on s' normalised by running statistics (clipped to ±5). The bonus added to
    PPO's rewards is coef × raw / running std of raw. Its own torch generator: no global RNG draw."""

    OUT, LR, BATCH, CLIP = 64, 1e-3, 256, 5.0

    def __init__(self, obs_dim: int, coef: float, seed: int):
        self.coef = float(coef)
        self.gen = th.Generator().manual_seed(int(seed) % 2**63)

        def mlp(*sizes: int) -> th.nn.Sequential:
            layers: list[th.nn.Module] = []
            for i, (a, b) in enumerate(itertools.pairwise(sizes)):
                lin = th.nn.Linear(a, b)
                th.nn.init.orthogonal_(lin.weight, np.sqrt(2), generator=self.gen)
                th.nn.init.zeros_(lin.bias)
                layers += [lin] + ([th.nn.ReLU()] if i < len(sizes) - 2 else [])
            return th.nn.Sequential(*layers)

        self.target = mlp(obs_dim, 128, self.OUT).requires_grad_(False)
        self.predictor = mlp(obs_dim, 128, 128, self.OUT)
        self.optimizer = th.optim.Adam(self.predictor.parameters(), lr=self.LR)
        self.obs_rms, self.bonus_rms = RunningMeanStd(shape=(obs_dim,)), RunningMeanStd(shape=())
        self.seen: list[np.ndarray] = []  # this rollout's next observations, normalised, for the predictor

    def _norm(self, obs: np.ndarray) -> np.ndarray:
        x = (obs - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + 1e-8)
        return np.clip(x, -self.CLIP, self.CLIP).astype(np.float32)

    def bonus(self, next_obs: np.ndarray) -> np.ndarray:
        """The bonus for each sub-env's next observation (agent-facing); also keeps them for train()."""
        flat = np.asarray(next_obs, dtype=np.float64).reshape(len(next_obs), -1)
        self.obs_rms.update(flat)
        x = self._norm(flat)
        self.seen.append(x)
        with th.no_grad():
            xt = th.as_tensor(x)
            raw = ((self.target(xt) - self.predictor(xt)) ** 2).sum(1).numpy() / 2
        self.bonus_rms.update(raw.astype(np.float64))
        return self.coef * raw / np.sqrt(self.bonus_rms.var + 1e-8)

    def train(self) -> None:
        """One epoch of the predictor over the rollout's next observations."""
        if not self.seen:
            return
        x = th.as_tensor(np.concatenate(self.seen))
        self.seen = []
        order = th.randperm(len(x), generator=self.gen)
        for start in range(0, len(x), self.BATCH):
            xb = x[order[start : start + self.BATCH]]
            loss = ((self.target(xb) - self.predictor(xb)) ** 2).sum(1).mean() / 2
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()


class RiceStarts:
    """RICE's mixed initial state distribution: at an episode end, with probability p, roll out the current
    agent deterministically from a natural reset in a copy of the training env, score its states with the mask
    net and return the snapshot of the argmax-importance state (the episode then starts there); else None.
    `critical: random` is RICE's ablation: a uniformly random state of that rollout, no mask net."""

    MAX_STEPS = 100_000

    def __init__(self, wire: dict, venv: VecEnv, reset_prob: float, rng: np.random.Generator, trust: bool):
        check_vector_obs(venv.observation_space, "the rice arm")
        spec = wire.get("env")
        if not isinstance(spec, dict):
            raise ProtocolError(
                "bad_args", "modulation.rice.env must be the env spec the training env was made from (rollouts run in a copy)"
            )
        try:
            self.env = make_env({**spec, "n_envs": 1, "training": False, "vec_env": "dummy"})
        except ProtocolError as e:
            raise ProtocolError(e.code, f"modulation.rice.env: {e}") from None
        if self.env.observation_space.shape != venv.observation_space.shape:
            raise ProtocolError(
                "bad_args",
                f"modulation.rice.env gives observations {self.env.observation_space.shape}, the training env {venv.observation_space.shape}",
            )
        self.train_vn, self.copy_vn = find_vec_normalize(venv), find_vec_normalize(self.env)
        if (self.train_vn is None) != (self.copy_vn is None):
            raise ProtocolError(
                "bad_args",
                "modulation.rice.env must normalise observations as the training env does (same vec_normalize_path)",
            )
        critical = wire.get("critical", "mask")
        if critical not in ("mask", "random"):
            self.env.close()
            raise ProtocolError("bad_args", f"modulation.rice.critical must be mask or random, got {critical!r}")
        self.mask = None
        if critical == "mask":
            try:
                self.mask = load_mask(str(wire["mask"]), venv.observation_space, "cpu", trust)
            except ProtocolError as e:
                self.env.close()
                raise ProtocolError(e.code, f"modulation.rice.mask: {e}") from None
        self.reset_prob, self.rng = reset_prob, rng

    def draw(self, agent: PPO, stats: dict) -> dict | None:
        if self.reset_prob <= 0 or self.rng.random() >= self.reset_prob:
            return None
        if self.copy_vn is not None:  # the agent sees the copy's states as it sees the training env's, now
            self.copy_vn.obs_rms = copy.deepcopy(self.train_vn.obs_rms)
        self.env.seed(int(self.rng.integers(2**31)))  # RICE: natural resets with fresh seeds
        obs = self.env.reset()
        observed, snaps = [], []
        for _ in range(self.MAX_STEPS):
            observed.append(obs[0])
            snaps.append(snapshot(self.env, 0))
            obs, _, dones, _ = self.env.step(_agent_actions(agent, obs, self.env.action_space))
            if dones[0]:
                break
        stats["rice_rollout_steps"] += len(snaps)
        if self.mask is None:  # RICE's random-critical-state ablation
            return snaps[int(self.rng.integers(len(snaps)))]
        return snaps[int(np.argmax(importance(self.mask, np.asarray(observed))))]

    def close(self) -> None:
        self.env.close()
