"""A member's identity: its credential, its private key, its TLS certificate and the
authority's public certificate, in one 0600 file.

The TLS certificate carries no replica id and no grants (its subject is an opaque
``memmesh member <credential id>``), so a client that connects without a certificate
learns nothing about the member; the credential itself is shown only inside the
mutually authenticated channel, and is bound to the TLS key (same Ed25519 key).
"""

from __future__ import annotations

import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._credential import Credential
from ._errors import CredentialError
from ._pem import blocks, pem_block, read_block, read_file, write_private
from ._public import AuthorityPublic

__all__ = ["MemberIdentity"]

_LABEL = "MEMMESH CREDENTIAL"
_PEM = serialization.Encoding.PEM


class MemberIdentity:
    """What one member holds (see the module doc). Made by
    :meth:`memmesh.trust.Authority.issue`; stored with :meth:`save` / :meth:`load`."""

    __slots__ = ("_key", "authority", "cert_pem", "credential")

    def __init__(self, credential: Credential, key: Ed25519PrivateKey, cert_pem: bytes,
                 authority: AuthorityPublic) -> None:
        public = key.public_key().public_bytes(serialization.Encoding.Raw,
                                               serialization.PublicFormat.Raw)
        if public != credential.public_key:
            raise CredentialError(f"the private key does not match the credential of "
                                  f"{credential.replica_id!r}")
        credential.verify(authority)
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError as exc:
            raise CredentialError(f"bad member certificate: {exc}") from None
        cert_key = cert.public_key()
        if not isinstance(cert_key, Ed25519PublicKey) or cert_key.public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw) != public:
            raise CredentialError("the member certificate is not for the credential's key")
        self.credential = credential
        self._key = key
        self.cert_pem = cert_pem
        self.authority = authority

    @property
    def replica_id(self) -> str:
        return self.credential.replica_id

    @property
    def credential_id(self) -> bytes:
        return self.credential.id

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message`` with the member key."""
        return self._key.sign(message)

    def key_pem(self) -> bytes:
        return self._key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())

    def at_rest_key(self) -> bytes:
        """32 bytes derived from the member key (HKDF-SHA256), for encryption at rest
        (``Replica.open(at_rest_key=...)``): a replica's data is readable only with its
        member's key. A renewed credential (``Authority.issue(renew=...)``) keeps the
        key and so this value; a credential with a new key needs a new replica."""
        raw = self._key.private_bytes(serialization.Encoding.Raw,
                                      serialization.PrivateFormat.Raw,
                                      serialization.NoEncryption())
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"memmesh",
                    info=b"memmesh at-rest key v1").derive(raw)

    def save(self, path: str | os.PathLike[str]) -> None:
        """One 0600 file: credential, certificate, private key, authority certificate.
        Refuses to overwrite an existing file."""
        data = (pem_block(_LABEL, self.credential.to_bytes()) + self.cert_pem
                + self.key_pem() + self.authority.ca_pem)
        write_private(path, data, private=True)

    @staticmethod
    def load_credential(path: str | os.PathLike[str]) -> Credential:
        """Only the credential of a member file (no private key needed: what an issuer
        keeps to revoke it, or an operator reads to see what it grants)."""
        return read_block(path, "member credential file", _LABEL, Credential.from_bytes,
                          "made by 'memmesh authority issue'")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MemberIdentity:
        """Read a member file; :class:`CredentialError` with one clear line if it is not
        a complete, consistent member file of its authority."""
        where = os.fspath(path)
        text = read_file(path, "member credential file")
        credential = key = None
        certs: list[bytes] = []
        for label, data, block in blocks(text, where):
            if label == _LABEL:
                try:
                    credential = Credential.from_bytes(data)
                except ValueError as exc:
                    raise CredentialError(f"{where}: bad credential: {exc}") from None
            elif label == "PRIVATE KEY":
                loaded = serialization.load_pem_private_key(block, None)
                if not isinstance(loaded, Ed25519PrivateKey):
                    raise CredentialError(f"{where}: the member key is not Ed25519")
                key = loaded
            elif label == "CERTIFICATE":
                certs.append(block)
        if credential is None or key is None or len(certs) != 2:
            raise CredentialError(f"{where} is not a member credential file (it needs the "
                                  "credential, the member certificate, the key and the "
                                  "authority certificate: made by 'memmesh authority issue')")
        return cls(credential, key, certs[0], AuthorityPublic(certs[1]))

    def __repr__(self) -> str:
        return f"MemberIdentity({self.credential.describe()})"
