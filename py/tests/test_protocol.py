import json

import msgpack
import numpy as np
import pytest

from ultra_sidecar import protocol, vectors
from conftest import SidecarError

VECTORS = json.loads(vectors.PATH.read_text())


def test_vectors_are_current_protocol():
    assert VECTORS["protocol"] == protocol.VERSION


@pytest.mark.parametrize("vec", VECTORS["vectors"], ids=lambda v: v["name"])
def test_vector_encode_and_decode(vec):
    frames = [bytes.fromhex(vec["hex"]), *(bytes.fromhex(f) for f in vec["frames"])]
    assert [bytes(f) for f in protocol.pack(vectors.from_json(vec["value"]))] == frames
    assert vectors.to_json(protocol.unpack(frames)) == vectors.to_json(vectors.from_json(vec["value"]))


def test_ndarray_round_trip_keeps_dtype_and_shape():
    for dt in protocol.DTYPES:
        a = (np.arange(24) % 2).astype(dt).reshape(2, 3, 4)
        b = protocol.unpack(protocol.pack({"a": a}))["a"]
        assert b.dtype == dt and b.shape == (2, 3, 4) and np.array_equal(a, b)


def test_ndarray_with_lying_shape_is_refused():
    code, payload = msgpack.unpackb(protocol.pack(np.zeros(4, dtype=np.float32))[0], ext_hook=lambda c, d: (c, d))
    lying = msgpack.packb(msgpack.ExtType(code, payload[:-4]))  # 12 bytes of data for a shape of 4 float32
    with pytest.raises(ValueError, match="does not match shape"):
        protocol.unpack([lying])


def test_large_arrays_go_out_of_band_without_copies():
    a = np.arange(100_000, dtype=np.float32)
    frames = protocol.pack({"a": a, "b": a[:10]})
    assert len(frames) == 2 and len(frames[0]) < 200 and bytes(frames[1]) == a.tobytes()
    assert np.array_equal(protocol.unpack(frames)["a"], a)
    with pytest.raises(ValueError, match="names frame 1, the message has 1 frames"):
        protocol.unpack(frames[:1])


def test_handshake_reports_versions(sidecar):
    r = sidecar.call("hello", client_version=protocol.VERSION)
    assert r["protocol"] == protocol.VERSION
    assert r["versions"]["stable-baselines3"] and r["versions"]["gymnasium"]
    assert isinstance(r["cuda"], bool)


def test_wrong_protocol_version_is_named(sidecar):
    sidecar.send_raw(*protocol.pack({"v": protocol.VERSION + 1, "id": 900, "op": "ping", "args": {}}))
    with pytest.raises(SidecarError) as e:
        sidecar.wait(900)
    assert e.value.code == "protocol_version" and f"v{protocol.VERSION + 1}" in e.value.message


@pytest.mark.parametrize(
    "frame,code",
    [
        (b"\xc1\xff\x00garbage", "bad_frame"),
        (msgpack.packb([1, 2, 3]), "bad_frame"),
        (msgpack.packb({"v": 1, "id": "x", "op": "ping", "args": {}}), "bad_frame"),
        (b"", "bad_frame"),
    ],
)
def test_garbage_frames_get_an_error_and_the_sidecar_keeps_serving(sidecar, frame, code):
    sidecar.send_raw(frame)
    with pytest.raises(SidecarError) as e:
        sidecar.wait(None)
    assert e.value.code == code
    assert "time" in sidecar.call("ping")


def test_unknown_op_and_missing_args(sidecar):
    with pytest.raises(SidecarError, match="unknown op 'fly'"):
        sidecar.call("fly")
    with pytest.raises(SidecarError, match="missing argument\\(s\\): steps"):
        sidecar.call("model_learn", model="model:1")
    with pytest.raises(SidecarError, match="no env with handle 'env:999'"):
        sidecar.call("env_reset", env="env:999")


def test_python_exception_arrives_with_traceback(sidecar):
    env = sidecar.call("env_make", spec={"env_id": "CartPole-v1"})["env"]
    with pytest.raises(SidecarError) as e:
        sidecar.call("env_snapshot", env=env, index=5)
    assert e.value.code == "bad_args" and "out of range 0..0" in e.value.message
    with pytest.raises(SidecarError) as e:
        sidecar.call("env_step", env=env, actions="not an array")
    assert e.value.code == "internal" and "Traceback" in e.value.traceback


@pytest.mark.parametrize(
    "op,args,message",
    [
        (
            "env_make",
            {"spec": {"env_id": "CartPole-v1", "n_envs": 2**64 - 1}},
            "spec.n_envs must be an int in 1..1024, got 18446744073709551615",
        ),
        ("env_make", {"spec": {"env_id": "CartPole-v1", "n_envs": True}}, "spec.n_envs must be an int in 1..1024, got True"),
        (
            "env_make",
            {"spec": {"env_id": "CartPole-v1", "vec_env": "threads"}},
            "spec.vec_env must be one of dummy, subproc, got 'threads'",
        ),
        ("blob", {"nbytes": 2**40}, "nbytes must be an int in 0..1073741824, got 1099511627776"),
        (
            "plot_curves",
            {"curves": [1], "path": "x.png", "title": "t"},
            "plot_curves takes curves (a map of arm to points), path and title",
        ),
        (
            "plot_curves",
            {"curves": {}, "path": "x.png", "title": "t", "band_scale": {"ultra_RA": -1}},
            "band_scale must map arms to non-negative numbers",
        ),
        (
            "plot_curves",
            {"curves": {}, "path": "x.png", "title": "t"},
            "path must be an absolute .png path in an existing directory",
        ),
        ("plot_bars", {"bars": {}, "path": "/tmp/x.png", "title": "t", "ylabel": "y"}, "plot_bars takes bars"),
        (
            "plot_bars",
            {"bars": {"k=0.1": {"random": [1.0, 0.1]}}, "path": "/nonexistent-dir/x.png", "title": "t", "ylabel": "y"},
            "path must be an absolute .png path",
        ),
        (
            "ray_init",
            {"address": "http://example.com:8265"},
            "address must be local, auto or ray://HOST:PORT, got 'http://example.com:8265'",
        ),
        (
            "bench_learn",
            {"spec": {}, "ppo": {}, "steps": 1, "impl": "sb3", "threads": 0},
            "threads must be an int in 1..256, got 0",
        ),
        (
            "bench_learn",
            {"spec": {}, "ppo": {}, "steps": 1, "impl": "dqn", "threads": 1},
            "impl must be one of sb3, ultra, got 'dqn'",
        ),
        (
            "bench_learn",
            {"spec": {}, "ppo": {}, "steps": 1, "impl": "sb3", "threads": 1, "table_states": 5},
            "a modulation table needs impl 'ultra'",
        ),
    ],
)
def test_unbounded_or_wrong_arguments_are_named(sidecar, op, args, message):
    with pytest.raises(SidecarError) as e:
        sidecar.call(op, **args)
    assert e.value.code == "bad_args" and message in e.value.message
    assert "time" in sidecar.call("ping")
