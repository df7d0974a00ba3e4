"""``memmesh node`` and ``memmesh status``: run a node on a data directory, inspect it.

The running node writes a JSON snapshot of ``node.status()`` to
``DATA/node-status.json`` every second (atomically, by rename), so ``memmesh status``
from another shell can print peers and lag without talking to the node.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import trio

from memmesh import cliopts

STATUS_FILE = "node-status.json"
STALE_AFTER_S = 10.0




def _write_status(data_dir: Path, status: dict[str, Any]) -> None:
    path = data_dir / STATUS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status, indent=1))
    os.replace(tmp, path)


def read_status(data_dir: Path) -> dict[str, Any] | None:
    """The last snapshot written by a node on ``data_dir`` (None: none, or stale)."""
    path = data_dir / STATUS_FILE
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


async def _serve(args: argparse.Namespace, data_dir: Path, key: bytes | None) -> None:
    from memmesh.gossip import Node
    from memmesh.storage import Replica

    seeds = cliopts.seeds(args)
    with Replica.open(data_dir) as replica:
        async with Node(replica, host=args.host, port=args.port, cluster_key=key,
                        seeds=seeds, mdns=not args.no_mdns, interval=args.interval,
                        insecure=args.insecure) as node:
            print(f"memmesh node {node.replica_id} listening on {args.host}:{node.port} "
                  f"({'TLS 1.3' if key else 'INSECURE plain TCP'}); Ctrl-C stops",
                  file=sys.stderr, flush=True)
            while True:
                snapshot = node.status().as_dict()
                snapshot["written_at"] = time.time()
                await trio.to_thread.run_sync(_write_status, data_dir, snapshot)
                await trio.sleep(1.0)


def run_node(args: argparse.Namespace, data_dir: Path, key: bytes | None) -> int:
    """Run a node until interrupted (the ``memmesh node`` command)."""
    if key is None and not args.insecure:
        print("memmesh: a cluster key is required: `memmesh keygen > cluster.key` once, "
              "copy it to every member, then `memmesh node --key-file cluster.key` "
              "(or set MEMMESH_CLUSTER_KEY); --insecure for a trusted test machine only",
              file=sys.stderr)
        return 2
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        trio.run(_serve, args, data_dir, key)
    except KeyboardInterrupt:
        pass
    finally:
        (data_dir / STATUS_FILE).unlink(missing_ok=True)
    return 0
