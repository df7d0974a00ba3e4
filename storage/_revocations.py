"""The revocations a replica holds, and how they gossip.

Rows of the ``revoke`` sub-database: credential id (16) -> ``revoked_at_ms`` (8,
big-endian) + the revocation as its issuer signed it. Per credential the earliest
revocation wins (ties: the smaller bytes, :meth:`memmesh.trust.TrustStore.add_revocation`'s
rule): a join that is commutative, associative and idempotent, so revocations spread
by anti-entropy like the memory CRDTs (a grow-only map with a min register per id).

A summary lists the held ``(credential id, revoked_at_ms)`` pairs; ``sync_changes``
ships the ones the peer lacks or holds later, first in the payload; ``sync_apply``
verifies each against the authority (one that does not verify is refused on its own,
``bad-revocation``), keeps it and hands it to the TrustStore *before* it judges the
payload's states. Only a replica with a trust store can check them, so only it keeps,
lists or relays them. Several processes may share a directory: every change moves the
``meta`` counter ``revgen``, and a process reloads the rows when it sees it move.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from memmesh.crdt import DecodeError
from memmesh.trust import CredentialError, Revocation, TrustStore

from ._env import Txn
from ._records import Refusal
from .wire import MAX_REVOCATIONS

__all__ = ["GEN", "Revocations", "parse_revocation"]

log = logging.getLogger("memmesh.storage")

GEN = b"revgen"
_AT = 8


def _row(rev: Revocation) -> bytes:
    row: bytes = rev.revoked_at_ms.to_bytes(_AT, "big") + rev.raw
    return row


def parse_revocation(data: bytes | Revocation, trust: TrustStore) -> Revocation:
    """``data`` as a revocation made by ``trust``'s authority; ``DecodeError`` if
    malformed, :class:`CredentialError` if another authority made it."""
    rev = data if isinstance(data, Revocation) else Revocation.from_bytes(data)
    rev.verify(trust.authority)
    return rev


class Revocations:
    """A replica's revocations (see the module doc); inert without a trust store."""

    def __init__(self, trust: TrustStore | None) -> None:
        self.trust = trust
        self._gen = -1  # the revgen this process last loaded
        self._refusals: dict[str, int] = {}  # sender -> bad revocations seen

    def refresh(self, txn: Txn) -> None:
        """Load the rows into the trust store if they changed since last time."""
        if self.trust is None:
            return
        gen = txn.counter(GEN)
        if gen == self._gen:
            return
        for _, row in txn.prefix("revoke", b""):
            try:
                self.trust.add_revocation(parse_revocation(row[_AT:], self.trust))
            except (DecodeError, CredentialError) as exc:  # kept under another authority
                log.warning("ignoring a stored revocation: %s", exc)
        self._gen = gen

    def count(self, txn: Txn) -> int:
        if self.trust is None:
            return 0
        entries: int = txn.txn.stat(txn.dbs["revoke"])["entries"]
        return entries

    def held(self, txn: Txn) -> tuple[tuple[bytes, int], ...] | None:
        """What a summary lists: ``(credential id, revoked_at_ms)`` sorted, the first
        :data:`~.wire.MAX_REVOCATIONS`; None without a trust store (takes none)."""
        if self.trust is None:
            return None
        out: list[tuple[bytes, int]] = []
        for cid, row in txn.prefix("revoke", b""):
            if len(out) >= MAX_REVOCATIONS:
                break
            out.append((cid, int.from_bytes(row[:_AT], "big")))
        return tuple(out)

    def missing(self, txn: Txn, peer: Iterable[tuple[bytes, int]] | None
                ) -> list[bytes]:
        """The revocations a peer whose summary lists ``peer`` lacks or holds later."""
        if self.trust is None or peer is None:
            return []
        theirs = dict(peer)
        out: list[bytes] = []
        for cid, row in txn.prefix("revoke", b""):
            at = int.from_bytes(row[:_AT], "big")
            if theirs.get(cid, at + 1) > at:
                out.append(row[_AT:])
                if len(out) >= MAX_REVOCATIONS:
                    break
        return out

    def admit(self, offered: tuple[bytes, ...], sender: str
              ) -> tuple[list[Revocation], list[Refusal]]:
        """Parse and verify the revocations of a payload (outside the write lock): the
        good ones, and a ``bad-revocation`` refusal for each other (logged once per
        doubling of the sender's count). Empty without a trust store: a replica that
        cannot check revocations ignores them."""
        if self.trust is None or not offered:
            return [], []
        good: list[Revocation] = []
        refused: list[Refusal] = []
        for raw in offered:
            try:
                good.append(parse_revocation(raw, self.trust))
            except (DecodeError, CredentialError) as exc:
                refused.append(Refusal(None, "bad-revocation", str(exc)))
                count = self._refusals[sender] = self._refusals.get(sender, 0) + 1
                if count & (count - 1) == 0:
                    log.warning("refused a revocation relayed by %s (%d so far): %s", sender,
                                count, exc)
        return good, refused

    def keep(self, txn: Txn, revs: Iterable[Revocation]) -> list[Revocation]:
        """Store each revocation that is new here or earlier than the one held, and hand
        every one to the trust store; the ones stored."""
        assert self.trust is not None
        kept: list[Revocation] = []
        for rev in revs:
            cid = rev.credential_id
            row = txn.get("revoke", cid)
            if row is None or (rev.revoked_at_ms, rev.raw) < (int.from_bytes(row[:_AT], "big"),
                                                              row[_AT:]):
                txn.put("revoke", cid, _row(rev))
                kept.append(rev)
            self.trust.add_revocation(rev)
        if kept:
            txn.set_counter(GEN, txn.counter(GEN) + 1)
        return kept

    def listed(self, txn: Txn) -> list[Revocation]:
        """Every revocation held, by credential id."""
        if self.trust is None:
            return []
        out: list[Revocation] = []
        for _, row in txn.prefix("revoke", b""):
            try:
                out.append(parse_revocation(row[_AT:], self.trust))
            except (DecodeError, CredentialError):
                continue
        return out
