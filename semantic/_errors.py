"""Errors of the semantic layer.

Every error derives from :class:`memmesh.crdt.MemmeshError` (one home for all library
errors), and bad input is rejected before anything is written.
"""

from __future__ import annotations

from memmesh.crdt import MemmeshError

__all__ = [
    "EXTRA_HINT",
    "ArbiterOutputError",
    "EmbeddingError",
    "InvalidMessagesError",
    "InvalidQueryError",
    "MissingDependencyError",
    "PipelineOutputError",
    "SemanticError",
]

EXTRA_HINT = "install the extra: pip install 'memmesh[semantic]'"


class SemanticError(MemmeshError):  # type: ignore[misc, unused-ignore]
    """Base class of the errors raised by ``memmesh.semantic``."""


class MissingDependencyError(SemanticError, ImportError):
    """An optional dependency (of the ``memmesh[semantic]`` or ``memmesh[ann]`` extra)
    is not installed; the message names the extra to install."""

    def __init__(self, package: str, *, needed_by: str = "the default embedder",
                 extra: str = "semantic") -> None:
        super().__init__(
            f"{package} is not installed; {needed_by} needs it: "
            f"install the extra: pip install 'memmesh[{extra}]'"
        )
        self.package = package


class EmbeddingError(SemanticError, ValueError):
    """An embedder returned something that is not an L2-normalised float32 matrix."""


class InvalidQueryError(SemanticError, ValueError):
    """A search or add was called with bad arguments (unknown scope filter, k < 1...)."""




class ArbiterOutputError(SemanticError, ValueError):
    """An LLM arbiter's answer could not be parsed or failed validation."""


class InvalidMessagesError(SemanticError, ValueError):
    """A conversation handed to the memory pipeline is not a list of OpenAI-style
    message dicts (``role``, ``content``) within the pipeline's bounds."""


class PipelineOutputError(SemanticError, ValueError):
    """An answer of the memory pipeline's LLM could not be parsed or failed its schema."""
