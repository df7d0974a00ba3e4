"""Causal contexts: the set of events a state has seen, as version vector plus dot cloud.

A causal context is a set of dots, stored as a version vector ``vv`` (replica ``r`` has
seen ``(r, 1..vv[r])``) plus a ``cloud`` of the dots seen beyond a gap (Almeida, Shoker,
Baquero 2018, section 5.1; the dot cloud of Gonçalves et al.'s DVV-sets). Deltas carry
small exact contexts, so joining them out of causal order leaves gaps; their dots wait in
the cloud until :meth:`CausalContext.compact` can fold them into the vector, never
claiming a dot that was not seen. Kept compacted after every mutation (every cloud dot
of ``r`` above ``vv[r] + 1``, no zero entries), so equal sets of dots have equal fields
and encode to equal bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from ._dot import Dot, check_replica
from ._errors import InvalidArgumentError
from ._limits import MAX_COUNTER

__all__ = ["CausalContext"]


class CausalContext:
    """A set of dots: version vector ``vv`` plus dot ``cloud``, always compacted."""

    __slots__ = ("cloud", "vv")

    vv: dict[str, int]
    cloud: set[Dot]

    def __init__(
        self, vv: Mapping[str, int] | None = None, cloud: Iterable[Dot] | None = None
    ) -> None:
        self.vv = {}
        self.cloud = set()
        if vv is not None:
            for replica, counter in vv.items():
                check_replica(replica)
                if type(counter) is not int or not 0 <= counter <= MAX_COUNTER:
                    raise InvalidArgumentError(
                        f"version vector entry must be an int in 0..{MAX_COUNTER}"
                    )
                if counter:
                    self.vv[replica] = counter
        if cloud is not None:
            for dot in cloud:
                if not isinstance(dot, Dot):
                    raise InvalidArgumentError(f"cloud members must be Dots, got {dot!r:.40}")
                self.cloud.add(dot)
            self.compact()

    @classmethod
    def from_dots(cls, dots: Iterable[Dot]) -> CausalContext:
        """The context holding exactly ``dots`` (duplicates are harmless)."""
        ctx = cls()
        for dot in dots:
            ctx.add(dot)
        return ctx

    def contains(self, dot: Dot) -> bool:
        """Whether ``dot`` has been seen."""
        return dot.counter <= self.vv.get(dot.replica, 0) or dot in self.cloud

    __contains__ = contains

    def add(self, dot: Dot) -> None:
        """Record ``dot`` as seen (in place), keeping the compacted form."""
        if not isinstance(dot, Dot):
            raise InvalidArgumentError(f"expected a Dot, got {dot!r:.40}")
        replica = dot.replica
        top = self.vv.get(replica, 0)
        if dot.counter <= top:
            return
        if dot.counter != top + 1:
            self.cloud.add(dot)
            return
        top += 1
        cloud = self.cloud
        if cloud:
            while True:
                following = Dot(replica, top + 1) if top < MAX_COUNTER else None
                if following is None or following not in cloud:
                    break
                cloud.remove(following)
                top += 1
        self.vv[replica] = top

    def max_counter(self, replica: str) -> int:
        """The highest counter of ``replica`` seen (0 if none)."""
        top = self.vv.get(replica, 0)
        for dot in self.cloud:
            if dot.replica == replica and dot.counter > top:
                top = dot.counter
        return top

    def next_dot(self, replica: str) -> Dot:
        """The dot ``replica`` mints next: its highest seen counter + 1 (not added)."""
        check_replica(replica)
        top = self.max_counter(replica)
        if top >= MAX_COUNTER:
            raise InvalidArgumentError(f"replica {replica!r} has exhausted its dot counter")
        return Dot(replica, top + 1)

    def merge(self, other: CausalContext) -> None:
        """Union ``other`` into this context (in place)."""
        if not isinstance(other, CausalContext):
            raise InvalidArgumentError(f"cannot merge a CausalContext with {type(other)!r}")
        if other is self:
            return
        vv = self.vv
        for replica, counter in other.vv.items():
            if counter > vv.get(replica, 0):
                vv[replica] = counter
        if other.cloud or self.cloud:
            self.cloud |= other.cloud
            self.compact()

    def compact(self) -> None:
        """Fold cloud dots that extend the version vector into it; drop covered ones.

        Exact: a replica's entry only grows through a contiguous run of seen dots.
        """
        if not self.cloud:
            return
        by_replica: dict[str, list[int]] = {}
        for dot in self.cloud:
            by_replica.setdefault(dot.replica, []).append(dot.counter)
        cloud: set[Dot] = set()
        vv = self.vv
        for replica, counters in by_replica.items():
            counters.sort()
            top = vv.get(replica, 0)
            for i, counter in enumerate(counters):
                if counter <= top:
                    continue
                if counter == top + 1:
                    top = counter
                    continue
                cloud.update(Dot(replica, c) for c in counters[i:])
                break
            if top:
                vv[replica] = top
        self.cloud = cloud

    def copy(self) -> CausalContext:
        """An independent copy."""
        ctx = CausalContext()
        ctx.vv = dict(self.vv)
        ctx.cloud = set(self.cloud)
        return ctx

    def dots(self) -> Iterator[Dot]:
        """Every dot of the context, in dot order (expands the vector: use with care)."""
        replicas = sorted(set(self.vv) | {dot.replica for dot in self.cloud})
        for replica in replicas:
            for counter in range(1, self.vv.get(replica, 0) + 1):
                yield Dot(replica, counter)
            yield from sorted(dot for dot in self.cloud if dot.replica == replica)

    def is_empty(self) -> bool:
        """Whether no dot has been seen."""
        return not self.vv and not self.cloud

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CausalContext):
            return NotImplemented
        return self.vv == other.vv and self.cloud == other.cloud

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        vv = dict(sorted(self.vv.items()))
        return f"CausalContext(vv={vv!r}, cloud={sorted(self.cloud)!r})"
