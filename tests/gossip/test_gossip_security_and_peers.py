"""Key derivation, certificates, the mDNS TXT record, remembered peers and back-off."""

from __future__ import annotations

import random

import pytest
from cryptography import x509
from gossip_fakes import FakeReplica

from memmesh.crdt import packb
from memmesh.gossip import (
    AddressError,
    ClusterCredentials,
    SecurityError,
    cluster_fingerprint,
    parse_address,
)
from memmesh.gossip._discovery import txt_record
from memmesh.gossip._peers import (
    MAX_KNOWN,
    KnownPeer,
    PeerBook,
    backoff_delay,
    load_peers,
    save_peers,
)

KEY = bytes(range(32))


def test_every_node_derives_the_same_cluster_ca_but_its_own_key() -> None:
    a = ClusterCredentials.create(KEY, "node-a")
    b = ClusterCredentials.create(KEY, "node-b")
    assert a.ca_pem == b.ca_pem
    assert a.key_pem != b.key_pem
    other = ClusterCredentials.create(b"another cluster key, 32 bytes!!", "node-a")
    assert other.ca_pem != a.ca_pem


def test_node_certificate_names_the_replica_and_is_signed_by_the_cluster_ca() -> None:
    creds = ClusterCredentials.create(KEY, "0123abcd")
    cert = x509.load_pem_x509_certificate(creds.cert_pem)
    ca = x509.load_pem_x509_certificate(creds.ca_pem)
    cn = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    assert cn == "0123abcd"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["0123abcd"]
    cert.verify_directly_issued_by(ca)


def test_the_fingerprint_is_public_and_reveals_nothing_of_the_key() -> None:
    fp = cluster_fingerprint(KEY)
    assert len(fp) == 16 and fp == cluster_fingerprint(KEY)
    assert fp not in KEY and KEY[:8] not in fp
    with pytest.raises(SecurityError):
        cluster_fingerprint(b"too short")


def test_the_mdns_txt_record_holds_only_version_replica_and_fingerprint() -> None:
    txt = txt_record("rid-1", cluster_fingerprint(KEY))
    assert set(txt) == {"v", "rid", "cf"}
    assert KEY.hex() not in "".join(txt.values())
    assert all(len(k) + len(v) < 255 for k, v in txt.items())


def test_known_peers_round_trip_bounded_and_newest_first() -> None:
    r = FakeReplica("me")
    peers = [KnownPeer(f"r{i}", "127.0.0.1", 1000 + i, i) for i in range(MAX_KNOWN + 10)]
    save_peers(r, [*peers, KnownPeer("r3", "10.0.0.1", 9, 10000)])
    back = load_peers(r)
    assert len(back) == MAX_KNOWN
    assert back[0] == KnownPeer("r3", "10.0.0.1", 9, 10_000)  # newest entry per id wins
    assert len({p.replica_id for p in back}) == MAX_KNOWN


@pytest.mark.parametrize("raw", [b"\xc1", packb({"a": 1}), packb([("r", "h", 99999, 1)])])
def test_an_unreadable_peer_record_counts_as_no_peers(raw: bytes) -> None:
    r = FakeReplica("me")
    r.aux_put("memmesh.gossip", b"peers", raw)
    assert load_peers(r) == []


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, base=0.2, cap=10.0, rng=rng) for n in range(12)]
    assert 0.1 <= delays[0] <= 0.2
    assert 0.8 <= delays[3] <= 1.6
    assert all(5.0 <= d <= 10.0 for d in delays[6:])
    assert len({round(d, 6) for d in delays[6:]}) > 1  # jittered, not synchronised


def test_a_peer_address_is_host_colon_port_and_nothing_else() -> None:
    assert parse_address("10.0.0.5:7400") == ("10.0.0.5", 7400)
    assert parse_address("node-a.lan:1") == ("node-a.lan", 1)
    assert parse_address("[::1]:7400") == ("::1", 7400)
    for bad in ("7400", ":7400", "host:", "host:port", "host:0", "host:65536", "host:-1"):
        with pytest.raises(AddressError):
            parse_address(bad)


def test_the_peer_book_remembers_where_peers_listen_but_never_dials_itself() -> None:
    replica = FakeReplica("me")
    save_peers(replica, [KnownPeer("me", "127.0.0.1", 7000, 1),
                         KnownPeer("old", "10.0.0.1", 7001, 2)])
    book = PeerBook("me")
    assert [p.replica_id for p in book.load(replica)] == ["old"]
    book.remember("new", ("10.0.0.2", 7002), 3)
    book.save(replica)
    assert [p.replica_id for p in load_peers(replica)] == ["new", "old", "me"]
