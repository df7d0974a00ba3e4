"""Fleet-scale simulations driving the real sans-IO protocol core and LMDB replicas.

A seeded, deterministic discrete-event simulator (``engine``) runs nodes (``node``)
that are nothing but a real ``memmesh.storage.Replica`` and real
``memmesh.gossip.protocol.Session`` objects, over a simulated network (``network``,
``transport``) with latency, loss, duplication, reordering, partitions, crashes,
joins, leaves and clock skew. Named scenarios (``scenarios.SCENARIOS``: ``spread``,
``zylos``, ``partition-heal``, ``churn``, ``fleet``) produce a deterministic
``report.json`` with convergence, cost, staleness and invariant checks, plus plots.

Entry points: ``run_scenario(name, SimOptions(...), out=DIR)`` and the CLI
(``memmesh simulate``: ``cli.add_parser`` / ``cli.main``).
"""

from __future__ import annotations

from .options import SimOptions
from .runner import run_scenario

__all__ = ["SimOptions", "run_scenario"]
