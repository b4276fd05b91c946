"""Sweeps on Ray: this sidecar (the sweep's host) starts or joins a Ray cluster and runs one sidecar per trial
as a Ray actor. Each actor serves the same protocol on TCP with CURVE and reports its endpoint; the TS side
connects to it directly and drives the trial exactly as on one machine. Ray is imported only when used."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from .ops import make_handlers
from .protocol import ProtocolError, int_in
from .server import Curve, Server, die_with_parent

Emit = Callable[[str, dict], None]

# an actor that cannot be placed (no free CPUs or GPUs) is refused after this long rather than hanging the host
PLACE_TIMEOUT_S = 600


class SidecarActor:
    """One trial's sidecar inside a Ray worker process; `serve` blocks until shutdown or until Ray kills it."""

    def __init__(self, bind_host: str | None, device: str, torch_threads: int, curve: Curve, shared_dir: str):
        import ray
        import torch

        if not os.access(shared_dir, os.W_OK):
            raise RuntimeError(
                f"{shared_dir} is not writable on node {ray.util.get_node_ip_address()}: a sweep directory must be on a "
                "filesystem every Ray node mounts at the same path (NFS or similar)"
            )
        torch.set_num_threads(torch_threads)
        self.node = ray.util.get_node_ip_address()
        self.server = Server(f"tcp://{bind_host or self.node}:0", actor_handlers(device), curve)

    def where(self) -> dict:
        return {"endpoint": self.server.endpoint, "pid": os.getpid(), "node": self.node}

    def serve(self) -> None:
        self.server.serve()


def actor_handlers(device: str) -> dict[str, Callable[[dict, Emit], dict]]:
    """A trial's sidecar: every op but Ray's, which only the sweep's host serves."""

    def refuse(args, emit):
        raise ProtocolError(
            "unsupported", "this sidecar is a sweep trial's Ray actor: only the sweep's host starts Ray and actors"
        )

    return {**make_handlers(device), **{op: refuse for op in make_ray_handlers()}}


def make_ray_handlers() -> dict[str, Callable[[dict, Emit], dict]]:
    state: dict[str, Any] = {"local": False, "actors": {}}

    def ray_module():
        if "ray" not in state:
            raise ProtocolError("unsupported", "Ray is not started in this sidecar: call ray_init first")
        return state["ray"]

    def ray_init(args, emit):
        import ray

        address = args["address"]
        if not isinstance(address, str) or not (address in ("local", "auto") or address.startswith("ray://")):
            raise ProtocolError("bad_args", f"address must be local, auto or ray://HOST:PORT, got {address!r}")
        if "ray" not in state:
            num_cpus = args.get("num_cpus")
            kw = {"num_cpus": int_in(num_cpus, "num_cpus", 1, 4096)} if address == "local" and num_cpus is not None else {}
            ray.init(address=address, include_dashboard=False, log_to_driver=True, **kw)
            state.update(ray=ray, local=address == "local")
            _stop_ray_on_sigterm()
        res = ray.cluster_resources()
        return {
            "address": address,
            "nodes": len([n for n in ray.nodes() if n["Alive"]]),
            "cpus": res.get("CPU", 0.0),
            "gpus": res.get("GPU", 0.0),
            "local": state["local"],
        }

    def actor_start(args, emit):
        ray = ray_module()
        name = args["name"]
        if not isinstance(name, str) or not name or name in state["actors"]:
            raise ProtocolError("bad_args", f"actor name must be a new non-empty string, got {name!r}")
        curve = args["curve"]
        if not isinstance(curve, dict) or not all(
            isinstance(curve.get(k), str) and len(curve[k]) == 40 for k in Curve.__annotations__
        ):
            raise ProtocolError(
                "bad_args", "curve must hold server_public, server_secret and client_public as 40-character z85 keys"
            )
        if not isinstance(args["shared_dir"], str):
            raise ProtocolError("bad_args", f"shared_dir must be a path, got {args['shared_dir']!r}")
        cpus = args.get("cpus", 1)
        gpus = args.get("gpus", 0)
        if not all(isinstance(x, (int, float)) and x >= 0 for x in (cpus, gpus)):
            raise ProtocolError("bad_args", f"cpus and gpus must be non-negative numbers, got {cpus!r}, {gpus!r}")
        cls = ray.remote(max_restarts=0)(SidecarActor).options(name=name, num_cpus=cpus, num_gpus=gpus)
        # on the local instance the actors are on this machine: loopback only; on a cluster, the node's address
        bind = "127.0.0.1" if state["local"] else None
        device = "cuda" if gpus else "cpu"
        actor = cls.remote(
            bind, device, int_in(args.get("torch_threads", 1), "torch_threads", 1, 256), curve, args["shared_dir"]
        )
        try:
            where = ray.get(actor.where.remote(), timeout=PLACE_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            ray.kill(actor)
            raise ProtocolError(
                "unsupported",
                f"no Ray node could take a trial ({cpus} CPUs, {gpus} GPUs) in {PLACE_TIMEOUT_S} s: lower --max-parallel",
            )
        except ray.exceptions.RayActorError as e:
            raise ProtocolError("env_error", f"the sidecar actor failed to start: {e}")
        state["actors"][name] = (actor, actor.serve.remote())
        return where

    def actor_kill(args, emit):
        ray = ray_module()
        entry = state["actors"].pop(args["name"], None)
        if entry is None:
            raise ProtocolError("unknown_handle", f"no actor named {args['name']!r}")
        ray.kill(entry[0], no_restart=True)
        return {}

    return {"ray_init": ray_init, "actor_start": actor_start, "actor_kill": actor_kill}


def _stop_ray_on_sigterm() -> None:
    """From now on a SIGKILL would leave Ray's processes behind (its agents outlive a killed driver): the client
    stops this sidecar with SIGTERM, and so does our parent's death; both end in `shutdown` (see __main__)."""
    import signal

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut ray.shutdown short
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    die_with_parent(signal.SIGTERM)


def shutdown() -> None:
    """Disconnect from Ray if connected: our actors end with us, and a local instance we started stops."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
