"""The authority: the issuer key that signs member credentials and revocations.

``Authority.create`` makes a fresh Ed25519 issuer key and a self-signed X.509 CA
certificate for TLS; the key is meant to be kept offline (``save`` writes it 0600 and
never overwrites). Members receive only their own :class:`MemberIdentity` and the
:class:`AuthorityPublic` (the CA certificate); nobody without the issuer key can mint a
credential, so no member can take another's identity.
"""

from __future__ import annotations

import datetime as dt
import os

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
)
from cryptography.x509.oid import NameOID

from memmesh.crdt import InvalidArgumentError, packb

from ._credential import Credential, credential_body
from ._errors import CredentialError
from ._grants import Grant
from ._member import MemberIdentity
from ._pem import blocks, read_file, write_private
from ._public import AuthorityPublic, raw_public
from ._revocation import Revocation, revocation_body
from ._x509 import ca_certificate

__all__ = ["Authority"]

_PEM = serialization.Encoding.PEM
_RAW = serialization.Encoding.Raw
_MS = dt.timedelta(milliseconds=1)


def _at(ms: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + ms * _MS


class Authority:
    """The issuer (see the module doc)."""

    __slots__ = ("_key", "public")

    def __init__(self, key: Ed25519PrivateKey, public: AuthorityPublic) -> None:
        if raw_public(key.public_key()) != public.public_key:
            raise CredentialError("the authority key does not match its certificate")
        self._key = key
        self.public = public

    @classmethod
    def create(cls, name: str = "memmesh", *, now_ms: int | None = None,
               years: int = 20) -> Authority:
        """A fresh issuer key and CA certificate named ``name``."""
        if not name or len(name) > 64:
            raise InvalidArgumentError("authority name must be 1..64 characters")
        key = Ed25519PrivateKey.generate()
        now = dt.datetime.now(dt.UTC) if now_ms is None else _at(now_ms)
        cert = ca_certificate(key, f"memmesh authority {name}",
                              serial=x509.random_serial_number(),
                              not_before=now - dt.timedelta(days=1),
                              not_after=now + dt.timedelta(days=365 * years))
        return cls(key, AuthorityPublic(cert.public_bytes(_PEM)))

    @property
    def name(self) -> str:
        return self.public.name.removeprefix("memmesh authority ")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the issuer key and certificate, 0600, never overwriting. Keep it offline."""
        key = self._key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        write_private(path, key + self.public.ca_pem, private=True)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Authority:
        text = read_file(path, "authority key file")
        key: Ed25519PrivateKey | None = None
        public: AuthorityPublic | None = None
        for label, _data, block in blocks(text, os.fspath(path)):
            if label == "PRIVATE KEY":
                loaded = serialization.load_pem_private_key(block, None)
                if not isinstance(loaded, Ed25519PrivateKey):
                    raise CredentialError("the authority key is not Ed25519")
                key = loaded
            elif label == "CERTIFICATE":
                public = AuthorityPublic(block)
        if key is None or public is None:
            raise CredentialError(f"{os.fspath(path)!r} is not an authority key file "
                                  "(it needs the private key and the certificate)")
        return cls(key, public)

    def issue(self, replica_id: str, *, read: tuple[Grant, ...] | list[Grant] = (),
              write: tuple[Grant, ...] | list[Grant] = (),
              roles: frozenset[str] | set[str] | tuple[str, ...] = (),
              actors: frozenset[str] | set[str] | tuple[str, ...] | None = None,
              expires_ms: int, now_ms: int,
              renew: MemberIdentity | None = None) -> MemberIdentity:
        """A member key and its credential and TLS certificate, valid from ``now_ms``
        (less a day, for clock skew) until ``expires_ms``. The key is fresh, or with
        ``renew`` (the member's current identity, same replica id) the member's own:
        a renewed credential (new expiry or grants) keeps the key, so everything
        derived from it (the at-rest key: :meth:`MemberIdentity.at_rest_key`) stays.
        Revoke the old credential if its grants were wider."""
        if renew is not None:
            if renew.replica_id != replica_id:
                raise InvalidArgumentError(f"cannot renew {renew.replica_id!r}'s key for "
                                           f"{replica_id!r}")
            if renew.authority != self.public:
                raise InvalidArgumentError("the identity to renew is another authority's")
            key = renew._key
        else:
            key = Ed25519PrivateKey.generate()
        public = raw_public(key.public_key())
        not_before = max(0, now_ms - 86_400_000)
        if expires_ms <= now_ms:
            raise InvalidArgumentError("expires_ms must be after now_ms")
        body = credential_body(replica_id, public, tuple(read), tuple(write),
                               frozenset(roles), None if actors is None else frozenset(actors),
                               not_before, expires_ms, self.public.fingerprint)
        raw = packb((body, self._key.sign(body)))
        try:
            credential = Credential.from_bytes(raw)
        except ValueError as exc:  # DecodeError: an argument the format cannot hold
            raise InvalidArgumentError(f"cannot issue this credential: {exc}") from None
        ca = x509.load_pem_x509_certificate(self.public.ca_pem)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(
                NameOID.COMMON_NAME, f"memmesh member {credential.id.hex()}")]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_at(not_before)).not_valid_after(_at(expires_ms))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca.public_key()), critical=False)  # type: ignore[arg-type]
            .add_extension(x509.ExtendedKeyUsage([
                x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self._key, None))
        return MemberIdentity(credential, key, cert.public_bytes(_PEM), self.public)

    def revoke(self, credential_id: bytes, *, at_ms: int, reason: str = "") -> Revocation:
        """A signed revocation of the credential ``credential_id`` (its ``.id``): its
        writes stamped at or after ``at_ms`` are refused everywhere once it spreads."""
        if type(credential_id) is not bytes or len(credential_id) != 16:
            raise InvalidArgumentError("credential_id must be the credential's 16-byte id")
        body = revocation_body(self.public.fingerprint, credential_id, at_ms, reason)
        return Revocation.from_bytes(packb((body, self._key.sign(body))))
