"""``resolve_conflicts``: the elected-arbiter loop, one for the node and for users.

If every replica ran a non-deterministic resolver (an LLM) on every conflict it saw, N
replicas would write N different resolutions, concurrent with each other: a new
conflict, resolved again N ways, and so on. So each conflict is resolved only by its
elected arbiter (:mod:`._election`). The resolution is an ordinary write whose causal
context covers exactly the input dots, so it dominates them on every replica it
reaches, recorded as a RESOLVE event naming the resolver and its inputs, written as
the arbiter's actor and role so that a role-ranked resolver ranks it in a later conflict.

The importance threshold (the brief's): every conflict goes to the cheap ``resolver``;
only a conflict whose importance (the greatest of its versions') reaches
``importance_threshold`` and that the cheap one left open goes on to ``escalate``
(typically an LLM arbiter), so the expensive call is paid for what matters.
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from memmesh.crdt import InvalidArgumentError
from memmesh.storage import Version
from memmesh.trust import PermissionDeniedError

from ._election import Election
from ._replica import ConflictReplica
from ._resolution import Conflict, InvalidResolutionError, Resolution, Resolver, resolver_name

__all__ = ["DEFAULT_DEADLINE_MS", "DEFAULT_IMPORTANCE_THRESHOLD", "ResolveOutcome",
           "resolve_conflicts"]

log = logging.getLogger(__name__)

#: How long the elected arbiter has before the next candidate may take over.
DEFAULT_DEADLINE_MS = 30_000
#: The importance from which a conflict also goes to the ``escalate`` resolver.
DEFAULT_IMPORTANCE_THRESHOLD = 0.5

# the election each replica object runs, kept as long as the replica lives, so every
# pass of the loop (the node's, a user's) measures waits from the same first sightings
_elections: weakref.WeakKeyDictionary[ConflictReplica, Election] = weakref.WeakKeyDictionary()
_elections_lock = threading.Lock()


def _election_of(replica: ConflictReplica) -> Election:
    with _elections_lock:
        election = _elections.get(replica)
        if election is None:
            election = _elections[replica] = Election(replica.replica_id)
        return election


@dataclass(frozen=True, slots=True)
class ResolveOutcome:
    """What happened to one conflict this replica was the arbiter for.

    ``version`` is the written RESOLVE version; None when the resolver had no opinion
    (``resolution`` None) or failed (``error`` set: the conflict stays for next time).
    """

    memory_id: str
    resolution: Resolution | None
    version: Version | None = None
    error: Exception | None = None


def _check(resolution: object, conflict: Conflict) -> Resolution:
    if not isinstance(resolution, Resolution):
        raise InvalidResolutionError(
            f"a resolver must return a Resolution or None, not {type(resolution).__name__}"
        )
    if resolution.picked is not None and resolution.picked.dot not in conflict.dots:
        raise InvalidResolutionError("the picked version is not one of the conflict's versions")
    return resolution


def resolve_conflicts(
    replica: ConflictReplica,
    resolver: Resolver,
    *,
    deadline_ms: int = DEFAULT_DEADLINE_MS,
    now_ms: int | None = None,
    actor: str | None = None,
    role: str | None = None,
    escalate: Resolver | None = None,
    importance_threshold: float = DEFAULT_IMPORTANCE_THRESHOLD,
    **scope_filters: str | None,
) -> list[ResolveOutcome]:
    """Resolve the conflicts (within ``scope_filters``) this replica is the arbiter for.

    Calls ``resolver`` once per such conflict and, when it has no opinion and the
    conflict's importance (None counts as 0) is at least ``importance_threshold`` (in
    [0, 1]), ``escalate`` if given; writes the answer with ``replica.resolve(...)`` as
    ``actor`` with ``role`` (a pick without ``role`` keeps the picked version's role).
    A resolver that raises or returns something invalid is logged and reported in the
    outcome; the conflict then stays, nothing is written. Returns one
    :class:`ResolveOutcome` per conflict a resolver was asked about.
    """
    if type(importance_threshold) not in (int, float) or \
            not 0.0 <= importance_threshold <= 1.0:
        raise InvalidArgumentError("importance_threshold must be a number in [0, 1]")
    now = replica.clock() if now_ms is None else now_ms
    election = _election_of(replica)
    fallback_name = resolver_name(resolver)
    outcomes: list[ResolveOutcome] = []
    for record in replica.conflicts(**scope_filters):
        if not record.conflicted:
            continue
        if not election.may_resolve(record, now, deadline_ms=deadline_ms):
            continue
        conflict = Conflict.from_record(record)
        name = fallback_name
        try:
            answer = resolver(conflict)
            if answer is None and escalate is not None and \
                    (conflict.importance or 0.0) >= importance_threshold:
                name = resolver_name(escalate)
                answer = escalate(conflict)
            if answer is None:
                outcomes.append(ResolveOutcome(record.id, None))
                continue
            resolution = _check(answer, conflict)
        except InvalidResolutionError as exc:
            log.warning("resolver %s returned an invalid resolution for %s: %s",
                        name, record.id, exc)
            outcomes.append(ResolveOutcome(record.id, None, error=exc))
            continue
        except Exception as exc:
            log.exception("resolver %s failed on %s", name, record.id)
            outcomes.append(ResolveOutcome(record.id, None, error=exc))
            continue
        # the picked version's role carries its rank into later conflicts; a member on
        # a credential may only write the roles it was granted, so it then writes its own
        roles = [role] if role is not None or resolution.picked is None \
            else [resolution.picked.role, None]
        try:
            version = _write(replica, record.id, resolution, conflict, roles,
                             resolver=resolution.resolver or name, actor=actor)
        except PermissionDeniedError as exc:
            _warn_denied(replica, record.id, exc)
            outcomes.append(ResolveOutcome(record.id, resolution, error=exc))
            continue
        outcomes.append(ResolveOutcome(record.id, resolution, version))
    return outcomes


def _write(replica: ConflictReplica, memory_id: str, resolution: Resolution,
           conflict: Conflict, roles: list[str | None], *, resolver: str,
           actor: str | None) -> Version:
    """Write the RESOLVE version under the first of ``roles`` this member may write."""
    for i, role in enumerate(roles):
        try:
            return replica.resolve(memory_id, resolution.text, resolver=resolver,
                                   inputs=conflict.dots, actor=actor,
                                   confidence=resolution.confidence,
                                   metadata=_metadata(resolution), role=role)
        except PermissionDeniedError:
            if i == len(roles) - 1:
                raise
    raise AssertionError("no role to write under")  # roles is never empty


# the conflicts each replica object was already warned about being unable to resolve
# (the loop retries every interval: one line per conflict, not one per pass)
_denied: weakref.WeakKeyDictionary[ConflictReplica, set[str]] = weakref.WeakKeyDictionary()
_MAX_DENIED = 1024


def _warn_denied(replica: ConflictReplica, memory_id: str, exc: Exception) -> None:
    with _elections_lock:
        seen = _denied.setdefault(replica, set())
        first = memory_id not in seen
        if first:
            if len(seen) >= _MAX_DENIED:
                seen.clear()
            seen.add(memory_id)
    (log.warning if first else log.debug)(
        "cannot write the resolution of %s (%s): another member's credential must "
        "resolve it, or issue this one a write grant there", memory_id, exc)


def _metadata(resolution: Resolution) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resolution": resolution.kind}
    if resolution.rationale:
        metadata["rationale"] = resolution.rationale
    return metadata
