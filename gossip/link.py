"""Runs one :class:`~memmesh.gossip.protocol.Session` over one trio byte stream.

Three tasks per link, all bounded:

* the *reader* feeds received bytes (at most 64 KiB per read) to the session;
* the *writer* sends ``data_to_send()``, each send under a timeout, and fires the
  session's timers at ``next_deadline()``;
* the *worker* performs the storage work the session asks for (summaries, changes,
  applies) through the node's storage runner (a worker thread, so LMDB never blocks
  the event loop), in order, from a bounded channel.

No protocol decision is made here: the link only moves bytes and runs requests.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

import trio

from memmesh.crdt.errors import MemmeshError

from .protocol import events as ev
from .protocol.errors import LocalProtocolError, RemoteProtocolError
from .protocol.session import Session

if TYPE_CHECKING:
    from .node import Node

__all__ = ["Link"]

log = logging.getLogger("memmesh.gossip")

READ_SIZE = 65536


class Link:
    """One authenticated connection to a peer (inbound or outbound)."""

    def __init__(self, node: Node, stream: trio.abc.Stream, session: Session, *,
                 outbound: bool, address: tuple[str, int] | None,
                 send_timeout: float) -> None:
        self.node = node
        self.stream = stream
        self.session = session
        self.outbound = outbound
        self.address = address
        self.send_timeout = send_timeout
        self.peer_id: str | None = None
        self.scope: object = None
        self.connected_at = time.time()
        self.last_sync: float | None = None
        self.syncs = 0
        self.more_streak = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.registered = False
        self.rejected_reason: str | None = None
        self.holding_slot = False
        self.closed = trio.Event()
        self._wake_event = trio.Event()
        # pending storage requests <= window applies + serve + push + summary
        self._work_send, self._work_recv = trio.open_memory_channel[Any](
            session.config.window + 8)

    # ------------------------------------------------------------------ control

    @property
    def open(self) -> bool:
        return self.registered and not self.session.closed

    def wake(self) -> None:
        self._wake_event.set()

    def now(self) -> float:
        return trio.current_time()

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._reader)
                nursery.start_soon(self._worker)
                await self._writer()
                nursery.cancel_scope.cancel()
        finally:
            if not self.session.closed:
                self.session.close()
            self._work_send.close()
            self._release_slot()
            self.closed.set()
            await trio.aclose_forcefully(self.stream)

    async def start_pull(self) -> None:
        """Start an anti-entropy pull on this link if none is running."""
        if not self.open or self.session.pulling:
            return
        summary = await self.node.storage(self.node.replica.sync_summary)
        self.node.note_summary(summary)
        if self.open and not self.session.pulling:
            self.session.start_sync(summary, self.now())
            self.wake()

    def push(self, *, priority: bool, local_summary: bytes | None = None) -> None:
        """New local writes: push them (or pull, when the peer's summary is unknown)."""
        if not self.open:
            return
        if self.session.request_push(self.now(), priority=priority,
                                     local_summary=local_summary):
            self.node.stats["pushes"] += 1
            self._process_events()
        elif not self.session.pulling:
            self.node.spawn(self.start_pull)

    # ------------------------------------------------------------------ tasks

    async def _reader(self) -> None:
        while not self.session.closed:
            try:
                data = bytes(await self.stream.receive_some(READ_SIZE))
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.debug("link %s: read failed: %s", self.peer_id, type(exc).__name__)
                data = b""
            self.bytes_in += len(data)
            try:
                self.session.receive_data(data, self.now())
            except RemoteProtocolError as exc:
                log.info("link %s: peer broke the protocol (%s)", self.peer_id, exc.reason)
            self._process_events()
            self.wake()
            if not data:
                return

    async def _writer(self) -> None:
        s = self.session
        while True:
            deadline = s.next_deadline()
            if deadline is not None and self.now() >= deadline:
                s.handle_timeout(self.now())
                self._process_events()
                continue
            data = s.data_to_send()
            if data:
                try:
                    with trio.fail_after(self.send_timeout):
                        await self.stream.send_all(data)
                except (trio.TooSlowError, trio.BrokenResourceError,
                        trio.ClosedResourceError, OSError):
                    s.close("timeout")
                    return
                self.bytes_out += len(data)
                continue
            if s.closed:
                return
            self._wake_event = trio.Event()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._wake_event.wait()

    async def _worker(self) -> None:
        s = self.session
        node = self.node
        async for item in self._work_recv:
            if s.closed:
                continue
            try:
                match item:
                    case ev.ApplyChanges(n=n, data=data):
                        try:
                            t0 = trio.current_time()
                            result = await node.storage(node.replica.sync_apply, data)
                            log.debug("apply %d bytes %.3fs", len(data), trio.current_time() - t0)
                        except MemmeshError as exc:
                            log.info("link %s: invalid changes refused (%s)", self.peer_id,
                                     type(exc).__name__)
                            s.apply_failed(n, self.now())
                        else:
                            s.applied(n, self.now())
                            node.changes_applied(result)
                    case ev.NeedChanges(first=True, purpose="serve") if not self.holding_slot:
                        if not node.acquire_sync_slot():
                            s.refuse(item.request, "busy")
                            node.stats["rejected_busy"] += 1
                        else:
                            self.holding_slot = True
                            await self._changes(item)
                    case ev.NeedChanges():
                        await self._changes(item)
                    case ev.NeedSummary():
                        # the reverse half of a round; skipped while this link still has
                        # data to apply (it would fetch what is already on its way)
                        if not s.pulling and not s.closed and not s.receiving:
                            summary = await node.storage(node.replica.sync_summary)
                            node.note_summary(summary)
                            if not s.pulling and not s.closed:
                                s.start_sync(summary, self.now(), reply=True)
            except LocalProtocolError as exc:
                log.warning("link %s: %s", self.peer_id, exc)
                s.close("protocol")
            except MemmeshError as exc:
                log.warning("link %s: storage refused a sync request: %s", self.peer_id,
                            type(exc).__name__)
                s.close("protocol")
            if not s.serving:
                self._release_slot()
            self._process_events()
            self.wake()

    async def _changes(self, e: ev.NeedChanges) -> None:
        node = self.node
        t0 = trio.current_time()
        data = await node.storage(node.replica.sync_changes, e.summary,
                                  max_bytes=e.max_bytes, peer=self.scope)
        log.debug("changes %s %d bytes %.3fs", e.purpose, len(data), trio.current_time() - t0)
        self.session.changes_ready(e.request, data, self.now())

    # ------------------------------------------------------------------ events

    def _process_events(self) -> None:
        s = self.session
        while (e := s.next_event()) is not None:
            match e:
                case ev.HandshakeComplete(peer_id=pid):
                    self.peer_id = pid
                    self.node.link_open(self)
                case ev.ApplyChanges() | ev.NeedChanges() | ev.NeedSummary():
                    try:
                        self._work_send.send_nowait(e)
                    except (trio.WouldBlock, trio.ClosedResourceError):
                        s.close("protocol")
                case ev.SyncCompleted(more=more):
                    self.last_sync = time.time()
                    self.syncs += 1
                    self.node.sync_completed(self, more)
                case ev.SyncRejected():
                    pass
                case ev.PeerRejected(reason=reason):
                    self.rejected_reason = reason
                    log.info("link %s: peer rejected the link (%s)", self.peer_id, reason)
                case ev.ConnectionClosed():
                    self._release_slot()
        self.wake()

    def _release_slot(self) -> None:
        if self.holding_slot:
            self.holding_slot = False
            self.node.release_sync_slot()
