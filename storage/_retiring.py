"""Who proposes retirement entries (:mod:`._retired`): each proposal is a max-join into
the local table, which gossip then spreads.

* :meth:`Retiring.own_origin`: a graceful leave retires this object's origin at its
  counter (``Replica.retire_origin``);
* this directory's other incarnations, each at its counter once a peer's summary shows
  it holds it that far and its latest event is :data:`EARLIER_QUIET_MS` old
  (``Sync.sync_changes`` proposes them, :func:`propose`): another ``Replica`` object on
  the same directory that is still writing (a writer beside a node) is not retired under
  it; one that writes again after a quiet spell is a *revived* origin, listed again,
  never lost);
* :meth:`Retiring.unseen`: origins whose latest event held here is older than an age are
  retired at this replica's complete mark of them (``Replica.retire_unseen``, and the
  ``retire_after`` option of ``Replica.open``). A periodic scan, one key read per origin,
  off the write path.

Akka Distributed Data prunes a removed node once the cluster agrees it left ("CRDT
Garbage", ``RemovedNodePruning``); here the proposals need no agreement, because an
entry only lets a replica stop *naming* an origin it holds in full (never drop events).
"""

from __future__ import annotations

from collections.abc import Mapping

from memmesh.crdt import Dot
from memmesh.crdt.keystate import KIND_MEMORY

from . import _digest as stored_digest
from . import _retired as rt
from ._env import Env, Txn
from ._incarnation import counter_key, own_counters
from ._indexes import latest_counter, origin_entries, origins
from ._keycodec import decode
from ._stamps import Stamps
from ._watermarks import Table

__all__ = ["EARLIER_QUIET_MS", "Retiring", "latest_stamp", "propose"]

#: How long an earlier incarnation of this directory must have been quiet (its latest
#: event's stamp) before it is retired. Retiring a live one makes every write of it a
#: revival that raises the entry, and a peer that left the origin out under the lower
#: entry is read as holding the higher one until the tables agree: its pushes wait for
#: the next pull (measured: priority-push p99 over 10 processes 60 ms -> 1.8 s).
EARLIER_QUIET_MS = 600_000


def propose(env: Env, entries: Mapping[str, int], replica_id: str) -> dict[str, int]:
    """Max-join ``entries`` into the table in one write; the entries that rose."""
    if not entries:
        return {}

    def write(txn: Txn) -> dict[str, int]:
        raised, _ = rt.join(txn, entries, own_counters(txn, replica_id))
        return raised

    return env.write(write)


class Retiring:
    """The retirement proposals of one ``Replica`` object (see module doc)."""

    def __init__(self, env: Env, stamps: Stamps) -> None:
        self._env = env
        self._stamps = stamps

    def _propose(self, entries: Mapping[str, int]) -> dict[str, int]:
        return propose(self._env, entries, self._stamps.replica_id)

    def own_origin(self) -> int:
        """Retire this object's origin at its dot counter; that counter (0: it never
        minted, nothing to retire)."""
        me = self._stamps.origin
        if me is None:
            return 0
        with self._env.read() as txn:
            final = txn.counter(counter_key(me, self._stamps.replica_id))
            if not final or rt.retired(txn, me) >= final:
                return final
        self._propose({me: final})
        return final

    def unseen(self, older_than_ms: int) -> dict[str, int]:
        """Retire, at this replica's complete mark, every origin (not this object's)
        whose latest event held here was stamped more than ``older_than_ms`` ago; the
        entries that rose."""
        cutoff = self._stamps.clock() - older_than_ms
        found: dict[str, int] = {}
        with self._env.read() as txn:
            table = Table(txn)
            for origin in {o for priority in (True, False) for o in origins(txn, priority)}:
                if origin == self._stamps.origin:
                    continue
                held = table.complete(origin)
                if held <= rt.retired(txn, origin):
                    continue
                stamp = latest_stamp(txn, origin)
                if stamp is not None and stamp < cutoff:
                    found[origin] = held
        return self._propose(found)


def latest_stamp(txn: Txn, origin: str) -> int | None:
    """The wall-clock stamp (ms) of the latest event of ``origin`` some key here carries,
    when that key still holds it (superseded and compacted away, it tells nothing:
    None)."""
    latest = latest_counter(txn, origin)
    if not latest:
        return None
    dot = Dot(origin, latest)
    for priority in (True, False):
        for _, key in origin_entries(txn, priority, origin, latest):
            raw = txn.get("state", stored_digest.state_key(key.decode()))
            if raw is None:
                continue
            state = decode(raw, check_canonical=False)
            found = state.events.get(dot)
            if found is None and state.header.kind == KIND_MEMORY:
                found = state.body.get(dot)
            if found is not None:
                return int(found.wall_ms)
    return None
