"""A CURVE sidecar (how sweep actors serve) answers only the client key it was given; actors need Ray started."""

from __future__ import annotations

import threading

import pytest
import zmq
from conftest import SidecarError

from ultra_sidecar import protocol
from ultra_sidecar.ray_ops import actor_handlers
from ultra_sidecar.server import Server


def _client(endpoint: str, server_public: bytes, pair: tuple[bytes, bytes] | None) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 1500)
    if pair:
        sock.curve_serverkey = server_public
        sock.curve_publickey, sock.curve_secretkey = pair
    sock.connect(endpoint)
    return sock


def _ask(sock: zmq.Socket, op: str, **args) -> dict | None:
    sock.send_multipart(protocol.pack({"v": protocol.VERSION, "id": 1, "op": op, "args": args}))
    try:
        return protocol.unpack(sock.recv_multipart())
    except zmq.Again:
        return None


@pytest.fixture()
def curve_server():
    server_pub, server_sec = zmq.curve_keypair()
    client = zmq.curve_keypair()
    curve = {"server_public": server_pub.decode(), "server_secret": server_sec.decode(), "client_public": client[0].decode()}
    server = Server("tcp://127.0.0.1:0", actor_handlers("cpu"), curve)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield server.endpoint, server_pub, client
    _ask(_client(server.endpoint, server_pub, client), "shutdown")
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_the_sweeps_client_key_is_served(curve_server):
    endpoint, server_pub, client = curve_server
    reply = _ask(_client(endpoint, server_pub, client), "echo", payload=[1, 2, 3])
    assert reply == {"id": 1, "ok": True, "result": {"payload": [1, 2, 3]}}


@pytest.mark.parametrize("who", ["other client key", "wrong server key", "no curve"])
def test_other_clients_get_nothing(curve_server, who):
    endpoint, server_pub, client = curve_server
    other = zmq.curve_keypair()
    sock = {
        "other client key": lambda: _client(endpoint, server_pub, other),
        "wrong server key": lambda: _client(endpoint, other[0], client),
        "no curve": lambda: _client(endpoint, server_pub, None),
    }[who]()
    assert _ask(sock, "echo", payload="hi") is None
    assert _ask(_client(endpoint, server_pub, client), "ping")["ok"]  # still serving the right client


def test_actors_need_ray_started_first(sidecar):
    with pytest.raises(SidecarError) as e:
        sidecar.call("actor_start", name="x", curve={}, shared_dir="/tmp")
    assert e.value.code == "unsupported" and "ray_init first" in e.value.message
