"""The node runner: one replica's gossip node as a process, and its status file.

The one entry point for running a node outside code: ``memmesh node`` and ``python -m
memmesh.integrations.node`` (what the multi-process tests and the benchmarks start)
take the same options and run :func:`run`.  It prints ``READY <port> <replica id>`` on
stdout once the node listens, serves until SIGTERM or SIGINT (saving known peers on
the way out) and writes a JSON snapshot of ``node.status()`` to ``DATA/node-status.json``
every second (atomically, by rename), so ``memmesh status`` in another shell shows peers
and lag without talking to the node.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from memmesh.crdt import MemmeshError
from memmesh.gossip import Node
from memmesh.gossip.protocol import NodeReplica
from memmesh.integrations._options import (
    add_data_option,
    add_node_options,
    data_dir,
    load_cluster_key,
    seeds,
)
from memmesh.integrations._resolver_options import add_resolver_options, build_resolver
from memmesh.integrations._search_socket import serve_search

__all__ = ["STATUS_FILE", "add_runner_options", "format_status", "main", "read_status",
           "run", "serve"]

STATUS_FILE = "node-status.json"
STALE_AFTER_S = 10.0


def add_runner_options(p: argparse.ArgumentParser) -> None:
    """The data directory, the node options and the runner's own."""
    add_data_option(p)
    add_node_options(p)
    p.add_argument("--poll-interval", type=float, default=0.02,
                   help="seconds between polls of the change journal")
    p.add_argument("--replica-id", default=None, help="for a new data directory only")
    add_resolver_options(p)


def run(args: argparse.Namespace) -> int:
    """Run a node on ``args.data`` until SIGTERM/SIGINT; the exit status."""
    key = load_cluster_key(args)
    if key is None and not args.insecure:
        print("memmesh: a cluster key is required: `memmesh keygen > cluster.key` once, "
              "copy it to every member, then `memmesh node --key-file cluster.key` "
              "(or set MEMMESH_CLUSTER_KEY); --insecure for a trusted test machine only",
              file=sys.stderr)
        return 2
    if os.environ.get("MEMMESH_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, format="%(relativeCreated)d %(message)s")
    from memmesh.storage import Replica

    data = data_dir(args)
    data.mkdir(parents=True, exist_ok=True)
    try:
        with Replica.open(data, replica_id=args.replica_id) as replica:
            trio.run(functools.partial(serve, replica, args, key, data))
    except KeyboardInterrupt:
        pass
    finally:
        (data / STATUS_FILE).unlink(missing_ok=True)
    return 0


async def serve(replica: NodeReplica, args: argparse.Namespace, key: bytes | None,
                data: Path) -> None:
    """The node of :func:`run`, until a signal; status snapshots into ``data``."""
    async with Node(replica, host=args.host, port=args.port, cluster_key=key,
                    insecure=key is None, seeds=seeds(args), mdns=not args.no_mdns,
                    interval=args.interval, poll_interval=args.poll_interval,
                    resolver=build_resolver(args)) as node:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            print(f"READY {node.port} {node.replica_id}", flush=True)
            print(f"memmesh node {node.replica_id} listening on {args.host}:{node.port} "
                  f"({'TLS 1.3' if key else 'INSECURE plain TCP'}); Ctrl-C stops",
                  file=sys.stderr, flush=True)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_write_status_forever, node, data)
                nursery.start_soon(serve_search, replica, data)
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    return


async def _write_status_forever(node: Node, data: Path) -> None:
    while True:
        snapshot = node.status().as_dict()
        snapshot["written_at"] = time.time()
        await trio.to_thread.run_sync(_write_status, data, snapshot)
        await trio.sleep(1.0)


def _write_status(data: Path, status: dict[str, Any]) -> None:
    path = data / STATUS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status, indent=1))
    os.replace(tmp, path)


def read_status(data: Path) -> dict[str, Any] | None:
    """The last snapshot written by a node on ``data`` (None: none, or stale)."""
    path = data / STATUS_FILE
    try:
        status: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if time.time() - float(status.get("written_at", 0)) > STALE_AFTER_S:
        return None
    return status


def format_status(status: dict[str, Any]) -> str:
    """A readable table of a status snapshot."""
    lines = [
        f"replica {status['replica_id']} on {status['host']}:{status['port']} "
        f"({'TLS' if status['secure'] else 'INSECURE'}); syncs={status['syncs']} "
        f"pushes={status['pushes']} bytes in/out={status['bytes_in']}/{status['bytes_out']}",
        f"{'peer':<34} {'address':<22} {'dir':<4} {'lag':>6} {'last sync':>10} "
        f"{'in':>10} {'out':>10}",
    ]
    if status.get("write_fence"):
        lines.insert(1, f"WRITES FENCED: {status['write_fence']}")
    trouble = {k: status.get(k) for k in ("refusals", "errors", "dropped") if status.get(k)}
    if trouble:
        lines.insert(1, "  ".join(f"{k}: {v}" for k, v in trouble.items()))
    if status.get("repairs") or status.get("lowered"):
        lines.insert(1, f"digest repair: {status.get('repairs', 0)} repairs, "
                        f"{status.get('repaired', 0)} keys repaired, "
                        f"{status.get('lowered', 0)} watermarks proved false")
    now = time.time()
    for peer in status["peers"]:
        address = ":".join(map(str, peer["address"])) if peer["address"] else "-"
        lag = "?" if peer["lag"] is None else str(peer["lag"])
        last = "never" if peer["last_sync"] is None else f"{now - peer['last_sync']:.1f}s ago"
        lines.append(f"{peer['replica_id']:<34} {address:<22} {peer['direction']:<4} "
                     f"{lag:>6} {last:>10} {peer['bytes_in']:>10} {peer['bytes_out']:>10}")
        notes = _peer_trouble(peer)
        if notes:
            lines.append(f"  {notes}")
    if not status["peers"]:
        lines.append("(no peers connected)")
    return "\n".join(lines)


def _peer_trouble(peer: dict[str, Any]) -> str:
    """One line of what went wrong with a peer (empty when nothing did)."""
    parts = []
    if peer.get("refusals"):
        parts.append("refused " + ", ".join(f"{r}: {n}" for r, n in peer["refusals"].items()))
    if peer.get("errors"):
        parts.append(f"errors {peer['errors']} (last: {peer.get('last_error')})")
    if peer.get("false_claims"):
        parts.append(f"false claims {peer['false_claims']}")
    if peer.get("repaired"):
        parts.append(f"repaired {peer['repaired']} keys in {peer.get('repairs', 0)} repairs")
    return "; ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m memmesh.integrations.node [options]`` (the options of ``memmesh node``)."""
    parser = argparse.ArgumentParser(prog="python -m memmesh.integrations.node",
                                     description="run a gossip node on --data")
    add_runner_options(parser)
    try:
        return run(parser.parse_args(argv))
    except MemmeshError as exc:
        print(f"memmesh node: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
