"""Keeping outbound connections up: one dial loop per address, with back-off.

Seeds are dialled forever; peers learnt from mDNS or from the persisted list until they
fail repeatedly (8 failures in a row) or refuse us for good (wrong cluster, version,
identity, self).  While a registered link to the address's peer is up, its loop waits
for that link to close.  Back-off is exponential with "equal jitter"
(:func:`._peers.backoff_delay`).  Whether a new link is kept is the sync policy's
decision (one link per peer id), not the dialer's.

Each address has a :class:`DialRecord` (state, consecutive failures, last error, last
contact) that ``node.status()`` reports for every seed.  A failing address is logged
once per doubling of its failure count (1, 2, 4, 8... as the back-off doubles), at
WARNING for a seed and INFO for a learnt peer (usually one that left), and a seed that
comes back after a logged failure says so at WARNING too.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import trio

from ._peers import at_doubling, backoff_delay, format_address
from ._tls import HandshakeFailed

if TYPE_CHECKING:
    from ._link import Link
    from ._node import Node

__all__ = ["DialRecord", "Dialer"]

log = logging.getLogger("memmesh.gossip")

_FATAL_REJECTS: Final = frozenset({"wrong-cluster", "version", "identity", "self"})
_MAX_FAILURES: Final = 8


@dataclass(slots=True)
class DialRecord:
    """What the dialer knows of one address.  ``state``: ``connecting`` (no attempt has
    ended yet), ``linked`` (a link through it registered), ``unreachable`` (no TCP
    connection), ``refused`` (the TLS handshake or the peer's HELLO refused us) or
    ``closed`` (a link came up and closed; redialling).  Times are Unix seconds."""

    address: tuple[str, int]
    seed: bool
    state: str = "connecting"
    failures: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    last_contact: float | None = None
    warned: bool = False

    def failed(self, state: str, error: str) -> None:
        self.state, self.last_error, self.last_error_at = state, error, time.time()
        self.failures += 1


class Dialer:
    def __init__(self, node: Node) -> None:
        self.node = node
        self._loops: dict[tuple[str, int], bool] = {}  # address -> persistent
        self._addr_rid: dict[tuple[str, int], str] = {}
        self.records: dict[tuple[str, int], DialRecord] = {}

    def learnt(self, addr: tuple[str, int], rid: str, *, only_if_new: bool = False) -> None:
        """``addr`` is where replica ``rid`` listens."""
        if not only_if_new or addr not in self._addr_rid:
            self._addr_rid[addr] = rid

    def peer_at(self, addr: tuple[str, int]) -> str | None:
        """The replica id last seen at ``addr`` (None: not known yet)."""
        return self._addr_rid.get(addr)

    def linked(self, addr: tuple[str, int], rid: str) -> None:
        """A link dialled to ``addr`` registered as peer ``rid``."""
        self._addr_rid[addr] = rid
        record = self.records.get(addr)
        if record is None:
            return
        if record.warned:
            log.warning("%s: connected to peer %s after %d failure(s)", self._name(record),
                        rid, record.failures)
        record.state, record.failures, record.warned = "linked", 0, False
        record.last_contact = time.time()

    def ensure(self, addr: tuple[str, int], *, persistent: bool, delay: float = 0.0) -> None:
        """Dial ``addr`` (again and again while ``persistent``) unless a loop already does."""
        node = self.node
        if addr == (node.host, node.port):
            return
        record = self.records.get(addr)
        if record is None:
            record = self.records[addr] = DialRecord(addr, seed=persistent)
        elif persistent:
            record.seed = True
        if addr in self._loops:
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
        record = self.records[addr]
        try:
            if delay:
                await trio.sleep(delay)
            while True:
                rid = self._addr_rid.get(addr)
                existing = node.policy.link_to(rid) if rid else None
                link = None if existing is None else node.link_of(existing)
                if link is not None:
                    assert rid is not None
                    if record.state != "linked":  # it dialled us: as good as our dial
                        self.linked(addr, rid)
                    await link.closed.wait()
                    record.last_contact = max(record.last_contact or 0.0, link.last_contact)
                    await trio.sleep(self._delay(0))
                    continue
                before = record.failures
                link = await self._dial_once(record)
                plink = None if link is None else link.plink
                if link is not None:
                    record.last_contact = max(record.last_contact or 0.0, link.last_contact)
                if plink is not None and plink.peer_id is not None:
                    self._addr_rid[addr] = plink.peer_id
                if plink is not None and plink.registered:
                    record.state, record.failures = "closed", 0
                elif plink is not None and "duplicate" in (plink.rejected_reason,
                                                           plink.closed_reason):
                    record.failures = 0
                    continue
                elif plink is not None:
                    why = plink.rejected_reason or plink.closed_reason or "closed"
                    record.failed("refused", f"rejected ({why}) before its handshake ended")
                fatal = plink is not None and plink.rejected_reason in _FATAL_REJECTS
                if not self._loops.get(addr) and (fatal or record.failures >= _MAX_FAILURES):
                    return
                pause = self._delay(30 if fatal else record.failures)
                if record.failures > before and at_doubling(record.failures):
                    self._log_failure(record, pause)
                await trio.sleep(pause)
        finally:
            self._loops.pop(addr, None)
            if not record.seed:
                self.records.pop(addr, None)

    async def _dial_once(self, record: DialRecord) -> Link | None:
        """One attempt; a failure before a link exists is recorded and gives None."""
        node = self.node
        addr = record.address
        try:
            with trio.fail_after(node.options.connect_timeout):
                sock = await trio.open_tcp_stream(*addr)
        except OSError as exc:
            record.failed("unreachable", _os_error(exc))
            return None
        except trio.TooSlowError:
            record.failed("unreachable", f"no answer within {node.options.connect_timeout:g} s")
            return None
        try:
            wrapped, peer_id, peer_key = await node.tls.connect(sock)
        except HandshakeFailed as failed:
            record.failed("refused", f"TLS handshake: {failed}")
            return None
        assert wrapped is not None
        if node.policy.redundant_dial(peer_id):
            await trio.aclose_forcefully(wrapped)  # already linked, dialled by us
            assert peer_id is not None
            self._addr_rid[addr] = peer_id
            return None
        return await node.handle_stream(wrapped, outbound=True, peer_id=peer_id, address=addr,
                                        peer_key=peer_key)

    def _log_failure(self, record: DialRecord, pause: float) -> None:
        level = logging.WARNING if record.seed else logging.INFO
        record.warned = record.warned or record.seed
        log.log(level, "%s: %s (%s); %d failure(s) in a row, next try in %.1f s",
                self._name(record), record.state, record.last_error, record.failures, pause)

    def _name(self, record: DialRecord) -> str:
        kind = "seed" if record.seed else "peer"
        rid = self._addr_rid.get(record.address)
        return f"{kind} {format_address(*record.address)}" + (f" ({rid})" if rid else "")


def _os_error(exc: OSError) -> str:
    """The system's words for a failed connect (trio wraps the attempts' errors)."""
    cause = exc.__cause__
    while isinstance(cause, BaseExceptionGroup) and cause.exceptions:
        cause = cause.exceptions[0]
    for err in (exc, cause):
        if isinstance(err, OSError) and err.strerror:
            return err.strerror.rsplit(": ", 1)[-1]
    return str(exc) or type(exc).__name__
