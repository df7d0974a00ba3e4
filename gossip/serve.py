"""Run one replica's node as a process: ``python -m memmesh.gossip.serve PATH [options]``.

Prints ``READY <port> <replica id>`` on stdout once it listens, then serves until
SIGTERM/SIGINT (known peers are saved on the way out).  The cluster key comes from
``--key-hex`` or the ``MEMMESH_CLUSTER_KEY`` environment variable (hex).  Used by the
multi-process tests and the benchmark; ``memmesh node`` can call :func:`serve`.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
from collections.abc import Callable, Sequence

import trio

from .node import Node
from .peers import parse_addresses
from .protocol.replica import NodeReplica

__all__ = ["main", "parse_args", "serve"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m memmesh.gossip.serve")
    p.add_argument("path", help="replica directory (LMDB)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--seed", action="append", default=[], metavar="HOST:PORT")
    p.add_argument("--key-hex", default=os.environ.get("MEMMESH_CLUSTER_KEY"))
    p.add_argument("--insecure", action="store_true")
    p.add_argument("--no-mdns", action="store_true")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--poll-interval", type=float, default=0.02)
    p.add_argument("--replica-id", default=None)
    return p.parse_args(argv)


async def serve(replica: NodeReplica, args: argparse.Namespace, *,
                ready: Callable[[Node], None] | None = None) -> None:
    """Run a node for ``replica`` with the options of ``args`` until cancelled/signalled."""
    seeds = parse_addresses(args.seed)
    key = bytes.fromhex(args.key_hex) if args.key_hex else None
    async with Node(replica, host=args.host, port=args.port, cluster_key=key,
                    insecure=args.insecure, seeds=seeds, mdns=not args.no_mdns,
                    interval=args.interval, poll_interval=args.poll_interval) as node:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            if ready is not None:
                ready(node)
            async for _ in signals:
                return


def main(argv: Sequence[str] | None = None) -> int:
    from memmesh.storage import Replica

    args = parse_args(argv)
    if os.environ.get("MEMMESH_DEBUG"):
        import logging
        logging.basicConfig(level=logging.DEBUG, format="%(relativeCreated)d %(message)s")
    with Replica.open(args.path, replica_id=args.replica_id) as replica:
        def ready(node: Node) -> None:
            print(f"READY {node.port} {node.replica_id}", flush=True)

        trio.run(functools.partial(serve, replica, args, ready=ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())
