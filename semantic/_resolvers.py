"""Built-in resolvers and :func:`chain`.

Each resolver is a callable ``(Conflict) -> Resolution | None``. The deterministic ones
(everything here) give the same answer on every replica for the same conflict, so even
without the arbiter election they could never create a new conflict out of an old one;
the arbiter election (:mod:`memmesh.merge`) is what makes non-deterministic
resolvers such as :class:`~memmesh.semantic.LLMArbiter` safe too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from memmesh.merge import Conflict, ConflictVersion, Resolution, Resolver, resolver_name

from ._embedding import Embedder, check_embeddings


def _newest(versions: Sequence[ConflictVersion]) -> ConflictVersion:
    return max(versions, key=lambda v: (v.timestamp, v.dot))


def _unique_best(
    conflict: Conflict, key: Callable[[ConflictVersion], float], name: str
) -> Resolution | None:
    """Pick the version with the greatest ``key``; a tie between different texts is no
    opinion (a tie between identical texts picks the newest of them)."""
    if not conflict.versions:
        return None
    best = max(key(v) for v in conflict.versions)
    top = [v for v in conflict.versions if key(v) == best]
    if len({v.text for v in top}) > 1:
        return None
    return Resolution.pick(_newest(top)).by(name)


class LastWriterWins:
    """Pick the version with the greatest hybrid timestamp (ties: greatest dot)."""

    name = "last-writer-wins"

    def __call__(self, conflict: Conflict) -> Resolution | None:
        if not conflict.versions:
            return None
        return Resolution.pick(_newest(conflict.versions)).by(self.name)


class RolePriority:
    """Pick the version written by the highest-ranked role.

    ``ranks`` is either a sequence of roles, highest first (``["lead", "worker"]``), or a
    mapping from role to priority, higher wins. Unlisted roles (and no role) rank below
    every listed one. Several top versions with different texts: no opinion.
    """

    def __init__(self, ranks: Sequence[str] | Mapping[str, float]) -> None:
        if isinstance(ranks, Mapping):
            self.ranks: dict[str, float] = {str(k): float(v) for k, v in ranks.items()}
        else:
            if isinstance(ranks, str):
                raise TypeError("ranks must be a sequence of roles, not one string")
            self.ranks = {role: float(len(ranks) - i) for i, role in enumerate(ranks)}
        self.floor = min(self.ranks.values(), default=0.0) - 1.0
        self.name = "role-priority"

    def rank(self, role: str | None) -> float:
        return self.ranks.get(role, self.floor) if role is not None else self.floor

    def __call__(self, conflict: Conflict) -> Resolution | None:
        return _unique_best(conflict, lambda v: self.rank(v.role), self.name)


class HighestConfidence:
    """Pick the version its writer was most confident in; a tie is no opinion."""

    name = "highest-confidence"

    def __call__(self, conflict: Conflict) -> Resolution | None:
        return _unique_best(conflict, lambda v: v.confidence, self.name)


class NearDuplicate:
    """When every pair of versions says the same thing (cosine >= ``threshold``), keep the
    newest wording; otherwise no opinion.

    ``embedder`` defaults to the bundled all-MiniLM-L6-v2, loaded on first use. Texts that
    are equal up to case and surrounding whitespace are duplicates without embedding.
    """

    name = "near-duplicate"

    def __init__(self, threshold: float = 0.9, *, embedder: Embedder | None = None) -> None:
        if not -1.0 <= threshold <= 1.0:
            raise ValueError("threshold is a cosine similarity, in [-1, 1]")
        self.threshold = threshold
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from ._sentence_transformer import SentenceTransformerEmbedder

            self._embedder = SentenceTransformerEmbedder()
        return self._embedder

    def __call__(self, conflict: Conflict) -> Resolution | None:
        versions = conflict.versions
        if not versions:
            return None
        texts = sorted({v.text for v in versions})
        if len({t.strip().casefold() for t in texts}) > 1:
            vectors = check_embeddings(self.embedder.embed(texts), len(texts))
            similarity = vectors @ vectors.T
            if float(np.min(similarity)) < self.threshold:
                return None
        return Resolution.pick(_newest(versions)).by(self.name)


class KeepAll:
    """Keep every alternative in one text with uncertainty markers (never undecided)."""

    name = "keep-all"

    def __call__(self, conflict: Conflict) -> Resolution | None:
        if not conflict.versions:
            return None
        return Resolution.keep_all(conflict).by(self.name)


class Chain:
    """Try resolvers in order; the first that has an opinion decides."""

    def __init__(self, resolvers: Sequence[Resolver]) -> None:
        if not resolvers:
            raise ValueError("chain() needs at least one resolver")
        self.resolvers = tuple(resolvers)
        self.name = "chain(" + ", ".join(resolver_name(r) for r in self.resolvers) + ")"

    def __call__(self, conflict: Conflict) -> Resolution | None:
        for resolver in self.resolvers:
            resolution = resolver(conflict)
            if resolution is not None:
                return resolution.by(resolver_name(resolver))
        return None


def chain(*resolvers: Resolver) -> Chain:
    """``chain(RolePriority([...]), NearDuplicate(), LLMArbiter(llm))``: the first resolver
    with an opinion wins; None when none has one (the conflict stays)."""
    return Chain(resolvers)
