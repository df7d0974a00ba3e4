"""Keeping outbound connections up: one dial loop per address, with back-off.

Seeds are dialled forever; peers learnt from mDNS or from the persisted list until they
fail repeatedly (8 failures in a row) or refuse us for good (wrong cluster, version,
identity, self).  While a registered link to the address's peer is up, its loop waits
for that link to close.  Back-off is exponential with "equal jitter"
(:func:`._peers.backoff_delay`).  Whether a new link is kept is the sync policy's
decision (one link per peer id), not the dialer's.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final

import trio

from ._peers import backoff_delay

if TYPE_CHECKING:
    from ._link import Link
    from ._node import Node

__all__ = ["Dialer"]

_FATAL_REJECTS: Final = frozenset({"wrong-cluster", "version", "identity", "self"})
_MAX_FAILURES: Final = 8


class Dialer:
    def __init__(self, node: Node) -> None:
        self.node = node
        self._loops: dict[tuple[str, int], bool] = {}  # address -> persistent
        self._addr_rid: dict[tuple[str, int], str] = {}

    def learnt(self, addr: tuple[str, int], rid: str, *, only_if_new: bool = False) -> None:
        """``addr`` is where replica ``rid`` listens."""
        if not only_if_new or addr not in self._addr_rid:
            self._addr_rid[addr] = rid

    def ensure(self, addr: tuple[str, int], *, persistent: bool, delay: float = 0.0) -> None:
        """Dial ``addr`` (again and again while ``persistent``) unless a loop already does."""
        node = self.node
        if addr in self._loops or addr == (node.host, node.port):
            if persistent:
                self._loops[addr] = True
            return
        self._loops[addr] = persistent
        node.spawn(functools.partial(self._loop, addr, delay))

    def _delay(self, failures: int) -> float:
        base, cap = self.node.options.backoff
        return backoff_delay(failures, base=base, cap=cap, rng=self.node.rng)

    async def _loop(self, addr: tuple[str, int], delay: float) -> None:
        node = self.node
        failures = 0
        try:
            if delay:
                await trio.sleep(delay)
            while True:
                rid = self._addr_rid.get(addr)
                existing = node.policy.link_to(rid) if rid else None
                link = None if existing is None else node.link_of(existing)
                if link is not None:
                    await link.closed.wait()
                    await trio.sleep(self._delay(0))
                    continue
                link = await self._dial_once(addr)
                plink = None if link is None else link.plink
                if plink is not None and plink.peer_id is not None:
                    self._addr_rid[addr] = plink.peer_id
                if plink is not None and plink.registered:
                    failures = 0
                elif plink is not None and "duplicate" in (plink.rejected_reason,
                                                           plink.closed_reason):
                    failures = 0
                    continue
                else:
                    failures += 1
                fatal = plink is not None and plink.rejected_reason in _FATAL_REJECTS
                if not self._loops.get(addr) and (fatal or failures >= _MAX_FAILURES):
                    return
                await trio.sleep(self._delay(30 if fatal else failures))
        finally:
            self._loops.pop(addr, None)

    async def _dial_once(self, addr: tuple[str, int]) -> Link | None:
        node = self.node
        try:
            with trio.fail_after(node.options.connect_timeout):
                sock = await trio.open_tcp_stream(*addr)
        except (OSError, trio.TooSlowError):
            return None
        wrapped, peer_id = await node.tls.connect(sock)
        if wrapped is None:
            return None
        if node.policy.redundant_dial(peer_id):
            await trio.aclose_forcefully(wrapped)  # already linked, dialled by us
            assert peer_id is not None
            self._addr_rid[addr] = peer_id
            return None
        return await node.handle_stream(wrapped, outbound=True, peer_id=peer_id, address=addr)
