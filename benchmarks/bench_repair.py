"""Digest repair benchmark: bytes to find and fix a divergence that watermarks cannot see.

    .venv/bin/python -m memmesh.benchmarks.bench_repair [--quick] [--json FILE] [--dir DIR]
        [--steady N]

Two replicas hold the same N memories (100k; quick mode 10k). Figures (issue 11,
deliverable 6: one diverged key in a 100k-memory replica repaired with <= 64 KB):

1. one memory updated on one side while a forged claim makes the other side's
   watermarks cover the update (the delta log ships nothing);
2. issue 11's case 4: a claim ``{C: 2**62}`` with no states, then a write of C;
3. the same divergence as 1 found and repaired by the sync policy itself: the two
   replicas linked through the test driver (``MemoryNetwork``, default
   ``PolicyConfig``), every frame counted (HELLOs, SYNs, CHANGES, ACKs, keepalives:
   protocol framing included) from the moment they link until their digests agree;
   ``idle_bytes`` is what the converged pair exchanges over the same time afterwards.

1 and 2 are repaired through the storage calls exactly as the sync policy drives them
(:func:`repair_cycle`: summary with digest -> changes -> apply -> summary with want ->
changes -> apply, until the digests are equal); the bytes exchanged (summaries and
payloads) are set against the 64 KB target and against the full state's size.

``--steady N`` adds what scheduled repair costs a converged fleet
(:func:`steady_state`): simulated fleets of N nodes with the workloads of the
``spread`` (one write, no ACLs) and ``fleet`` (every node writes, each restricted to
one of 4 users) scenarios, run to convergence and then 120 rounds more, with repair on
and off (same seeds: the policy's choices are the same), protocol bytes per node per
round over those 120 rounds.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from memmesh.benchmarks.bench_storage import build_source
from memmesh.crdt import packb, unpackb
from memmesh.gossip.protocol.driver import MemoryNetwork
from memmesh.storage import PeerScope, Replica
from memmesh.storage._repair import scope_sums

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


def policy_repair(src: Replica, dst: Replica, *, limit: float = 600.0) -> dict[str, Any]:
    """Link ``dst`` to ``src`` through the test driver (default ``PolicyConfig``): every
    frame's bytes, both ways, until their digests agree (``bytes``: finding and repairing
    the divergence), then until the watermark path has nothing left to ship
    (``aftermath_bytes``: what storage's lie detector made ``dst`` fetch again after
    lowering the watermark the repaired key proved false), then over 10 s of a quiet
    pair (``idle_bytes``); with the virtual seconds, pulls, repair pulls, keys repaired
    and watermarks lowered."""
    sent = [0]

    def tap(frame: bytes) -> None:
        sent[0] += len(frame)

    def quiet() -> bool:
        return not unpackb(src.sync_changes(dst.sync_summary()))["states"]

    net = MemoryNetwork(rng=random.Random(1), tap=tap)
    net.connect(dst, src)
    if not net.run_until(lambda: src.state_digest() == dst.state_digest(), limit=limit):
        raise RuntimeError("the policy did not repair the divergence")
    took, spent = net.now, sent[0]
    sent[0] = 0
    if not net.run_until(quiet, limit=limit):
        raise RuntimeError("the watermark path never settled")
    after, aftermath = net.now - took, sent[0]
    sent[0] = 0
    net.run_until(lambda: False, limit=10.0)
    policy = net.policy(dst)
    return {"bytes": spent, "seconds": round(took, 2), "syncs": net.syncs,
            "repairs": policy.counters["repairs"], "repaired": policy.counters["repaired"],
            "lowered": policy.counters["lowered"], "aftermath_bytes": aftermath,
            "aftermath_seconds": round(after, 2), "idle_bytes_10s": sent[0]}


def steady_state(root: Path, nodes: int, *, rounds: int = 120, seed: int = 1
                 ) -> dict[str, Any]:
    """Protocol bytes per node per round of converged simulated fleets, repair on and
    off (see the module docstring)."""
    import math

    from memmesh.gossip.protocol import PolicyConfig
    from memmesh.simulations import SimOptions
    from memmesh.simulations.cluster import Cluster
    from memmesh.simulations.engine import US_PER_S

    def one(kind: str, repair: bool) -> dict[str, Any]:
        work = root / f"steady-{kind}-{'on' if repair else 'off'}"
        work.mkdir(parents=True)
        cluster = Cluster(SimOptions(nodes=nodes, seed=seed), work)
        interval = cluster.interval_us / US_PER_S
        if not repair:
            cluster.policy_config = lambda max_links: PolicyConfig(
                interval=interval, max_links=max_links, repair_interval=math.inf)
        users = [f"u{j}" for j in range(4)]
        for i in range(nodes):
            scope = None if kind == "spread" else PeerScope(
                apps=frozenset({"fleet"}), users=frozenset({users[i % 4]}))
            cluster.add_node(cluster.node_name(i), scope=scope)
        cluster.run_for(1)
        if kind == "spread":
            cluster.add(cluster.node_name(0), "the rumour", user_id="u1", app_id="spread")
        else:
            for i in range(nodes):
                cluster.add(cluster.node_name(i), f"fact-{i}", app_id="fleet",
                            user_id=users[i % 4])
        converged = cluster.run_until_converged(cluster.loop.now_us, 200)
        if not converged.converged:
            raise RuntimeError(f"{kind} did not converge")
        start = len(cluster.metrics.rounds)
        before = {k: sum(n.policy.counters[k] for n in cluster.up_nodes() if n.policy)
                  for k in ("repairs", "repaired")}
        cluster.run_for(rounds)
        window = cluster.metrics.rounds[start + 1:-1]  # whole rounds only
        per_node = sum(r.app_bytes for r in window) / sum(r.live_nodes for r in window)
        counts = {k: sum(n.policy.counters[k] for n in cluster.up_nodes() if n.policy)
                  - before[k] for k in before}
        checks = sum(n.policy.repair.clean_checks for n in cluster.up_nodes() if n.policy)
        cluster.close()
        return {"bytes_per_node_per_round": round(per_node, 1),
                "rounds_to_converge": converged.rounds, **counts, "clean_checks": checks}

    out: dict[str, Any] = {"nodes": nodes, "rounds": rounds, "seed": seed}
    for kind in ("spread", "fleet"):
        out[kind] = {"off": one(kind, False), "on": one(kind, True)}
    return out


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
    # 3. as 1, found and repaired by the sync policy over the protocol
    src.update(ids[n // 3], "diverged again, for the sync policy to find")
    counter = unpackb(src.sync_summary())["wm"][origin]
    _forge_claim(src, dst, origin, max(counter, unpackb(dst.sync_summary())["wm"][origin] + 1))
    assert unpackb(src.sync_changes(dst.sync_summary()))["states"] == ()
    policy = policy_repair(src, dst)
    src.close()
    dst.close()
    return {"memories": n, "full_state_bytes": full, "target_bytes": TARGET_BYTES,
            "one_key": asdict(one_key), "forged_claim": asdict(forged), "policy": policy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k memories instead of 100k")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--dir", type=Path, help="scratch directory (default: a temp dir)")
    parser.add_argument("--steady", type=int, metavar="N",
                        help="also: steady-state cost in converged simulated fleets of N")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="memmesh-bench-", dir=args.dir))
    try:
        figures = bench_repair(root, 10_000 if args.quick else 100_000)
        if args.steady:
            figures["steady_state"] = steady_state(root, args.steady)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    figures["mode"] = "quick" if args.quick else "full"
    print(json.dumps(figures, indent=2))
    for name in ("one_key", "forged_claim"):
        spent = figures[name]["bytes"]
        print(f"{name}: {spent:,} B exchanged in {figures[name]['rounds']} rounds"
              f" ({spent / TARGET_BYTES:.0%} of the 64 KB target,"
              f" {spent / figures['full_state_bytes']:.3%} of the full state)", file=sys.stderr)
    pol = figures["policy"]
    print(f"policy: {pol['bytes']:,} B of frames in {pol['seconds']} s ({pol['repairs']}"
          f" repair pulls, {pol['repaired']} key repaired; {pol['bytes'] / TARGET_BYTES:.0%}"
          f" of the 64 KB target); then {pol['aftermath_bytes']:,} B re-fetched after"
          f" {pol['lowered']} watermark(s) lowered; idle pair {pol['idle_bytes_10s']:,} B"
          f" per 10 s", file=sys.stderr)
    for kind, runs in figures.get("steady_state", {}).items():
        if isinstance(runs, dict):
            off, on = runs["off"], runs["on"]
            print(f"converged {kind}, {figures['steady_state']['nodes']} nodes:"
                  f" {on['bytes_per_node_per_round']:,} B per node per round with repair"
                  f" ({on['repairs']} repair pulls, {on['clean_checks']} checks settled by"
                  f" roots), {off['bytes_per_node_per_round']:,} B without", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
