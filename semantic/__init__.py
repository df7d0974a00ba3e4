"""memmesh.semantic: offline embeddings, scoped semantic search, the semantic merge hook.

* Embeddings: :class:`Embedder` protocol, :class:`SentenceTransformerEmbedder` (bundled
  all-MiniLM-L6-v2, offline), :class:`HashingEmbedder` (deterministic, for tests), cached
  per replica by content hash.
* Search: :class:`SemanticIndex` ``.search(query, k=10, **scope_filters) -> list[Hit]``,
  ranked by similarity, recency, confidence and actor trust (:class:`ScoreWeights`).
* The LLM memory pipeline (Mem0's loop): :class:`MemoryPipeline` /
  :func:`add_messages` extract facts from a conversation and let the LLM choose
  ADD/UPDATE/DELETE/NOOP per fact against the memories of the agent's view.
* Resolvers for the merge hook of :mod:`memmesh.merge` (``Conflict`` in, ``Resolution``
  out, run by ``memmesh.merge.resolve_conflicts``): the built-in resolvers,
  :func:`chain` and :class:`LLMArbiter`.
"""

from __future__ import annotations

from ._ann import AnnConfig
from ._cache import CachedEmbedder, content_key
from ._embedding import Embedder, l2_normalise
from ._errors import (
    ArbiterOutputError,
    EmbeddingError,
    InvalidMessagesError,
    InvalidQueryError,
    MissingDependencyError,
    PipelineOutputError,
    SemanticError,
)
from ._hashing import HashingEmbedder
from ._index import Hit, SemanticIndex
from ._llm import ARBITRATION_PROMPT, LLMArbiter, build_prompt, parse_decision
from ._pipeline import (
    FactDecision,
    MemoryPipeline,
    PipelineReplica,
    PipelineResult,
    add_messages,
)
from ._pipeline_prompts import DECISION_PROMPT, EXTRACTION_PROMPT, RETRY_PROMPT
from ._replica import IndexedReplica
from ._resolvers import (
    Chain,
    HighestConfidence,
    KeepAll,
    LastWriterWins,
    NearDuplicate,
    RolePriority,
    chain,
)
from ._scoring import ScoreParts, ScoreWeights
from ._sentence_transformer import SentenceTransformerEmbedder, default_model_path

__all__ = [
    "ARBITRATION_PROMPT",
    "DECISION_PROMPT",
    "EXTRACTION_PROMPT",
    "RETRY_PROMPT",
    "AnnConfig",
    "ArbiterOutputError",
    "CachedEmbedder",
    "Chain",
    "Embedder",
    "EmbeddingError",
    "FactDecision",
    "HashingEmbedder",
    "HighestConfidence",
    "Hit",
    "IndexedReplica",
    "InvalidMessagesError",
    "InvalidQueryError",
    "KeepAll",
    "LLMArbiter",
    "LastWriterWins",
    "MemoryPipeline",
    "MissingDependencyError",
    "NearDuplicate",
    "PipelineOutputError",
    "PipelineReplica",
    "PipelineResult",
    "RolePriority",
    "ScoreParts",
    "ScoreWeights",
    "SemanticError",
    "SemanticIndex",
    "SentenceTransformerEmbedder",
    "add_messages",
    "build_prompt",
    "chain",
    "content_key",
    "default_model_path",
    "l2_normalise",
    "parse_decision",
]
