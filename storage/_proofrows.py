"""Proofs beside the states: the ``proof`` rows a replica keeps, what ``sync_changes``
ships of them, and what ``sync_apply`` takes in.

A key's proof row (``proof`` sub-database, under the key's state key) holds the proofs
of the dots its state needs (:func:`._proofs.needed`), pruned whenever the state is
stored. Credentials that stored proofs name are kept in ``cred`` (id -> bytes) so the
replica can relay third parties' writes. Without a ``TrustStore`` a replica keeps the
proofs it is offered as they are (it checks nothing, so a signed fleet can still relay
through it); with one, only the proofs :class:`._verify.WriteCheck` checked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from memmesh.crdt.keystate import KeyState
from memmesh.trust import TrustStore, digest16

from ._env import Txn
from ._proofs import CRED_ID_LEN, needed, pack_row, unpack_row
from ._records import Refusal
from ._verify import WriteCheck

__all__ = ["Intake", "Outbox", "store_proofs"]

log = logging.getLogger("memmesh.storage")

Proofs = dict[tuple[str, int], bytes]


def store_proofs(txn: Txn, skey: bytes, proofs: Mapping[tuple[str, int], bytes],
                 keep: set[tuple[str, int]], old_row: bytes | None = None) -> None:
    """Write a key's proof row: ``proofs`` restricted to ``keep``; deleted when nothing
    is left; untouched when equal to ``old_row``."""
    rows = {d: p for d, p in proofs.items() if d in keep}
    raw = pack_row(rows) if rows else None
    if raw == old_row:
        return
    if raw is None:
        txn.delete("proof", skey)
    else:
        txn.put("proof", skey, raw)


#: msgpack framing of one credential in the payload's ``creds`` array (bin header).
_CRED_OVERHEAD = 5


class Outbox:
    """What ``sync_changes`` ships beside the states: their proofs and credentials."""

    def __init__(self, txn: Txn) -> None:
        self._txn = txn
        self.creds: dict[bytes, bytes] = {}
        self.added: list[bytes] = []  # credential ids the last ``proofs`` call added

    def proofs(self, skey: bytes, state: KeyState) -> tuple[tuple[str, int, bytes], ...]:
        """The proofs of ``state`` (as shipped) held here, ``(origin, counter, proof)``;
        the credentials they name join the outbox (``added``: those new to it)."""
        self.added = []
        raw = self._txn.get("proof", skey)
        if raw is None:
            return ()
        keep = needed(state)
        out = tuple((o, c, p) for (o, c), p in sorted(unpack_row(raw).items())
                    if (o, c) in keep)
        for _, _, proof in out:
            cid = proof[:CRED_ID_LEN]
            if cid not in self.creds:
                cred = self._txn.get("cred", cid)
                self.creds[cid] = b"" if cred is None else cred
                self.added.append(cid)
        return out

    def added_bytes(self) -> int:
        """Bytes the credentials of the last ``proofs`` call add to the payload."""
        return sum(len(self.creds[cid]) + _CRED_OVERHEAD for cid in self.added)

    def withdraw(self) -> None:
        """Drop the credentials the last ``proofs`` call added (its state is not shipped)."""
        for cid in self.added:
            del self.creds[cid]
        self.added = []

    def credentials(self) -> tuple[bytes, ...]:
        return tuple(c for _, c in sorted(self.creds.items()) if c)


class Intake:
    """What ``sync_apply`` does with the proofs of one payload: checks them when the
    replica has a trust store (:class:`._verify.WriteCheck`), keeps them beside the
    stored states, and keeps the credentials they name. Refusals are logged once per
    origin and reason per doubling of their count (``counts``, kept by the caller)."""

    def __init__(self, txn: Txn, trust: TrustStore | None, offered: Mapping[str, tuple[
            tuple[str, int, bytes], ...]], creds: tuple[bytes, ...],
            counts: dict[tuple[str, str], int]) -> None:
        self._txn = txn
        self._offered = offered
        self._check = None if trust is None else WriteCheck(trust, txn, creds)
        self.trusting = trust is not None
        self._creds = {digest16(c): c for c in creds}
        self._named: set[bytes] = set()
        self._counts = counts
        self._fresh: list[tuple[bytes, bytes]] = []

    def offered(self, key: str) -> Proofs:
        return {(o, c): p for o, c, p in self._offered.get(key, ())}

    def judge(self, incoming: KeyState, old: KeyState | None) -> tuple[Refusal | None, Proofs]:
        """A refusal of ``incoming`` (None: accepted) and the proofs to keep for it."""
        key = incoming.header.key
        offered = self.offered(key)
        if self._check is None:
            return None, offered
        why, proofs = self._check.check(incoming, offered, old)
        if why is None:
            return None, proofs
        reason, detail = why
        self._log(incoming, reason, detail)
        return Refusal(key, reason, detail), {}

    @staticmethod
    def unproven(incoming: KeyState, old: KeyState | None) -> dict[str, int]:
        """What claims must stay below for a refused state: its context cut to one past
        what this replica holds of the key (an unproven context entry may be inflated,
        so capping just below it would let a claim vouch for the writes it hides)."""
        held = {} if old is None else old.ctx
        return {o: min(c, held.get(o, 0) + 1) for o, c in incoming.ctx.items()}

    def _log(self, incoming: KeyState, reason: str, detail: str) -> None:
        for origin in incoming.ctx:
            if origin in detail:
                break
        else:
            origin = "?"
        count = self._counts[(origin, reason)] = self._counts.get((origin, reason), 0) + 1
        if count & (count - 1) == 0:
            log.warning("refused a write of %s (%s, %d so far): %s", origin, reason, count,
                        detail)

    def keep_fresh(self, skey: bytes, state: KeyState, proofs: Proofs) -> None:
        """Proofs of a key new here (written with the bulk rows)."""
        if not proofs:
            return
        keep = needed(state)
        rows = {d: p for d, p in proofs.items() if d in keep}
        if rows:
            self._fresh.append((skey, pack_row(rows)))
            self._name(rows)

    def keep_joined(self, skey: bytes, new: KeyState, proofs: Proofs) -> None:
        """Proofs of a joined key: those held, then the payload's, pruned to ``new``."""
        old_row = self._txn.get("proof", skey)
        merged = unpack_row(old_row)
        if proofs:
            if self.trusting:  # checked against the incoming content: they win
                merged.update(proofs)
            else:  # unchecked: never displace a held proof
                for dot, proof in proofs.items():
                    merged.setdefault(dot, proof)
            self._name(proofs)
        store_proofs(self._txn, skey, merged, needed(new), old_row)

    def _name(self, proofs: Proofs) -> None:
        for proof in proofs.values():
            self._named.add(proof[:CRED_ID_LEN])

    def finish(self) -> None:
        """Write the bulk rows and the credentials the kept proofs name."""
        if self._fresh:
            self._txn.defer_rows("proof", self._fresh)
        for cid in self._named:
            raw = self._creds.get(cid)
            if raw is not None and self._txn.get("cred", cid) is None:
                self._txn.put("cred", cid, raw)
