"""ULTRA's improvement phase: PPO whose rollouts are modulated at critical states (arXiv 2505.20671).

The identification phase names critical states; a ModulationTable holds them with a suggested action, a reward
and a snapshot. At a critical state the rollout takes the suggested action (variants A, RA) and/or adds the
entry's reward (R, RA); ended episodes may restart from a critical state's snapshot (every variant; "reset" does
only that, as the RICE baseline does). The "rice" variant is RICE itself (rice.py): no table states; ended episodes
restart with probability reset_prob at the mask net's most important state of a fresh rollout of the current
agent, and an RND bonus is added to every step's reward.

The adviser's reward has one unit in every env: `reward_unit` is the base policy's per-step reward scale (the std
of its raw per-step rewards, measured by identify), so an entry's reward 1.0 is worth one typical step's reward.
The bonus `reward_scale * reward * reward_unit` (raw reward units) is converted into the space PPO sees, as
VecNormalize converts the env's rewards: divided by sqrt(ret_rms.var + epsilon) when it normalises rewards (its
current statistics, each rollout), else left raw.

What R rewards (variants R, RA): taking the suggested action at the critical state. Discrete actions: paid only
when the taken action equals the suggestion. Box actions: paid × max(0, 1 − d/action_tolerance), d the RMS
distance between the taken and the suggested action in units of the action space's half-range. In RA the action
is overridden, so the bonus is always paid in full. An entry without an action (a reward-only state) marks the
state itself: it is paid whatever action was taken.
"""

from __future__ import annotations

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv

from .envs import find_vec_normalize
from .protocol import ProtocolError, check_keys, shape_fields
from .rice import RICE_STATS, RND, RiceStarts
from .snapshot import restore

VARIANTS = ("A", "R", "RA", "reset", "rice")
# The table's layout is protocol.json's (shapes modulation, modulation_state, rice): FIELDS are its required keys.
FIELDS, OPTIONAL_FIELDS = shape_fields("modulation")
FIRE_ON = ("entry", "step")
STATS = (
    "matched_steps",
    "near_steps",
    "restored_start_matches",
    "overridden_actions",
    "reward_added_steps",
    "critical_resets",
)


def _bad(where: str, message: str) -> ProtocolError:
    return ProtocolError("bad_args", f"modulation.{where} {message}")


def _number(value, where: str, low: float = -np.inf, high: float = np.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not low <= value <= high:
        raise _bad(where, f"must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def _positive(value, where: str, meaning: str) -> float:
    x = _number(value, where)
    if not 0.0 < x < np.inf:
        raise _bad(where, f"must be a finite number > 0 ({meaning}), got {value!r}")
    return x


def _action(space: spaces.Space, value, where: str) -> np.ndarray:
    """The entry's action as the policy emits it; out-of-space actions are refused, never clipped."""
    a = np.asarray(value)
    if isinstance(space, spaces.Discrete):
        if a.shape != () or not np.issubdtype(a.dtype, np.integer) or not 0 <= a < space.n:
            raise _bad(where, f"must be an int in [0, {space.n}), got {value!r}")
    elif isinstance(space, spaces.Box):
        if a.shape != space.shape:
            raise _bad(where, f"has shape {a.shape}, the action space has shape {space.shape}")
        if not np.issubdtype(a.dtype, np.number) or not np.all((a >= space.low) & (a <= space.high)):
            raise _bad(where, f"lies outside the action space's bounds [{space.low.min()}, {space.high.max()}]")
    else:
        raise ProtocolError("unsupported", f"modulation supports Box and Discrete action spaces, not {type(space).__name__}")
    return a.astype(space.dtype)


class ModulationTable:
    """Critical states (from model_learn's `modulation` map) and the nearest-entry lookup of ModulatedPPO.

    Distances are RMS distances in the agent's normalised observation space: VecNormalize's normalisation
    when the env has one, else /255 for images, else none. The bonus is `reward_scale * reward * reward_unit`
    raw reward units, converted as VecNormalize converts rewards (see the module docstring)."""

    def __init__(self, wire: dict, venv: VecEnv):
        check_keys(wire, "modulation", "modulation")
        if wire["variant"] not in VARIANTS:
            raise _bad("variant", f"must be one of {', '.join(VARIANTS)}, got {wire['variant']!r}")
        if not isinstance(wire["seed"], int) or isinstance(wire["seed"], bool):
            raise _bad("seed", f"must be an int, got {wire['seed']!r}")
        if not isinstance(wire["states"], list):
            raise _bad("states", "must be a list of maps")
        self.variant = wire["variant"]
        self.radius = _number(wire["radius"], "radius", 0.0)
        if wire["fire_on"] not in FIRE_ON:
            raise _bad(
                "fire_on",
                f"must be one of {', '.join(FIRE_ON)} (entry: once per visit of a state's radius), got {wire['fire_on']!r}",
            )
        self.fire_on_entry = wire["fire_on"] == "entry"
        self.reset_prob = _number(wire["reset_prob"], "reset_prob", 0.0, 1.0)
        self.reward_scale = _number(wire["reward_scale"], "reward_scale")
        self.reward_unit = _positive(
            wire["reward_unit"], "reward_unit", "the raw reward of one typical step; identify measures it"
        )
        self.action_tolerance = _positive(
            wire["action_tolerance"], "action_tolerance", "an RMS distance in half-ranges of the action space"
        )
        self.rng = np.random.default_rng(wire["seed"])  # reset draws only; the global RNGs stay SB3's

        obs_space, act_space = venv.observation_space, venv.action_space
        self.vec_normalize = find_vec_normalize(venv)
        if self.vec_normalize is not None and self.vec_normalize.observation_space.shape != obs_space.shape:
            raise ProtocolError("unsupported", "modulation needs VecNormalize to be the outermost observation wrapper")
        # Agent-facing observations are VecNormalize'd already; images are scaled as the policy scales them.
        self.scale_images = self.vec_normalize is None and is_image_space(obs_space)
        # float64 keeps an exact match within ~1e-7 of distance 0 for vector observations; for frames (28k pixels
        # in Pong) float32 halves the per-step cost and still resolves RMS distances of ~1e-3 (pixels are 1/255 apart).
        self.dtype = np.float32 if self.scale_images else np.float64
        obs, actions, has_action, rewards, self.snapshots = [], [], [], [], []
        for i, s in enumerate(wire["states"]):
            where = f"states[{i}]"
            check_keys(s, "modulation_state", f"modulation.{where}")
            o = np.asarray(s["obs"])
            if o.shape != obs_space.shape or not np.issubdtype(o.dtype, np.number):
                raise _bad(
                    f"{where}.obs", f"has shape {o.shape} ({o.dtype}), the env's observations have shape {obs_space.shape}"
                )
            if s.get("snapshot") is not None and not isinstance(s["snapshot"], dict):
                raise _bad(f"{where}.snapshot", "must be a map from env_snapshot, or None")
            obs.append(o)
            has_action.append(s.get("action") is not None)
            actions.append(
                _action(act_space, s["action"], f"{where}.action")
                if has_action[-1]
                else np.zeros(act_space.shape, act_space.dtype)
            )
            rewards.append(_number(s.get("reward", 0.0), f"{where}.reward"))
            self.snapshots.append(s.get("snapshot"))
        self.obs = np.array(obs).reshape(len(obs), *obs_space.shape)  # raw, normalised afresh by refresh()
        self.actions = np.array(actions).reshape(len(obs), *act_space.shape)
        self.has_action, self.rewards = np.array(has_action, dtype=bool), np.array(rewards, dtype=np.float64)
        self.snapshot_ids = np.array([i for i, s in enumerate(self.snapshots) if s is not None], dtype=np.int64)
        self.overrides_actions, self.adds_reward = self.variant in ("A", "RA"), self.variant in ("R", "RA")
        self.discrete = isinstance(act_space, spaces.Discrete)
        if not self.discrete:  # Box distances are in half-ranges; an unbounded dimension counts in raw units
            half = (act_space.high.astype(np.float64) - act_space.low.astype(np.float64)) / 2.0
            self.half_range = np.where(np.isfinite(half) & (half > 0), half, 1.0)
        self.reward_factor = self.reward_unit  # raw → PPO's reward space; refresh() sets it from VecNormalize
        # matched_steps counts the steps modulated (an entry fired); near_steps every step within an entry's radius;
        # restored_start_matches the matches that are just the first step of an episode restored from that entry's
        # snapshot. matched − restored is how often modulation reaches states the policy got to by itself.
        self.stats = dict.fromkeys(STATS, 0)
        self.restored = np.zeros(venv.num_envs, dtype=bool)  # sub-envs whose current obs is a restored snapshot's
        # fire_on entry: an entry fires when a sub-env enters its radius, and is re-armed once the sub-env leaves it or
        # its episode ends. Firing on every step inside lets modulation feed itself: a suggested "hold still" keeps the
        # agent inside the radius, so it is suggested again (a quick HalfCheetah run matched 86% of its steps so).
        self.armed = np.ones((venv.num_envs, len(self.obs)), dtype=bool)
        self.rice: RiceStarts | None = None
        self.rnd: RND | None = None
        if self.variant == "rice":
            self._rice(wire.get("rice"), venv)
        elif wire.get("rice") is not None:
            raise _bad("rice", f"is only for the rice variant, not {self.variant}")
        # a table with nothing to do is skipped entirely, so that the rollout stays SB3's draw for draw
        self.active = len(self) > 0 or self.rice is not None

    def _rice(self, rice, venv: VecEnv) -> None:
        if not isinstance(rice, dict):
            raise _bad(
                "rice",
                "must be a map with mask (a mask net zip; None with critical: random), env (the training env's spec) and rnd_coef (λ)",
            )
        check_keys(rice, "rice", "modulation.rice")
        if len(self):
            raise _bad("states", "must be empty for the rice variant: its starting states come from the mask net")
        rnd_coef = _number(rice["rnd_coef"], "rice.rnd_coef", 0.0)
        self.rice = RiceStarts(rice, venv, self.reset_prob, self.rng, rice.get("trust_model") is True)
        if rnd_coef > 0:
            self.rnd = RND(int(np.prod(venv.observation_space.shape)), rnd_coef, int(self.rng.integers(2**63)))
        self.stats.update(dict.fromkeys(RICE_STATS, 0))

    def __len__(self) -> int:
        return len(self.obs)

    def close(self) -> None:
        if self.rice is not None:
            self.rice.close()

    def _rows(self, obs: np.ndarray) -> np.ndarray:
        x = obs.reshape(len(obs), int(np.prod(obs.shape[1:]))).astype(self.dtype)  # -1 is ambiguous for 0 rows
        return x * self.dtype(1 / 255.0) if self.scale_images else x

    def refresh(self) -> None:
        """Normalise the entries with the current VecNormalize statistics, which drift during training."""
        vn = self.vec_normalize
        self.keys = self._rows(vn.normalize_obs(self.obs) if vn is not None else self.obs)
        self.key_norms = (self.keys**2).sum(1)
        # the bonus is scaled as VecNormalize scales rewards (without its clip: the bonus is bounded by the table)
        norm = vn is not None and vn.norm_reward
        self.reward_factor = self.reward_unit / np.sqrt(vn.ret_rms.var + vn.epsilon) if norm else self.reward_unit

    def payment(self, nearest: np.ndarray, critical: np.ndarray, taken: np.ndarray, overridden: np.ndarray) -> np.ndarray:
        """Per sub-env, the share of its entry's bonus paid for the action it took (`taken`: as sent to the env):
        0 away from critical states; 1 for a reward-only entry or an overridden action; otherwise 1 if it equals
        the suggestion (Discrete) or max(0, 1 − d/action_tolerance) (Box, d in half-ranges)."""
        paid = critical.astype(np.float64)
        judged = critical & self.has_action[nearest] & ~overridden
        if judged.any():
            suggested = self.actions[nearest[judged]]
            if self.discrete:
                paid[judged] = (np.asarray(taken).reshape(-1)[judged] == suggested).astype(np.float64)
            else:
                diff = (np.asarray(taken, dtype=np.float64)[judged] - suggested) / self.half_range
                d = np.sqrt((diff**2).reshape(len(suggested), -1).mean(1))
                paid[judged] = np.maximum(0.0, 1.0 - d / self.action_tolerance)
        return paid

    def match(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each sub-env's (agent-facing) observation: its nearest entry, and whether that is within radius.
        Counts near_steps; with fire_on entry, a sub-env still inside the radius of an entry that fired is no match."""
        x = self._rows(obs)
        # |x - k|^2 expanded: no (envs, entries, obs size) array, and a matmul even for Atari frames.
        d2 = (x**2).sum(1)[:, None] + self.key_norms[None, :] - 2.0 * x @ self.keys.T
        nearest = d2.argmin(1)
        inside = np.maximum(d2, 0.0) <= self.radius**2 * x.shape[1]
        near = inside[np.arange(len(x)), nearest]
        self.stats["near_steps"] += int(near.sum())
        if not self.fire_on_entry:
            return nearest, near
        critical = near & self.armed[np.arange(len(x)), nearest]
        self.armed = ~inside  # disarmed while inside; re-armed on leaving
        return nearest, critical

    def episode_started(self, i: int) -> None:
        """Sub-env i began a new episode (natural reset or restored snapshot): every entry may fire again."""
        self.armed[i] = True

    def distances(self, raw_obs: np.ndarray) -> np.ndarray:
        """RMS distances (as match measures them) from each raw observation to every entry: (len(raw_obs), len(self)).
        For calibrating the radius from the base policy's own states; refresh() first."""
        vn = self.vec_normalize
        x = self._rows(vn.normalize_obs(raw_obs) if vn is not None else raw_obs)
        d2 = (x**2).sum(1)[:, None] + self.key_norms[None, :] - 2.0 * x @ self.keys.T
        return np.sqrt(np.maximum(d2, 0.0) / x.shape[1])

    def draw_start(self) -> dict | None:
        """With probability reset_prob, a uniformly drawn entry's snapshot for the next episode to start from."""
        if not self.snapshot_ids.size or self.rng.random() >= self.reset_prob:
            return None
        return self.snapshots[self.snapshot_ids[self.rng.integers(self.snapshot_ids.size)]]


class ModulatedPPO(PPO):
    """PPO whose rollouts follow `modulation`; with None (or an empty table) it is SB3's PPO draw for draw.
    The table is not saved: a saved ModulatedPPO is an ordinary PPO model.zip."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.modulation: ModulationTable | None = None
        # a job learnt in several learn() calls (checkpoints): its schedules run over the whole job, not each call
        self.schedule_total: int | None = None

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "modulation", "schedule_total"]

    def _update_current_progress_remaining(self, num_timesteps: int, total_timesteps: int) -> None:
        super()._update_current_progress_remaining(num_timesteps, self.schedule_total or total_timesteps)

    @property
    def modulation_stats(self) -> dict | None:
        return None if self.modulation is None else dict(self.modulation.stats)

    def collect_rollouts(
        self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer, n_rollout_steps: int
    ) -> bool:
        """SB3 2.9's OnPolicyAlgorithm.collect_rollouts, plus the modulation hooks marked ULTRA."""
        assert self._last_obs is not None, "No previous observation was provided"
        self.policy.set_training_mode(False)

        n_steps = 0
        rollout_buffer.reset()
        if self.use_sde:
            self.policy.reset_noise(env.num_envs)

        # ULTRA: an empty table modulates nothing; skipping it keeps the rollout SB3's, draw for draw.
        table = self.modulation if self.modulation is not None and self.modulation.active else None
        if table is not None:
            table.refresh()

        callback.on_rollout_start()

        while n_steps < n_rollout_steps:
            if self.use_sde and self.sde_sample_freq > 0 and n_steps % self.sde_sample_freq == 0:
                self.policy.reset_noise(env.num_envs)

            with th.no_grad():
                obs_tensor = obs_as_tensor(self._last_obs, self.device)  # type: ignore[arg-type]
                actions, values, log_probs = self.policy(obs_tensor)
            actions = actions.cpu().numpy()

            # ULTRA: at a critical state take the entry's action, stored with its log-prob under the current
            # policy, so PPO's ratio for it starts at 1 like any other sampled action's.
            critical = override = None
            if table is not None and len(table):
                nearest, critical = table.match(self._last_obs)  # type: ignore[arg-type]
                table.stats["matched_steps"] += int(critical.sum())
                table.stats["restored_start_matches"] += int((critical & table.restored).sum())
                table.restored[:] = False
                override = critical & table.has_action[nearest] & table.overrides_actions
                if override.any():
                    suggested = table.actions[nearest[override]]
                    actions[override] = self.policy.scale_action(suggested) if self.policy.squash_output else suggested
                    with th.no_grad():
                        _, override_log_probs, _ = self.policy.evaluate_actions(
                            obs_tensor, th.as_tensor(actions, device=self.device)
                        )
                    log_probs = th.where(th.as_tensor(override, device=self.device), override_log_probs, log_probs)
                    table.stats["overridden_actions"] += int(override.sum())

            clipped_actions = actions
            if isinstance(self.action_space, spaces.Box):
                if self.policy.squash_output:
                    clipped_actions = self.policy.unscale_action(clipped_actions)
                else:
                    clipped_actions = np.clip(actions, self.action_space.low, self.action_space.high)

            new_obs, rewards, dones, infos = env.step(clipped_actions)

            if table is not None:
                # ULTRA: the entry's reward for the action taken, converted into the (possibly normalised) reward PPO sees.
                if table.adds_reward and critical is not None and critical.any():
                    paid = table.payment(nearest, critical, clipped_actions, override)
                    bonus = table.reward_scale * table.reward_factor * table.rewards[nearest] * paid
                    rewards[critical] += bonus[critical]
                    table.stats["reward_added_steps"] += int((paid > 0).sum())
                # RICE: the exploration bonus for reaching s' (the real next state: the terminal one where an episode ended)
                if table.rnd is not None:
                    reached = np.array(new_obs, copy=True)
                    for i in np.flatnonzero(dones):
                        if infos[i].get("terminal_observation") is not None:
                            reached[i] = infos[i]["terminal_observation"]
                    bonus = table.rnd.bonus(reached)
                    rewards = rewards + bonus.astype(rewards.dtype)
                    table.stats["rnd_bonus_sum"] += float(bonus.sum())
                    table.stats["rnd_bonus_steps"] += len(bonus)
                # ULTRA: an ended episode may restart from a critical state (rice: the mask net's most important state
                # of a fresh rollout); it enters the buffer as an episode start.
                for i in np.flatnonzero(dones):
                    table.episode_started(int(i))
                    if table.rice is not None:
                        snap = table.rice.draw(self, table.stats)
                        key = "rice_resets"
                    else:
                        snap, key = table.draw_start(), "critical_resets"
                    if snap is not None:
                        new_obs[i] = restore(env, int(i), snap, start_episode=True)
                        table.restored[i] = True
                        table.stats[key] += 1

            self.num_timesteps += env.num_envs

            callback.update_locals(locals())
            if not callback.on_step():
                return False

            self._update_info_buffer(infos, dones)
            n_steps += 1

            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.reshape(-1, 1)

            # Handle timeout by bootstrapping with value function (SB3 issue #633)
            for idx, done in enumerate(dones):
                if (
                    done
                    and infos[idx].get("terminal_observation") is not None
                    and infos[idx].get("TimeLimit.truncated", False)
                ):
                    terminal_obs = self.policy.obs_to_tensor(infos[idx]["terminal_observation"])[0]
                    with th.no_grad():
                        terminal_value = self.policy.predict_values(terminal_obs)[0]  # type: ignore[arg-type]
                    rewards[idx] += self.gamma * terminal_value

            rollout_buffer.add(
                self._last_obs,  # type: ignore[arg-type]
                actions,
                rewards,
                self._last_episode_starts,  # type: ignore[arg-type]
                values,
                log_probs,
            )
            self._last_obs = new_obs  # type: ignore[assignment]
            self._last_episode_starts = dones

        with th.no_grad():
            values = self.policy.predict_values(obs_as_tensor(new_obs, self.device))  # type: ignore[arg-type]

        rollout_buffer.compute_returns_and_advantage(last_values=values, dones=dones)
        if table is not None and table.rnd is not None:
            table.rnd.train()  # RICE: the predictor learns this rollout's next states, so they pay less next time

        callback.update_locals(locals())

        callback.on_rollout_end()

        return True


def obs_distances(venv: VecEnv, obs, keys) -> np.ndarray:
    """The `obs_distances` op: RMS distances in `venv`'s agent-facing observation space (its current VecNormalize
    statistics) from each raw observation in `obs` to each in `keys`."""
    obs, keys = np.asarray(obs), np.asarray(keys)
    shape = venv.observation_space.shape
    if obs.shape[1:] != shape:
        raise _bad("obs", f"must be rows of the env's observations {shape}, got shape {obs.shape}")
    table = ModulationTable(
        {
            "variant": "reset",
            "radius": 0.0,
            "fire_on": "entry",
            "reset_prob": 0.0,
            "reward_scale": 0.0,
            "reward_unit": 1.0,
            "action_tolerance": 0.5,
            "seed": 0,
            "states": [{"obs": k} for k in keys],
        },
        venv,
    )
    table.refresh()
    return table.distances(obs).astype(np.float32)
