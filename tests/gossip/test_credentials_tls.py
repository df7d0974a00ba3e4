"""Nodes on member credentials (issue 16, deliverables 1 and 3): TLS 1.3 under the
fleet authority's CA, the credential in HELLO bound to the TLS key, the replica id and
the clock, and what a peer receives following its credential's read grants. Real
sockets on 127.0.0.1; every wait is on a condition, never a sleep."""

from __future__ import annotations

import logging
import ssl
import time
from pathlib import Path

import pytest
import trio
from cryptography import x509
from cryptography.x509.oid import NameOID
from node_helpers import wait_for

from memmesh.crdt import unpackb
from memmesh.gossip import Node, SecurityError
from memmesh.gossip.protocol import RemoteProtocolError
from memmesh.gossip.protocol.messages import (
    MAX_HELLO_CREDENTIAL,
    PROTOCOL_VERSION,
    Hello,
    decode_message,
    encode_message,
)
from memmesh.storage import Replica
from memmesh.trust import Authority, Grant, MemberIdentity

KEY = b"0123456789abcdef0123456789abcdef"
DAY = 86_400_000
NOW = int(time.time() * 1000)


def member(authority: Authority, rid: str, *, read: str = "all", now_ms: int = NOW,
           days: int = 30) -> MemberIdentity:
    return authority.issue(rid, read=(Grant.parse(read),), write=(Grant(),),
                           expires_ms=now_ms + days * DAY, now_ms=now_ms)


def node(replica: Replica, identity: MemberIdentity, **kw: object) -> Node:
    return Node(replica, identity=identity, mdns=False, remember_peers=False,
                **kw)  # type: ignore[arg-type]


def caught_up(src: Replica, dst: Replica) -> bool:
    """``dst``'s watermark of ``src``'s origin reached ``src``'s own counter (the keys it
    was not shipped, it was told it will never get)."""
    origin = str(src.origin)
    wm = unpackb(dst.sync_summary())["wm"]  # type: ignore[index]
    return bool(wm.get(origin, 0) >= unpackb(src.sync_summary())["wm"][origin])  # type: ignore[index]


def _refusals(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and words in r.getMessage()]


def test_a_node_takes_a_cluster_key_or_an_identity_never_both(tmp_path: Path) -> None:
    authority = Authority.create("acme")
    with Replica.open(tmp_path / "a", replica_id="alice-laptop") as ra:
        with pytest.raises(SecurityError, match="not both"):
            Node(ra, identity=member(authority, "alice-laptop"), cluster_key=KEY, mdns=False)
        with pytest.raises(SecurityError, match="'bob-laptop''s"):
            Node(ra, identity=member(authority, "bob-laptop"), mdns=False)


async def test_two_nodes_on_credentials_sync_and_a_peer_gets_only_its_read_grants(
        tmp_path: Path) -> None:
    authority = Authority.create("acme")
    with Replica.open(tmp_path / "a", replica_id="alice-laptop") as ra, \
            Replica.open(tmp_path / "b", replica_id="bob-laptop") as rb:
        alices = [ra.add(f"alice fact {i}", user_id="alice") for i in range(5)]
        canary = ra.add("CANARY of bob", user_id="bob")
        facts = ra.add("a fact of agent x", agent_id="x")
        from_b = rb.add("bob's own note", user_id="alice")
        async with node(ra, member(authority, "alice-laptop")) as a, \
                node(rb, member(authority, "bob-laptop", read="users=alice"),
                     seeds=[("127.0.0.1", a.port)]) as b:
            assert "on credentials of" in a.listening_line()
            await wait_for(lambda: caught_up(ra, rb), 60)  # b passed every key of a's
            await wait_for(lambda: ra.get(from_b) is not None, 60)  # a reads everything
            assert all(rb.get(m) is not None for m in alices)
            assert rb.get(canary) is None and rb.get(facts) is None
            assert b.status().secure and b.peers == ("alice-laptop",)
            assert a.fingerprint == authority.public.fingerprint


async def test_a_minted_identity_is_refused_at_the_tls_handshake(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "memmesh.gossip")
    fleet, forger = Authority.create("acme"), Authority.create("acme")
    with Replica.open(tmp_path / "a", replica_id="alice-laptop") as ra, \
            Replica.open(tmp_path / "m", replica_id="bob-laptop") as rm:
        ra.add("CANARY only bob-laptop may read", user_id="bob")
        async with node(ra, member(fleet, "alice-laptop")) as a, \
                node(rm, member(forger, "bob-laptop"), seeds=[("127.0.0.1", a.port)]) as m:
            await wait_for(lambda: _refusals(caplog, "not issued by this fleet's authority"),
                           60)
            assert a.peers == () and m.peers == () and rm.list() == []
        assert any("wrong-key" in line for line in
                   _refusals(caplog, "not issued by this fleet's authority"))


async def test_an_expired_credential_is_refused_at_hello(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Judged by the replica's clock (the one HELLOs carry): b's credential has expired
    by a's clock though its TLS certificate still verifies by the system's."""
    caplog.set_level(logging.INFO, "memmesh.gossip")
    authority = Authority.create("acme")
    later = NOW + 40 * DAY
    with Replica.open(tmp_path / "a", replica_id="alice-laptop", clock=lambda: later) as ra, \
            Replica.open(tmp_path / "b", replica_id="bob-laptop") as rb:
        ra.add("not for an expired member")
        async with node(ra, member(authority, "alice-laptop", days=90)) as a, \
                node(rb, member(authority, "bob-laptop", days=30),
                     seeds=[("127.0.0.1", a.port)]) as b:
            # b may count a as a peer for a moment (its dial connected) until a's REJECT
            # closes the link: wait for both, then nothing was received
            await wait_for(lambda: _refusals(caplog, "is not valid now")
                           and a.peers == () and b.peers == (), 60)
            assert rb.list() == []
            assert a.policy.counters["error:credential"] >= 1


async def test_a_credential_for_another_key_than_the_tls_certificate_is_refused(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A copied credential without its private key: b's TLS certificate is its own, its
    HELLO shows another member credential of the same replica id."""
    caplog.set_level(logging.INFO, "memmesh.gossip")
    authority = Authority.create("acme")
    with Replica.open(tmp_path / "a", replica_id="alice-laptop") as ra, \
            Replica.open(tmp_path / "b", replica_id="bob-laptop") as rb:
        ra.add("not for a thief")
        async with node(ra, member(authority, "alice-laptop")) as a:
            b = node(rb, member(authority, "bob-laptop", read="users=nobody"),
                     seeds=[("127.0.0.1", a.port)])
            b.policy.identity = member(authority, "bob-laptop")  # the stolen credential
            async with b:
                await wait_for(lambda: _refusals(caplog, "not for the key of its TLS")
                               and a.peers == (), 60)
                assert rb.list() == []


async def test_a_client_without_a_certificate_learns_no_replica_id(tmp_path: Path) -> None:
    authority = Authority.create("acme")
    with Replica.open(tmp_path / "a", replica_id="alice-laptop") as ra:
        async with node(ra, member(authority, "alice-laptop", read="users=alice")) as a:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            stream = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", a.port), ctx,
                                    server_hostname="memmesh")
            with trio.fail_after(30):
                await stream.do_handshake()  # TLS 1.3: the server's certificate comes first
            der = stream.getpeercert(binary_form=True)
            assert der is not None
            with pytest.raises((trio.BrokenResourceError, trio.ClosedResourceError)):
                with trio.fail_after(30):
                    while await stream.receive_some():  # the server refuses us
                        pass
                    raise trio.ClosedResourceError
            await trio.aclose_forcefully(stream)
    cert = x509.load_der_x509_certificate(der)
    assert b"alice" not in der
    [cn] = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert str(cn.value).startswith("memmesh member ")


def test_hello_carries_a_bounded_credential_only_on_credentials() -> None:
    plain = Hello(PROTOCOL_VERSION, b"f" * 16, "alice-laptop", 1, 8, 4096, 5)
    assert len(unpackb(encode_message(plain))) == 8  # type: ignore[arg-type]  # as before
    cred = member(Authority.create("acme"), "alice-laptop").credential.to_bytes()
    with_cred = Hello(PROTOCOL_VERSION, b"f" * 16, "alice-laptop", 1, 8, 4096, 5, cred)
    assert decode_message(encode_message(with_cred)) == with_cred
    too_big = Hello(PROTOCOL_VERSION, b"f" * 16, "a", 1, 8, 4096, 5,
                    b"x" * (MAX_HELLO_CREDENTIAL + 1))
    with pytest.raises(RemoteProtocolError):
        decode_message(encode_message(too_big))
