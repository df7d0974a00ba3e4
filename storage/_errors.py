"""Errors of the storage layer (all derive from :class:`memmesh.crdt.MemmeshError`)."""

from __future__ import annotations

from memmesh.crdt import InvalidArgumentError, MemmeshError

__all__ = [
    "AtRestKeyError",
    "NoTrustStoreError",
    "ReplicaBusyError",
    "ReplicaIdMismatchError",
    "StorageError",
    "UnknownMemoryError",
    "WritesFencedError",
]


class StorageError(MemmeshError):  # type: ignore[misc, unused-ignore]
    """A replica cannot do what was asked of it."""


class UnknownMemoryError(StorageError, KeyError):
    """The memory does not exist here (never added, deleted, forgotten or expired)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "unknown memory"


class ReplicaIdMismatchError(StorageError, InvalidArgumentError):  # type: ignore[misc, unused-ignore]
    """``Replica.open(replica_id=...)`` names another id than the one stored at the path."""


class WritesFencedError(StorageError):
    """Local writes are fenced off (e.g. this member's clock runs ahead of its peers');
    the message says why and what to do. Nothing was written; sync keeps working."""


class AtRestKeyError(StorageError):
    """An encrypted replica opened without its at-rest key or with another one, a
    plaintext replica opened with a key, or a key file that is not one. Nothing changed."""


class ReplicaBusyError(StorageError):
    """The operation needs the replica directory to itself (``memmesh compact``) while
    another process or object has it open. Nothing changed."""
class NoTrustStoreError(StorageError):
    """The replica has no trust store (``Replica.open(identity=...)`` or ``trust=...``),
    so it cannot check revocations or proofs. Nothing was changed."""
