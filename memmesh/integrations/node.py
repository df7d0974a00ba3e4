"""The node runner: one replica's gossip node as a process, and its status file.

The one entry point for running a node outside code: ``memmesh node`` and ``python -m
memmesh.integrations.node`` (what the multi-process tests and the benchmarks start)
take the same options and run :func:`run`.  It holds the data directory's run lock
(:mod:`.runlock`: one node per directory), prints ``READY <port> <replica id>`` on
stdout once the node listens, serves until SIGTERM or SIGINT (saving known peers on
the way out) and writes a JSON snapshot of ``node.status()`` to ``DATA/node-status.json``
every second (:mod:`.nodestatus`), removed as soon as a signal arrives, so ``memmesh
status`` in another shell shows peers, seeds and lag without talking to the node.
Mistakes (a key file that cannot be read, a port in use, a directory another node
holds) are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import functools
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from memmesh.gossip import Node
from memmesh.gossip.protocol import NodeReplica
from memmesh.integrations._nodestatus import (
    STATUS_FILE,
    format_status,
    read_status,
    remove_status,
    write_status,
)
from memmesh.integrations._options import (
    add_data_option,
    add_node_options,
    data_dir,
    member_replica_options,
    node_security,
    run_entry_point,
    seeds,
)
from memmesh.integrations._resolver_options import add_resolver_options, build_resolver
from memmesh.integrations._runlock import RunLock
from memmesh.integrations._search_socket import serve_search

__all__ = ["STATUS_FILE", "add_runner_options", "format_status", "main", "read_status",
           "run", "serve"]


def add_runner_options(p: argparse.ArgumentParser) -> None:
    """The data directory, the node options and the runner's own."""
    add_data_option(p)
    add_node_options(p)
    p.add_argument("--poll-interval", type=float, default=0.02,
                   help="seconds between polls of the change journal")
    p.add_argument("--replica-id", default=None, help="for a new data directory only")
    p.add_argument("--sync-default", choices=("push", "pull"), default="push",
                   help="how local writes that name no sync mode travel: pushed on every "
                        "link at once, or left to anti-entropy pulls (priority memories "
                        "are always pushed; default: push)")
    add_resolver_options(p)


def run(args: argparse.Namespace) -> int:
    """Run a node on ``args.data`` until SIGTERM/SIGINT; the exit status."""
    security = node_security(args)
    if security.get("insecure") and not args.insecure:
        print("memmesh: a cluster key is required, or a member credential: `memmesh keygen >"
              " cluster.key` once, copy it to every member, then `memmesh node --key-file "
              "cluster.key` (or set MEMMESH_CLUSTER_KEY), or `memmesh node --credential "
              "alice.cred` (docs/credentials.md); --insecure for a trusted test machine only",
              file=sys.stderr)
        return 2
    identity = security.get("identity")
    replica_id = args.replica_id
    if identity is not None:
        if replica_id is not None and replica_id != identity.replica_id:
            print(f"memmesh: --replica-id {replica_id} differs from the credential's replica "
                  f"id {identity.replica_id}: drop --replica-id", file=sys.stderr)
            return 2
        replica_id = identity.replica_id
    from memmesh.storage import Replica

    data = data_dir(args)
    data.mkdir(parents=True, exist_ok=True)
    with RunLock(data):
        try:
            with Replica.open(data, replica_id=replica_id,
                              **member_replica_options(data, identity)) as replica:
                trio.run(functools.partial(serve, replica, args, security, data))
        except KeyboardInterrupt:
            pass
        finally:
            remove_status(data)
    return 0


async def serve(replica: NodeReplica, args: argparse.Namespace, security: dict[str, Any],
                data: Path) -> None:
    """The node of :func:`run`, until a signal; status snapshots into ``data``.
    ``security``: the ``Node`` keywords of :func:`node_security`."""
    async with Node(replica, host=args.host, port=args.port, **security,
                    seeds=seeds(args), mdns=not args.no_mdns,
                    interval=args.interval, poll_interval=args.poll_interval,
                    resolver=build_resolver(args),
                    sync_default=args.sync_default) as node:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            print(f"READY {node.port} {node.replica_id}", flush=True)
            if not logging.getLogger("memmesh.gossip").isEnabledFor(logging.INFO):
                # (with -v the node logs this line itself)
                print(f"memmesh {node.listening_line()}; Ctrl-C stops",
                      file=sys.stderr, flush=True)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_write_status_forever, node, data)
                nursery.start_soon(serve_search, replica, data)
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break
            # stopping: no status file may outlive this instant (leaving takes a while)
            await trio.to_thread.run_sync(remove_status, data)


async def _write_status_forever(node: Node, data: Path) -> None:
    while True:
        snapshot = node.status().as_dict()
        await trio.to_thread.run_sync(write_status, data, snapshot)
        await trio.sleep(1.0)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m memmesh.integrations.node [options]`` (the options of ``memmesh node``)."""
    parser = argparse.ArgumentParser(prog="python -m memmesh.integrations.node",
                                     description="run a gossip node on --data")
    add_runner_options(parser)
    return run_entry_point("memmesh node", parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
