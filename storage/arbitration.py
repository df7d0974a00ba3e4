"""``resolve_conflicts``: storm-free semantic arbitration.

If every replica ran a non-deterministic resolver (an LLM) on every conflict it saw,
N replicas would write N different resolutions, concurrent with each other: a new
conflict, resolved again N ways, and so on. Instead each conflict has one elected
arbiter, chosen deterministically from the conflict's own data (storage's
``arbiter_for``: candidates are the replicas that wrote the standing versions, ranked by
a hash of the memory id, the dots and the replica id). Candidate ``i`` may act only once
it has seen the conflict for ``i * deadline_ms`` on its own clock, so a silent arbiter is
taken over by the next one, and in steady state exactly one replica resolves.
:class:`memmesh.gossip.Node` runs this same function every ``resolver_interval``.
The resolution is an ordinary write whose causal context covers the input dots, so it
dominates them on every replica it reaches, recorded as a RESOLVE event naming the
resolver and the inputs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .errors import InvalidResolutionError
from .resolution import Conflict, Resolution, Resolver, resolver_name

log = logging.getLogger(__name__)

#: How long the elected arbiter has before the next candidate may take over.
DEFAULT_DEADLINE_MS = 30_000


@dataclass(frozen=True, slots=True)
class ResolveOutcome:
    """What happened to one conflict this replica was the arbiter for.

    ``version`` is the written RESOLVE version; None when the resolver had no opinion
    (``resolution`` None) or failed (``error`` set: the conflict stays for next time).
    """

    memory_id: str
    resolution: Resolution | None
    version: Any = None
    error: Exception | None = None


def _check(resolution: object, conflict: Conflict) -> Resolution:
    if not isinstance(resolution, Resolution):
        raise InvalidResolutionError(
            f"a resolver must return a Resolution or None, not {type(resolution).__name__}"
        )
    if resolution.picked is not None and resolution.picked.dot not in conflict.dots:
        raise InvalidResolutionError("the picked version is not one of the conflict's versions")
    return resolution


def _now_ms(replica: Any) -> int:
    return int(replica.clock())


def resolve_conflicts(
    replica: Any,
    resolver: Resolver,
    *,
    deadline_ms: int = DEFAULT_DEADLINE_MS,
    now_ms: int | None = None,
    actor: str | None = None,
    **scope_filters: Any,
) -> list[ResolveOutcome]:
    """Resolve the conflicts (within ``scope_filters``) this replica is the arbiter for.

    Calls ``resolver`` once per such conflict and writes its resolution with
    ``replica.resolve(...)``. A resolver that raises or returns something invalid is
    logged and reported in the outcome; the conflict then stays, nothing is written.
    Returns one :class:`ResolveOutcome` per conflict the resolver was asked about.
    """
    now = _now_ms(replica) if now_ms is None else now_ms
    fallback_name = resolver_name(resolver)
    outcomes: list[ResolveOutcome] = []
    for record in replica.conflicts(**scope_filters):
        if not record.conflicted:
            continue
        if not replica.arbiter_for(record, now, deadline_ms=deadline_ms):
            continue
        conflict = Conflict.from_record(record)
        try:
            answer = resolver(conflict)
            if answer is None:
                outcomes.append(ResolveOutcome(record.id, None))
                continue
            resolution = _check(answer, conflict)
        except InvalidResolutionError as exc:
            log.warning("resolver %s returned an invalid resolution for %s: %s",
                        fallback_name, record.id, exc)
            outcomes.append(ResolveOutcome(record.id, None, error=exc))
            continue
        except Exception as exc:
            log.exception("resolver %s failed on %s", fallback_name, record.id)
            outcomes.append(ResolveOutcome(record.id, None, error=exc))
            continue
        version = replica.resolve(
            record.id,
            resolution.text,
            resolver=resolution.resolver or fallback_name,
            inputs=conflict.dots,
            actor=actor,
            confidence=resolution.confidence,
            metadata=_metadata(resolution),
        )
        outcomes.append(ResolveOutcome(record.id, resolution, version))
    return outcomes


def _metadata(resolution: Resolution) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resolution": resolution.kind}
    if resolution.rationale:
        metadata["rationale"] = resolution.rationale
    return metadata

