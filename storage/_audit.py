"""``Replica.audit()``: the retrospective permission check.

Every stored version and timeline event (and set element) is judged again against the
trust store as it is now, by the very check ``sync_apply`` runs on receipt
(:meth:`._verify.WriteCheck.each`, whose grant rule is ``TrustStore.check_write``): a
write accepted before its credential's revocation arrived, or before this replica had
a trust store at all, is found here. The Collaborative Memory paper (Rezazadeh et al.,
2025) re-checks stored fragments against the current permissions the same way.

A finding's reason is the check's own (``unsigned``, ``bad-proof``,
``unknown-credential``, ``wrong-replica``, ``expired``, ``revoked``, ``no-grant``) or
``by-revoked-member``: the write passes (stamped before the revocation) but its
credential is revoked now: kept, flagged. ``hide=True`` puts the versions of every
other finding in the local quarantine (:mod:`._hidden`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from memmesh.crdt import Dot, base_replica
from memmesh.crdt.keystate import KIND_MEMORY
from memmesh.trust import TrustStore

from ._env import Env, Txn
from ._hidden import hidden_count, replace_hidden
from ._keycodec import decode
from ._proofs import unpack_row
from ._verify import WriteCheck

__all__ = ["KEPT", "AuditReport", "Finding", "audit"]

#: The one reason that flags a write without hiding it.
KEPT = "by-revoked-member"


@dataclass(frozen=True, slots=True)
class Finding:
    """One stored write whose authority lapsed or is in doubt.

    ``origin``/``counter``: its dot; ``stamp_ms``: the wall time the check judged (the
    proof's, else the write's own; None for an unsigned set element); ``replica_id``: the
    replica id of the credential that signed it (None: unsigned or unknown credential);
    ``credential_id``: that credential's id (None: unsigned); ``hidden``: in the
    quarantine after this audit."""

    memory_id: str
    origin: str
    counter: int
    actor: str | None
    role: str | None
    stamp_ms: int | None
    replica_id: str | None
    credential_id: bytes | None
    reason: str
    detail: str
    hidden: bool = False

    @property
    def dot(self) -> Dot:
        return Dot(self.origin, self.counter)

    @property
    def lapsed(self) -> bool:
        """Whether the write's authority lapsed (every reason but ``by-revoked-member``)."""
        return self.reason != KEPT

    def line(self) -> str:
        """One line for an operator."""
        who = self.replica_id or base_replica(self.origin)
        return (f"{self.reason} {self.memory_id} {self.origin}:{self.counter}"
                f" replica={who} actor={self.actor or '-'} role={self.role or '-'}"
                f" stamp={'-' if self.stamp_ms is None else self.stamp_ms}"
                f"{' hidden' if self.hidden else ''}: {self.detail}")


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What :func:`audit` found: ``checked`` writes (dots) judged over ``keys`` keys,
    the ``findings`` in key order, and ``hidden``: versions in the quarantine now."""

    keys: int
    checked: int
    findings: tuple[Finding, ...]
    hidden: int

    def counts(self) -> dict[str, int]:
        """Findings by reason."""
        return dict(Counter(f.reason for f in self.findings))

    def summary(self) -> str:
        counts = ", ".join(f"{n} {r}" for r, n in sorted(self.counts().items())) or "none"
        return (f"audit: {self.checked} writes of {self.keys} keys checked; findings:"
                f" {counts}; {self.hidden} versions hidden")


def _judge(check: WriteCheck, trust: TrustStore, txn: Txn, skey: bytes, raw: bytes,
           out: list[Finding], to_hide: dict[str, list[Dot]]) -> int:
    """The findings of one stored key into ``out``, its lapsed versions (standing or
    not) into ``to_hide``; how many dots were judged."""
    state = decode(raw, check_canonical=False)
    key = state.header.key
    judged = 0
    lapsed: list[Dot] = []
    for dot, wall, role, actor, proof, why in check.each(state, unpack_row(
            txn.get("proof", skey))):
        judged += 1
        cid = None if proof is None else proof.credential_id
        if why is None:
            revoked = None if cid is None else trust.revoked_at(cid)
            if revoked is None:
                continue
            reason, detail = KEPT, (f"stamped {proof.wall_ms if proof else wall} ms, before"
                                    f" its credential's revocation at {revoked} ms")
        else:
            reason, detail = why
        cred = None if cid is None else trust.credential(cid)
        stamp = proof.wall_ms if proof is not None else (wall if wall >= 0 else None)
        finding = Finding(key, dot.replica, dot.counter, actor, role, stamp,
                          None if cred is None else cred.replica_id, cid, reason, detail)
        if reason != KEPT and state.header.kind == KIND_MEMORY and dot in state.body:
            lapsed.append(dot)
        out.append(finding)
    if lapsed:
        to_hide[key] = lapsed
    return judged


def audit(env: Env, trust: TrustStore, *, hide: bool) -> AuditReport:
    """Judge every stored write (see the module doc); with ``hide``, make the lapsed
    standing versions the whole quarantine."""
    findings: list[Finding] = []
    to_hide: dict[str, list[Dot]] = {}
    keys = checked = 0
    with env.read() as txn:
        check = WriteCheck(trust, txn, ())
        for skey, raw in txn.prefix("state", b""):
            keys += 1
            checked += _judge(check, trust, txn, skey, raw, findings, to_hide)
    if hide:
        def write(txn: Txn) -> int:
            replace_hidden(txn, to_hide)
            return hidden_count(txn)

        hidden = env.write(write)
        findings = [replace(f, hidden=True) if f.dot in to_hide.get(f.memory_id, ())
                    else f for f in findings]
    else:
        with env.read() as txn:
            hidden = hidden_count(txn)
    return AuditReport(keys, checked, tuple(findings), hidden)

