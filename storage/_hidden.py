"""The local quarantine: versions ``Replica.audit(hide=True)`` hides from this
replica's reads.

Rows of the ``hidden`` sub-database: the key's state key -> canonical msgpack of the
sorted ``(origin, counter)`` dots to hide. Reads build records from the standing
versions less these dots (:func:`visible`): ``get``, ``list``, views, conflicts,
``as_of`` and everything above them (semantic search reads through ``get``). The
replicated state does not change: the versions still sync, digests still agree, and
a later ``audit(hide=True)`` rebuilds the rows from scratch. The Collaborative
Memory paper's retrospective permission check (Rezazadeh et al., 2025) filters what a
reader sees without rewriting history; this is that filter, local to one replica.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from memmesh.crdt import Dot, pack_canonical, unpackb
from memmesh.crdt.keystate import KeyState

from ._digest import state_key
from ._env import Txn

__all__ = ["hidden_count", "replace_hidden", "visible"]

_NONE = "hidden.none"  # txn scratch: the quarantine is empty (checked once per txn)
_V = TypeVar("_V")


def _dots(txn: Txn, key: str) -> frozenset[Dot]:
    none = txn.scratch.get(_NONE)
    if none is None:
        none = txn.scratch[_NONE] = txn.txn.stat(txn.dbs["hidden"])["entries"] == 0
    if none:
        return frozenset()
    raw = txn.get("hidden", state_key(key))
    if raw is None:
        return frozenset()
    rows: Any = unpackb(raw)
    return frozenset(Dot(origin, counter) for origin, counter in rows)


def visible(txn: Txn, state: KeyState, standing: list[tuple[Dot, _V]]
            ) -> list[tuple[Dot, _V]]:
    """``standing`` (versions of ``state``) less the ones hidden on this replica."""
    hidden = _dots(txn, state.header.key)
    if not hidden:
        return standing
    return [(dot, v) for dot, v in standing if dot not in hidden]


def replace_hidden(txn: Txn, hide: Mapping[str, Iterable[Dot]]) -> None:
    """Make ``hide`` (memory id -> dots) the whole quarantine."""
    for key in [k for k, _ in txn.prefix("hidden", b"")]:
        txn.delete("hidden", key)
    for memory_id, dots in sorted(hide.items()):
        rows = tuple(sorted((d.replica, d.counter) for d in dots))
        if rows:
            txn.put("hidden", state_key(memory_id), pack_canonical(rows))
    txn.scratch.pop(_NONE, None)


def hidden_count(txn: Txn) -> int:
    """How many versions the quarantine hides."""
    return sum(len(unpackb(raw)) for _, raw in txn.prefix("hidden", b""))
