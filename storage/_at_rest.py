"""Encryption at rest: sealed ``state`` and ``aux`` rows, per-memory data keys, shredding.

With an at-rest key, :class:`Sealer` sits under :class:`._env.Txn`: every ``state`` row
(a key's canonical bytes: texts, metadata, versions, the timeline's details) is sealed
with AES-GCM under the key's own data key, kept in a slot of :mod:`._keyslots`; a
forgotten key's tombstone (content-free) and every ``aux`` value are sealed under the
replica's common key. ``forget`` (local, or a FORGET merged from a peer) and TTL removal
zero the key's slot in place before the transaction commits (crypto-shredding: the
sealed copies left in LMDB's freed pages and in later backups cannot be opened again).
Subkeys come from the 32-byte at-rest key by HKDF-SHA256 (RFC 5869) with the slot file's
salt. Byte formats: docs/internals.md, "Encryption at rest".

A reader whose snapshot predates a forget, reading after it committed, finds the slot
destroyed (or reused for another key) and sees the key as absent, as it will once its
snapshot is renewed. Everything but ``state`` and ``aux`` holds no content: memory ids,
scope ids, counters, watermarks and digest sums stay plain (docs/security.md).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._env import Env, Txn
from ._errors import AtRestKeyError
from ._keyslots import KEY, NONCE, SALT, SLOTS_FILE, KeySlots

__all__ = ["SEALED_DBS", "Sealer", "attach", "check_openable"]

#: The sub-databases whose values are sealed.
SEALED_DBS = frozenset({"state", "aux"})
_SLOTTED = 1  # b"\x01" + slot(8) + nonce(12) + AES-GCM(data key)
_COMMON = 2  # b"\x02" + nonce(12) + AES-GCM(common key)
_MARK = b"ks:salt"  # meta: the slot file's salt, written when the replica is created
_NEXT = b"ks:n"  # meta counter: slots handed out so far
_FREE = b"ks:f"  # meta: _FREE + slot(8) -> b"" for each free slot
_SCRATCH = "at-rest"


def _derive(key: bytes, salt: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY, salt=salt,
                info=b"memmesh at-rest " + purpose).derive(key)


@dataclass
class _Pending:
    """A write transaction's slot changes, written to the slot file just before commit."""

    slots: dict[int, bytes] = field(default_factory=dict)  # slot -> bytes (b"": zeros)
    keys: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)  # slot -> (skey, dk)
    common: set[bytes] = field(default_factory=set)  # state keys shredded in this txn


class Sealer:
    """Seals and opens the values of :data:`SEALED_DBS` for one environment."""

    dbs = SEALED_DBS

    def __init__(self, slots: KeySlots, common_key: bytes) -> None:
        self.slots = slots
        self._common = AESGCM(common_key)

    @staticmethod
    def _pending(txn: Txn) -> _Pending:
        pending = txn.scratch.get(_SCRATCH)
        if pending is None:
            pending = txn.scratch[_SCRATCH] = _Pending()
        return pending

    def _raw(self, txn: Txn, db: str, key: bytes) -> bytes | None:
        value = txn.txn.get(key, db=txn.dbs[db])
        return None if value is None else bytes(value)

    # -- sealing ------------------------------------------------------------------------

    def seal(self, txn: Txn, db: str, key: bytes, value: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE)
        aad = db.encode() + b"\x00" + key
        if db != "state" or key in self._pending(txn).common:
            return bytes((_COMMON,)) + nonce + self._common.encrypt(nonce, value, aad)
        slot, data_key = self._slot_of(txn, key)
        return (bytes((_SLOTTED,)) + slot.to_bytes(8, "big") + nonce
                + AESGCM(data_key).encrypt(nonce, value, aad))

    def _slot_of(self, txn: Txn, skey: bytes) -> tuple[int, bytes]:
        """The slot and data key of ``skey``: its own if it has one, else a new one."""
        stored = self._raw(txn, "state", skey)
        if stored is not None and stored[0] == _SLOTTED:
            slot = int.from_bytes(stored[1:9], "big")
            data_key = self._data_key(txn, slot, skey)
            if data_key is not None:
                return slot, data_key
        pending = self._pending(txn)
        cur = txn.cursor("meta")
        if cur.set_range(_FREE) and bytes(cur.key()).startswith(_FREE):
            free = bytes(cur.key())
            slot = int.from_bytes(free[len(_FREE):], "big")
            txn.delete("meta", free)
        else:
            slot = txn.counter(_NEXT)
            txn.set_counter(_NEXT, slot + 1)
        data_key = secrets.token_bytes(KEY)
        pending.slots[slot] = self.slots.wrap(slot, skey, data_key)
        pending.keys[slot] = (skey, data_key)
        return slot, data_key

    def _data_key(self, txn: Txn, slot: int, skey: bytes) -> bytes | None:
        pending: _Pending | None = txn.scratch.get(_SCRATCH)
        if pending is not None and slot in pending.slots:
            mine = pending.keys.get(slot)
            return mine[1] if mine is not None and mine[0] == skey else None
        return self.slots.unwrap(slot, skey, self.slots.read(slot))

    # -- opening ------------------------------------------------------------------------

    def open(self, txn: Txn, db: str, key: bytes, stored: bytes) -> bytes | None:
        """The plaintext of a sealed value; None when its data key was destroyed."""
        aad = db.encode() + b"\x00" + key
        kind = stored[0] if stored else -1
        try:
            if kind == _COMMON:
                return self._common.decrypt(stored[1:1 + NONCE], stored[1 + NONCE:], aad)
            if kind == _SLOTTED and db == "state":
                slot = int.from_bytes(stored[1:9], "big")
                data_key = self._data_key(txn, slot, key)
                if data_key is None:
                    return None  # shredded: forgotten or removed since this snapshot
                return AESGCM(data_key).decrypt(stored[9:9 + NONCE], stored[9 + NONCE:], aad)
        except InvalidTag:
            pass
        raise AtRestKeyError(f"a {db} row does not open with this replica's keys (corrupt,"
                             " or written in plaintext): restore the replica from a backup")

    # -- shredding ----------------------------------------------------------------------

    def shred(self, txn: Txn, skey: bytes) -> None:
        """Destroy the data key of ``skey`` when this transaction commits; what is put
        under ``skey`` after this in the transaction (a tombstone) takes the common key."""
        pending = self._pending(txn)
        pending.common.add(skey)
        stored = self._raw(txn, "state", skey)
        if stored is None or stored[0] != _SLOTTED:
            return
        slot = int.from_bytes(stored[1:9], "big")
        pending.slots[slot] = b""
        pending.keys.pop(slot, None)
        txn.put("meta", _FREE + slot.to_bytes(8, "big"), b"")

    def finish(self, txn: Txn) -> None:
        """Write this transaction's slot changes in place (and fsync when durable): the
        last step before commit, so a destroyed key is gone before the forget is."""
        pending: _Pending | None = txn.scratch.get(_SCRATCH)
        if pending is not None and pending.slots:
            self.slots.write(pending.slots)
            pending.slots.clear()
            pending.keys.clear()

    def flush(self) -> None:
        self.slots.sync()

    def copy_to(self, directory: str) -> None:
        """Copy the slot file into ``directory`` (a backup: live keys only)."""
        self.slots.copy_to(os.path.join(directory, SLOTS_FILE))

    def close(self) -> None:
        self.slots.close()


def check_openable(path: str | os.PathLike[str], key: bytes | None) -> None:
    """Refuse, before the environment is opened, a key of the wrong type, and an
    encrypted directory opened without a key."""
    if key is not None and (type(key) is not bytes or len(key) != KEY):
        raise AtRestKeyError(f"at_rest_key must be {KEY} bytes")
    if key is None and os.path.exists(os.path.join(os.fspath(path), SLOTS_FILE)):
        raise AtRestKeyError(f"{os.fspath(path)!r} is encrypted at rest: open it with its"
                             " at_rest_key")


def attach(env: Env, key: bytes | None) -> None:
    """Give ``env`` its :class:`Sealer` (with a key), creating the slot file of a new
    replica; refuse a wrong key, a missing one, or a key for a plaintext replica."""
    slots_path = os.path.join(env.path, SLOTS_FILE)
    with env.read() as txn:
        mark = txn.get("meta", _MARK)
        used = any(txn.txn.stat(txn.dbs[db])["entries"] for db in SEALED_DBS)
    if key is None:
        if mark is not None:
            raise AtRestKeyError(f"{env.path!r} is encrypted at rest: open it with its"
                                 " at_rest_key")
        return
    if mark is None and used and not os.path.exists(slots_path):
        raise AtRestKeyError(
            f"{env.path!r} holds a plaintext replica: encryption at rest applies to new"
            " replicas (memmesh export, then import into a new encrypted directory)")
    if not os.path.exists(slots_path):
        if mark is not None:
            raise AtRestKeyError(f"{env.path!r}: its key-slot file {SLOTS_FILE} is"
                                 " missing, so its content cannot be decrypted")
        salt = secrets.token_bytes(SALT)
        KeySlots.create(slots_path, salt, _derive(key, salt, b"check"))
    salt, nonce, tag = KeySlots.read_header(slots_path)
    if not KeySlots.verify(_derive(key, salt, b"check"), salt, nonce, tag):
        raise AtRestKeyError(f"{env.path!r}: the at_rest_key is not this replica's")
    if mark is not None and mark != salt:
        raise AtRestKeyError(f"{env.path!r}: its key-slot file belongs to another replica")
    slots = KeySlots(slots_path, _derive(key, salt, b"wrap"), salt, durable=env.durable)
    env.sealer = Sealer(slots, _derive(key, salt, b"common"))
    if mark is None:
        env.write(lambda txn: txn.put("meta", _MARK, salt))
