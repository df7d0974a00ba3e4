"""Admitting a peer on its credential (issue 16): the HELLO of a member of a fleet run
on credentials carries its member credential, checked once the TLS handshake proved the
peer holds a key certified by the fleet's authority.

The credential must be the authority's (``TrustStore.admit``), be for the key the TLS
peer certificate holds (so a credential copied from another member is useless without
its private key), name the replica id the HELLO claims, be valid at our wall clock and
not revoked by then. Any failure is a :class:`RemoteProtocolError` with reason
``credential`` (``identity`` for a replica id that is not the credential's), which
the session answers with a REJECT naming it. Sans-IO: the wall clock is an argument.
"""

from __future__ import annotations

from memmesh.crdt import DecodeError
from memmesh.trust import Credential, CredentialError, TrustStore

from ._errors import RemoteProtocolError

__all__ = ["admit_peer"]


def admit_peer(trust: TrustStore, credential: bytes | None, *, replica_id: str,
               tls_key: bytes | None, wall_ms: int) -> Credential:
    """The peer's admitted credential, or :class:`RemoteProtocolError` saying why not.
    ``tls_key``: the raw Ed25519 key of the peer's TLS certificate (None: a transport
    without TLS, as in the sans-IO tests; the key binding is then not checked)."""
    if credential is None:
        raise RemoteProtocolError("its HELLO carries no credential (a cluster-key node?)",
                                  reason="credential")
    try:
        cred = trust.admit(credential)
    except (CredentialError, DecodeError) as exc:
        raise RemoteProtocolError(f"credential not issued by this fleet's authority: {exc}",
                                  reason="credential") from None
    if tls_key is not None and cred.public_key != tls_key:
        raise RemoteProtocolError(f"the credential of {cred.replica_id!r} is not for the key "
                                  "of its TLS certificate", reason="credential")
    if cred.replica_id != replica_id:
        raise RemoteProtocolError(f"HELLO claims {replica_id!r} but the credential is "
                                  f"{cred.replica_id!r}'s", reason="identity")
    if not cred.valid_at(wall_ms):
        raise RemoteProtocolError(f"the credential of {replica_id!r} is not valid now (valid "
                                  f"{cred.not_before_ms} .. {cred.expires_ms} ms, now "
                                  f"{wall_ms})", reason="credential")
    revoked = trust.revoked_at(cred.id)
    if revoked is not None and revoked <= wall_ms:
        raise RemoteProtocolError(f"the credential of {replica_id!r} was revoked at "
                                  f"{revoked} ms", reason="credential")
    return cred
