"""The key-slot file of an encrypted replica: per-memory data keys where deletion is real.

LMDB is copy-on-write: a row deleted or rewritten survives in a freed page until that
page is reused, so a data key kept in an LMDB table would outlive ``forget``. The data
keys therefore live in ``keyslots`` beside ``data.mdb``, a file of fixed 64-byte slots
that are overwritten *in place* (zeros for a destroyed key) and fsynced: crypto-shredding
as in NIST SP 800-88's cryptographic erase, the storage layout of LUKS key slots.

Layout (docs/internals.md, "Encryption at rest"): a 64-byte header ``magic(8) + salt(16)
+ check nonce(12) + check tag(16) + zeros(12)``, then slot ``n`` at ``64 * (n + 1)``:
``nonce(12) + AES-GCM(wrap key, data key(32), aad="memmesh slot" + n(8) + state key)
(48) + zeros(4)``; 64 zero bytes is a free or destroyed slot. Which slots are taken
and free is kept in LMDB (``meta``): allocation happens inside the write transaction,
which LMDB serialises across processes, so two processes never take one slot.
"""

from __future__ import annotations

import os
import secrets
import threading

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._errors import AtRestKeyError

__all__ = ["HEADER", "SLOT", "SLOTS_FILE", "KeySlots", "at_rest_key_file", "create_whole",
           "fsync_path", "holds_plaintext_replica"]

#: The key-slot file's name inside the data directory.
SLOTS_FILE = "keyslots"
MAGIC = b"MMKEYS1\n"
HEADER = 64
SLOT = 64
SALT = 16
NONCE = 12
KEY = 32
_ZERO = bytes(SLOT)
_CHECK_AAD = b"memmesh at-rest check"


def holds_plaintext_replica(path: str | os.PathLike[str]) -> bool:
    """Whether directory ``path`` holds a replica created without an at-rest key (which
    can only be opened without one)."""
    root = os.fspath(path)
    return os.path.exists(os.path.join(root, "data.mdb")) and \
        not os.path.exists(os.path.join(root, SLOTS_FILE))


def create_whole(path: str, data: bytes) -> bool:
    """Create the 0600 file ``path`` holding ``data``, fsynced, appearing whole (written
    under a temporary name, then ``link``ed); False if it already exists (another
    process created it first)."""
    tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    return True


def fsync_path(path: str) -> None:
    """fsync a file or directory by name (a directory: so a rename or link in it lasts)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def at_rest_key_file(path: str | os.PathLike[str]) -> bytes:
    """The 32-byte at-rest key kept in the file ``path``, created (mode 0600, 32 random
    bytes) when absent. Two processes creating it at once agree on one key (the file
    appears whole, by ``link``). A file of another size raises :class:`AtRestKeyError`."""
    target = os.fspath(path)
    if not os.path.exists(target):
        create_whole(target, secrets.token_bytes(KEY))  # False: another process won; use theirs
    with open(target, "rb") as f:
        key = f.read(KEY + 1)
    if len(key) != KEY:
        raise AtRestKeyError(f"{target} holds {len(key)} bytes, not a {KEY}-byte at-rest key")
    return key


def _slot_aad(slot: int, skey: bytes) -> bytes:
    return b"memmesh slot" + slot.to_bytes(8, "big") + skey


class KeySlots:
    """The open key-slot file of one environment: read, write and zero slots."""

    def __init__(self, path: str, wrap_key: bytes, salt: bytes, *, durable: bool) -> None:
        self.path = path
        self.salt = salt
        self.durable = durable
        self._wrap = AESGCM(wrap_key)
        self._fd = os.open(path, os.O_RDWR)
        self._lock = threading.Lock()

    @staticmethod
    def read_header(path: str) -> tuple[bytes, bytes, bytes]:
        """``(salt, check nonce, check tag)`` of the file at ``path``."""
        with open(path, "rb") as f:
            head = f.read(HEADER)
        if len(head) != HEADER or head[:8] != MAGIC:
            raise AtRestKeyError(f"{path} is not a memmesh key-slot file")
        salt = head[8:8 + SALT]
        nonce = head[8 + SALT:8 + SALT + NONCE]
        return salt, nonce, head[8 + SALT + NONCE:8 + SALT + NONCE + 16]

    @staticmethod
    def verify(check_key: bytes, salt: bytes, nonce: bytes, tag: bytes) -> bool:
        """Whether ``check_key`` (derived from the at-rest key) is the file's."""
        try:
            AESGCM(check_key).decrypt(nonce, tag, _CHECK_AAD + salt)
        except InvalidTag:
            return False
        return True

    @staticmethod
    def create(path: str, salt: bytes, check_key: bytes) -> bool:
        """Write a new, empty key-slot file at ``path`` (whole, by ``link``); False when
        another process created one first."""
        nonce = secrets.token_bytes(NONCE)
        tag = AESGCM(check_key).encrypt(nonce, b"", _CHECK_AAD + salt)
        head = (MAGIC + salt + nonce + tag).ljust(HEADER, b"\x00")
        if not create_whole(path, head):
            return False
        fsync_path(os.path.dirname(path) or ".")
        return True

    def wrap(self, slot: int, skey: bytes, data_key: bytes) -> bytes:
        """The 64 bytes of ``slot`` holding ``data_key`` for the state key ``skey``."""
        nonce = secrets.token_bytes(NONCE)
        return (nonce + self._wrap.encrypt(nonce, data_key, _slot_aad(slot, skey))).ljust(
            SLOT, b"\x00")

    def unwrap(self, slot: int, skey: bytes, raw: bytes) -> bytes | None:
        """The data key in ``raw`` (a slot's bytes) if it belongs to ``skey``; None for a
        destroyed slot or one that now holds another memory's key."""
        if len(raw) != SLOT or raw == _ZERO:
            return None
        try:
            return self._wrap.decrypt(raw[:NONCE], raw[NONCE:NONCE + KEY + 16],
                                      _slot_aad(slot, skey))
        except InvalidTag:
            return None

    def read(self, slot: int) -> bytes:
        """The bytes of ``slot`` (zeros past the end of the file)."""
        raw = os.pread(self._fd, SLOT, HEADER + slot * SLOT)
        return raw if len(raw) == SLOT else _ZERO

    def write(self, slots: dict[int, bytes]) -> None:
        """Overwrite ``slots`` in place (``b""``: zeros), then fsync if durable; run by
        the write transaction just before it commits."""
        with self._lock:
            for slot in sorted(slots):
                os.pwrite(self._fd, slots[slot] or _ZERO, HEADER + slot * SLOT)
            if self.durable:
                os.fsync(self._fd)

    def sync(self) -> None:
        os.fsync(self._fd)

    def copy_to(self, path: str) -> None:
        """A copy of the file as it is now (live slots only: destroyed ones are zeros)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            offset = 0
            while chunk := os.pread(self._fd, 1 << 20, offset):
                os.write(fd, chunk)
                offset += len(chunk)
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


