"""memmesh.merge: merge policy, one home that the gossip node, semantic and users share.

* The merge hook's vocabulary: a resolver takes a :class:`Conflict` (the standing
  :class:`ConflictVersion` s of one memory) and returns a :class:`Resolution`
  (``pick``, ``merged``, ``keep_all``) or None; :data:`Resolver` is its type.
* The arbiter election (:func:`arbiter_rank`, :class:`Election`): which member resolves
  a conflict, and when another may take over.
* :func:`resolve_conflicts`: the elected-arbiter loop; ``memmesh.gossip.Node(resolver=)``
  runs it every ``resolver_interval``. Conflicts whose importance reaches a threshold go
  on to an ``escalate`` resolver (the LLM arbiter) when the cheap one has no opinion.
  It needs of the replica only :class:`ConflictReplica` (storage lists conflicts and
  writes the resolution).
"""

from __future__ import annotations

from ._arbiter import (
    DEFAULT_DEADLINE_MS,
    DEFAULT_IMPORTANCE_THRESHOLD,
    ResolveOutcome,
    resolve_conflicts,
)
from ._election import MAX_BACKOFF, Election, arbiter_rank, takeover_wait
from ._replica import ConflictReplica
from ._resolution import (
    MAX_RESOLUTION_CHARS,
    Conflict,
    ConflictVersion,
    InvalidResolutionError,
    Resolution,
    ResolutionKind,
    Resolver,
    format_alternatives,
    resolver_name,
)

__all__ = [
    "DEFAULT_DEADLINE_MS",
    "DEFAULT_IMPORTANCE_THRESHOLD",
    "MAX_BACKOFF",
    "MAX_RESOLUTION_CHARS",
    "Conflict",
    "ConflictReplica",
    "ConflictVersion",
    "Election",
    "InvalidResolutionError",
    "Resolution",
    "ResolutionKind",
    "ResolveOutcome",
    "Resolver",
    "arbiter_rank",
    "format_alternatives",
    "resolve_conflicts",
    "resolver_name",
    "takeover_wait",
]
