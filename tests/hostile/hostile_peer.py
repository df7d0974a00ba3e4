"""The byzantine peer of the hostile suite: a cluster-key holder that lies on purpose.

It crafts each case of issue 11 through the internals, as a member running modified
code would:

* **states** (:func:`memory_state`, :func:`restamped`, :func:`with_element`,
  :func:`reusing_dot`, :func:`created_by`): key states built or altered with
  ``storage.keystate`` and encoded canonically, so they pass every check a peer's bytes
  meet except the one each case is about;
* **payloads** (:func:`payload`, :class:`Forger`): changes payloads packed with
  ``crdt.codec.packb``; a :class:`Forger` holds, per receiving peer, the edits to make
  to the next payloads (add states, replace a key's state, claim watermarks);
* :class:`ForgingReplica`: a real ``Replica`` whose ``sync_changes`` goes through a
  forger.  The same object is the byzantine member for bare replicas (the test calls
  ``sync_changes`` itself) and for a real trio ``Node`` (the node's own sync policy
  serves pulls and pushes from it), so both targets receive the very same forgeries;
* :class:`RawPeer`: a real ``Session`` over a raw TLS connection with a certificate
  minted from the cluster key for any replica id it likes, for the link-level cases
  (PUSH frames, a second link under one id, partial frames).
"""

from __future__ import annotations

import contextlib
import ssl
import struct
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import trio

from memmesh.crdt import Dot, Timestamp
from memmesh.crdt.codec import packb, unpackb
from memmesh.gossip.protocol import (
    PROTOCOL_VERSION,
    Session,
    SessionConfig,
    encode_frame,
    encode_message,
)
from memmesh.gossip.protocol import events as ev
from memmesh.gossip.protocol.errors import RemoteProtocolError
from memmesh.gossip.protocol.messages import Hello, Syn
from memmesh.gossip.security import ClusterCredentials, cluster_fingerprint
from memmesh.storage import Replica
from memmesh.storage.keystate import KIND_MEMORY, Header, KeyState, encode

State = KeyState | bytes
Edit = Callable[[dict[str, Any]], dict[str, Any]]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


# ------------------------------------------------------------------ key states


def state_of(replica: Any, key: str) -> KeyState:
    """The stored state of ``key`` (internals: the byzantine member reads its own copy)."""
    inner = getattr(replica, "inner", replica)
    with inner._env.read() as txn:
        _, _, state = inner._load(txn, key)
    assert state is not None, f"{key} is not held by {inner.replica_id}"
    return state


def memory_state(key: str, origin: str, counter: int, text: str, *, wall: int,
                 logical: int = 0, created_replica: str | None = None,
                 user_id: str | None = None) -> KeyState:
    """A shared "mv" memory written once, as ``origin``'s event ``counter``."""
    header = Header(key, KIND_MEMORY, None, user_id, None, None, "mv", "shared", False,
                    Timestamp(wall, logical, created_replica or origin), None)
    version = (text, "mallory", None, wall, logical, 1.0, {}, 0, None, ())
    return KeyState(header, {origin: counter}, False, {Dot(origin, counter): version})


def created_by(state: KeyState, replica: str) -> KeyState:
    """``state`` with only the replica of its ``created`` stamp changed (case 2)."""
    c = state.header.created
    assert c is not None
    return KeyState(state.header._replace(created=Timestamp(c.wall_ms, c.logical, replica)),
                    dict(state.ctx), state.forgotten, dict(state.body))


def restamped(state: KeyState, wall: int, logical: int) -> KeyState:
    """``state`` with its ``created`` stamp and every version stamped ``(wall, logical)``."""
    h = state.header
    created = None if h.created is None else Timestamp(wall, logical, h.created.replica)
    body = {dot: (*v[:3], wall, logical, *v[5:]) for dot, v in state.body.items()}
    return KeyState(h._replace(created=created), dict(state.ctx), state.forgotten, body)


def with_element(state: KeyState, element: Any, dot: Dot) -> KeyState:
    """A set's ``state`` with ``element`` added under ``dot`` (no validation: case 7)."""
    ctx = dict(state.ctx)
    ctx[dot.replica] = max(ctx.get(dot.replica, 0), dot.counter)
    return KeyState(state.header, ctx, False, {**state.body, element: frozenset({dot})})


def reusing_dot(state: KeyState, key: str, text: str) -> KeyState:
    """A state for a new ``key`` carrying ``state``'s own dot and context (case 3)."""
    ((dot, version),) = state.body.items()
    return KeyState(state.header._replace(key=key), dict(state.ctx), False,
                    {dot: (text, *version[1:])})


def raw(state: State) -> bytes:
    return state if isinstance(state, bytes) else encode(state)


def key_of(data: bytes) -> str:
    """The key of encoded state bytes, valid or not (the header's first field)."""
    return str(unpackb(data)[2][0])  # type: ignore[index]


# ------------------------------------------------------------------ payloads


def payload(sender: str, states: Iterable[State] = (), through: dict[str, Any] | None = None,
            ) -> bytes:
    """A changes payload from ``sender`` (unfiltered) carrying ``states`` and ``through``."""
    return packb({"v": 1, "rid": sender, "scope": None,
                  "states": tuple(raw(s) for s in states), "through": through or {}})


def adding(*states: State) -> Edit:
    """Edit: ship ``states`` first, then what the honest payload carried."""
    return lambda p: {**p, "states": tuple(raw(s) for s in states) + tuple(p["states"])}


def replacing(*states: State) -> Edit:
    """Edit: ship ``states`` instead of whatever the honest payload held for their keys."""
    keys = {key_of(raw(s)) for s in states}

    def edit(p: dict[str, Any]) -> dict[str, Any]:
        kept = tuple(r for r in p["states"] if key_of(r) not in keys)
        return {**p, "states": tuple(raw(s) for s in states) + kept}

    return edit


def claims_only(through: dict[str, tuple[int, int]]) -> Edit:
    """Edit: no states at all, only the given watermark claims (case 4)."""
    return lambda p: {**p, "states": (), "through": dict(through)}


class Forger:
    """What the byzantine member does to its outgoing payloads.

    Per receiving peer (its replica id; None: any peer) a queue of edits, each applied
    to one payload in turn, then the peer's ``always`` edit if any.  ``sent`` counts the
    payloads each peer got that were forged.
    """

    def __init__(self) -> None:
        self._queues: dict[str | None, deque[Edit]] = {}
        self._always: dict[str | None, Edit] = {}
        self.sent: Counter[str] = Counter()

    def next(self, peer: str | None, *edits: Edit) -> None:
        self._queues.setdefault(peer, deque()).extend(edits)

    def always(self, peer: str | None, edit: Edit) -> None:
        self._always[peer] = edit

    def pending(self, peer: str | None) -> int:
        return len(self._queues.get(peer, ()))

    def __call__(self, peer: str, data: bytes) -> bytes:
        for who in (peer, None):
            queue = self._queues.get(who)
            edit = queue.popleft() if queue else self._always.get(who)
            if edit is not None:
                self.sent[peer] += 1
                return packb(edit(dict(unpackb(data))))  # type: ignore[arg-type]
        return data


class ForgingReplica:
    """A real replica whose outgoing payloads go through ``forger`` (see module doc);
    everything else is the replica's own, so a trio ``Node`` runs on it unchanged."""

    def __init__(self, replica: Replica, forger: Forger) -> None:
        self.inner = replica
        self.forger = forger

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def sync_changes(self, summary: bytes, *, max_bytes: int | None = None,
                     peer: Any = None) -> bytes:
        honest = self.inner.sync_changes(summary, max_bytes=max_bytes, peer=peer)
        return self.forger(str(unpackb(summary)["rid"]), honest)  # type: ignore[index]


# ------------------------------------------------------------------ raw links


async def tls_connect(port: int, rid: str, key: bytes) -> trio.SSLStream[trio.SocketStream]:
    """A TLS connection to ``port`` as replica ``rid``, with a certificate minted from
    the cluster ``key`` (any key holder can mint one for any id)."""
    ctx = ClusterCredentials.create(key, rid).client_context()
    tls = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", port), ctx,
                         server_hostname="memmesh")
    await tls.do_handshake()
    return tls


def hello_frame(rid: str, key: bytes, *, max_frame: int = 4 * 1024 * 1024) -> bytes:
    """A HELLO frame of ``rid`` for the cluster of ``key`` (then the node is open)."""
    hello = Hello(PROTOCOL_VERSION, cluster_fingerprint(key), rid, 0, 8, max_frame, wall_ms())
    return encode_frame(encode_message(hello), cap=max_frame)


async def hoard(port: int, rid: str, key: bytes, held: int) -> trio.abc.Stream | None:
    """Case 10's attacker link: a key holder says HELLO, announces a 4 MiB frame and
    sends ``held`` bytes of it, then sits there.  None if the node dropped it first."""
    try:
        tls = await tls_connect(port, rid, key)
        await tls.send_all(hello_frame(rid, key) + struct.pack(">I", 4 * 1024 * 1024))
        await tls.send_all(bytes(held))
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError):
        return None
    return tls


def empty_summary(rid: str) -> bytes:
    """A summary of a replica that holds nothing: a pull for everything."""
    return packb({"v": 1, "rid": rid, "wm": {}, "root": bytes(32)})


async def pipelined_pull(port: int, rid: str, key: bytes) -> bytes:
    """HELLO and a pull for everything in one write, without waiting for the node's
    answer (a link that is refused must not serve in between); every byte the node
    sent back until it hung up."""
    tls = await tls_connect(port, rid, key)
    syn = encode_frame(encode_message(Syn(1, empty_summary(rid), False)), cap=4 << 20)
    await tls.send_all(hello_frame(rid, key) + syn)
    got = bytearray()
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        while data := await tls.receive_some(65536):
            got += data
    await trio.aclose_forcefully(tls)
    return bytes(got)


@dataclass(eq=False)
class RawPeer:
    """A real :class:`Session` driven by hand over one stream (see module doc).

    It answers the node like a minimal member: an empty summary for pulls, empty
    changes when it is pulled, every data frame acknowledged (and kept in ``applied``),
    and the blobs queued with :meth:`push` as PUSH frames.  Run :meth:`serve` in a
    nursery; everything received is in ``received``, every event in ``events``.
    """

    rid: str
    stream: trio.abc.Stream
    session: Session
    received: bytearray = field(default_factory=bytearray)
    applied: list[bytes] = field(default_factory=list)
    events: list[ev.Event] = field(default_factory=list)
    pushes: deque[bytes] = field(default_factory=deque)
    pushed: int = 0

    @classmethod
    async def connect(cls, port: int, rid: str, key: bytes) -> RawPeer:
        stream = await tls_connect(port, rid, key)
        session = Session(replica_id=rid, fingerprint=cluster_fingerprint(key),
                          now=trio.current_time(), wall_ms=wall_ms(),
                          config=SessionConfig(retransmit=False))
        return cls(rid, stream, session)

    @property
    def summary(self) -> bytes:
        return empty_summary(self.rid)

    @property
    def opened(self) -> bool:
        """The handshake is done and the link is still open."""
        return self.session.peer is not None and not self.session.closed

    @property
    def rejected(self) -> str | None:
        return next((e.reason for e in self.events if isinstance(e, ev.PeerRejected)), None)

    def pull(self) -> None:
        """Ask the node for everything (an empty summary)."""
        if not self.session.closed and not self.session.pulling:
            self.session.start_sync(self.summary, trio.current_time())

    def push(self, data: bytes) -> None:
        """Send ``data`` as a PUSH frame as soon as the node's summary is known."""
        self.pushes.append(data)
        if not self.session.request_push(trio.current_time()):
            self.pull()  # the node pulls back: then its summary is known

    async def serve(self) -> None:
        """Move bytes and answer events until the link closes."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._timers)
            await self._flush()
            while not self.session.closed:
                try:
                    data = bytes(await self.stream.receive_some(65536))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                self.received += data
                with contextlib.suppress(RemoteProtocolError):  # the node broke the rules
                    self.session.receive_data(data, trio.current_time())
                await self._answer()
            nursery.cancel_scope.cancel()

    async def _timers(self) -> None:
        while not self.session.closed:
            deadline = self.session.next_deadline()
            if deadline is None:
                return
            await trio.sleep_until(deadline)
            self.session.handle_timeout(trio.current_time())
            await self._answer()

    async def _answer(self) -> None:
        s, now = self.session, trio.current_time()
        while (e := s.next_event()) is not None:
            self.events.append(e)
            match e:
                case ev.NeedSummary():
                    s.start_sync(self.summary, now, reply=True)
                case ev.NeedChanges(request=request, purpose="push") if self.pushes:
                    s.changes_ready(request, self.pushes.popleft(), now)
                    self.pushed += 1
                case ev.NeedChanges(request=request):
                    s.changes_ready(request, payload(self.rid), now)
                case ev.ApplyChanges(n=n, data=data):
                    self.applied.append(data)
                    s.applied(n, now)
        if self.pushes and s.peer_summary is not None and not s.closed:
            s.request_push(now)
        await self._flush()

    async def _flush(self) -> None:
        data = self.session.data_to_send()
        if data:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.session.close()
