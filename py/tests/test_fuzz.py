"""10,000 fuzzed frames at a fresh sidecar: random bytes, truncated msgpack, wrong types, huge lengths, lying
arrays, unknown ops and known ops with junk arguments. Each gets exactly one error reply with a protocol error
code, the sidecar serves normally afterwards, and its memory stays bounded."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tempfile

import msgpack
import numpy as np
import pytest
from conftest import Client

from ultra_sidecar import protocol

N_FRAMES = 10_000
# Ops that succeed on trivial arguments (or stop the sidecar); the rest must refuse junk.
HARMLESS = {"hello", "ping", "echo", "blob", "shutdown"}
FUZZED_OPS = sorted(set(protocol.OPS) - HARMLESS)
HUGE = [
    b"\xdb\xff\xff\xff\xffabc",  # str 32 of 4 GiB
    b"\xc6\xff\xff\xff\xffabc",  # bin 32
    b"\xdd\xff\xff\xff\xff\x01",  # array 32 of 4G items
    b"\xdf\xff\xff\xff\xff\x01\x02",  # map 32
    b"\xc9\xff\xff\xff\xff\x01abc",  # ext 32 of type 1
]


@pytest.fixture(scope="module")
def fresh():
    """A sidecar of its own: no handles exist, so no junk argument can name a real env or model."""
    tmp = tempfile.mkdtemp(prefix="ultra-fuzz-")
    os.chmod(tmp, 0o700)
    proc = subprocess.Popen(  # in a temp dir: a junk path argument lands there if anywhere
        [sys.executable, "-m", "ultra_sidecar", "--endpoint", f"ipc://{tmp}/s.sock"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp,
    )
    client = Client(proc.stdout.readline().split()[1])
    yield client, proc.pid
    client.call("shutdown")
    proc.wait(timeout=10)


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def _nd_ext(rng: np.random.Generator) -> msgpack.ExtType:
    """An ndarray ext whose header lies: huge or mismatched shapes, bad dtype codes, missing out-of-band frames."""
    code = int(rng.integers(0, 256))
    shape = [int(x) for x in rng.choice([0, 1, 3, 2**31, 2**32 - 1], size=int(rng.integers(0, 4)))]
    body = struct.pack(f"<BB{len(shape)}I", code, len(shape), *shape) + rng.bytes(int(rng.integers(0, 16)))
    return msgpack.ExtType(protocol.ND_EXT, body)


def _junk(rng: np.random.Generator, depth: int = 0):
    kind = int(rng.integers(0, 12 if depth < 2 else 9))
    return [
        lambda: int(rng.integers(-(2**62), 2**62)),
        lambda: float(rng.choice([np.nan, np.inf, -1e308, 0.5])),
        lambda: rng.bytes(int(rng.integers(0, 32))).decode("latin-1"),
        lambda: rng.bytes(int(rng.integers(0, 32))),
        lambda: None,
        lambda: bool(rng.integers(0, 2)),
        lambda: str(rng.choice(["env:1", "model:1", "", "../../etc/passwd", "HalfCheetah", "CartPole-v0"])),
        lambda: 2**64 - 1,
        lambda: _nd_ext(rng),
        lambda: [_junk(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))],
        lambda: {str(_junk(rng, 2)): _junk(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))},
        lambda: {"env_id": _junk(rng, 2), "n_envs": _junk(rng, 2)},
    ][kind]()


def _request(rng: np.random.Generator, rid: int) -> dict:
    op = str(rng.choice(FUZZED_OPS)) if rng.random() < 0.8 else "op_" + rng.bytes(4).hex()
    args = {k: _junk(rng) for k in protocol.OPS.get(op, {"args": {}})["args"]}
    if rng.random() < 0.2:  # extra or missing arguments
        args[str(_junk(rng, 2))] = _junk(rng, 2)
    return {"v": protocol.VERSION, "id": rid, "op": op, "args": args}


def _frames(rng: np.random.Generator, rid: int) -> list[bytes]:
    """One fuzzed message (request id `rid` where it has an envelope at all)."""
    kind = rid % 6
    if kind == 0:
        return [rng.bytes(int(rng.integers(0, 300)))]
    if kind == 1:  # a valid request cut short
        body = msgpack.packb(_request(rng, rid), default=lambda o: o, use_bin_type=True)
        return [body[: int(rng.integers(0, len(body)))]]
    if kind == 2:  # one envelope field of a wrong type (or version)
        env = {"v": protocol.VERSION, "id": rid, "op": "ping", "args": {}}
        field = str(rng.choice(list(env)))
        ok = {
            "v": lambda x: x == protocol.VERSION,
            "id": lambda x: isinstance(x, int),
            "op": lambda x: x == "ping",
            "args": lambda x: isinstance(x, dict),
        }
        while ok[field](env[field]):
            env[field] = _junk(rng, 1)
        return [msgpack.packb(env, use_bin_type=True)]
    if kind == 3:  # a huge length inside a request, possibly with junk extra frames
        head = msgpack.packb({"v": protocol.VERSION, "id": rid, "op": "echo", "args": {"payload": 0}}, use_bin_type=True)
        return [head[:-1] + HUGE[rid % len(HUGE)], *[rng.bytes(8)] * int(rng.integers(0, 3))]
    body = msgpack.packb(_request(rng, rid), use_bin_type=True)  # unknown ops; known ops with junk arguments
    return [body, *[rng.bytes(int(rng.integers(0, 64)))] * int(rng.integers(0, 2))]


def test_fuzzed_frames_each_get_an_error_and_the_sidecar_keeps_serving(fresh):
    client, pid = fresh
    rng = np.random.default_rng(1234)
    codes: dict[str, int] = {}
    rss = []
    for rid in range(1, N_FRAMES + 1):
        client.send_raw(*_frames(rng, rid))
        msg = protocol.unpack(client.sock.recv_multipart())
        assert msg.get("ok") is False, f"frame {rid} was accepted: {msg}"
        assert msg["id"] in (rid, None), f"frame {rid} answered as {msg['id']}"
        assert msg["error"]["code"] in protocol.ERROR_CODES and msg["error"]["message"]
        codes[msg["error"]["code"]] = codes.get(msg["error"]["code"], 0) + 1
        if rid % 1000 == 0:
            rss.append(_rss_mb(pid))
            assert "time" in client.call("ping")
    print(
        f"\nfuzz: {N_FRAMES} frames, error codes {dict(sorted(codes.items()))}, RSS MB per 1000 frames {[round(x) for x in rss]}"
    )
    assert {"bad_frame", "unknown_op", "bad_args"} <= codes.keys()  # the generator reached every layer
    assert rss[-1] - rss[0] < 20, f"sidecar memory grew from {rss[0]:.0f} to {rss[-1]:.0f} MB"
    assert client.call("echo", payload=np.arange(5.0))["payload"].tolist() == [0, 1, 2, 3, 4]
