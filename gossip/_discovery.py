"""mDNS discovery with python-zeroconf, bridged into trio.

python-zeroconf has no trio API and runs its own asyncio loop in a thread, so
(FIELD-NOTES.md): blocking calls run in trio worker threads; the browser callback only
hands ``(name, change)`` to trio (``TrioToken.run_sync_soon``, a bounded channel) and
the lookup happens in a trio task, never inside the callback; the instance name is
random; the TXT record holds only ``v``, ``rid`` and the public cluster fingerprint
``cf``; records get short TTLs and liveness is judged by gossip links. Interfaces follow
``node.host`` (loopback stays on loopback, a wildcard uses every interface) unless
``mdns_interfaces`` says otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
from typing import TYPE_CHECKING, Any

import trio
from zeroconf import (
    InterfaceChoice,
    IPVersion,
    ServiceBrowser,
    ServiceInfo,
    ServiceStateChange,
    Zeroconf,
)

from .protocol.messages import PROTOCOL_VERSION

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["SERVICE_TYPE", "MdnsDiscovery", "txt_record"]

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

    def _interfaces(self) -> Any:
        if self.node.options.mdns_interfaces:
            return list(self.node.options.mdns_interfaces)
        if self.node.host in ("", "0.0.0.0", "::"):
            return InterfaceChoice.All
        return [self.node.host]

    def _advertised_address(self) -> str:
        host = self.node.host
        if host not in ("", "0.0.0.0", "::"):
            return host
        try:
            return socket.gethostbyname(socket.gethostname())
        except OSError:
            return "127.0.0.1"

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        node = self.node
        zc = await trio.to_thread.run_sync(
            lambda: Zeroconf(interfaces=self._interfaces(), ip_version=IPVersion.V4Only))
        self.zeroconf = zc
        info = ServiceInfo(
            SERVICE_TYPE,
            f"{self.instance}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(self._advertised_address())],
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
        self.found[rid] = (name, addresses[0], info.port)
        node.discovered(rid, addresses[0], info.port)
