"""Member credentials: what an authority grants one replica, signed by the authority.

A credential names the member's replica id and Ed25519 public key, its read and write
grants (:mod:`._grants`), the roles and actors its writes may claim, and its validity
window; it is an issuer-signed envelope (:mod:`._signed`), so any member holding the
authority's public key can check it and nobody without the issuer key can mint one.
Its ``id`` (BLAKE2b-128 of its bytes) names it in proofs and revocations. Writes are
checked against the credential of their origin (:meth:`Credential.may_write`), reads
against the receiving peer's (:meth:`Credential.may_read`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from memmesh.crdt import DecodeError, check_replica, packb

from ._errors import CredentialError
from ._grants import Grant, grants_cover
from ._signed import digest16, open_envelope, verify_signature

__all__ = ["AuthorityKey", "Credential", "credential_body"]

TAG = "memmesh-credential"
_MAX_NAMES = 1024
_MAX_NAME = 256


def _names(values: object, what: str) -> frozenset[str]:
    if type(values) is not tuple or len(values) > _MAX_NAMES or any(
            type(v) is not str or not v or len(v) > _MAX_NAME for v in values) \
            or tuple(sorted(set(values))) != values:
        raise DecodeError(f"credential {what} must be sorted unique names")
    return frozenset(values)


def _grants(values: object, what: str) -> tuple[Grant, ...]:
    if type(values) is not tuple or len(values) > 256:
        raise DecodeError(f"credential {what} grants must be an array")
    return tuple(Grant.from_plain(v) for v in values)


def credential_body(replica_id: str, public_key: bytes, read: tuple[Grant, ...],
                    write: tuple[Grant, ...], roles: frozenset[str],
                    actors: frozenset[str] | None, not_before_ms: int, expires_ms: int,
                    issuer: bytes) -> bytes:
    """The canonical bytes an authority signs (see :class:`Credential`)."""
    body: bytes = packb((TAG, 1, replica_id, public_key, tuple(g.plain() for g in read),
                  tuple(g.plain() for g in write), tuple(sorted(roles)),
                  None if actors is None else tuple(sorted(actors)), not_before_ms,
                  expires_ms, issuer))
    return body


@dataclass(frozen=True, slots=True)
class Credential:
    """A member credential (see the module doc). Build one with
    :meth:`memmesh.trust.Authority.issue`; read one with :meth:`from_bytes`."""

    replica_id: str
    public_key: bytes
    read: tuple[Grant, ...]
    write: tuple[Grant, ...]
    roles: frozenset[str]
    actors: frozenset[str] | None
    not_before_ms: int
    expires_ms: int
    issuer: bytes  # the authority's fingerprint
    signature: bytes = field(repr=False)
    raw: bytes = field(repr=False)  # the envelope, exactly as issued
    id: bytes = field(repr=False)

    @classmethod
    def from_bytes(cls, data: bytes) -> Credential:
        """Parse (bounded, canonical); raises :class:`DecodeError`. Does not check the
        issuer's signature: :meth:`verify` (or ``TrustStore.admit``) does."""
        body, fields, signature = open_envelope(data, TAG)
        if len(fields) != 9:
            raise DecodeError("a credential has 9 fields")
        rid, key, read, write, roles, actors, nbf, exp, issuer = fields
        if type(rid) is not str:
            raise DecodeError("credential replica id must be a string")
        try:
            check_replica(rid)
        except ValueError as exc:
            raise DecodeError(f"credential replica id: {exc}") from None
        if "#" in rid:
            raise DecodeError("credential replica id may not contain '#'")
        if type(key) is not bytes or len(key) != 32:
            raise DecodeError("credential public key must be 32 bytes")
        if type(nbf) is not int or type(exp) is not int or not 0 <= nbf < exp < 2**63:
            raise DecodeError("credential validity must be 0 <= not_before < expires")
        if type(issuer) is not bytes or len(issuer) != 16:
            raise DecodeError("credential issuer must be a 16-byte fingerprint")
        cred = cls(rid, key, _grants(read, "read"), _grants(write, "write"),
                   _names(roles, "roles"), None if actors is None else _names(actors, "actors"),
                   nbf, exp, issuer, signature, bytes(data), digest16(bytes(data)))
        if credential_body(cred.replica_id, key, cred.read, cred.write, cred.roles,
                           cred.actors, nbf, exp, issuer) != body:
            raise DecodeError("credential body is not canonical")
        return cred

    def to_bytes(self) -> bytes:
        return self.raw

    def body(self) -> bytes:
        return credential_body(self.replica_id, self.public_key, self.read, self.write,
                               self.roles, self.actors, self.not_before_ms, self.expires_ms,
                               self.issuer)

    def verify(self, authority: AuthorityKey) -> None:
        """Raise :class:`CredentialError` unless ``authority`` issued this credential."""
        if self.issuer != authority.fingerprint:
            raise CredentialError(f"credential of {self.replica_id!r} was issued by another "
                                  f"authority ({self.issuer.hex()}, not "
                                  f"{authority.fingerprint.hex()})")
        if not verify_signature(authority.public_key, self.signature, self.body()):
            raise CredentialError(f"credential of {self.replica_id!r}: the authority's "
                                  "signature does not verify")

    def valid_at(self, ms: int) -> bool:
        return self.not_before_ms <= ms < self.expires_ms

    def may_write(self, app_id: str | None, user_id: str | None, agent_id: str | None,
                  run_id: str | None, role: str | None = None,
                  actor: str | None = None) -> str | None:
        """None if this credential may write a memory with that scope claiming ``role``
        and ``actor`` (None claims nothing); else why not, in a few words."""
        if not grants_cover(self.write, app_id, user_id, agent_id, run_id):
            return (f"no write grant for app={app_id!r} user={user_id!r} agent={agent_id!r}"
                    f" run={run_id!r}")
        if role is not None and role not in self.roles:
            return f"role {role!r} not granted"
        if actor is not None and self.actors is not None and actor not in self.actors:
            return f"actor {actor!r} not granted"
        return None

    def may_read(self, app_id: str | None, user_id: str | None, agent_id: str | None,
                 run_id: str | None) -> bool:
        """Whether the holder may receive a memory with that scope."""
        return grants_cover(self.read, app_id, user_id, agent_id, run_id)

    def describe(self) -> str:
        """One line for operators: who, what, until when."""
        read = " | ".join(map(str, self.read)) or "nothing"
        write = " | ".join(map(str, self.write)) or "nothing"
        roles = ",".join(sorted(self.roles)) or "-"
        actors = "any" if self.actors is None else ",".join(sorted(self.actors)) or "-"
        return (f"{self.replica_id} (credential {self.id.hex()}): read {read}; write "
                f"{write}; roles {roles}; actors {actors}; valid {self.not_before_ms} .. "
                f"{self.expires_ms} ms")


class AuthorityKey(Protocol):
    """What :meth:`Credential.verify` needs of an authority: its public key and
    fingerprint (``AuthorityPublic`` is one)."""

    @property
    def public_key(self) -> bytes: ...

    @property
    def fingerprint(self) -> bytes: ...
