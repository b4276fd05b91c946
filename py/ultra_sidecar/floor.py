"""The bridge benchmark's baseline: the plainest pyzmq ROUTER + msgpack server (no protocol, no ndarrays),
so `ultra bench bridge` can report the sidecar's cost as a ratio measured side by side in one run."""

from __future__ import annotations

import sys

import msgpack
import zmq


def main() -> None:
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.bind(sys.argv[1])
    print(f"READY {sock.getsockopt_string(zmq.LAST_ENDPOINT)}", flush=True)
    blobs: dict[int, bytes] = {}
    while True:
        ident, frame = sock.recv_multipart()
        msg = msgpack.unpackb(frame)
        if msg.get("op") == "quit":
            break
        if msg.get("op") == "blob":  # {"data": bin of n bytes}, packed once per size
            n = msg["nbytes"]
            blobs.setdefault(n, msgpack.packb({"data": bytes(n)}))
            sock.send_multipart([ident, blobs[n]], copy=False)
        else:
            sock.send_multipart([ident, msgpack.packb({"payload": msg.get("payload")})], copy=False)


if __name__ == "__main__":
    main()
