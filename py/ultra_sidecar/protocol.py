"""The wire protocol, read from protocol/protocol.json (its one definition, shared with the TS side)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

SPEC_PATH = Path(__file__).resolve().parents[2] / "protocol" / "protocol.json"
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text())
VERSION: int = SPEC["version"]
READY_LINE: str = SPEC["ready_line"]
OPS: dict[str, dict] = SPEC["ops"]
ERROR_CODES: frozenset[str] = frozenset(SPEC["errors"])
ND_EXT: int = SPEC["ndarray"]["ext_type"]
DTYPES: list[np.dtype] = [np.dtype(d) for d in SPEC["ndarray"]["dtypes"]]
_DTYPE_CODE = {d: i for i, d in enumerate(DTYPES)}
# Frames above this size are refused before unpacking (a 1M-step trajectory chunk is far below it).
MAX_FRAME_BYTES = 1 << 30


class ProtocolError(Exception):
    """An error that goes back to the client as {code, message}."""

    def __init__(self, code: str, message: str):
        assert code in ERROR_CODES, code
        super().__init__(message)
        self.code = code


def _encode_ndarray(a: np.ndarray) -> msgpack.ExtType:
    a = np.ascontiguousarray(a)
    dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
    if dt not in _DTYPE_CODE:
        raise TypeError(f"dtype {a.dtype} has no wire code; cast it to one of {SPEC['ndarray']['dtypes']}")
    header = struct.pack(f"<BB{a.ndim}I", _DTYPE_CODE[dt], a.ndim, *a.shape)
    return msgpack.ExtType(ND_EXT, header + a.astype(dt, copy=False).tobytes())


def _decode_ndarray(data: bytes) -> np.ndarray:
    if len(data) < 2:
        raise ValueError("ndarray ext shorter than its header")
    code, ndim = data[0], data[1]
    if code >= len(DTYPES):
        raise ValueError(f"unknown ndarray dtype code {code}")
    off = 2 + 4 * ndim
    shape = struct.unpack_from(f"<{ndim}I", data, 2)
    dt = DTYPES[code]
    if len(data) - off != dt.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"ndarray payload of {len(data) - off} bytes does not match shape {shape} {dt}")
    return np.frombuffer(data, dtype=dt, offset=off).reshape(shape)


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return _encode_ndarray(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} on the wire")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == ND_EXT:
        return _decode_ndarray(data)
    raise ValueError(f"unknown msgpack ext type {code}")


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_default, use_bin_type=True)


def unpack(frame: bytes) -> Any:
    if len(frame) > MAX_FRAME_BYTES:
        raise ValueError(f"frame of {len(frame)} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
    return msgpack.unpackb(frame, ext_hook=_ext_hook, raw=False, strict_map_key=False)


def parse_request(frame: bytes) -> tuple[int, str, dict]:
    """Validate the request envelope; raise ProtocolError naming what is wrong."""
    try:
        msg = unpack(frame)
    except Exception as e:  # msgpack raises many types for garbage
        raise ProtocolError("bad_frame", f"frame is not valid msgpack ({type(e).__name__}: {e})") from None
    if not isinstance(msg, dict) or not {"v", "id", "op", "args"} <= msg.keys():
        raise ProtocolError("bad_frame", "frame must be a map with keys v, id, op, args")
    rid, op, args, v = msg["id"], msg["op"], msg["args"], msg["v"]
    if not isinstance(rid, int) or not isinstance(op, str) or not isinstance(args, dict):
        raise ProtocolError("bad_frame", "id must be an int, op a string and args a map")
    if v != VERSION:
        raise ProtocolError(
            "protocol_version",
            f"client speaks protocol v{v}, this sidecar speaks v{VERSION}; "
            "rebuild the TS side and reinstall the Python side from the same checkout (make setup)",
        )
    if op not in OPS:
        raise ProtocolError("unknown_op", f"unknown op {op!r}; known ops: {', '.join(sorted(OPS))}")
    missing = [k for k in OPS[op]["args"] if k not in args]
    if missing:
        raise ProtocolError("bad_args", f"op {op!r} is missing argument(s): {', '.join(missing)}")
    return rid, op, args


def request_id_of(frame: bytes) -> int | None:
    """Best effort: the id of a request that failed validation, so its error reaches the right caller."""
    try:
        msg = unpack(frame)
        rid = msg.get("id") if isinstance(msg, dict) else None
        return rid if isinstance(rid, int) else None
    except Exception:
        return None
