"""mDNS discovery with python-zeroconf, bridged into trio.

python-zeroconf has no trio API and runs its own asyncio loop in a thread, so
(FIELD-NOTES.md): blocking calls run in trio worker threads; the browser callback only
hands ``(name, change)`` to trio (``TrioToken.run_sync_soon``, a bounded channel) and
the lookup happens in a trio task, never inside the callback; the instance name is
random; the TXT record holds only ``v``, ``rid`` and the public cluster fingerprint
``cf``; records get short TTLs and liveness is judged by gossip links. Interfaces follow
``node.host`` unless ``mdns_interfaces`` says otherwise: loopback stays on loopback, a
wildcard (``0.0.0.0``, ``::``) uses and advertises every non-loopback IPv4 interface,
never a loopback address; of a peer's advertised addresses the one on a network of
ours is dialled. mDNS runs over IPv4 only: a node bound to one IPv6 address uses seeds.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import secrets
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ifaddr
import trio
from zeroconf import (
    IPVersion,
    ServiceBrowser,
    ServiceInfo,
    ServiceStateChange,
    Zeroconf,
)

from .protocol.messages import PROTOCOL_VERSION

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["SERVICE_TYPE", "MdnsDiscovery", "interface_addresses", "pick_address",
           "txt_record"]

log = logging.getLogger("memmesh.gossip")

SERVICE_TYPE = "_memmesh._tcp.local."
_TTL = 30


def txt_record(replica_id: str, fingerprint: bytes) -> dict[str, str]:
    """The whole TXT record a node advertises."""
    return {"v": str(PROTOCOL_VERSION), "rid": replica_id, "cf": fingerprint.hex()}


class MdnsDiscovery:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.instance = f"memmesh-{secrets.token_hex(6)}"
        self.zeroconf: Zeroconf | None = None
        self._send, self._recv = trio.open_memory_channel[tuple[str, str]](256)
        self.found: dict[str, tuple[str, str, int]] = {}
        self.networks: list[ipaddress.IPv4Interface] = []

    def interfaces(self) -> list[str]:
        """The IPv4 addresses mDNS announces and browses on (empty: none usable)."""
        if self.node.options.mdns_interfaces:
            return list(self.node.options.mdns_interfaces)
        host = self.node.host
        if host in ("", "0.0.0.0", "::"):
            return [str(i.ip) for i in interface_addresses()] or ["127.0.0.1"]
        try:
            return [host] if ipaddress.ip_address(host).version == 4 else []
        except ValueError:  # a host name: resolve it
            try:
                return [socket.gethostbyname(host)]
            except OSError:
                return []

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        node = self.node
        interfaces = await trio.to_thread.run_sync(self.interfaces)
        if not interfaces:
            log.warning("mDNS off: it runs over IPv4 and the node listens on %s only; "
                        "list peers as seeds", node.host)
            task_status.started()
            return
        self.networks = [i for i in await trio.to_thread.run_sync(interface_addresses)
                         if str(i.ip) in interfaces]
        log.info("mDNS on %s", ", ".join(interfaces))
        zc = await trio.to_thread.run_sync(
            lambda: Zeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only))
        self.zeroconf = zc
        info = ServiceInfo(
            SERVICE_TYPE,
            f"{self.instance}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(a) for a in interfaces],
            port=node.port,
            properties=txt_record(node.replica_id, node.fingerprint),
            server=f"{self.instance}.local.",
            host_ttl=_TTL,
            other_ttl=_TTL,
        )
        token = trio.lowlevel.current_trio_token()
        browser: ServiceBrowser | None = None
        try:
            await trio.to_thread.run_sync(zc.register_service, info)

            def on_change(zeroconf: Zeroconf, service_type: str, name: str,
                          state_change: ServiceStateChange) -> None:
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(self._offer, name, state_change.name)

            browser = ServiceBrowser(zc, SERVICE_TYPE, handlers=[on_change])
            task_status.started()
            async with trio.open_nursery() as nursery:
                async for name, change in self._recv:
                    if change in ("Added", "Updated") and name != info.name:
                        nursery.start_soon(self._lookup, name)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                if browser is not None:
                    await trio.to_thread.run_sync(browser.cancel)
                await trio.to_thread.run_sync(zc.unregister_service, info)
                await trio.to_thread.run_sync(zc.close)

    def _offer(self, name: str, change: str) -> None:
        # announcements repeat, so a dropped one is seen again later
        with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
            self._send.send_nowait((name, change))

    async def _lookup(self, name: str) -> None:
        zc = self.zeroconf
        assert zc is not None
        info = await trio.to_thread.run_sync(zc.get_service_info, SERVICE_TYPE, name, 3000)
        if info is None:
            return
        props = {k.decode("utf-8", "replace"): (v or b"").decode("utf-8", "replace")
                 for k, v in (info.properties or {}).items() if isinstance(k, bytes)}
        node = self.node
        if props.get("v") != str(PROTOCOL_VERSION) or props.get("cf") != node.fingerprint.hex():
            return
        rid = props.get("rid", "")
        addresses = info.parsed_addresses(IPVersion.V4Only)
        if not rid or not addresses or not info.port:
            return
        address = pick_address(addresses, self.networks)
        self.found[rid] = (name, address, info.port)
        node.discovered(rid, address, info.port)


def interface_addresses() -> list[ipaddress.IPv4Interface]:
    """This machine's non-loopback IPv4 addresses, with their networks."""
    out = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if ip.is_IPv4:
                iface = ipaddress.IPv4Interface(f"{ip.ip}/{ip.network_prefix}")
                if not iface.ip.is_loopback and iface not in out:
                    out.append(iface)
    return out


def pick_address(addresses: Sequence[str], ours: Sequence[ipaddress.IPv4Interface]) -> str:
    """Of a peer's advertised addresses, the first on one of our networks (a machine
    with a LAN and a container bridge advertises both), else the first."""
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        if any(ip in iface.network for iface in ours):
            return address
    return addresses[0]
