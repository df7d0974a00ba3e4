"""The status file of a running node, and what ``memmesh status`` makes of it.

The node runner writes a JSON snapshot of ``node.status()`` to ``DATA/node-status.json``
every second (atomically, by rename) and removes it as soon as it is told to stop;
``memmesh status`` in another shell reads it without talking to the node.  A snapshot
counts only while a process holds the directory's run lock (:mod:`.runlock`), so a node
that died, even by SIGKILL, is never shown as running.  :func:`format_status` renders a
snapshot for people: the node, then each peer and each configured seed with state, last
contact, lag, bytes and one line of trouble (refusals, errors, the last error).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from memmesh.gossip import format_address
from memmesh.integrations._runlock import holder

__all__ = ["STALE_AFTER_S", "STATUS_FILE", "format_status", "read_status", "remove_status",
           "running_pid", "write_status"]

STATUS_FILE = "node-status.json"
#: A snapshot older than this is flagged (the node runs but its loop is stuck).
STALE_AFTER_S = 10.0


def write_status(data: Path, status: dict[str, Any]) -> None:
    """Replace the status file with ``status`` (plus ``written_at`` and ``pid``)."""
    status = {**status, "written_at": time.time(), "pid": os.getpid()}
    path = data / STATUS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status, indent=1))
    os.replace(tmp, path)


def remove_status(data: Path) -> None:
    (data / STATUS_FILE).unlink(missing_ok=True)


def running_pid(data: Path) -> int | None:
    """The pid of the node running on ``data`` (0: unknown), None when none runs."""
    return holder(data)


def read_status(data: Path) -> dict[str, Any] | None:
    """The last snapshot of the node running on ``data``, with ``age_s``; None when no
    node runs there (whatever file a dead one left) or it has written none yet."""
    if running_pid(data) is None:
        return None
    try:
        status: dict[str, Any] = json.loads((data / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(status, dict):
        return None
    status["age_s"] = max(0.0, time.time() - float(status.get("written_at", 0)))
    return status


def _ago(now: float, then: float | None) -> str:
    return "never" if then is None else f"{max(0.0, now - then):.1f}s ago"


def _address(value: Any) -> str:
    return format_address(str(value[0]), int(value[1])) if value else "-"


def format_status(status: dict[str, Any]) -> str:
    """A readable table of a status snapshot."""
    now = time.time()
    where = format_address(str(status["host"]), int(status["port"]))
    head = f"replica {status['replica_id']} on {where} " \
           f"({'TLS' if status['secure'] else 'INSECURE'})"
    if status.get("bind"):
        head += f": {status['bind']}"
    lines = [
        head,
        f"syncs={status['syncs']} pushes={status['pushes']} "
        f"bytes in/out={status['bytes_in']}/{status['bytes_out']}",
    ]
    if status.get("pid") is not None:
        age = float(status.get("age_s", 0.0))
        stale = f" (STALE: over {STALE_AFTER_S:g}s old; is the node stuck?)" \
            if age > STALE_AFTER_S else ""
        lines.insert(0, f"node running, pid {status['pid']}; status {age:.1f}s old{stale}")
    if status.get("write_fence"):
        lines.append(f"WRITES FENCED: {status['write_fence']}")
    if status.get("revocations"):
        lines.append(f"revocations held: {status['revocations']}")
    trouble = {k: status.get(k) for k in ("refusals", "errors", "dropped") if status.get(k)}
    if trouble:
        lines.append("  ".join(f"{k}: {v}" for k, v in trouble.items()))
    if status.get("repairs") or status.get("lowered"):
        lines.append(f"digest repair: {status.get('repairs', 0)} repairs, "
                     f"{status.get('repaired', 0)} keys repaired, "
                     f"{status.get('lowered', 0)} watermarks proved false")
    lines.append(f"{'peer':<34} {'address':<22} {'dir':<4} {'lag':>6} {'last sync':>10} "
                 f"{'last contact':>12} {'in':>10} {'out':>10}")
    for peer in status["peers"]:
        lag = "?" if peer["lag"] is None else str(peer["lag"])
        lines.append(f"{peer['replica_id']:<34} {_address(peer['address']):<22} "
                     f"{peer['direction']:<4} {lag:>6} {_ago(now, peer['last_sync']):>10} "
                     f"{_ago(now, peer.get('last_contact')):>12} "
                     f"{peer['bytes_in']:>10} {peer['bytes_out']:>10}")
        notes = _peer_trouble(peer)
        if notes:
            lines.append(f"  {notes}")
    if not status["peers"]:
        lines.append("(no peers connected)")
    if status.get("seeds"):
        lines.append(f"{'seed':<34} {'state':<12} {'peer':<22} {'lag':>6} "
                     f"{'last contact':>12} {'in':>10} {'out':>10}")
        for seed in status["seeds"]:
            lag = "?" if seed.get("lag") is None else str(seed["lag"])
            lines.append(f"{_address(seed['address']):<34} {seed['state']:<12} "
                         f"{seed.get('peer_id') or '-':<22} {lag:>6} "
                         f"{_ago(now, seed.get('last_contact')):>12} "
                         f"{seed.get('bytes_in', 0):>10} {seed.get('bytes_out', 0):>10}")
            notes = _seed_trouble(seed, now)
            if notes:
                lines.append(f"  {notes}")
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


def _seed_trouble(seed: dict[str, Any], now: float) -> str:
    """One line of a seed's last error and refusals (empty when there is none)."""
    parts = []
    if seed.get("last_error") and (seed["state"] != "connected" or seed.get("failures")):
        parts.append(f"last error {_ago(now, seed.get('last_error_at'))}: "
                     f"{seed['last_error']}")
    if seed.get("failures"):
        parts.append(f"{seed['failures']} failure(s) in a row")
    if seed.get("refusals"):
        parts.append("refused " + ", ".join(f"{r}: {n}" for r, n in seed["refusals"].items()))
    return "; ".join(parts)
