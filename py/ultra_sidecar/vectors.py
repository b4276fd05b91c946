"""Shared test vectors: protocol/vectors.json holds (value, msgpack hex) pairs that the TS and Python tests
both check. Values are JSON with two tags: {"$nd": dtype, "shape": [...], "data": [...]} (or "fill": x) for an ndarray and
{"$bin": hex} for bytes. `frames` holds the out-of-band frames after the msgpack body, as hex. Regenerate with `python -m ultra_sidecar.vectors` after a protocol change."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from . import protocol

PATH = protocol.SPEC_PATH.parent / "vectors.json"


def from_json(v: Any) -> Any:
    if isinstance(v, dict) and "$nd" in v and "fill" in v:  # a large array, written compactly
        return np.full(v["shape"], v["fill"], dtype=v["$nd"])
    if isinstance(v, dict) and "$nd" in v:
        return np.asarray(v["data"], dtype=v["$nd"]).reshape(v["shape"])
    if isinstance(v, dict) and "$bin" in v:
        return bytes.fromhex(v["$bin"])
    if isinstance(v, dict):
        return {k: from_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [from_json(x) for x in v]
    return v


def to_json(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return {"$nd": str(v.dtype), "shape": list(v.shape), "data": v.ravel().tolist()}
    if isinstance(v, bytes):
        return {"$bin": v.hex()}
    if isinstance(v, dict):
        return {k: to_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_json(x) for x in v]
    return v


V = protocol.VERSION
CASES: dict[str, Any] = {
    "hello_request": {"v": V, "id": 1, "op": "hello", "args": {"client_version": V}},
    "ping_reply": {"id": 2, "ok": True, "result": {"time": 1732500000.25}},
    "error_reply_nil_id": {
        "id": None,
        "ok": False,
        "error": {"code": "bad_frame", "message": "frame is not valid msgpack", "traceback": ""},
    },
    "step_request": {
        "v": V,
        "id": 70000,
        "op": "env_step",
        "args": {"env": "env:1", "actions": {"$nd": "float32", "shape": [2, 3], "data": [0.5, -1.0, 0.25, 1.5, -0.125, 0.0]}},
    },
    "chunk_event": {
        "id": 3,
        "event": "chunk",
        "data": {
            "episode": 0,
            "obs": {"$nd": "float64", "shape": [2, 2], "data": [0.1, -2.5, 3.75, 1e-300]},
            "actions": {"$nd": "int64", "shape": [3], "data": [0, -1, 9007199254740991]},
            "dones": {"$nd": "bool", "shape": [3], "data": [False, False, True]},
            "frame": {"$nd": "uint8", "shape": [2, 2, 1], "data": [0, 127, 128, 255]},
            "idx": {"$nd": "int32", "shape": [0], "data": []},
            "small": {"$nd": "int8", "shape": [2], "data": [-128, 127]},
            "u16": {"$nd": "uint16", "shape": [1], "data": [65535]},
            "i16": {"$nd": "int16", "shape": [1], "data": [-32768]},
            "u32": {"$nd": "uint32", "shape": [1], "data": [4294967295]},
            "state": {"$bin": "00ff10"},
        },
    },
    "out_of_band": {
        "id": 5,
        "event": "chunk",
        "data": {
            "small": {"$nd": "uint8", "shape": [2], "data": [1, 2]},
            "big": {"$nd": "float64", "shape": [64, 128], "fill": -0.5},
        },
    },
    "scalars": {
        "id": 4,
        "ok": True,
        "result": {
            "neg": -33,
            "u8": 200,
            "u16": 60000,
            "u32": 4000000000,
            "i32": -2000000000,
            "f": -2.25,
            "s": "Hüpfer ✓",
            "nil": None,
            "list": [1, "a", [True, False]],
        },
    },
}


def main() -> None:
    vectors = []
    for name, value in CASES.items():
        body, *extra = protocol.pack(from_json(value))
        vectors.append({"name": name, "value": value, "hex": body.hex(), "frames": [bytes(f).hex() for f in extra]})
    PATH.write_text(json.dumps({"protocol": V, "vectors": vectors}, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(vectors)} vectors to {PATH}")


if __name__ == "__main__":
    main()
