import ast
import json
from pathlib import Path

import msgpack
import numpy as np
import pytest
from conftest import SidecarError

from ultra_sidecar import protocol, vectors

PKG = Path(protocol.__file__).parent

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
        (
            "env_make",
            {"spec": {"env_id": "CartPole-v1", "n_env": 2}},
            "spec has unknown key(s) 'n_env'; protocol.json's env_spec lists env_id (optional: n_envs, seed,",
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


def test_an_argument_protocol_json_does_not_list_is_refused(sidecar):
    with pytest.raises(SidecarError) as e:
        sidecar.call("ping", extra=1)
    assert e.value.code == "bad_args"
    assert e.value.message == "op 'ping' takes no argument(s) 'extra'; protocol.json lists none (optional: none)"
    with pytest.raises(SidecarError) as e:  # misspelt optional arguments: once ignored silently
        sidecar.call("model_learn", model="model:1", steps=1, modulaton={}, tb_log="x")
    assert e.value.code == "bad_args" and e.value.message == (
        "op 'model_learn' takes no argument(s) 'modulaton', 'tb_log'; "
        "protocol.json lists model, steps (optional: tb_log_name, modulation, schedule_total)"
    )
    env = sidecar.call("env_make", spec={"env_id": "CartPole-v1"})["env"]
    with pytest.raises(SidecarError) as e:
        sidecar.call("model_load", path="/nonexistent.zip", env=env, train={"learning_rat": 0.1})
    assert e.value.code == "bad_args" and "train has unknown key(s) 'learning_rat'" in e.value.message
    assert "time" in sidecar.call("ping")


def _keys_read(node: ast.AST, var: str) -> set:
    """The constant keys `node` reads from the map named `var`: var["k"] and var.get("k", ...)."""
    keys = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id == var:
            if isinstance(n.slice, ast.Constant):
                keys.add(n.slice.value)
        elif (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr == "get"
            and isinstance(n.func.value, ast.Name)
            and n.func.value.id == var
            and n.args
            and isinstance(n.args[0], ast.Constant)
        ):
            keys.add(n.args[0].value)
    return keys


def _function(module: str, name: str) -> ast.FunctionDef:
    """A function of a sidecar module, from its source: "Class.method", or the first (outermost) "f" at any depth."""
    scope: ast.AST = ast.parse((PKG / f"{module}.py").read_text())
    *owner, name = name.split(".")
    if owner:
        scope = next(n for n in scope.body if isinstance(n, ast.ClassDef) and n.name == owner[0])
        return next(n for n in scope.body if isinstance(n, ast.FunctionDef) and n.name == name)
    return next(n for n in ast.walk(scope) if isinstance(n, ast.FunctionDef) and n.name == name)


def _handler_reads(module: str, factory: str, delegates: dict[str, set]) -> dict[str, set]:
    """Per op: the argument names its handler reads from `args`, also through the helpers it passes `args` to."""
    fn = _function(module, factory)
    local = {n.name: n for n in fn.body if isinstance(n, ast.FunctionDef)}
    table = next(n.value for n in fn.body if isinstance(n, ast.Return))
    reads = {}
    for key, value in zip(table.keys, table.values, strict=True):
        node = local[value.id] if isinstance(value, ast.Name) else value
        names = _keys_read(node, "args")
        for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
            callee = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", None)
            if callee in delegates and any(isinstance(a, ast.Name) and a.id == "args" for a in call.args):
                names |= delegates[callee]
        reads[key.value] = names
    return reads


def test_handlers_read_exactly_the_arguments_protocol_json_lists():
    """What each op's handler reads from args, found in its source, against protocol.json: an argument read but not
    listed would be refused before it arrives; one listed but not read is ignored."""
    helpers = {n: _keys_read(_function("ops", n), "args") for n in ("env_of", "model_of")}
    reads = {
        **_handler_reads(
            "ops", "make_handlers", {**helpers, "learn_run": _keys_read(_function("bench", "learn_run"), "args")}
        ),
        **_handler_reads("ray_ops", "make_ray_handlers", {}),
        "shutdown": set(),  # the server's own
    }
    assert helpers == {"env_of": {"env"}, "model_of": {"model"}}  # the walk above sees through them
    assert sorted(reads) == sorted(protocol.OPS)
    listed = {op: set(spec["args"]) | set(spec.get("optional_args", {})) for op, spec in protocol.OPS.items()}
    for op, names in reads.items():
        assert sorted(names) == sorted(listed[op]), op


def test_shapes_are_what_the_sidecar_reads():
    """The keys the sidecar's code reads from each shape's map, found in its source, against protocol.json."""
    table, rice_part = _function("modulation", "ModulationTable.__init__"), _function("modulation", "ModulationTable._rice")
    reads = {
        "modulation": _keys_read(table, "wire"),
        "modulation_state": _keys_read(table, "s"),
        "rice": _keys_read(rice_part, "rice") | _keys_read(_function("rice", "RiceStarts.__init__"), "wire"),
        "env_spec": _keys_read(_function("envs", "make_env"), "spec"),
        "train": _keys_read(_function("models", "load_ppo"), "train"),
    }
    assert sorted(reads) == sorted(protocol.SHAPES)
    for shape, keys in reads.items():
        required, optional = protocol.shape_fields(shape)
        assert sorted(keys) == sorted(required + optional), shape


def test_modulation_fields_are_protocol_json_shape():
    from ultra_sidecar import modulation

    shape = protocol.SPEC["shapes"]["modulation"]
    assert (modulation.FIELDS, modulation.OPTIONAL_FIELDS) == (tuple(shape["fields"]), tuple(shape["optional_fields"]))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"radious": 0.1}, "modulation has unknown key(s) 'radious'; protocol.json's modulation lists variant, radius,"),
        ({"seed": 0, "states": [{"obs": np.zeros(4), "acton": 1}]}, "modulation.states[0] has unknown key(s) 'acton'"),
        ({"states": [{"action": 1}]}, "modulation.states[0] is missing obs; protocol.json's modulation_state lists obs"),
        (
            {"variant": "rice", "rice": {"mask": None, "env": {"env_id": "CartPole-v1"}, "rnd_coef": 0, "trust": True}},
            "modulation.rice has unknown key(s) 'trust'",
        ),
    ],
)
def test_a_key_protocol_json_does_not_list_in_a_modulation_table_is_refused(change, message):
    from ultra_sidecar.envs import make_env
    from ultra_sidecar.modulation import ModulationTable

    table = {
        "variant": "A",
        "radius": 0.1,
        "fire_on": "entry",
        "reset_prob": 0.0,
        "reward_scale": 1.0,
        "reward_unit": 1.0,
        "action_tolerance": 0.5,
        "seed": 0,
        "states": [],
    }
    venv = make_env({"env_id": "CartPole-v1"})
    with pytest.raises(protocol.ProtocolError) as e:
        ModulationTable({**table, **change}, venv)
    venv.close()
    assert e.value.code == "bad_args" and message in str(e.value)
