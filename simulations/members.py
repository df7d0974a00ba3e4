"""The simulated fleet's membership list: an ordered sequence with an O(1) ``index``.

Every node's round hands the membership to ``SyncPolicy.round`` as its candidates;
the policy skips a few of them by position (``gossip.protocol._choice``), so the list
keeps a position per member and a round costs O(links) instead of O(N) per node,
O(N^2) per simulated round. Order is join order; a leave shifts the later positions
(O(N), as rare as leaves are).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload


class Members(Sequence[str]):
    """Distinct member ids in join order, with their positions."""

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._at: dict[str, int] = {}

    def append(self, node_id: str) -> None:
        if node_id in self._at:
            raise ValueError(f"{node_id!r} is already a member")
        self._at[node_id] = len(self._ids)
        self._ids.append(node_id)

    def remove(self, node_id: str) -> None:
        position = self._at.pop(node_id)
        del self._ids[position]
        for i in range(position, len(self._ids)):
            self._at[self._ids[i]] = i

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        position = self._at.get(value) if isinstance(value, str) else None
        end = len(self._ids) if stop is None else stop
        if position is None or not start <= position < end:
            raise ValueError(f"{value!r} is not a member")
        return position

    def __contains__(self, value: object) -> bool:
        return value in self._at

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        return self._ids[i]
