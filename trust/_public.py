"""The authority's public half: its self-signed CA certificate, which every member
holds to check credentials, revocations and TLS peers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import NameOID

from ._errors import CredentialError
from ._pem import blocks, read_file, write_private
from ._signed import digest16

__all__ = ["AuthorityPublic", "raw_public"]


def raw_public(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class AuthorityPublic:
    """What every member holds of the authority: its self-signed CA certificate, from
    which the public key, name and fingerprint are read."""

    ca_pem: bytes
    public_key: bytes = field(init=False)
    name: str = field(init=False)
    fingerprint: bytes = field(init=False)

    def __post_init__(self) -> None:
        try:
            cert = x509.load_pem_x509_certificate(self.ca_pem)
            key = cert.public_key()
        except ValueError as exc:
            raise CredentialError(f"not an authority certificate: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise CredentialError("the authority certificate's key is not Ed25519")
        try:
            cert.verify_directly_issued_by(cert)
        except (ValueError, TypeError) as exc:
            raise CredentialError(f"the authority certificate is not self-signed: {exc}") \
                from None
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        raw = raw_public(key)
        object.__setattr__(self, "public_key", raw)
        object.__setattr__(self, "name", str(names[0].value) if names else "")
        object.__setattr__(self, "fingerprint", digest16(raw))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the public file members are given (refuses to overwrite)."""
        write_private(path, self.ca_pem, private=False)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AuthorityPublic:
        """Read an authority public file (or an authority key file: its certificate)."""
        text = read_file(path, "authority file")
        for label, _data, block in blocks(text, os.fspath(path)):
            if label == "CERTIFICATE":
                return cls(block)
        raise CredentialError(f"{os.fspath(path)!r} holds no authority certificate")
