"""The merge hook's vocabulary: :class:`Conflict` in, :class:`Resolution` out.

A conflict is a memory whose multi-value register holds more than one standing version
(concurrent writes no structure can merge). A resolver is any
``Callable[[Conflict], Resolution | None]``; ``None`` means "no opinion" and lets the
next resolver of a chain (``memmesh.semantic.chain``) try.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

from memmesh.crdt import Dot, MemmeshError, Timestamp
from memmesh.storage import MemoryRecord, Version

__all__ = ["MAX_RESOLUTION_CHARS", "Conflict", "ConflictVersion", "InvalidResolutionError",
           "Resolution", "ResolutionKind", "Resolver", "format_alternatives", "resolver_name"]

#: The longest text a resolution may write (characters).
MAX_RESOLUTION_CHARS = 65_536

ResolutionKind = Literal["pick", "merged", "keep_all"]


class InvalidResolutionError(MemmeshError, ValueError):  # type: ignore[misc, unused-ignore]
    """A resolver returned something that cannot be written as a resolution."""


def _freeze(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class ConflictVersion:
    """One standing version of a conflicted memory, as a resolver sees it.

    ``timestamp`` is the writer's hybrid logical clock stamp (totally ordered); ``dot``
    identifies the write and is what a resolution dominates.
    """

    text: str
    actor: str | None
    role: str | None
    timestamp: Timestamp
    confidence: float
    dot: Dot
    replica: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    importance: float | None = None

    @classmethod
    def from_version(cls, version: Version) -> ConflictVersion:
        """Build from a storage ``Version``."""
        metadata = version.metadata if isinstance(version.metadata, Mapping) else {}
        return cls(
            text=version.text,
            actor=version.actor,
            role=version.role,
            timestamp=version.timestamp,
            confidence=float(version.confidence),
            dot=version.dot,
            replica=version.replica,
            metadata=_freeze(metadata),
            importance=version.importance,
        )

    @property
    def wall_ms(self) -> int:
        wall: int = self.timestamp.wall_ms
        return wall

    @property
    def when(self) -> str:
        """The write's wall-clock time, ISO 8601 in UTC."""
        moment = _dt.datetime.fromtimestamp(self.wall_ms / 1000, tz=_dt.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def label(self) -> str:
        """``actor (role, time)`` for uncertainty markers."""
        who = self.actor or (f"replica {self.replica}" if self.replica else "unknown")
        details = [self.role] if self.role else []
        details.append(self.when)
        return f"{who} ({', '.join(details)})"


@dataclass(frozen=True, slots=True)
class Conflict:
    """A memory with several standing versions, ordered by dot (deterministic)."""

    memory_id: str
    versions: tuple[ConflictVersion, ...]
    scope: Mapping[str, str | None] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: MemoryRecord) -> Conflict:
        """Build from a storage ``MemoryRecord``."""
        versions = tuple(
            sorted((ConflictVersion.from_version(v) for v in record.versions), key=lambda v: v.dot)
        )
        scope = {"app_id": record.app_id, "user_id": record.user_id,
                 "agent_id": record.agent_id, "run_id": record.run_id}
        return cls(memory_id=record.id, versions=versions, scope=_freeze(scope))

    @property
    def dots(self) -> tuple[Dot, ...]:
        return tuple(v.dot for v in self.versions)

    @property
    def importance(self) -> float | None:
        """The greatest importance among the versions (a conflict matters as much as
        its most important side); None when no version has one."""
        return max((v.importance for v in self.versions if v.importance is not None),
                   default=None)


def format_alternatives(versions: Iterable[ConflictVersion]) -> str:
    """One text that keeps every alternative, each marked as uncertain.

    The seed's rule for an undecidable conflict: "preserve both with uncertainty markers".
    Identical texts are listed once; the order is the versions' dot order.
    """
    unique: list[ConflictVersion] = []
    seen: set[str] = set()
    for version in versions:
        if version.text not in seen:
            seen.add(version.text)
            unique.append(version)
    if not unique:
        raise InvalidResolutionError("keep_all needs at least one version")
    if len(unique) == 1:
        return unique[0].text
    lines = [f"[UNCERTAIN: {len(unique)} conflicting versions, unresolved]"]
    lines += [f"- (possibly) {v.text} [{v.label()}]" for v in unique]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a resolver decided. Build with :meth:`pick`, :meth:`merged` or :meth:`keep_all`.

    ``resolver`` names who decided (recorded in the RESOLVE event); built-in resolvers and
    :func:`chain` fill it in. ``confidence`` is the confidence of the written version
    (None: storage's default).
    """

    kind: ResolutionKind
    text: str
    picked: ConflictVersion | None = None
    confidence: float | None = None
    resolver: str | None = None
    rationale: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise InvalidResolutionError("a resolution needs a non-empty text")
        if len(self.text) > MAX_RESOLUTION_CHARS:
            raise InvalidResolutionError(
                f"resolution text of {len(self.text)} chars exceeds {MAX_RESOLUTION_CHARS}"
            )
        if self.confidence is not None and not 0.0 <= self.confidence <= 1.0:
            raise InvalidResolutionError("confidence must be in [0, 1]")
        if (self.kind == "pick") != (self.picked is not None):
            raise InvalidResolutionError("exactly the 'pick' kind names a picked version")

    @classmethod
    def pick(cls, version: ConflictVersion, *, rationale: str | None = None) -> Resolution:
        """Keep ``version``'s text (and its confidence)."""
        return cls(
            "pick", version.text, picked=version, confidence=version.confidence,
            rationale=rationale,
        )

    @classmethod
    def merged(
        cls, text: str, *, confidence: float | None = None, rationale: str | None = None
    ) -> Resolution:
        """Replace the versions with a new ``text`` that reconciles them."""
        return cls("merged", text, confidence=confidence, rationale=rationale)

    @classmethod
    def keep_all(
        cls, *items: ConflictVersion | Conflict | Iterable[ConflictVersion],
        rationale: str | None = None,
    ) -> Resolution:
        """Keep every alternative in one text, marked uncertain (see format_alternatives).

        Accepts versions, iterables of versions, or a whole :class:`Conflict`.
        """
        versions: list[ConflictVersion] = []
        for item in items:
            if isinstance(item, ConflictVersion):
                versions.append(item)
            elif isinstance(item, Conflict):
                versions.extend(item.versions)
            else:
                versions.extend(item)
        confidences = [v.confidence for v in versions]
        confidence = min(confidences) if confidences else None
        return cls(
            "keep_all", format_alternatives(versions), confidence=confidence, rationale=rationale
        )

    def by(self, resolver: str) -> Resolution:
        """This resolution with ``resolver`` recorded as its author (if none is yet)."""
        return self if self.resolver is not None else replace(self, resolver=resolver)


Resolver = Callable[[Conflict], Resolution | None]


def resolver_name(resolver: object) -> str:
    """A resolver's name: its ``name`` attribute, else its function or class name."""
    name = getattr(resolver, "name", None)
    if isinstance(name, str) and name:
        return name
    qualname = getattr(resolver, "__qualname__", None)
    if isinstance(qualname, str):
        return qualname
    return type(resolver).__name__
