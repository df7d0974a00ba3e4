"""PEM-style files: memmesh's own blocks (``MEMMESH CREDENTIAL``, ``MEMMESH
AUTHORITY``) beside standard ones (``CERTIFICATE``, ``PRIVATE KEY``), read and written
with the bounds and file modes key material needs."""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable
from typing import TypeVar

from ._errors import CredentialError

__all__ = ["MAX_FILE", "blocks", "pem_block", "read_block", "read_file", "write_private"]

MAX_FILE = 256 * 1024
T = TypeVar("T")
_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.S)


def pem_block(label: str, data: bytes) -> bytes:
    body = base64.encodebytes(data)
    return b"-----BEGIN " + label.encode() + b"-----\n" + body + \
        b"-----END " + label.encode() + b"-----\n"


def blocks(text: bytes, what: str) -> list[tuple[str, bytes, bytes]]:
    """``(label, decoded bytes, whole PEM block)`` for each block, in order."""
    out = []
    for m in _BLOCK.finditer(text):
        try:
            data = base64.b64decode(b"".join(m.group(2).split()), validate=True)
        except binascii.Error:
            raise CredentialError(f"{what}: a {m.group(1).decode()} block is not base64") from None
        out.append((m.group(1).decode(), data, m.group(0) + b"\n"))
    if not out:
        raise CredentialError(f"{what}: no PEM blocks found")
    return out


def read_block(path: str | os.PathLike[str], what: str, label: str,
               parse: Callable[[bytes], T], missing: str) -> T:
    """``parse`` of the first ``label`` block of the file ``path`` (a ``what``);
    :class:`CredentialError` naming the file if there is none (``missing`` says what
    makes one) or it does not parse."""
    where = os.fspath(path)
    for found, data, _block in blocks(read_file(path, what), where):
        if found == label:
            try:
                return parse(data)
            except ValueError as exc:
                raise CredentialError(f"{where}: bad {what}: {exc}") from None
    raise CredentialError(f"{where} is not a {what} ({missing})")


def read_file(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE + 1)
    except OSError as exc:
        raise CredentialError(f"cannot read {what} {os.fspath(path)!r}: {exc.strerror}") from None
    if len(data) > MAX_FILE:
        raise CredentialError(f"{what} {os.fspath(path)!r} is larger than {MAX_FILE} bytes")
    return data


def write_private(path: str | os.PathLike[str], data: bytes, *, private: bool) -> None:
    """Write ``data`` atomically; mode 0600 when ``private`` (key material), else 0644.
    Refuses to overwrite an existing file (a lost issuer key cannot be recovered)."""
    path = os.fspath(path)
    if os.path.exists(path):
        raise CredentialError(f"{path!r} exists: refusing to overwrite it (move it away first)")
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
    finally:
        os.unlink(tmp)
