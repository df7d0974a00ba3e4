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

from collections.abc import Mapping
from typing import Protocol

from memmesh.crdt import Dot
from memmesh.crdt.keystate import Header

from . import _digest as digest
from ._env import Txn
from ._keycodec import decode
from ._proofs import (
    CHUNK,
    Proof,
    build_tree,
    header_digest,
    leaf_hash,
    needed,
    pack_proof,
    pack_row,
    root_message,
    unpack_row,
)

__all__ = ["Signer", "Signing", "store_proofs"]

_LEAVES = "signing.leaves"


class Signer(Protocol):
    """What signs this replica's writes (a member identity)."""

    @property
    def credential_id(self) -> bytes: ...

    @property
    def credential_bytes(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


def store_proofs(txn: Txn, skey: bytes, proofs: Mapping[tuple[str, int], bytes],
                 keep: set[tuple[str, int]] | None) -> None:
    """Write a key's proof row: ``proofs`` restricted to ``keep`` (None: all of them);
    the row is deleted when nothing is left."""
    rows = proofs if keep is None else {d: p for d, p in proofs.items() if d in keep}
    if rows:
        txn.put("proof", skey, pack_row(rows))
    else:
        txn.delete("proof", skey)


class Signing:
    """Notes the leaves of local writes and signs them at commit (see module doc)."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer
        self.credential_id = signer.credential_id

    def save_credential(self, txn: Txn) -> None:
        """Keep this member's own credential among the relayable ones."""
        if txn.get("cred", self.credential_id) is None:
            txn.put("cred", self.credential_id, self.signer.credential_bytes)

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
        cid = self.credential_id
        minted: dict[str, dict[tuple[str, int], bytes]] = {}
        for start in range(0, len(leaves), CHUNK):
            chunk = leaves[start:start + CHUNK]
            root, paths = build_tree([leaf[-1] for leaf in chunk])
            signature = self.signer.sign(root_message(cid, root))
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
            rows = unpack_row(txn.get("proof", skey))
            rows.update(proofs)
            store_proofs(txn, skey, rows, needed(decode(raw, check_canonical=False)))
