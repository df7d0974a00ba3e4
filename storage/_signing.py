"""Signing this replica's writes: one signature per commit chunk, proofs stored beside
the states.

Each local write notes the leaf of the dot it minted (:func:`note`); the write
transaction's pre-commit hook (:class:`memmesh.storage._env.Txn`) signs the leaves of the
whole transaction (a single write, or a ``with replica.batch()``) in chunks of
:data:`._proofs.CHUNK` under one Merkle root each, and writes every touched key's proof
row, pruned to the dots its final state needs (:func:`._proofs.needed`). Proof rows live
in the ``proof`` sub-database under the key's state key; the credentials that proofs
name live in ``cred`` (id -> credential bytes), so a replica can relay them.
"""

from __future__ import annotations

from memmesh.crdt import Dot
from memmesh.crdt.keystate import Header
from memmesh.trust import MemberIdentity, PermissionDeniedError, TrustStore

from . import _digest as digest
from ._env import Txn
from ._keycodec import decode
from ._proofrows import store_proofs
from ._proofs import (
    CHUNK,
    Proof,
    build_tree,
    header_digest,
    leaf_hash,
    needed,
    pack_proof,
    root_message,
    unpack_row,
)

__all__ = ["Signing"]

_LEAVES = "signing.leaves"


def _only(names: frozenset[str] | None) -> str | None:
    return next(iter(names)) if names is not None and len(names) == 1 else None


class Signing:
    """A member's local side of signed writes: the write check of its own credential,
    the actor and role defaults, and the leaves signed at commit (see module doc)."""

    def __init__(self, identity: MemberIdentity, trust: TrustStore) -> None:
        self.identity = identity
        self.trust = trust
        credential = trust.admit(identity.credential)
        self.credential_id = credential.id
        self.replica_id = credential.replica_id
        self._actor, self._role = _only(credential.actors), _only(credential.roles)

    def save_credential(self, txn: Txn) -> None:
        """Keep this member's own credential among the relayable ones."""
        if txn.get("cred", self.credential_id) is None:
            txn.put("cred", self.credential_id, self.identity.credential.to_bytes())

    def defaults(self, actor: str | None, role: str | None) -> tuple[str | None, str | None]:
        """The actor and role a write claims: the caller's, else the credential's when it
        names exactly one."""
        return (self._actor if actor is None else actor,
                self._role if role is None else role)

    def authorize(self, scope: tuple[str | None, str | None, str | None, str | None],
                  role: str | None, actor: str | None, stamp_ms: int) -> None:
        """Raise :class:`PermissionDeniedError` unless this member's credential allows a
        write on ``scope`` (app, user, agent, run) claiming ``role`` and ``actor`` at
        ``stamp_ms`` (the rule every receiver applies: ``TrustStore.check_write``)."""
        app, user, agent, run = scope
        why = self.trust.check_write(self.credential_id, replica_id=self.replica_id,
                                     app_id=app, user_id=user, agent_id=agent, run_id=run,
                                     role=role, actor=actor, stamp_ms=stamp_ms)
        if why is not None:
            raise PermissionDeniedError(f"this member may not write here: {why}")

    def note(self, txn: Txn, header: Header, dot: Dot, op: int, wall_ms: int,
             content: bytes) -> None:
        """Queue the leaf of ``dot`` (minted by this write) for signing at commit."""
        leaves: list[tuple[str, Dot, int, int, bytes, bytes]] | None = txn.scratch.get(_LEAVES)
        if leaves is None:
            leaves = txn.scratch[_LEAVES] = []
            txn.pre_commit.append(self._commit)
        leaf = leaf_hash(header_digest(header), dot.replica, dot.counter, op, wall_ms, content)
        leaves.append((header.key, dot, op, wall_ms, content, leaf))

    def _commit(self, txn: Txn) -> None:
        leaves: list[tuple[str, Dot, int, int, bytes, bytes]] = txn.scratch.pop(_LEAVES)
        self.save_credential(txn)
        cid = self.credential_id
        minted: dict[str, dict[tuple[str, int], bytes]] = {}
        for start in range(0, len(leaves), CHUNK):
            chunk = leaves[start:start + CHUNK]
            root, paths = build_tree([leaf[-1] for leaf in chunk])
            signature = self.identity.sign(root_message(cid, root))
            for index, ((key, dot, op, wall, content, _), path) in enumerate(zip(chunk, paths,
                                                                                 strict=True)):
                proof = Proof(cid, signature, op, wall, content, index, path)
                minted.setdefault(key, {})[(dot.replica, dot.counter)] = pack_proof(proof)
        for key, proofs in minted.items():
            skey = digest.state_key(key)
            raw = txn.get("state", skey)
            if raw is None:  # removed again in the same transaction
                txn.delete("proof", skey)
                continue
            old_row = txn.get("proof", skey)
            rows = unpack_row(old_row)
            rows.update(proofs)
            store_proofs(txn, skey, rows, needed(decode(raw, check_canonical=False)), old_row)
