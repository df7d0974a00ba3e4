"""The trust layer's errors (all :class:`memmesh.crdt.MemmeshError`)."""

from __future__ import annotations

from memmesh.crdt import MemmeshError

__all__ = ["CredentialError", "PermissionDeniedError", "TrustError"]


class TrustError(MemmeshError):  # type: ignore[misc, unused-ignore]
    """Something about authorities, credentials, signatures or revocations is wrong."""


class CredentialError(TrustError, ValueError):
    """A credential, authority or revocation that is malformed, not issued by the
    expected authority, or unusable (expired, wrong key file, wrong replica id)."""


class PermissionDeniedError(TrustError, PermissionError):
    """A local write outside the member's own credential: the scope is not in its write
    grants, or the role or actor is not granted. Nothing was changed."""
