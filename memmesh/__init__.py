"""memmesh: replicated memory for fleets of AI agents.

The library lives in four subpackages: :mod:`memmesh.crdt` (pure CRDT math),
:mod:`memmesh.storage` (the LMDB replica), :mod:`memmesh.gossip` (anti-entropy over
trio) and :mod:`memmesh.semantic` (embeddings, search and conflict resolution); the
framework adapters are :mod:`memmesh.integrations`. docs/architecture.md draws the map.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
