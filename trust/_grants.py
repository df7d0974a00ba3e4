"""Scope grants: which memories a credential may read or write.

A :class:`Grant` constrains the four scope tiers of a memory (app, user, agent, run);
each tier is unconstrained (None) or a set of allowed values, where ``None`` inside the
set allows memories that leave the tier unset (written ``-`` on the command line). A
credential holds a tuple of grants per direction and covers a memory if any grant does
(a union of conjunctions), so ``users=alice`` plus ``apps=crm;users=-`` reads alice's
memories and the crm app's user-less facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from memmesh.crdt import DecodeError

from ._errors import CredentialError

__all__ = ["TIERS", "Grant", "grants_cover", "parse_grants"]

#: The tiers of a scope, in order, as spelled in grants (``apps=...;users=...``).
TIERS = ("apps", "users", "agents", "runs")
_MAX_VALUES = 1024
_MAX_VALUE_LEN = 512
_UNSET = "-"

Values = frozenset[str | None] | None


def _sorted(values: frozenset[str | None]) -> tuple[str | None, ...]:
    return tuple(sorted(values, key=lambda v: (v is not None, v or "")))


@dataclass(frozen=True, slots=True)
class Grant:
    """One scope pattern (see the module doc); ``Grant()`` covers every memory."""

    apps: Values = None
    users: Values = None
    agents: Values = None
    runs: Values = None

    def __post_init__(self) -> None:
        for tier in TIERS:
            values = getattr(self, tier)
            if values is None:
                continue
            if not isinstance(values, frozenset):
                raise CredentialError(f"grant tier {tier} must be a frozenset or None")
            if len(values) > _MAX_VALUES:
                raise CredentialError(f"grant tier {tier} has more than {_MAX_VALUES} values")
            for v in values:
                if v is not None and (not isinstance(v, str) or not v
                                      or len(v.encode()) > _MAX_VALUE_LEN):
                    raise CredentialError(f"grant tier {tier}: bad value {v!r}")

    @classmethod
    def parse(cls, text: str) -> Grant:
        """``"all"``, or ``tier=v1,v2`` parts joined by ``;`` (tiers: apps, users, agents,
        runs; ``-`` for "unset"): ``Grant.parse("apps=crm;users=alice,-")``."""
        text = text.strip()
        if text in ("all", "*"):
            return cls()
        fields: dict[str, frozenset[str | None]] = {}
        for part in text.split(";"):
            tier, sep, raw = part.strip().partition("=")
            tier = tier.strip()
            if not sep or tier not in TIERS:
                raise CredentialError(f"bad grant part {part!r}: expected tier=values with "
                                      f"tier one of {', '.join(TIERS)} (or 'all')")
            if tier in fields:
                raise CredentialError(f"grant {text!r} names {tier} twice")
            values = [v.strip() for v in raw.split(",")]
            if not values or any(not v for v in values):
                raise CredentialError(f"grant part {part!r} has an empty value")
            fields[tier] = frozenset(None if v == _UNSET else v for v in values)
        return cls(**fields)

    def covers(self, app_id: str | None, user_id: str | None, agent_id: str | None,
               run_id: str | None) -> bool:
        """Whether a memory with this scope is inside the grant."""
        return ((self.apps is None or app_id in self.apps)
                and (self.users is None or user_id in self.users)
                and (self.agents is None or agent_id in self.agents)
                and (self.runs is None or run_id in self.runs))

    def intersect(self, other: Grant) -> Grant | None:
        """The grant covering exactly what both cover (None: nothing)."""
        fields: dict[str, frozenset[str | None]] = {}
        for tier in TIERS:
            mine, theirs = getattr(self, tier), getattr(other, tier)
            both = theirs if mine is None else mine if theirs is None else mine & theirs
            if both is not None:
                if not both:
                    return None
                fields[tier] = both
        return Grant(**fields)

    def within(self, other: Grant) -> bool:
        """Whether ``other`` covers every memory this grant covers."""
        for tier in TIERS:
            mine, theirs = getattr(self, tier), getattr(other, tier)
            if theirs is not None and (mine is None or not mine <= theirs):
                return False
        return True

    @property
    def tiers_restricted(self) -> tuple[str, ...]:
        """The tiers this grant constrains (``()``: it covers every memory)."""
        return tuple(tier for tier in TIERS if getattr(self, tier) is not None)

    def __str__(self) -> str:
        parts = [f"{tier}={','.join(_UNSET if v is None else v for v in _sorted(values))}"
                 for tier in TIERS if (values := getattr(self, tier)) is not None]
        return ";".join(parts) or "all"

    def plain(self) -> tuple[Any, ...]:
        """Canonical plain data: one entry per tier, None or the sorted values."""
        return tuple(None if (values := getattr(self, tier)) is None else _sorted(values)
                     for tier in TIERS)

    @classmethod
    def from_plain(cls, plain: object) -> Grant:
        if type(plain) is not tuple or len(plain) != len(TIERS):
            raise DecodeError("a grant is an array of 4 tiers")
        fields: dict[str, frozenset[str | None]] = {}
        for tier, values in zip(TIERS, plain, strict=True):
            if values is None:
                continue
            if type(values) is not tuple or any(v is not None and type(v) is not str
                                                for v in values):
                raise DecodeError(f"grant tier {tier} must be an array of strings or nil")
            if len(set(values)) != len(values) or _sorted(frozenset(values)) != values:
                raise DecodeError(f"grant tier {tier} is not canonical (sorted, unique)")
            fields[tier] = frozenset(values)
        try:
            return cls(**fields)
        except CredentialError as exc:
            raise DecodeError(str(exc)) from None


def parse_grants(texts: Iterable[str]) -> tuple[Grant, ...]:
    """Several grants (e.g. repeated ``--read`` flags); duplicates dropped, order kept."""
    out: list[Grant] = []
    for text in texts:
        grant = Grant.parse(text)
        if grant not in out:
            out.append(grant)
    return tuple(out)


def grants_cover(grants: tuple[Grant, ...], app_id: str | None, user_id: str | None,
                 agent_id: str | None, run_id: str | None) -> bool:
    """Whether any of ``grants`` covers the scope."""
    return any(g.covers(app_id, user_id, agent_id, run_id) for g in grants)
