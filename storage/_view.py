"""``ScopedView``: what one agent sees, the union of the tiers above it, read-only.

An agent working for user U as agent G in run R needs the app-wide facts, U's facts,
its own and its run's in one read, most specific first: the tiered scopes of Mem0
(user/agent/run/app) and Letta's core-versus-shared blocks. The visibility rule:

    a memory is visible in the view iff it sets at least one scope field and every
    scope field it sets equals the view's value for that field.

So a memory with ``user_id="alice"`` is never visible to a view of user bob or to a
view without a user, and a view sees no memory of another run or agent. A memory's
tier is the most specific field it sets (run > agent > user > app:
``MemoryRecord.scope_tier``); a memory that sets no field belongs to no tier and is
read with ``Replica.list()``. Each visible memory of tier T sets T's field to the view's
value, so the view reads exactly one ``scope`` index range per field it sets (at most
four, never a full scan), keeping from each range the memories of that range's tier.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from memmesh.crdt import InvalidArgumentError

from ._env import Env, Txn
from ._filters import check_page, compile_filter, page, record_matches
from ._keystore import load
from ._memory import check_scope
from ._reads import current_record, states_under
from ._records import SCOPE_TIERS, MemoryRecord, scope_tier

__all__ = ["ScopedView", "view_scope"]

#: Scope field of each tier, most specific first.
TIER_FIELDS = {"run": "run_id", "agent": "agent_id", "user": "user_id", "app": "app_id"}
_FIELDS = ("app_id", "user_id", "agent_id", "run_id")


def view_scope(scope: Mapping[str, Any]) -> dict[str, str | None]:
    """The four scope fields of a view, validated; at least one must be set."""
    unknown = set(scope) - set(_FIELDS)
    if unknown:
        raise InvalidArgumentError(f"unknown view fields {sorted(unknown)}")
    checked = check_scope({name: scope.get(name) for name in _FIELDS})
    if all(value is None for value in checked.values()):
        raise InvalidArgumentError(
            "a view needs at least one of app_id, user_id, agent_id, run_id")
    return {name: checked[name] for name in _FIELDS}


class ScopedView:
    """The memories visible to one scope (see the module doc), read-only.

    Made by ``Replica.view(app_id=..., user_id=..., agent_id=..., run_id=...)``; reads
    see the replica as it is at each call. ``list`` orders by tier (run, agent, user,
    app), then oldest first; ``memmesh.semantic.SemanticIndex.search(query, view=view)``
    searches through it.
    """

    def __init__(self, env: Env, clock: Callable[[], int], replica_id: str,
                 scope: Mapping[str, Any]) -> None:
        self._env = env
        self._clock = clock
        self.replica_id = replica_id
        self._scope = view_scope(scope)

    @property
    def scope(self) -> dict[str, str | None]:
        """The view's four scope fields (None: not set)."""
        return dict(self._scope)

    @property
    def app_id(self) -> str | None:
        return self._scope["app_id"]

    @property
    def user_id(self) -> str | None:
        return self._scope["user_id"]

    @property
    def agent_id(self) -> str | None:
        return self._scope["agent_id"]

    @property
    def run_id(self) -> str | None:
        return self._scope["run_id"]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._scope.items() if v is not None)
        return f"ScopedView({fields})"

    def visible(self, record: Any) -> bool:
        """Whether a memory with ``record``'s scope fields is visible here."""
        values = [getattr(record, name, None) for name in _FIELDS]
        return any(v is not None for v in values) and all(
            v is None or v == self._scope[name] for name, v in zip(_FIELDS, values,
                                                                     strict=True))

    def _tier_states(self, txn: Txn) -> Iterator[tuple[str, list[Any]]]:
        """Per tier present in the view, most specific first: its visible key states
        (one ``scope`` index range each)."""
        for tier in SCOPE_TIERS:
            field = TIER_FIELDS[tier]
            value = self._scope[field]
            if value is None:
                continue
            states = [s for s in states_under(txn, field, value)
                      if scope_tier(s.header.app_id, s.header.user_id, s.header.agent_id,
                                    s.header.run_id) == tier and self.visible(s.header)]
            yield tier, states

    def get(self, memory_id: str) -> MemoryRecord | None:
        """The live memory ``memory_id`` if visible in this view, else None."""
        if type(memory_id) is not str:
            raise InvalidArgumentError("memory_id must be a str")
        now = self._clock()
        with self._env.read() as txn:
            _, _, state = load(txn, memory_id)
            if state is None or not self.visible(state.header):
                return None
            return current_record(txn, state, now)

    def list(self, *, filters: Mapping[str, Any] | None = None, limit: int | None = None,
             offset: int = 0) -> builtins.list[MemoryRecord]:
        """The live visible memories matching the metadata ``filters`` (as
        ``Replica.list``), most specific tier first, then oldest first; ``offset``
        skipped, at most ``limit`` returned."""
        predicate = compile_filter(filters)
        check_page(limit, offset)
        now = self._clock()
        out: builtins.list[MemoryRecord] = []
        with self._env.read() as txn:
            for _, states in self._tier_states(txn):
                records = [r for r in (current_record(txn, s, now) for s in states)
                           if r is not None and record_matches(r, predicate)]
                records.sort(key=lambda r: (r.created_at, r.id))
                out.extend(records)
        return page(out, limit, offset)
