"""Op handlers: each takes (args, emit) and returns the reply's result map. Objects live in a handle table."""

from __future__ import annotations

import itertools
import os
import platform
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from . import aggregate, bench, collect, counterfactual, embedded, models, modulation, plots, protocol, rice, snapshot
from .envs import describe_space, find_vec_normalize, make_env
from .protocol import ProtocolError

Emit = Callable[[str, dict], None]


class Handles:
    """Envs and models by handle ("env:1", "model:2"); a model's env is kept alive with it."""

    def __init__(self) -> None:
        self.objects: dict[str, Any] = {}
        self.counter = itertools.count(1)

    def add(self, kind: str, obj: Any) -> str:
        handle = f"{kind}:{next(self.counter)}"
        self.objects[handle] = obj
        return handle

    def get(self, handle: Any, kind: str) -> Any:
        if not isinstance(handle, str) or not handle.startswith(kind + ":") or handle not in self.objects:
            raise ProtocolError(
                "unknown_handle", f"no {kind} with handle {handle!r}; create it first ({kind}_make/_new/_load)"
            )
        return self.objects[handle]

    def close(self, handle: str) -> None:
        obj = self.objects.pop(handle, None)
        if obj is None:
            raise ProtocolError("unknown_handle", f"no object with handle {handle!r}")
        if hasattr(obj, "close") and handle.startswith("env:"):
            obj.close()


MAX_BLOB_BYTES = 1 << 30  # the bridge benchmark's payloads are megabytes


def _pkg(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def make_handlers(device: str) -> dict[str, Callable[[dict, Emit], dict]]:
    h = Handles()
    resolved_device = "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)

    def env_of(args: dict):
        return h.get(args["env"], "env")

    def model_of(args: dict):
        return h.get(args["model"], "model")

    def hello(args, emit):
        if args["client_version"] != protocol.VERSION:
            raise ProtocolError("protocol_version", f"client v{args['client_version']} != sidecar v{protocol.VERSION}")
        return {
            "protocol": protocol.VERSION,
            "pid": os.getpid(),
            "versions": {
                "python": platform.python_version(),
                **{
                    k: _pkg(k)
                    for k in ("torch", "stable-baselines3", "gymnasium", "mujoco", "ale-py", "numpy", "pyzmq", "msgpack")
                },
            },
            "cuda": torch.cuda.is_available(),
            "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "device": resolved_device,
            "torch_threads": torch.get_num_threads(),
        }

    def env_make(args, emit):
        venv = make_env(args["spec"])
        return {
            "env": h.add("env", venv),
            "n_envs": venv.num_envs,
            "observation_space": describe_space(venv.observation_space),
            "action_space": describe_space(venv.action_space),
        }

    def env_step(args, emit):
        venv = env_of(args)
        actions = np.asarray(args["actions"])
        if actions.shape[0] != venv.num_envs:
            raise ProtocolError(
                "bad_args", f"actions has leading dimension {actions.shape[0]}, the env has {venv.num_envs} sub-envs"
            )
        obs, rewards, dones, _ = venv.step(actions)
        return {"obs": obs, "rewards": rewards.astype(np.float32), "dones": dones}

    def model_new(args, emit):
        ppo = dict(args["ppo"])
        ppo.setdefault("device", resolved_device)
        model = models.new_ppo(env_of(args), ppo)
        n_params = sum(p.numel() for p in model.policy.parameters())
        return {"model": h.add("model", model), "device": str(model.device), "num_params": n_params}

    def model_load(args, emit):
        venv = env_of(args)
        if args.get("train") is not None:
            protocol.check_keys(args["train"], "train", "train")
        model = models.load_ppo(
            args["path"],
            venv,
            args.get("device", resolved_device),
            args.get("train"),
            args.get("seed"),
            trust=args.get("trust_model") is True,
            with_resume=args.get("resume") is True,
        )
        return {
            "model": h.add("model", model),
            "device": str(model.device),
            "vec_normalize": find_vec_normalize(venv) is not None,
        }

    def mask_importance(args, emit):
        mask = args["mask"]
        if isinstance(mask, str) and mask.startswith("mask:"):
            mask = h.get(mask, "mask")
        else:  # a path: scored in the observation space the rows have
            obs = np.asarray(args["obs"])
            space = spaces.Box(-np.inf, np.inf, shape=obs.shape[1:], dtype=np.float32)
            mask = rice.load_mask(str(mask), space, "cpu", args.get("trust_model") is True)
        return {"importance": rice.importance(mask, args["obs"])}

    def mask_train(args, emit):
        steps = protocol.int_in(args["steps"], "steps", 1, 10**9)
        alpha = args["alpha"]
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha < np.inf:
            raise ProtocolError("bad_args", f"alpha must be a number >= 0 (RICE: 0.01), got {alpha!r}")
        seed = protocol.int_in(args["seed"], "seed", 0, 2**32 - 1)
        mask, res = rice.train_mask(model_of(args), env_of(args), steps, float(alpha), seed, emit, args.get("ppo"))
        files = [rice.save_mask(mask, args["path"])] if args.get("path") else []
        return {"mask": h.add("mask", mask), **res, "files": files}

    blobs: dict[int, np.ndarray] = {}

    def blob(args, emit):
        """A float32 payload of `nbytes`, made once per size so the bridge benchmark times transfer only."""
        n = protocol.int_in(args["nbytes"], "nbytes", 0, MAX_BLOB_BYTES) // 4
        if n not in blobs:
            blobs.clear()
            blobs[n] = np.arange(n, dtype=np.float32)
        return {"data": blobs[n]}

    return {
        "hello": hello,
        "ping": lambda args, emit: {"time": time.time()},
        "echo": lambda args, emit: {"payload": args["payload"]},
        "blob": blob,
        "env_make": env_make,
        "env_reset": lambda args, emit: {"obs": env_of(args).reset()},
        "env_step": env_step,
        "env_snapshot": lambda args, emit: {"snapshot": snapshot.snapshot(env_of(args), args["index"])},
        "env_restore": lambda args, emit: {"obs": snapshot.restore(env_of(args), args["index"], args["snapshot"])},
        "model_new": model_new,
        "model_load": model_load,
        "model_save": lambda args, emit: {"files": models.save_ppo(model_of(args), args["path"], args.get("resume") is True)},
        "model_learn": lambda args, emit: models.learn(
            model_of(args),
            int(args["steps"]),
            emit,
            args.get("tb_log_name", "PPO"),
            args.get("modulation"),
            None
            if args.get("schedule_total") is None
            else protocol.int_in(args["schedule_total"], "schedule_total", 1, 10**12),
        ),
        "model_predict": lambda args, emit: models.predict(model_of(args), args["obs"], bool(args.get("deterministic", True))),
        "model_evaluate": lambda args, emit: collect.evaluate(
            model_of(args), env_of(args), int(args["episodes"]), bool(args.get("deterministic", True)), emit
        ),
        "collect": lambda args, emit: collect.collect(
            model_of(args),
            env_of(args),
            int(args["episodes"]),
            bool(args.get("deterministic", False)),
            int(args.get("snapshot_every", 1)),
            int(args.get("chunk_steps", 1024)),
            emit,
        ),
        "counterfactual": lambda args, emit: counterfactual.rollout_returns(
            model_of(args),
            env_of(args),
            args["snapshot"],
            args["candidates"],
            int(args["horizon"]),
            float(args["gamma"]),
            bool(args.get("deterministic", True)),
        ),
        "paired_returns": lambda args, emit: counterfactual.paired_returns(
            model_of(args),
            env_of(args),
            args["snapshot"],
            args["action"],
            protocol.int_in(args["pairs"], "pairs", 2, 4096),
            protocol.int_in(args["horizon"], "horizon", 1, 100_000),
            protocol.int_in(args["seed"], "seed", 0, 2**63 - 1),
        ),
        "segment_returns": lambda args, emit: counterfactual.segment_returns(
            model_of(args),
            env_of(args),
            args["snapshot"],
            args["actions"],
            protocol.int_in(args["horizon"], "horizon", 0, 1_000_000),
        ),
        "plot_bars": lambda args, emit: {"path": plots.plot_bars(args["bars"], args["path"], args["title"], args["ylabel"])},
        "probability_of_improvement": lambda args, emit: {
            "pairs": aggregate.probability_of_improvement(
                args["scores"],
                args["pairs"],
                protocol.int_in(args["reps"], "reps", 100, 1_000_000),
                protocol.int_in(args["seed"], "seed", 0, 2**32 - 1),
            )
        },
        "mask_load": lambda args, emit: {
            "mask": h.add(
                "mask", rice.load_mask(args["path"], env_of(args).observation_space, "cpu", args.get("trust_model") is True)
            )
        },
        "mask_importance": mask_importance,
        "mask_train": mask_train,
        "obs_distances": lambda args, emit: {"d": modulation.obs_distances(env_of(args), args["obs"], args["keys"])},
        "plot_curves": lambda args, emit: {
            "path": plots.plot_curves(args["curves"], args["path"], args["title"], args.get("band_scale"))
        },
        "close": lambda args, emit: h.close(args["handle"]) or {},
        "embedded_model": lambda args, emit: embedded.embedded_model(args["name"]),
        "bench_learn": lambda args, emit: bench.learn_run(args),
    }
