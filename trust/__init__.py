"""memmesh.trust: who may read and write what, and proof of who wrote it.

* :class:`Authority` issues member credentials (:class:`MemberIdentity`: credential,
  private key, TLS certificate) and :class:`Revocation` s; its key stays offline, and
  members hold only their own identity and the :class:`AuthorityPublic`.
* :class:`Credential`: a member's replica id, public key, read and write
  :class:`Grant` s (app, user, agent, run), roles, actors and validity, signed by the
  authority.
* :class:`TrustStore`: what a replica checks signed writes against.

Ed25519, X.509 and HKDF come from ``cryptography``; nothing here is home-made
cryptography. The threat model: docs/security.md.
"""

from __future__ import annotations

from ._authority import Authority
from ._credential import Credential
from ._errors import CredentialError, PermissionDeniedError, TrustError
from ._grants import TIERS, Grant, grants_cover, parse_grants
from ._member import MemberIdentity
from ._public import AuthorityPublic
from ._revocation import Revocation
from ._signed import digest16
from ._store import TrustStore
from ._x509 import ca_certificate

__all__ = [
    "TIERS",
    "Authority",
    "AuthorityPublic",
    "Credential",
    "CredentialError",
    "Grant",
    "MemberIdentity",
    "PermissionDeniedError",
    "Revocation",
    "TrustError",
    "TrustStore",
    "ca_certificate",
    "digest16",
    "grants_cover",
    "parse_grants",
]
