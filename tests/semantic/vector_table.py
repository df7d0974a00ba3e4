"""``VectorTable``: an embedder whose texts name rows of a fixed random unit matrix.

``"v17 anything"`` embeds as row 17 (any other text as row ``hash % rows``), so a test
knows every stored vector and can rank them with numpy itself: the exact answer that
``SemanticIndex`` (exact or approximate) is checked against.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


class VectorTable:
    """Embedder of ``v<i> ...`` texts as row ``i`` of a seeded random unit matrix."""

    def __init__(self, rows: int, dimension: int = 32, seed: int = 3,
                 clusters: int = 0) -> None:
        self.name = f"vector-table-{rows}-{dimension}-{seed}-{clusters}"
        rng = np.random.default_rng(seed)
        table = rng.standard_normal((rows, dimension)).astype(np.float32)
        if clusters:  # points around a few centres, like real embeddings
            centres = rng.standard_normal((clusters, dimension)).astype(np.float32) * 3
            table += centres[rng.integers(0, clusters, rows)]
        self.table = table / np.linalg.norm(table, axis=1, keepdims=True)

    def row(self, text: str) -> int:
        head = text.split()[0] if text.split() else ""
        if head[:1] == "v" and head[1:].isdigit():
            return int(head[1:]) % len(self.table)
        return zlib.crc32(text.encode()) % len(self.table)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self.table[[self.row(t) for t in texts]].reshape(len(texts), -1)

    def exact_top(self, query: npt.NDArray[np.float32], rows: Sequence[int], k: int
                  ) -> list[int]:
        """The ``k`` rows among ``rows`` closest to ``query`` (numpy, best first)."""
        candidates = np.asarray(rows, dtype=np.intp)
        scores = self.table[candidates] @ query
        order = np.lexsort((candidates, -scores))[:k]
        return [int(candidates[i]) for i in order]
