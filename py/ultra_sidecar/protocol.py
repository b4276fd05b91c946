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
SHAPES: dict[str, dict] = {k: v for k, v in SPEC["shapes"].items() if not k.startswith("$")}
ERROR_CODES: frozenset[str] = frozenset(SPEC["errors"])
ND_EXT: int = SPEC["ndarray"]["ext_type"]
OOB_FLAG: int = SPEC["ndarray"]["out_of_band_flag"]
OOB_BYTES: int = SPEC["ndarray"]["out_of_band_bytes"]
DTYPES: list[np.dtype] = [np.dtype(d) for d in SPEC["ndarray"]["dtypes"]]
_DTYPE_CODE = {d: i for i, d in enumerate(DTYPES)}
# Messages above this size are refused before unpacking (a 1M-step trajectory chunk is far below it).
MAX_FRAME_BYTES = 1 << 30


class ProtocolError(Exception):
    """An error that goes back to the client as {code, message}."""

    def __init__(self, code: str, message: str):
        assert code in ERROR_CODES, code
        super().__init__(message)
        self.code = code


def int_in(value: Any, name: str, low: int, high: int) -> int:
    """An integer argument within [low, high] (bools refused), or bad_args naming it: a size from the wire
    is never trusted unbounded."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ProtocolError("bad_args", f"{name} must be an int in {low}..{high}, got {value!r}")
    return value


def shape_fields(shape: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A shape's required and optional keys, as protocol.json lists them."""
    spec = SHAPES[shape]
    return tuple(spec["fields"]), tuple(spec.get("optional_fields", {}))


def _listing(required: tuple, optional: tuple) -> str:
    return f"{', '.join(required) or 'none'} (optional: {', '.join(optional) or 'none'})"


def check_keys(value: Any, shape: str, where: str) -> None:
    """Refuse (bad_args) a map that is not one, lacks a key protocol.json's shape requires or has a key it does not
    list: a misspelt optional key would otherwise be ignored silently."""
    required, optional = shape_fields(shape)
    lists = f"protocol.json's {shape} lists {_listing(required, optional)}"
    if not isinstance(value, dict):
        raise ProtocolError("bad_args", f"{where} must be a map; {lists}")
    unknown = [k for k in value if k not in required and k not in optional]
    if unknown:
        raise ProtocolError("bad_args", f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; {lists}")
    missing = [k for k in required if k not in value]
    if missing:
        raise ProtocolError("bad_args", f"{where} is missing {', '.join(missing)}; {lists}")


def _header(code: int, shape: tuple) -> bytes:
    return struct.pack(f"<BB{len(shape)}I", code, len(shape), *shape)


def _encode_ndarray(a: np.ndarray, frames: list) -> msgpack.ExtType:
    a = np.ascontiguousarray(a)
    dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
    if dt not in _DTYPE_CODE:
        raise TypeError(f"dtype {a.dtype} has no wire code; cast it to one of {SPEC['ndarray']['dtypes']}")
    a = a.astype(dt, copy=False)
    if a.nbytes >= OOB_BYTES:  # its own frame, sent without copying
        frames.append(memoryview(a).cast("B"))  # a byte view of the contiguous array
        return msgpack.ExtType(ND_EXT, _header(_DTYPE_CODE[dt] | OOB_FLAG, a.shape) + struct.pack("<I", len(frames) - 2))
    return msgpack.ExtType(ND_EXT, _header(_DTYPE_CODE[dt], a.shape) + a.tobytes())


def _decode_ndarray(data: bytes, frames: list) -> np.ndarray:
    if len(data) < 2:
        raise ValueError("ndarray ext shorter than its header")
    code, ndim = data[0], data[1]
    oob = bool(code & OOB_FLAG)
    code &= ~OOB_FLAG
    if code >= len(DTYPES):
        raise ValueError(f"unknown ndarray dtype code {code}")
    off = 2 + 4 * ndim
    if len(data) < off + (4 if oob else 0):
        raise ValueError("ndarray ext shorter than its shape")
    shape = struct.unpack_from(f"<{ndim}I", data, 2)
    dt = DTYPES[code]
    if oob:
        (index,) = struct.unpack_from("<I", data, off)
        if index + 1 >= len(frames):
            raise ValueError(f"ndarray names frame {index + 1}, the message has {len(frames)} frames")
        buf, off = frames[index + 1], 0
    else:
        buf = data
    if len(buf) - off != dt.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"ndarray payload of {len(buf) - off} bytes does not match shape {shape} {dt}")
    return np.frombuffer(buf, dtype=dt, offset=off).reshape(shape)


def pack(obj: Any) -> list:
    """The message as frames: the msgpack body, then one buffer per out-of-band array."""
    frames: list = [b""]

    def default(o: Any) -> Any:
        if isinstance(o, np.ndarray):
            return _encode_ndarray(o, frames)
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, (tuple, set)):
            return list(o)
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"cannot encode {type(o).__name__} on the wire")

    frames[0] = msgpack.packb(obj, default=default, use_bin_type=True)
    return frames


def unpack(frames: list) -> Any:
    total = sum(len(f) for f in frames)
    if total > MAX_FRAME_BYTES:
        raise ValueError(f"message of {total} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")

    def ext_hook(code: int, data: bytes) -> Any:
        if code == ND_EXT:
            return _decode_ndarray(data, frames)
        raise ValueError(f"unknown msgpack ext type {code}")

    return msgpack.unpackb(frames[0], ext_hook=ext_hook, raw=False, strict_map_key=False)


def parse_request(frames: list) -> tuple[int, str, dict]:
    """Validate the request envelope; raise ProtocolError naming what is wrong."""
    try:
        msg = unpack(frames)
    except Exception as e:  # noqa: BLE001 - msgpack raises many types for garbage
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
    required, optional = tuple(OPS[op]["args"]), tuple(OPS[op].get("optional_args", {}))
    missing = [k for k in required if k not in args]
    if missing:
        raise ProtocolError("bad_args", f"op {op!r} is missing argument(s): {', '.join(missing)}")
    unknown = [k for k in args if k not in required and k not in optional]
    if unknown:  # a misspelt optional argument would otherwise be ignored silently
        raise ProtocolError(
            "bad_args",
            f"op {op!r} takes no argument(s) {', '.join(map(repr, unknown))}; protocol.json lists "
            f"{_listing(required, optional)}",
        )
    return rid, op, args


def request_id_of(frames: list) -> int | None:
    """Best effort: the id of a request that failed validation, so its error reaches the right caller."""
    try:
        msg = msgpack.unpackb(frames[0], ext_hook=lambda c, d: None, raw=False, strict_map_key=False)
        rid = msg.get("id") if isinstance(msg, dict) else None
        return rid if isinstance(rid, int) else None
    except Exception:  # noqa: BLE001 - best effort: an unreadable frame has no id to answer
        return None
