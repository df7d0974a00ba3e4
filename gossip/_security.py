"""Cluster security: TLS 1.3 with mutual authentication, from one shared cluster key.

Vetted parts only (HKDF and Ed25519 from ``cryptography``, TLS 1.3 from OpenSSL through
:mod:`ssl`): every member derives the same cluster CA from the key, so nothing but the
key is distributed; each node certifies a fresh key of its own under that CA with its
replica id as the name, and a peer's HELLO must name the id its certificate proves.
A node with another key has another CA, so its handshake fails before any protocol
byte flows. A public fingerprint (another HKDF output) names the cluster in mDNS and
the HELLO. The derivation step by step: docs/internals.md, section 3, "Cluster keys".
A fleet on credentials (:mod:`memmesh.trust`) uses the same contexts with the
authority's CA and the member's issued certificate instead (:meth:`ClusterCredentials.
from_identity`); the peer's HELLO then carries its credential, bound to the key of its
TLS certificate (:func:`peer_public_key`).
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
import tempfile
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

from memmesh.trust import MemberIdentity, ca_certificate

from .protocol import GossipError

__all__ = [
    "INSECURE_FINGERPRINT",
    "ClusterCredentials",
    "SecurityError",
    "cluster_fingerprint",
    "new_cluster_key",
    "peer_identity",
    "peer_public_key",
]

#: Fingerprint used by nodes started with ``insecure=True`` and no key.
INSECURE_FINGERPRINT = b"memmesh-insecure"
_MIN_KEY = 16


class SecurityError(GossipError):
    """A missing or unusable cluster key, or a peer certificate that cannot be read."""


def new_cluster_key() -> bytes:
    """32 random bytes, suitable as ``cluster_key`` (share it with every member)."""
    return os.urandom(32)


def _hkdf(key: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"memmesh", info=info).derive(key)


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) < _MIN_KEY:
        raise SecurityError(f"cluster_key must be at least {_MIN_KEY} bytes")


def cluster_fingerprint(key: bytes | None) -> bytes:
    """Public 16-byte name of the cluster (``INSECURE_FINGERPRINT`` without a key)."""
    if key is None:
        return INSECURE_FINGERPRINT
    _check_key(key)
    return _hkdf(bytes(key), b"memmesh cluster fingerprint v1", 16)


_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_FAR = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


@dataclass(frozen=True)
class ClusterCredentials:
    """The cluster CA (derived) plus this node's own key and certificate."""

    replica_id: str
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    @classmethod
    def create(cls, cluster_key: bytes, replica_id: str) -> ClusterCredentials:
        _check_key(cluster_key)
        seed = _hkdf(bytes(cluster_key), b"memmesh cluster CA v1", 32)
        ca_key = Ed25519PrivateKey.from_private_bytes(seed)
        fp = cluster_fingerprint(cluster_key).hex()
        serial = int.from_bytes(_hkdf(bytes(cluster_key), b"memmesh CA serial v1", 16)) >> 1
        ca_cert = ca_certificate(ca_key, f"memmesh cluster {fp}", serial=serial or 1,
                                 not_before=_EPOCH, not_after=_FAR)
        ca_name = ca_cert.subject
        ca_pub = ca_key.public_key()
        node_key = Ed25519PrivateKey.generate()
        now = dt.datetime.now(dt.UTC)
        node_cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, replica_id)]))
            .issuer_name(ca_name)
            .public_key(node_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(replica_id)]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_pub),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([
                x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, None)
        )
        pem = serialization.Encoding.PEM
        return cls(
            replica_id=replica_id,
            ca_pem=ca_cert.public_bytes(pem),
            cert_pem=node_cert.public_bytes(pem),
            key_pem=node_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()),
        )

    @classmethod
    def from_identity(cls, identity: MemberIdentity) -> ClusterCredentials:
        """A fleet on credentials: the authority's CA certificate is the only trust
        anchor, the member's own certificate (issued by it, subject an opaque
        ``memmesh member <credential id>``) and key its chain."""
        return cls(replica_id=identity.replica_id, ca_pem=identity.authority.ca_pem,
                   cert_pem=identity.cert_pem, key_pem=identity.key_pem())

    def _context(self, purpose: ssl.Purpose, protocol: int) -> ssl.SSLContext:
        ctx = ssl.SSLContext(protocol)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        ctx.verify_mode = ssl.CERT_REQUIRED
        if protocol == ssl.PROTOCOL_TLS_CLIENT:
            ctx.check_hostname = False  # identity is bound to the HELLO replica id instead
        ctx.load_verify_locations(cadata=self.ca_pem.decode())
        # ssl can only load a key from a file: write it 0600 and delete it at once
        fd, path = tempfile.mkstemp(prefix="memmesh-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.cert_pem + self.key_pem)
            ctx.load_cert_chain(path)
        finally:
            os.unlink(path)
        return ctx

    def server_context(self) -> ssl.SSLContext:
        return self._context(ssl.Purpose.CLIENT_AUTH, ssl.PROTOCOL_TLS_SERVER)

    def client_context(self) -> ssl.SSLContext:
        return self._context(ssl.Purpose.SERVER_AUTH, ssl.PROTOCOL_TLS_CLIENT)


def peer_identity(tls: Any) -> str:
    """The replica id (certificate CN) of a verified TLS peer.

    ``tls`` is anything with ``getpeercert()``: ``ssl.SSLSocket``, ``ssl.SSLObject`` or
    ``trio.SSLStream`` (which forwards it).
    """
    cert = tls.getpeercert()
    if not cert:
        raise SecurityError("peer presented no certificate")
    for rdn in cert.get("subject", ()):
        for attribute in rdn:
            if len(attribute) == 2 and attribute[0] == "commonName" \
                    and isinstance(attribute[1], str):
                return attribute[1]
    raise SecurityError("peer certificate has no common name")


def peer_public_key(tls: Any) -> bytes:
    """The raw Ed25519 key of a verified TLS peer's certificate (on credentials, the key
    its HELLO credential must be for)."""
    der = tls.getpeercert(binary_form=True)
    if not der:
        raise SecurityError("peer presented no certificate")
    key = x509.load_der_x509_certificate(der).public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise SecurityError("peer certificate key is not Ed25519")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
