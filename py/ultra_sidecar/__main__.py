"""Start the sidecar: `python -m ultra_sidecar --endpoint ipc:///private/dir/sock`.

It prints `ULTRA_READY <endpoint>` once bound, then serves until `shutdown`. It exits when its parent goes
away: the parent holds our stdin open, so EOF on stdin means the parent died (also on SIGKILL); during a
long op, PR_SET_PDEATHSIG does the same.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys


def main() -> None:
    ap = argparse.ArgumentParser(prog="ultra_sidecar")
    ap.add_argument("--endpoint", required=True, help="ipc://PATH or tcp://127.0.0.1:PORT (port 0 = any)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--no-parent-watch", action="store_true", help="keep running when stdin closes")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="[sidecar] %(levelname)s %(message)s")
    from .server import Server, die_with_parent

    if not args.no_parent_watch:
        die_with_parent(signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the TS parent, which shuts us down

    import torch

    torch.set_num_threads(args.torch_threads)
    from . import protocol, ray_ops
    from .ops import make_handlers

    # the sweep host's sidecar also starts Ray and its actors; each actor serves make_handlers alone (ray_ops.py)
    server = Server(args.endpoint, {**make_handlers(args.device), **ray_ops.make_ray_handlers()})
    print(f"{protocol.READY_LINE} {server.endpoint}", flush=True)
    sys.stdout = sys.stderr  # library prints must not mix with the ready line
    try:
        server.serve(parent_fd=None if args.no_parent_watch else sys.stdin.fileno())
    finally:
        ray_ops.shutdown()


if __name__ == "__main__":
    main()
