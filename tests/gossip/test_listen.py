"""Where a node listens: the default bind rule, ports, IPv6, mDNS interfaces."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
import trio
from gossip_fakes import FakeReplica

from memmesh.crdt import InvalidArgumentError
from memmesh.gossip import Node
from memmesh.gossip._discovery import MdnsDiscovery, interface_addresses, pick_address
from memmesh.gossip._listen import ListenError, check_port, choose_host, open_listener
from memmesh.gossip._peers import AddressError, format_address, parse_address
from memmesh.storage import Replica

KEY = b"0123456789abcdef0123456789abcdef"


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")


def test_a_node_listens_on_loopback_while_all_its_seeds_are_on_this_machine() -> None:
    for seeds in ([], [("127.0.0.1", 7400)], [("localhost", 7400), ("::1", 7401)]):
        choice = choose_host(None, seeds)
        assert choice.host == "127.0.0.1" and "--host 0.0.0.0" in choice.why


def test_a_seed_off_this_machine_makes_the_node_listen_on_every_interface() -> None:
    choice = choose_host(None, [("127.0.0.1", 7401), ("10.0.0.7", 7400)])
    assert choice.host == "::" and "10.0.0.7:7400 is off this machine" in choice.why
    assert choose_host(None, [("fd00::7", 7400)]).why.endswith(
        "seed [fd00::7]:7400 is off this machine")
    assert choose_host(None, [("db.example", 7400)]).host == "::"


def test_an_explicit_host_is_used_as_given() -> None:
    assert choose_host("127.0.0.1", [("10.0.0.7", 7400)]).host == "127.0.0.1"
    assert choose_host("0.0.0.0", []).host == "0.0.0.0"
    node = Node(FakeReplica("A"), insecure=True, mdns=False, seeds=[("10.0.0.7", 7400)])
    assert node.host == "::"
    assert Node(FakeReplica("A"), insecure=True, mdns=False).host == "127.0.0.1"


def test_ports_outside_0_to_65535_are_refused_not_wrapped() -> None:
    for bad in (99999, 65536, -1, True, "7400", 7400.0):
        with pytest.raises(InvalidArgumentError):
            check_port(bad)
    assert check_port(0) == 0 and check_port(65535) == 65535
    with pytest.raises(InvalidArgumentError, match="99999 is not a TCP port"):
        Node(FakeReplica("A"), insecure=True, mdns=False, port=99999)


def test_ipv6_addresses_go_in_brackets_both_ways() -> None:
    assert parse_address("[::1]:7400") == ("::1", 7400)
    assert parse_address("[fd00::2]:7400") == ("fd00::2", 7400)
    with pytest.raises(AddressError, match=r"\[fd00::2\]:7400"):
        parse_address("fd00::2:7400")
    for host in ("10.0.0.7", "fd00::2", "node-b.lan"):
        assert parse_address(format_address(host, 7400)) == (host, 7400)


async def test_a_port_in_use_is_one_listen_error_naming_it() -> None:
    listener, _, port = open_listener("127.0.0.1", 0)
    try:
        with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{port}: port "
                                              f"{port} is in use"):
            open_listener("127.0.0.1", port)
        # a Node raises it from `async with`, not inside an ExceptionGroup
        with pytest.raises(ListenError, match="is in use"):
            async with Node(FakeReplica("A"), insecure=True, mdns=False, port=port):
                pass
    finally:
        await listener.aclose()


def test_an_address_this_machine_lacks_is_a_listen_error() -> None:
    with pytest.raises(ListenError, match="not an address of this machine"):
        open_listener("192.0.2.254", 0)


@needs_ipv6
async def test_the_every_interface_listener_accepts_ipv4_and_ipv6() -> None:
    listener, host, port = open_listener("::", 0)
    assert host == "::"
    accepted: list[str] = []

    async def handler(stream: trio.SocketStream) -> None:
        accepted.append(stream.socket.getpeername()[0])
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handler, [listener])
        for addr in ("127.0.0.1", "::1"):
            stream = await trio.open_tcp_stream(addr, port)
            await stream.aclose()
        with trio.fail_after(30):
            while len(accepted) < 2:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert {ipaddress.ip_address(a.removeprefix("::ffff:")).version for a in accepted} == {4, 6}


@needs_ipv6
async def test_nodes_converge_over_ipv6_with_a_bracketed_seed(tmp_path: Path) -> None:
    with Replica.open(tmp_path / "a") as ra, Replica.open(tmp_path / "b") as rb:
        ra.add("over IPv6")
        async with Node(ra, cluster_key=KEY, mdns=False, host="::1") as a, \
                Node(rb, cluster_key=KEY, mdns=False,
                     seeds=[parse_address(f"[::1]:{a.port}")]) as b:
            assert b.host == "127.0.0.1"  # ::1 is this machine: loopback by the rule
            with trio.fail_after(60):
                while ra.state_digest() != rb.state_digest():
                    await trio.sleep(0.02)
            assert b.status().peers[0].address == ("::1", a.port)


def _discovery(host: str, interfaces: tuple[str, ...] | None = None) -> MdnsDiscovery:
    node = SimpleNamespace(host=host, options=SimpleNamespace(mdns_interfaces=interfaces))
    return MdnsDiscovery(node)  # type: ignore[arg-type]


def test_mdns_follows_the_bind_address_and_never_advertises_loopback_for_a_wildcard() -> None:
    everywhere = [str(i.ip) for i in interface_addresses()]
    assert not any(ipaddress.ip_address(a).is_loopback for a in everywhere)
    for wildcard in ("0.0.0.0", "::"):
        assert _discovery(wildcard).interfaces() == (everywhere or ["127.0.0.1"])
    assert _discovery("127.0.0.1").interfaces() == ["127.0.0.1"]
    assert _discovery("::1").interfaces() == []  # mDNS is IPv4 only: seeds for IPv6
    assert _discovery("::", ("10.1.2.3",)).interfaces() == ["10.1.2.3"]


def test_of_a_peers_advertised_addresses_the_one_on_our_network_is_dialled() -> None:
    ours = [ipaddress.IPv4Interface("10.213.0.1/24")]
    assert pick_address(["172.17.0.1", "10.213.0.2"], ours) == "10.213.0.2"
    assert pick_address(["172.17.0.1", "192.168.1.9"], ours) == "172.17.0.1"
