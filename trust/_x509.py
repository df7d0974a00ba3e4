"""The X.509 CA certificate both trust modes build: the authority's (credentials) and
the one a cluster key derives (single-owner mode). One place decides its extensions:
a CA that may sign member certificates and nothing else (path length 0)."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

__all__ = ["ca_certificate"]


def ca_certificate(key: Ed25519PrivateKey, common_name: str, *, serial: int,
                   not_before: dt.datetime, not_after: dt.datetime) -> x509.Certificate:
    """A self-signed CA certificate for ``key`` named ``CN=common_name``."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    pub = key.public_key()
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(pub).serial_number(serial)
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True,
            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
        .sign(key, None))
