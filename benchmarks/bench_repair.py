"""Digest repair benchmark: bytes to find and fix a divergence that watermarks cannot see.

    .venv/bin/python -m memmesh.benchmarks.bench_repair [--quick] [--json FILE] [--dir DIR]

Two replicas hold the same N memories (100k; quick mode 10k). Figures (issue 11,
deliverable 6: one diverged key in a 100k-memory replica repaired with <= 64 KB):

1. one memory updated on one side while a forged claim makes the other side's
   watermarks cover the update (the delta log ships nothing);
2. issue 11's case 4: a claim ``{C: 2**62}`` with no states, then a write of C.

Each is repaired through the storage calls exactly as the sync policy drives them
(:func:`repair_cycle`: summary with digest -> changes -> apply -> summary with want ->
changes -> apply, until the digests are equal); the bytes exchanged (summaries and
payloads) are set against the 64 KB target and against the full state's size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from memmesh.benchmarks.bench_storage import build_source
from memmesh.crdt.codec import packb, unpackb
from memmesh.storage import PeerScope, Replica
from memmesh.storage.repair import scope_sums

TARGET_BYTES = 64 * 1024
_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class Repaired:
    """What one repair took."""

    bytes: int  # summaries + payloads exchanged
    rounds: int  # summary -> changes -> apply round trips
    keys: int  # key states shipped


def _sums(replica: Replica, scope: PeerScope | None) -> bytes:
    with replica._env.read() as txn:
        sums: bytes = scope_sums(txn, scope)
    return sums


def repair_cycle(src: Replica, dst: Replica, *, peer: PeerScope | None = None,
                 max_bytes: int | None = None, rounds: int = 100) -> Repaired:
    """Repair what ``dst`` lacks of ``src`` within scope ``peer`` (the scope ``src``
    applies to ``dst``), as the sync policy does: a summary with a digest, or with the
    ``want`` of the last apply; ``src``'s changes; ``dst``'s apply. Stops when the
    digests over ``peer`` are equal (the policy sees it in the next summary's sums)."""
    exchanged = shipped = 0
    want: tuple[str, ...] = ()
    for done in range(rounds):
        if _sums(src, peer) == _sums(dst, peer):
            return Repaired(exchanged, done, shipped)
        summary = dst.sync_summary(want=want) if want else \
            dst.sync_summary(digest=True, digest_scope=peer)
        changes = src.sync_changes(summary, max_bytes=max_bytes, peer=peer)
        exchanged += len(summary) + len(changes)
        shipped += len(unpackb(changes)["states"])
        want = dst.sync_apply(changes).wanted
    raise RuntimeError("repair did not converge")


def _copy(src: Replica, dst: Replica) -> int:
    """Ship everything of ``src`` to ``dst`` in 4 MiB payloads; the bytes shipped."""
    total = 0
    while True:
        payload = src.sync_changes(dst.sync_summary(), max_bytes=_CHUNK)
        dst.sync_apply(payload)
        total += len(payload)
        if not unpackb(payload)["states"]:
            return total


def _forge_claim(src: Replica, dst: Replica, origin: str, counter: int) -> None:
    """A payload from ``src`` with no states that claims ``origin`` up to ``counter``."""
    plain = dict(unpackb(src.sync_changes(dst.sync_summary())))
    base = unpackb(dst.sync_summary())["wm"].get(origin, 0)
    dst.sync_apply(packb(dict(plain, states=(), through={origin: (base, counter)})))


def bench_repair(root: Path, n: int) -> dict[str, Any]:
    """Both scenarios on ``n`` memories; the figures."""
    src, ids = build_source(root / "repair-src", n)
    dst = Replica.open(root / "repair-dst", durable=False)
    full = _copy(src, dst)
    assert src.state_digest() == dst.state_digest()
    origin = src.origin
    assert origin is not None  # it has written
    # 1. one key diverged, hidden from the watermarks by a forged claim
    src.update(ids[n // 2], "diverged where the watermarks cannot see it")
    _forge_claim(src, dst, origin, n + 1)
    assert unpackb(src.sync_changes(dst.sync_summary()))["states"] == ()
    one_key = repair_cycle(src, dst)
    # 2. case 4: a claim {C: 2**62} with no states, then C writes
    _forge_claim(src, dst, origin, 2**62)
    src.add("written after the forged claim", user_id="u1", app_id="bench")
    assert unpackb(src.sync_changes(dst.sync_summary()))["states"] == ()
    forged = repair_cycle(src, dst)
    assert src.state_digest() == dst.state_digest()
    src.close()
    dst.close()
    return {"memories": n, "full_state_bytes": full, "target_bytes": TARGET_BYTES,
            "one_key": asdict(one_key), "forged_claim": asdict(forged)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k memories instead of 100k")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--dir", type=Path, help="scratch directory (default: a temp dir)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="memmesh-bench-", dir=args.dir))
    try:
        figures = bench_repair(root, 10_000 if args.quick else 100_000)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    figures["mode"] = "quick" if args.quick else "full"
    print(json.dumps(figures, indent=2))
    for name in ("one_key", "forged_claim"):
        spent = figures[name]["bytes"]
        print(f"{name}: {spent:,} B exchanged in {figures[name]['rounds']} rounds"
              f" ({spent / TARGET_BYTES:.0%} of the 64 KB target,"
              f" {spent / figures['full_state_bytes']:.3%} of the full state)", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
