"""The sidecar's ROUTER loop: one request at a time, replies and streamed events to the caller's identity."""

from __future__ import annotations

import ctypes
import logging
import os
import traceback
from collections.abc import Callable
from typing import TypedDict

import zmq
from zmq.auth.thread import ThreadAuthenticator

from . import protocol
from .protocol import ProtocolError

log = logging.getLogger("ultra.sidecar")

Emit = Callable[[str, dict], None]
Handler = Callable[[dict, Emit], dict]


def die_with_parent(sig: int) -> None:
    """Linux: have the kernel send us `sig` when the parent thread exits (also when it is SIGKILLed)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


class Curve(TypedDict):
    """A CURVE server's keys (z85 text): its own pair, and the one client public key it lets in."""

    server_public: str
    server_secret: str
    client_public: str


class _OneClient:
    """ZAP credentials: only the sweep's client key is allowed (the server key alone is not enough)."""

    def __init__(self, key: str):
        self.key = key.encode()

    def callback(self, domain: str, key: bytes) -> bool:
        return key == self.key


class Server:
    def __init__(self, endpoint: str, handlers: dict[str, Handler], curve: Curve | None = None):
        missing = set(protocol.OPS) - set(handlers) - {"shutdown"}
        assert not missing, f"ops without a handler: {missing}"
        self.handlers = handlers
        self.ctx = zmq.Context()
        self.auth = None
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 1000)
        if curve:  # encrypted, and a client must hold the pinned server key and present the allowed client key
            self.auth = ThreadAuthenticator(self.ctx)
            self.auth.start()
            self.auth.configure_curve_callback("*", credentials_provider=_OneClient(curve["client_public"]))
            self.sock.curve_server = True
            self.sock.curve_publickey = curve["server_public"].encode()
            self.sock.curve_secretkey = curve["server_secret"].encode()
        self.sock.bind(endpoint)
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def _send(self, ident: bytes, msg: dict) -> None:
        frames = protocol.pack(msg)
        # zero-copy pays off only for large buffers; for a lone small body, copying is faster
        self.sock.send_multipart([ident, *frames], copy=len(frames) == 1)

    def _error(self, ident: bytes, rid: int | None, code: str, message: str, tb: str = "") -> None:
        self._send(ident, {"id": rid, "ok": False, "error": {"code": code, "message": message, "traceback": tb}})

    def serve(self, parent_fd: int | None = None) -> None:
        """Serve until `shutdown`, or until `parent_fd` (our stdin, the parent's pipe) reaches EOF: the parent
        is gone. Polled here rather than in a thread, which would cost every round trip ~20 µs of GIL traffic."""
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        if parent_fd is not None:
            poller.register(parent_fd, zmq.POLLIN)
        while True:
            ready = dict(poller.poll())
            if parent_fd in ready and not os.read(parent_fd, 65536):
                log.info("parent closed our stdin; exiting")
                break
            if self.sock not in ready:
                continue
            ident, *frames = self.sock.recv_multipart(copy=True)
            if not frames:
                self._error(ident, None, "bad_frame", "empty message")
                continue
            try:
                rid, op, args = protocol.parse_request(frames)
            except ProtocolError as e:
                self._error(ident, protocol.request_id_of(frames), e.code, str(e))
                continue
            if op == "shutdown":
                self._send(ident, {"id": rid, "ok": True, "result": {}})
                break
            self._dispatch(ident, rid, op, args)
        self.sock.close()
        if self.auth:
            self.auth.stop()
        self.ctx.term()

    def _dispatch(self, ident: bytes, rid: int, op: str, args: dict) -> None:
        def emit(event: str, data: dict) -> None:
            self._send(ident, {"id": rid, "event": event, "data": data})

        try:
            result = self.handlers[op](args, emit)
        except ProtocolError as e:
            self._error(ident, rid, e.code, str(e))
        except Exception as e:  # the sidecar keeps serving; the caller gets the traceback
            log.exception("op %s failed", op)
            self._error(ident, rid, "internal", f"{type(e).__name__}: {e}", traceback.format_exc())
        else:
            self._send(ident, {"id": rid, "ok": True, "result": result})
