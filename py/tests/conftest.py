"""Fixtures: a real sidecar process on a private ipc endpoint, and a minimal DEALER client for it."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import zmq

from ultra_sidecar import protocol

ROOT = Path(__file__).resolve().parents[2]
HALF_CHEETAH = {"env_id": "HalfCheetah-v5", "n_envs": 1, "seed": 0, "normalize": {"gamma": 0.98}}
# PongNoFrameskip-v4's settings as configs/envs/pong.yaml has them, on 2 envs
PONG = {
    "env_id": "ALE/Pong-v5",
    "n_envs": 2,
    "seed": 3,
    "env_kwargs": {"frameskip": 1, "repeat_action_probability": 0.0},
    "wrappers": ["AtariWrapper"],
    "frame_stack": 4,
}
TINY_PPO = {
    "policy": "MlpPolicy",
    "n_steps": 256,
    "batch_size": 64,
    "n_epochs": 2,
    "seed": 0,
    "policy_kwargs": {"net_arch": [32, 32]},
}


class SidecarError(Exception):
    def __init__(self, error: dict):
        super().__init__(f"{error['code']}: {error['message']}")
        self.code, self.message, self.traceback = error["code"], error["message"], error["traceback"]


class Client:
    def __init__(self, endpoint: str):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, 120_000)
        self.sock.connect(endpoint)
        self.ids = itertools.count(1)

    def call(self, op: str, events: list | None = None, **args):
        rid = next(self.ids)
        self.sock.send_multipart(protocol.pack({"v": protocol.VERSION, "id": rid, "op": op, "args": args}))
        return self.wait(rid, events)

    def wait(self, rid: int | None, events: list | None = None):
        while True:
            msg = protocol.unpack(self.sock.recv_multipart())
            assert msg["id"] == rid, f"reply for {msg['id']} while waiting for {rid}"
            if "event" in msg:
                if events is not None:
                    events.append(msg)
                continue
            if not msg["ok"]:
                raise SidecarError(msg["error"])
            return msg["result"]

    def send_raw(self, *frames: bytes):
        self.sock.send_multipart(list(frames))


@pytest.fixture(scope="session")
def sidecar():
    tmp = tempfile.mkdtemp(prefix="ultra-test-")
    os.chmod(tmp, 0o700)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ultra_sidecar", "--endpoint", f"ipc://{tmp}/s.sock"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().split()
    assert line and line[0] == protocol.READY_LINE, f"sidecar did not start: {line}"
    client = Client(line[1])
    yield client
    try:
        client.call("shutdown")
    finally:
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def tiny_model(sidecar, tmp_path_factory):
    """A PPO model trained for a few thousand steps in the test, saved as model.zip + vec_normalize.pkl."""
    env = sidecar.call("env_make", spec=HALF_CHEETAH)["env"]
    model = sidecar.call("model_new", env=env, ppo=TINY_PPO)["model"]
    sidecar.call("model_learn", model=model, steps=2048)
    out = tmp_path_factory.mktemp("tiny") / "model.zip"
    files = sidecar.call("model_save", model=model, path=str(out))["files"]
    return {"env": env, "model": model, "path": str(out), "files": files}
