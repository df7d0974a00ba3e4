"""The write check of ``sync_apply`` on a replica with a ``TrustStore``: every received
write must carry a valid proof of its origin, whose credential allowed it.

For one received key state (``incoming``) against what this replica holds (``old``):
every body dot and event dot it does not hold as is has a proof whose content digest,
op and wall time match the content, whose leaf climbs to a root the origin's credential
signed (``TrustStore.verify_root``: each root verified once, and within one payload a
path stops at the first node already proven), and the origin's credential
(``base_replica(origin) == credential.replica_id``) allowed the write at its stamp on
the header's scope with the role and actor it claims (``TrustStore.check_write``, the
single rule). Every origin whose context entry rises has a valid proof for its frontier
dot (else a peer could inflate another member's counter and hide or freeze its
writes); a tombstone new here needs a frontier dot proven to be a FORGET. The relay
does not matter: the check is on the origin. The reasons: docs/internals.md, "Signed
writes".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import suppress

from memmesh.crdt import DecodeError, Dot, base_replica
from memmesh.crdt.keystate import KIND_SET, OP_FORGET, KeyState
from memmesh.trust import CredentialError, TrustStore

from ._env import Txn
from ._proofs import (
    OP_SET_ADD,
    Proof,
    climb,
    event_content,
    header_digest,
    leaf_hash,
    parse_proof,
    root_message,
    set_content,
)

__all__ = ["Judged", "WriteCheck"]

Why = tuple[str, str]
_Written = tuple[Dot, int, int, bytes, str | None, str | None]
_Scope = tuple[str | None, str | None, str | None, str | None]
#: One dot as :meth:`WriteCheck.each` judges it.
Judged = tuple[Dot, int, str | None, str | None, Proof | None, Why | None]


def _written(incoming: KeyState, old: KeyState | None) -> Iterator[_Written]:
    """``(dot, op, wall_ms or -1, content digest, role, actor)`` of every dot whose
    content ``incoming`` holds and ``old`` (None: nothing to skip) does not hold as is."""
    if incoming.header.kind == KIND_SET:
        held = {} if old is None else old.body
        for element, dots in incoming.body.items():
            mine = held.get(element, ())
            content = b""
            for dot in dots:
                if dot not in mine:
                    content = content or set_content(element)
                    yield dot, OP_SET_ADD, -1, content, None, None
        return
    body = {} if old is None else old.body
    events = {} if old is None else old.events
    done: dict[int, bytes] = {}
    for dot, v in incoming.body.items():
        if body.get(dot) != v:
            content = done[id(v)] = event_content(v.op, v.actor, v.role, v.wall_ms,
                                                  v.logical, v)
            yield dot, v.op, v.wall_ms, content, v.role, v.actor
    for dot, e in incoming.events.items():
        if events.get(dot) != e:
            version = e.version
            content = done.get(id(version), b"") if version is not None else b""
            if not content:
                content = event_content(e.op, e.actor, e.role, e.wall_ms, e.logical, version)
            yield dot, e.op, e.wall_ms, content, e.role, e.actor


def _matches(proof: Proof, op: int, wall: int, content: bytes) -> bool:
    return proof.op == op and proof.content == content and (wall < 0 or proof.wall_ms == wall)


class WriteCheck:
    """Checks the key states of one payload (see module doc); keeps, for the payload,
    the tree nodes already proven per credential."""

    def __init__(self, trust: TrustStore, txn: Txn, creds: tuple[bytes, ...]) -> None:
        self.trust = trust
        self._txn = txn
        self._known: dict[bytes, set[bytes]] = {}
        for raw in creds:  # another authority's or malformed: its writes are refused
            with suppress(CredentialError, DecodeError):
                trust.admit(raw)

    def _credential_known(self, cid: bytes) -> bool:
        if self.trust.credential(cid) is not None:
            return True
        raw = self._txn.get("cred", cid)  # relayed to us earlier
        if raw is None:
            return False
        try:
            self.trust.admit(raw)
        except (CredentialError, DecodeError):
            return False
        return True

    def check(self, incoming: KeyState, offered: Mapping[tuple[str, int], bytes],
              old: KeyState | None) -> tuple[Why | None, dict[tuple[str, int], bytes]]:
        """``(reason, detail)`` if ``incoming`` must be refused, else None; and the
        proofs checked (by dot, as bytes), to keep beside the joined state."""
        h = incoming.header
        same = old is not None and old.header == h
        base = old if same else None
        hd = header_digest(h)
        scope = (h.app_id, h.user_id, h.agent_id, h.run_id)
        checked: dict[tuple[str, int], Proof] = {}

        def proven(origin: str, counter: int, role: str | None, actor: str | None,
                   made: tuple[int, int, bytes] | None = None) -> Why | Proof:
            found = self._proven(hd, scope, offered, origin, counter, role, actor, made)
            return found if isinstance(found, Proof) else found[1]

        for dot, op, wall, content, role, actor in _written(incoming, base):
            key = (dot.replica, dot.counter)
            proof = checked.get(key)
            if proof is None:
                found = proven(dot.replica, dot.counter, role, actor, (op, wall, content))
                if not isinstance(found, Proof):
                    return found, {}
                checked[key] = found
            elif not _matches(proof, op, wall, content):
                return ("bad-proof", f"the proof of {dot} does not match its content"), {}
        for origin, counter in incoming.ctx.items():
            if (base is not None and counter <= base.ctx.get(origin, 0)) \
                    or (origin, counter) in checked:
                continue
            found = proven(origin, counter, None, None)
            if not isinstance(found, Proof):
                return found, {}
            checked[(origin, counter)] = found
        if incoming.forgotten and not (old is not None and old.forgotten):
            forgets = [d for d in incoming.ctx.items()
                       if (p := checked.get(d)) is not None and p.op == OP_FORGET]
            if not forgets:
                for origin, counter in incoming.ctx.items():
                    found = proven(origin, counter, None, None)
                    if isinstance(found, Proof) and found.op == OP_FORGET:
                        checked[(origin, counter)] = found
                        break
                else:
                    return ("bad-proof", "a tombstone without a signed FORGET"), {}
        return None, {d: offered[d] for d in checked}

    def _proven(self, hd: bytes, scope: _Scope, offered: Mapping[tuple[str, int], bytes],
                origin: str, counter: int, role: str | None, actor: str | None,
                made: tuple[int, int, bytes] | None) -> Proof | tuple[Proof | None, Why]:
        """The checked proof of ``(origin, counter)``; ``made``: the (op, wall_ms or -1,
        content digest) it must speak for, when the content is here. Else the proof as
        parsed (None: none, or malformed) and why it fails."""
        raw = offered.get((origin, counter))
        if raw is None:
            return None, ("unsigned", f"no proof for {Dot(origin, counter)}")
        try:
            proof = parse_proof(raw)
        except DecodeError as exc:
            return None, ("bad-proof", f"{Dot(origin, counter)}: {exc}")
        if made is not None and not _matches(proof, *made):
            return proof, ("bad-proof", f"the proof of {Dot(origin, counter)} does not match")
        why = self._verify(hd, origin, counter, proof, scope, role, actor)
        return proof if why is None else (proof, why)

    def each(self, state: KeyState, offered: Mapping[tuple[str, int], bytes]
             ) -> Iterator[Judged]:
        """The retrospective check (``Replica.audit``): every body and event dot of a
        stored ``state`` once (body first), judged now by the same rule as on receipt:
        ``(dot, wall_ms or -1, role, actor, proof or None, why or None)``."""
        h = state.header
        hd = header_digest(h)
        scope = (h.app_id, h.user_id, h.agent_id, h.run_id)
        seen: set[tuple[str, int]] = set()
        for dot, op, wall, content, role, actor in _written(state, None):
            key = (dot.replica, dot.counter)
            if key in seen:
                continue
            seen.add(key)
            found = self._proven(hd, scope, offered, dot.replica, dot.counter, role, actor,
                                 (op, wall, content))
            if isinstance(found, Proof):
                yield dot, wall, role, actor, found, None
            else:
                yield dot, wall, role, actor, found[0], found[1]

    def _verify(self, hd: bytes, origin: str, counter: int, proof: Proof,
                scope: _Scope, role: str | None, actor: str | None) -> Why | None:
        cid = proof.credential_id
        if not self._credential_known(cid):
            return "unknown-credential", (f"{Dot(origin, counter)} is signed by credential"
                                          f" {cid.hex()}, unknown here")
        app, user, agent, run = scope
        why = self.trust.check_write(cid, replica_id=base_replica(origin), app_id=app,
                                     user_id=user, agent_id=agent, run_id=run, role=role,
                                     actor=actor, stamp_ms=proof.wall_ms)
        if why is not None:
            return why.split(":", 1)[0], f"{Dot(origin, counter)}: {why}"
        known = self._known.setdefault(cid, set())
        nodes, reached = climb(leaf_hash(hd, origin, counter, proof.op, proof.wall_ms,
                                         proof.content), proof.leaf, proof.path, known)
        if not reached and not self.trust.verify_root(cid, root_message(cid, nodes[-1]),
                                                      proof.signature):
            return "bad-proof", f"{Dot(origin, counter)}: the signature does not verify"
        known.update(nodes)
        return None
