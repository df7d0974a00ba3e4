"""The byzantine member's forgeries, crafted through the internals (issue 11).

A faulty or hostile member runs modified code: it can send any key state that encodes,
any payload that packs.  This module crafts the ones issue 11 lists, each valid in
every respect but the one its case is about, for the ``byzantine`` scenario and for
the hostile-peer suite in ``tests/hostile`` (one toolkit for both):

* key states (``crdt.keystate``, encoded by ``storage._keycodec``): :func:`memory_state`
  and :func:`set_state` from scratch; :func:`created_by` (headers differing only in
  ``created``'s replica, case 2), :func:`reusing_dot` (a new key carrying another key's
  dot, case 3), :func:`restamped` (future stamps, logical parts at or past the bound, cases 6 and
  8), :func:`with_element` (a set element such as ``True``, case 7);
* payloads (``crdt.packb``): :func:`payload`, and edits of an honest payload
  (:func:`shipping` forged states, :func:`claims_only`: forged watermark claims,
  cases 4 and 5) queued per receiving peer in a :class:`Forger`;
* :class:`ForgingReplica`: a real replica whose outgoing payloads go through a forger,
  so an unmodified node (the trio ``Node``, a simulated node) runs the byzantine member.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from memmesh.crdt import Dot, Timestamp, packb, unpackb
from memmesh.crdt.keystate import KIND_MEMORY, KIND_SET, OP_ADD, Header, KeyState, VersionData
from memmesh.storage._keycodec import encode
from memmesh.storage._keystore import load

if TYPE_CHECKING:
    from memmesh.storage import Replica

__all__ = [
    "Edit",
    "Forger",
    "ForgingReplica",
    "State",
    "claims_only",
    "created_by",
    "key_of",
    "memory_state",
    "payload",
    "raw",
    "restamped",
    "reusing_dot",
    "set_state",
    "shipping",
    "state_of",
    "with_element",
]

State = KeyState | bytes
Edit = Callable[[dict[str, Any]], dict[str, Any]]


def state_of(replica: Any, key: str) -> KeyState:
    """The stored state of ``key`` (internals: the byzantine member reads its own copy;
    ``replica`` may be a wrapper with the replica as ``inner``)."""
    inner = getattr(replica, "inner", replica)
    with inner._env.read() as txn:
        _, _, state = load(txn, key)
    assert state is not None, f"{key} is not held by {inner.replica_id}"
    return state


def memory_state(key: str, origin: str, counter: int, text: str, *, wall: int,
                 logical: int = 0, created_replica: str | None = None,
                 user_id: str | None = None) -> KeyState:
    """A shared "mv" memory written once, as ``origin``'s event ``counter``."""
    header = Header(key, KIND_MEMORY, None, user_id, None, None, "mv", "shared", False,
                    Timestamp(wall, logical, created_replica or origin), None)
    version = VersionData(text, "mallory", None, wall, logical, 1.0, {}, OP_ADD)
    return KeyState(header, {origin: counter}, False, {Dot(origin, counter): version})


def set_state(key: str, origin: str, counter: int, element: Any, *,
              user_id: str | None = None) -> KeyState:
    """A shared set holding ``element`` under ``origin``'s event ``counter`` (the element
    is not validated: the state may be one no honest replica could make)."""
    header = Header(key, KIND_SET, None, user_id, None, None, "set", "shared", False,
                    None, None)
    return KeyState(header, {origin: counter}, False,
                    {element: frozenset({Dot(origin, counter)})})


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
    body = {dot: v._replace(wall_ms=wall, logical=logical) for dot, v in state.body.items()}
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
                    {dot: version._replace(text=text)})


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


def shipping(*states: State) -> Edit:
    """Edit: ship ``states`` first, instead of whatever the honest payload held for
    their keys (one key twice in a payload would get both copies refused)."""
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
