"""A small signed fleet for the signed-write tests: one real authority, members with
chosen grants, and the tools of a hostile member (a write past its own check, a
payload re-encoded with a change)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from memmesh.crdt.keystate import KeyState
from memmesh.storage import Replica
from memmesh.storage._keycodec import decode, encode
from memmesh.storage.wire import Changes, parse_changes
from memmesh.trust import Authority, Grant, MemberIdentity

NOW = 1_700_000_000_000
DAY = 86_400_000

AUTHORITY = Authority.create("signed-tests")


def member(replica_id: str, write: str, *, roles: tuple[str, ...] = (),
           actors: tuple[str, ...] | None = None, expires_ms: int = NOW + 365 * DAY,
           authority: Authority = AUTHORITY) -> MemberIdentity:
    return authority.issue(replica_id, read=(Grant.parse("all"),),
                           write=tuple(Grant.parse(w) for w in write.split(";")),
                           roles=roles, actors=actors, expires_ms=expires_ms, now_ms=NOW)


def open_member(root: Path, identity: MemberIdentity | None = None, *,
                name: str | None = None, clock: Callable[[], int] = lambda: NOW,
                **options: Any) -> Replica:
    name = name or (identity.replica_id if identity is not None else "plain")
    return Replica.open(root / name, identity=identity, clock=clock, **options)


def hostile(replica: Replica) -> Replica:
    """``replica`` with its own write check switched off: it signs whatever it writes,
    as a compromised member's code would."""
    signing = replica._memory._signing
    assert signing is not None
    signing.authorize = lambda *args, **kwargs: None  # type: ignore[method-assign]
    return replica


def pull(dst: Replica, src: Replica) -> Any:
    """One pull of ``dst`` from ``src``; the ApplyResult."""
    return dst.sync_apply(src.sync_changes(dst.sync_summary()))


def altered(payload: bytes, change: Callable[[KeyState], KeyState]) -> bytes:
    """``payload`` with every state re-encoded after ``change`` (its proofs and
    credentials as they were): what a hostile relay ships."""
    c = parse_changes(payload)
    states = tuple(encode(change(decode(raw))) for raw in c.states)
    return Changes(c.rid, c.scope, states, c.through, c.hashes, c.proofs, c.creds).pack()


def sync_all(replicas: list[Replica], rounds: int = 3) -> list[Any]:
    """Pull every replica from every other, ``rounds`` times; every refusal seen."""
    refused = []
    for _ in range(rounds):
        for dst in replicas:
            for src in replicas:
                if dst is not src:
                    refused.extend(pull(dst, src).refused)
    return refused
