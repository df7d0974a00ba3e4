"""Drive sessions between in-memory replicas on virtual time, with injected faults.

This is the reference loop for everything that runs the protocol without trio: unit
tests and ``simulations/``.  It is pure: time is a number the loop advances, and every
random choice comes from the ``random.Random`` passed in.

Faults act on whole frames (the unit a real transport loses, repeats or reorders when
it reconnects and retransmits): each frame may be dropped, delivered twice, or
delivered after the frames behind it.  Closed links are re-opened with fresh sessions
after ``reconnect_after`` seconds, as the trio shell does with its dialers.

Example::

    net = MemoryNetwork(rng=random.Random(1), fingerprint=b"fp")
    net.connect(replica_a, replica_b)
    net.run_until(lambda: replica_a.state_digest() == replica_b.state_digest(), limit=60)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from memmesh.crdt.errors import MemmeshError

from . import events as ev
from .errors import ProtocolError
from .frames import HEADER
from .session import Session, SessionConfig, State

__all__ = ["Faults", "MemoryNetwork", "SyncReplica"]


class SyncReplica(Protocol):
    """The part of ``memmesh.storage.Replica`` that gossip needs to sync."""

    @property
    def replica_id(self) -> str: ...

    def sync_summary(self) -> bytes: ...

    def sync_changes(self, summary: bytes, *, max_bytes: int | None = ...,
                     peer: object = ...) -> bytes: ...

    def sync_apply(self, changes: bytes) -> object: ...


@dataclass(frozen=True, slots=True)
class Faults:
    """Per-frame probabilities of loss, duplication and reordering."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0


def _split_frames(data: bytes) -> list[bytes]:
    """Cut a session's output into whole frames (it only ever emits whole frames)."""
    out: list[bytes] = []
    i = 0
    while i < len(data):
        (length,) = HEADER.unpack_from(data, i)
        end = i + HEADER.size + length
        out.append(data[i:end])
        i = end
    return out


@dataclass(slots=True)
class _End:
    replica: SyncReplica
    session: Session
    scope: object = None
    inbox: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class _Link:
    a: SyncReplica
    b: SyncReplica
    faults: Faults
    ends: tuple[_End, _End] | None = None
    down_until: float = 0.0
    syncs_completed: int = 0
    errors: list[str] = field(default_factory=list)


class MemoryNetwork:
    """A set of links between in-memory replicas, stepped on virtual time."""

    def __init__(self, *, rng: random.Random, fingerprint: bytes = b"memmesh-test",
                 config: SessionConfig | None = None, interval: float = 1.0,
                 reconnect_after: float = 1.0, step: float = 0.01,
                 tap: Callable[[bytes], None] | None = None) -> None:
        self.rng = rng
        self.fingerprint = fingerprint
        self.config = config if config is not None else SessionConfig(
            rto=0.5, keepalive=2.0, idle_timeout=10.0, handshake_timeout=3.0)
        self.interval = interval
        self.reconnect_after = reconnect_after
        self.step = step
        self.tap = tap
        self.now = 0.0
        self.links: list[_Link] = []
        self.scopes: dict[tuple[str, str], object] = {}
        self._next_round: dict[int, float] = {}

    def connect(self, a: SyncReplica, b: SyncReplica, faults: Faults | None = None) -> None:
        """Keep a link between ``a`` and ``b`` (re-opened whenever it closes)."""
        self.links.append(_Link(a, b, faults if faults is not None else Faults()))

    def set_scope(self, serving: SyncReplica, peer: SyncReplica, scope: object) -> None:
        """What ``serving`` lets ``peer`` see (passed as ``sync_changes(peer=...)``)."""
        self.scopes[(serving.replica_id, peer.replica_id)] = scope

    def push(self, writer: SyncReplica, *, priority: bool = False) -> None:
        """Tell every open link of ``writer`` that it has new local writes."""
        local = writer.sync_summary()
        for link in self.links:
            if link.ends is None:
                continue
            for end in link.ends:
                if end.replica is writer and end.session.state is State.OPEN and \
                        not end.session.request_push(self.now, priority=priority,
                                                     local_summary=local):
                    self._start_pull(end)
                self._serve(link, end)

    # ------------------------------------------------------------------ loop

    def run_until(self, done: Callable[[], bool], *, limit: float) -> bool:
        """Step until ``done()`` or ``limit`` virtual seconds pass; True if done."""
        end_time = self.now + limit
        while self.now < end_time:
            self.tick()
            if done():
                return True
        return False

    def tick(self) -> None:
        self.now += self.step
        for i, link in enumerate(self.links):
            if link.ends is None:
                if self.now >= link.down_until:
                    self._open(link)
                    self._next_round[i] = self.now + self.interval * self.rng.uniform(0.1, 1)
                continue
            ends = link.ends
            for j in (0, 1):
                self._transmit(link, ends[j], ends[1 - j])
            for end in ends:
                self._deliver(link, end)
                self._serve(link, end)
                deadline = end.session.next_deadline()
                if deadline is not None and self.now >= deadline:
                    end.session.handle_timeout(self.now)
                    self._serve(link, end)
            if i in self._next_round and self.now >= self._next_round[i]:
                self._next_round[i] = self.now + self.interval * self.rng.uniform(0.5, 1.5)
                end = ends[self.rng.randrange(2)]
                if end.session.state is State.OPEN and not end.session.pulling:
                    self._start_pull(end)
            if any(e.session.state is State.CLOSED for e in ends):
                for e in ends:
                    e.session.close()
                link.ends = None
                link.down_until = self.now + self.reconnect_after

    def _open(self, link: _Link) -> None:
        ends = []
        for me, other in ((link.a, link.b), (link.b, link.a)):
            s = Session(replica_id=me.replica_id, fingerprint=self.fingerprint,
                        now=self.now, config=self.config)
            ends.append(_End(me, s, self.scopes.get((me.replica_id, other.replica_id))))
        link.ends = (ends[0], ends[1])

    def _transmit(self, link: _Link, src: _End, dst: _End) -> None:
        frames = _split_frames(src.session.data_to_send())
        f = link.faults
        for frame in frames:
            if self.tap is not None:
                self.tap(frame)
            if self.rng.random() < f.loss:
                continue
            dst.inbox.append(frame)
            if self.rng.random() < f.duplicate:
                dst.inbox.append(frame)
        if f.reorder and len(dst.inbox) > 1 and self.rng.random() < f.reorder:
            i = self.rng.randrange(len(dst.inbox) - 1)
            dst.inbox[i], dst.inbox[i + 1] = dst.inbox[i + 1], dst.inbox[i]

    def _deliver(self, link: _Link, end: _End) -> None:
        inbox, end.inbox = end.inbox, []
        for frame in inbox:
            try:
                end.session.receive_data(frame, self.now)
            except ProtocolError as exc:
                link.errors.append(str(exc))
                return

    def _start_pull(self, end: _End) -> None:
        end.session.start_sync(end.replica.sync_summary(), self.now)

    def _serve(self, link: _Link, end: _End) -> None:
        s = end.session
        while (e := s.next_event()) is not None:
            match e:
                case ev.NeedSummary():
                    if s.state is State.OPEN and not s.pulling:
                        s.start_sync(end.replica.sync_summary(), self.now, reply=True)
                case ev.NeedChanges(request=req, summary=summary, max_bytes=mb):
                    try:
                        data = end.replica.sync_changes(summary, max_bytes=mb, peer=end.scope)
                    except MemmeshError:
                        s.refuse(req, "protocol") if e.first else s.close("protocol")
                        continue
                    s.changes_ready(req, data, self.now)
                case ev.ApplyChanges(n=n, data=data):
                    try:
                        end.replica.sync_apply(data)
                    except MemmeshError:
                        s.apply_failed(n, self.now)
                        continue
                    s.applied(n, self.now)
                case ev.SyncCompleted(more=more):
                    link.syncs_completed += 1
                    if more and s.state is State.OPEN and not s.pulling:
                        self._start_pull(end)
                case _:
                    pass
