"""Issuer-signed envelopes: ``packb((body, signature))`` where ``body`` is canonical
msgpack starting with a type tag and a format version, signed with Ed25519 (RFC 8032,
from ``cryptography``). Credentials and revocations share it; readers are bounded.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from memmesh.crdt import DecodeError, Limits, unpackb

__all__ = ["MAX_ENVELOPE", "digest16", "open_envelope", "verify_signature"]

#: Bytes an envelope (credential or revocation) may take.
MAX_ENVELOPE = 64 * 1024
_LIMITS = Limits(max_buffer_size=MAX_ENVELOPE, max_str_len=MAX_ENVELOPE,
                 max_bin_len=MAX_ENVELOPE, max_array_len=8192, max_map_len=64)


def digest16(data: bytes) -> bytes:
    """BLAKE2b-128 of ``data``: credential ids and authority fingerprints."""
    return hashlib.blake2b(data, digest_size=16).digest()


def open_envelope(data: object, tag: str) -> tuple[bytes, tuple[object, ...], bytes]:
    """``(body bytes, body fields after the tag and version, signature)`` of an envelope
    of type ``tag``, format 1; :class:`DecodeError` if it is anything else."""
    if not isinstance(data, bytes | bytearray) or len(data) > MAX_ENVELOPE:
        raise DecodeError(f"a {tag} must be at most {MAX_ENVELOPE} bytes")
    outer = unpackb(bytes(data), limits=_LIMITS)
    if type(outer) is not tuple or len(outer) != 2 or type(outer[0]) is not bytes \
            or type(outer[1]) is not bytes or len(outer[1]) != 64:
        raise DecodeError(f"a {tag} is (body, 64-byte signature)")
    body, signature = outer
    fields = unpackb(body, limits=_LIMITS)
    if type(fields) is not tuple or len(fields) < 2 or fields[0] != tag or fields[1] != 1:
        raise DecodeError(f"not a version-1 {tag}")
    return body, fields[2:], signature


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s Ed25519 signature of ``message``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
