"""Scenario ``byzantine``: one member sends forged claims and poison states.

Issue 11 at fleet scale. One member runs modified code: its replica's outgoing payloads
go through a :class:`~.forgery.Forger` (:class:`~.forgery.ForgingReplica`; its node and
its sync policy are the ordinary ones), and while the honest members write, every
``ATTACK_EVERY`` rounds it sends one more forgery to a peer it is linked to:

1. claims for ``MADE_UP`` made-up origins, in two payloads (case 5);
2. a set state holding the element ``True`` (case 7);
3. a claim ``{C: 2**62}`` with no states, C an honest member's origin (case 4);
4. a state for a new key reusing an honest memory's dot (case 3);
5. its own memory stamped with the hybrid clock's largest logical part (accepted: the
   receiver's clock moves on) and with ``2**32 - 2`` (refused, case 6);
6. its own memory stamped a year ahead (refused, case 8);
7. two states of one new key differing only in ``created``'s replica, to two peers in
   opposite orders (case 2).

Convergence and the invariants are judged over the honest members only
(``Cluster.byzantine``). The report counts what the honest members refused of the
byzantine member's states, by reason, and which forgeries went out.
"""

from __future__ import annotations

from typing import Any

from memmesh.crdt import LOGICAL_CEILING, Dot

from .forgery import (
    Forger,
    ForgingReplica,
    claims_only,
    created_by,
    memory_state,
    restamped,
    reusing_dot,
    set_state,
    shipping,
    state_of,
    with_element,
)
from .node import SimNode
from .rng import stream
from .runner import RunContext, converged_report
from .writelog import MemoryInfo

YEAR_MS = 365 * 24 * 3600 * 1000
ATTACK_EVERY = 2  # rounds between two attacks
MADE_UP = 200  # made-up origins per payload (the cap itself: tests/hostile)
WRITE_ROUNDS = 18
LIE = 2**62


def byzantine(ctx: RunContext) -> dict[str, Any]:
    """N members, one of them byzantine; honest writes for ``WRITE_ROUNDS`` rounds."""
    opts = ctx.options
    n = max(4, opts.nodes)
    cluster = ctx.cluster(resolve=True)
    names = [cluster.node_name(i) for i in range(n)]
    rng = stream(opts.seed, "byzantine")
    liar = names[rng.randrange(n)]
    forger = Forger()
    for name in names:
        cluster.add_node(name, wrap=(lambda r: ForgingReplica(r, forger)) if name == liar
                         else None)
    cluster.byzantine.add(liar)
    honest = [m for m in names if m != liar]
    cluster.progress_total_us = (WRITE_ROUNDS + 30) * cluster.interval_us
    work = cluster.workload_rng
    scope = {"app_id": "fleet", "user_id": "ops"}
    memories: list[str] = []
    counter = [0]

    def write() -> None:
        writer = honest[work.randrange(len(honest))]
        counter[0] += 1
        if work.random() < 0.2:
            cluster.nodes[writer].replica.set_add("tags", f"t{counter[0]}", **scope)
            cluster.nodes[writer].local_writes()
        else:
            cluster.write_any(writer, memories, f"w{counter[0]} by {writer}", work, **scope)

    start = cluster.loop.now_us
    for _ in range(opts.writes):
        cluster.loop.call_at(start + work.randrange(WRITE_ROUNDS * cluster.interval_us), write)
    attack = Attack(cluster, cluster.nodes[liar], forger, rng, memories)
    moves = [attack.made_up_origins, attack.poisoned_set, attack.forged_claim,
             attack.reused_dot, attack.logical_bound, attack.future_stamp,
             attack.created_variants]
    for k, move in enumerate(moves):
        cluster.loop.call_at(start + (1 + k * ATTACK_EVERY) * cluster.interval_us, move)
    cluster.loop.run(start + WRITE_ROUNDS * cluster.interval_us)
    report = converged_report(cluster, n, opts.max_rounds)
    report["byzantine"] = {
        "member": liar,
        "forgeries": attack.sent,
        "forged_payloads_sent": sum(forger.sent.values()),
        "refused_by_honest_members": dict(sorted(cluster.refused_from.get(liar, {}).items())),
    }
    cluster.close()
    return report


class Attack:
    """The byzantine member's moves (see the module docstring), each queued on the
    forger for a peer it is linked to when the move is made."""

    def __init__(self, cluster: Any, node: SimNode, forger: Forger, rng: Any,
                 memories: list[str]) -> None:
        self.cluster = cluster
        self.node = node
        self.forger = forger
        self.rng = rng
        self.memories = memories
        self.origin = f"{node.node_id}#forged"  # dots of the states it makes up
        self.counter = 0
        self.sent: list[str] = []

    def _peers(self, k: int) -> list[str | None]:
        """``k`` peers it is linked to now (None: whoever it sends to next)."""
        policy = self.node.policy
        linked = sorted(policy.registered) if policy is not None else []
        self.rng.shuffle(linked)
        return [*linked, *[None] * k][:k]

    def _dot(self) -> int:
        self.counter += 1
        return self.counter

    def _forged(self, key: str) -> None:
        """A key it made up reaches honest replicas (a valid state): it is no honest
        write, and must not count as a leak."""
        self.cluster.writelog.created(MemoryInfo(key, self.node.node_id, None, None,
                                                 "shared", "mv", "forged"))

    def _own(self, text: str) -> str:
        """A memory of its own, written honestly (the base of a restamped forgery)."""
        return str(self.cluster.add(self.node.node_id, text, app_id="fleet", user_id="ops"))

    def forged_claim(self) -> None:
        origins = sorted(str(node.replica.origin) for m, node in self.cluster.nodes.items()
                         if m not in self.cluster.byzantine and node.up
                         and node.replica.origin is not None)
        if not origins:
            return
        origin = origins[self.rng.randrange(len(origins))]
        for peer in self._peers(2):
            self.forger.next(peer, claims_only({origin: (0, LIE)}))
        self.sent.append("forged-claim")

    def made_up_origins(self) -> None:
        (peer,) = self._peers(1)
        for frame in range(2):
            made_up = {f"made-up-{frame}-{i:05d}#x": (0, 7) for i in range(MADE_UP)}
            self.forger.next(peer, claims_only(made_up))
        self.sent.append("made-up-origins")

    def poisoned_set(self) -> None:
        try:
            base = state_of(self.node.replica, "tags")
            poisoned = with_element(base, True, Dot(self.origin, self._dot()))
        except AssertionError:  # it holds no such set yet: make one up
            poisoned = set_state("tags", self.origin, self._dot(), True, user_id="ops")
        (peer,) = self._peers(1)
        self.forger.next(peer, shipping(poisoned))
        self.sent.append("poisoned-set")

    def reused_dot(self) -> None:
        for memory_id in self.memories:
            try:
                state = state_of(self.node.replica, memory_id)
            except AssertionError:
                continue
            if len(state.body) == 1:
                key = f"{memory_id}-forged"
                self._forged(key)
                (peer,) = self._peers(1)
                self.forger.next(peer, shipping(reusing_dot(state, key, "a forgery")))
                self.sent.append("reused-dot")
                return

    def logical_bound(self) -> None:
        wall = self.node.clock()
        for logical in (LOGICAL_CEILING, 2**32 - 2):
            memory_id = self._own(f"stamped with logical part {logical}")
            forged = restamped(state_of(self.node.replica, memory_id), wall + 1000, logical)
            (peer,) = self._peers(1)
            self.forger.next(peer, shipping(forged))
        self.sent.append("logical-bound")

    def future_stamp(self) -> None:
        memory_id = self._own("stamped a year ahead")
        forged = restamped(state_of(self.node.replica, memory_id),
                           self.node.clock() + YEAR_MS, 0)
        (peer,) = self._peers(1)
        self.forger.next(peer, shipping(forged))
        self.sent.append("future-stamp")

    def created_variants(self) -> None:
        key = f"created-by-{self.node.node_id}"
        self._forged(key)
        one = memory_state(key, self.origin, self._dot(), "one memory, two headers",
                           wall=self.node.clock(), user_id="ops")
        other = created_by(one, f"{self.node.node_id}#other")
        first, second = self._peers(2)
        self.forger.next(first, shipping(one), shipping(other))
        self.forger.next(second, shipping(other), shipping(one))
        self.sent.append("created-variants")
