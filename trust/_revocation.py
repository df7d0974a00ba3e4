"""Revocations: an authority's signed statement that a credential's writes stamped at
or after ``revoked_at_ms`` are no longer valid. They travel between replicas like
memories do (any member may relay one; only the issuer can make one), and every
replica's :class:`~memmesh.trust.TrustStore` refuses later writes and flags earlier
ones in ``audit()``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from memmesh.crdt import DecodeError, packb

from ._credential import AuthorityKey
from ._errors import CredentialError
from ._pem import pem_block, read_block, write_private
from ._signed import open_envelope, verify_signature

__all__ = ["Revocation", "revocation_body"]

TAG = "memmesh-revocation"
_LABEL = "MEMMESH REVOCATION"
_MAX_REASON = 512


def revocation_body(issuer: bytes, credential_id: bytes, revoked_at_ms: int,
                    reason: str) -> bytes:
    body: bytes = packb((TAG, 1, issuer, credential_id, revoked_at_ms, reason))
    return body


@dataclass(frozen=True, slots=True)
class Revocation:
    """An issuer-signed revocation (make one with :meth:`memmesh.trust.Authority.revoke`)."""

    issuer: bytes
    credential_id: bytes
    revoked_at_ms: int
    reason: str
    signature: bytes = field(repr=False)
    raw: bytes = field(repr=False)

    @classmethod
    def from_bytes(cls, data: bytes) -> Revocation:
        """Parse (bounded, canonical; :class:`DecodeError`); :meth:`verify` checks the
        signature."""
        body, fields, signature = open_envelope(data, TAG)
        if len(fields) != 4:
            raise DecodeError("a revocation has 4 fields")
        issuer, cid, at, reason = fields
        if type(issuer) is not bytes or len(issuer) != 16 or type(cid) is not bytes \
                or len(cid) != 16:
            raise DecodeError("revocation issuer and credential id must be 16 bytes")
        if type(at) is not int or not 0 <= at < 2**63:
            raise DecodeError("revocation time must be a non-negative int")
        if type(reason) is not str or len(reason) > _MAX_REASON:
            raise DecodeError(f"revocation reason must be a string of at most {_MAX_REASON}")
        if revocation_body(issuer, cid, at, reason) != body:
            raise DecodeError("revocation body is not canonical")
        return cls(issuer, cid, at, reason, signature, bytes(data))

    def to_bytes(self) -> bytes:
        return self.raw

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write it as a PEM-style file (public: anyone may relay it; never overwrites)."""
        write_private(path, pem_block(_LABEL, self.raw), private=False)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Revocation:
        """Read a revocation file (:class:`CredentialError` if it holds none)."""
        return read_block(path, "revocation file", _LABEL, cls.from_bytes,
                          "made by 'memmesh authority revoke'")

    def verify(self, authority: AuthorityKey) -> None:
        """Raise :class:`CredentialError` unless ``authority`` made this revocation."""
        if self.issuer != authority.fingerprint or not verify_signature(
                authority.public_key, self.signature,
                revocation_body(self.issuer, self.credential_id, self.revoked_at_ms,
                                self.reason)):
            raise CredentialError(f"revocation of credential {self.credential_id.hex()} is "
                                  "not signed by this authority")
