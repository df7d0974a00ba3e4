"""``memmesh demo``: three agents on this machine converging, with conflicts resolved.

A planner, a coder and a reviewer each open an LMDB replica in a temporary directory
and run a gossip ``Node`` on 127.0.0.1, linked by seeds (or mDNS on loopback with
``--mdns``) over TLS 1.3 on member credentials: the demo makes an authority in its
temporary directory and issues each agent a credential file (read and write grants on
the demo's app and user, its role, its own name as its actor), as an operator would
with ``memmesh authority init`` and ``issue``. The demo writes memories in several
scopes and tiers (the private note stays home), makes two agents rewrite the same memory
at the same instant twice (two wordings of one fact, then a contradiction), shows both
versions standing everywhere, lets the fleet's resolver (near-duplicate, then role
priority) settle each conflict exactly once on the elected replica, and prints one
memory's timeline and a search over the converged memory. Offline.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import trio

AGENTS = (("planner", "lead"), ("coder", "engineer"), ("reviewer", "reviewer"))
USER = "alice"
APP = "shop-redesign"
GRANT = f"apps={APP};users={USER}"  # what each agent's credential reads and writes


class _Clock:
    """Seconds since the demo started, for the printed timeline."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.start


def _say(clock: _Clock, text: str) -> None:
    print(f"[{clock():6.2f}s] {text}", flush=True)


async def _wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)


def _digests_equal(replicas: Sequence[Any]) -> bool:
    return len({r.state_digest() for r in replicas}) == 1


def _quiet_model_loading() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class _Gate:
    """The fleet's resolver, held back ("no opinion") until :attr:`opened` is set, so the
    demo can show a conflict standing on every replica before it is resolved."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", "resolver")
        self.opened = threading.Event()

    def __call__(self, conflict: Any) -> Any:
        return self.inner(conflict) if self.opened.is_set() else None


def build_resolver(embedder: Any | None) -> Any:
    """The fleet's merge hook: same wording -> keep newest; else the lead's word wins.

    Without an embedder (``--no-semantic``) the newest version wins.
    """
    from memmesh.semantic import KeepAll, LastWriterWins, NearDuplicate, RolePriority, chain

    if embedder is None:
        return chain(LastWriterWins())
    return chain(
        NearDuplicate(threshold=0.85, embedder=embedder),
        RolePriority(["lead", "engineer", "reviewer"]),
        KeepAll(),
    )


async def _demo(root: Path, *, mdns: bool, semantic: bool, clock: _Clock) -> None:
    from memmesh.gossip import Node
    from memmesh.storage import Replica

    identities = _issue_credentials(root)
    _say(clock, f"authority 'demo-fleet' made in {root / 'issuer.key'}; each agent runs on "
         f"its own credential ({GRANT}, roles {', '.join(r for _, r in AGENTS)})")
    embedder = None
    if semantic:
        from memmesh.semantic import SentenceTransformerEmbedder

        _say(clock, "loading the embedding model (all-MiniLM-L6-v2, offline) ...")
        embedder = SentenceTransformerEmbedder()
        embedder.embed(["warm-up"])
    resolver = _Gate(build_resolver(embedder))
    # each agent signs its writes and keeps its replica encrypted under its own key
    replicas = [Replica.open(root / name, identity=identities[name],
                             at_rest_key=identities[name].at_rest_key())
                for name, _ in AGENTS]
    by_name = dict(zip((n for n, _ in AGENTS), replicas, strict=True))
    nodes: list[Any] = []
    try:
        async with trio.open_nursery() as nursery:
            first_port: list[int] = []
            for i, (name, _role) in enumerate(AGENTS):
                seeds = [] if mdns or i == 0 else [("127.0.0.1", first_port[0])]
                node = Node(by_name[name], identity=identities[name], seeds=seeds, mdns=mdns,
                            interval=0.5, resolver=resolver, resolver_interval=0.2,
                            resolve_deadline_ms=3000, remember_peers=False)
                ready = trio.Event()
                nursery.start_soon(_run_node, node, ready)
                await ready.wait()
                nodes.append(node)
                if i == 0:
                    first_port.append(node.port)
            how = "mDNS on loopback" if mdns else f"seed 127.0.0.1:{first_port[0]}"
            _say(clock, "3 agent nodes up: " + ", ".join(
                f"{n.replica_id}@127.0.0.1:{n.port}" for n in nodes)
                + f" (TLS 1.3 on member credentials; discovery: {how})")
            await _wait_until(lambda: all(len(n.peers) >= (2 if mdns else 1) for n in nodes))
            _say(clock, "links up: " + "; ".join(f"{n.replica_id} <-> {', '.join(n.peers)}"
                                                 for n in nodes))
            await _scenario(by_name, replicas, nodes, clock, embedder, resolver)
            nursery.cancel_scope.cancel()
    finally:
        for replica in replicas:
            replica.close()


def _issue_credentials(root: Path) -> dict[str, Any]:
    """An authority in ``root`` and a credential file per agent, read back as a member
    would (``MemberIdentity.load``)."""
    from memmesh.trust import Authority, Grant, MemberIdentity

    authority = Authority.create("demo-fleet")
    authority.save(root / "issuer.key")
    now = int(time.time() * 1000)
    grant = (Grant.parse(GRANT),)
    out = {}
    for name, role in AGENTS:
        path = root / f"{name}.cred"
        authority.issue(name, read=grant, write=grant, roles=(role,), actors=(name,),
                        expires_ms=now + 86_400_000, now_ms=now).save(path)
        out[name] = MemberIdentity.load(path)
    return out


async def _run_node(node: Any, ready: trio.Event) -> None:
    async with node:
        ready.set()
        await trio.sleep_forever()


async def _scenario(by_name: dict[str, Any], replicas: list[Any], nodes: list[Any],
                    clock: _Clock, embedder: Any | None, gate: _Gate) -> None:
    planner, coder, reviewer = (by_name[n] for n, _ in AGENTS)
    scope = {"app_id": APP, "user_id": USER}

    # 1. memories in different scopes and tiers
    t0 = clock()
    pref = planner.add("Alice wants short answers in British English", policy="lww",
                       priority=True, actor="planner", role="lead", **scope)
    db = coder.add("The staging database runs PostgreSQL 15", actor="coder",
                   role="engineer", **scope)
    api = planner.add("The public API is REST over HTTPS", actor="planner", role="lead",
                      **scope)
    note = reviewer.add("scratch: re-read the checkout diff before lunch", actor="reviewer",
                        run_id="review-42", **scope)
    planner.set_add("tasks", "migrate checkout to the new API", **scope)
    coder.set_add("tasks", "bump the staging database", **scope)
    _say(clock, "planner: preference (LWW, priority push) + API note; coder: database "
         "note; reviewer: a private run-scoped note; planner+coder: 2 tasks in an OR-Set")
    await _wait_until(lambda: _digests_equal(replicas))
    _say(clock, f"converged in {clock() - t0:.2f}s: every replica has digest "
         f"{replicas[0].state_digest()[:16]}...")
    for name, replica in by_name.items():
        seen = "yes" if replica.get(note) is not None else "no"
        print(f"           {name:<9} preference={replica.get(pref).text!r}  "
              f"tasks={len(replica.set_members('tasks'))}  private note visible={seen}")

    # 2. concurrent rewrites: no await between them, so neither has seen the other
    t1 = clock()
    coder.update(db, "Staging uses Postgres 16 as its database", actor="coder",
                 role="engineer")
    reviewer.update(db, "The staging database runs PostgreSQL 16", actor="reviewer",
                    role="reviewer")
    coder.update(api, "The public API is GraphQL", actor="coder", role="engineer")
    planner.update(api, "The public API is REST over HTTPS, versioned under /v2",
                   actor="planner", role="lead")
    _say(clock, "concurrent rewrites: coder and reviewer reword the database note; "
         "coder and planner contradict each other on the API")
    await _wait_until(lambda: _digests_equal(replicas))
    _say(clock, f"synced in {clock() - t1:.2f}s; every replica now holds both versions of each "
         "(the arbiters were held back so you can see them):")
    for mid in (db, api):
        rec = reviewer.get(mid)
        print(f"           memory {mid[:8]}: conflicted={rec.conflicted}")
        for v in rec.versions:
            print(f"             - {v.text!r}  (by {v.actor}, role {v.role})")
    t2 = clock()
    gate.opened.set()
    _say(clock, f"arbiters released: resolver = {gate.name}")
    await _wait_until(lambda: _digests_equal(replicas) and not any(
        r.get(m).conflicted for r in replicas for m in (db, api)))
    _say(clock, f"both conflicts resolved and converged {clock() - t2:.2f}s later")
    for mid in (db, api):
        rec = planner.get(mid)
        winner = rec.versions[0]
        resolves = [e for e in planner.history(mid) if e.op == "RESOLVE"]
        print(f"           {winner.text!r}")
        print(f"             resolved by {winner.resolver} on replica {winner.replica} "
              f"({len(resolves)} RESOLVE event(s) in the fleet's history)")

    # 3. a timeline and a search over the converged memory
    _say(clock, f"timeline of the API memory ({api[:8]}) on the reviewer's replica:")
    for event in reviewer.history(api):
        text = f"  {event.text!r}" if event.text else ""
        who = f"resolver={event.detail.get('resolver')}" if event.op == "RESOLVE" \
            else f"actor={event.actor}"
        print(f"             {event.op:<8} {event.replica:<9} {who}{text}")
    if embedder is not None:
        from memmesh.semantic import SemanticIndex

        index = SemanticIndex(reviewer, embedder=embedder)
        hits = index.search("which database does staging use?", k=1, user_id=USER)
        _say(clock, "reviewer searches 'which database does staging use?':")
        for hit in hits:
            print(f"             {hit.score:.3f}  {hit.record.text!r}")
    summary = "; ".join(f"{s.replica_id}: {len(s.peers)} peers, {s.bytes_out} B out"
                        for s in (n.status() for n in nodes))
    _say(clock, f"done. {summary}")


def run_demo(*, mdns: bool = False, semantic: bool = True) -> int:
    """Run the demo; return a process exit code."""
    _quiet_model_loading()
    clock = _Clock()
    root = Path(tempfile.mkdtemp(prefix="memmesh-demo-"))
    print("memmesh demo: three agents (planner, coder, reviewer), one LMDB replica each, "
          f"under {root}")
    try:
        trio.run(lambda: _demo(root, mdns=mdns, semantic=semantic, clock=clock))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0
