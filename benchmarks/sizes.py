"""Workload sizes of the three modes: full (the published report), quick (CI), tiny (tests).

Every mode runs the same code paths; only the counts change.  The full sizes keep the
whole run around ten minutes on a 2-core machine (search over 1M memories dominates:
building its replica and index, then 30 queries against the flat scan).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """Counts for one run (see ``FULL`` for what each one sizes)."""

    mode: str
    durable_adds: int            # adds/puts per durable round (3 interleaved rounds)
    batched_adds: int            # adds/puts in one transaction (3 interleaved rounds)
    records: int                 # memories in the sync / read source replica
    sync_ks: tuple[int, ...]     # changed memories per sync, for the bytes-vs-K curve
    sync_k_target: int           # the K whose bytes are held to the target
    read_samples: int            # ids read back per get round
    crdt_elements: int           # elements in the OR-Set codec comparison
    search_ns: tuple[int, ...]   # memories per search run (the latency-vs-N curve)
    search_queries: int          # queries per search run
    embed_texts: int             # texts per embedding call
    embed_repeat: int            # ABBA rounds of the embedding comparison (>= 2)
    gossip_processes: int        # node processes for the priority-write latency
    gossip_samples: int          # priority writes timed
    sim_nodes: int               # simulated fleet size for the spread rounds
    rss_memories: int            # memories held open by the RSS subprocess
    repair_memories: int         # memories in each replica of the digest-repair runs


FULL = Sizes("full", durable_adds=300, batched_adds=20_000, records=20_000,
             sync_ks=(1, 10, 100, 1000, 5000), sync_k_target=100, read_samples=5000,
             crdt_elements=5000, search_ns=(10_000, 20_000, 100_000, 1_000_000),
             search_queries=30, embed_texts=128, embed_repeat=4, gossip_processes=10,
             gossip_samples=200, sim_nodes=1000, rss_memories=1_000_000,
             repair_memories=100_000)

QUICK = Sizes("quick", durable_adds=50, batched_adds=5000, records=5000,
              sync_ks=(1, 10, 100, 1000), sync_k_target=100, read_samples=1000,
              crdt_elements=500, search_ns=(10_000, 20_000), search_queries=10,
              embed_texts=32, embed_repeat=2, gossip_processes=10, gossip_samples=20,
              sim_nodes=100, rss_memories=5000, repair_memories=10_000)

TINY = Sizes("tiny", durable_adds=5, batched_adds=200, records=300,
             sync_ks=(1, 10), sync_k_target=10, read_samples=50, crdt_elements=50,
             search_ns=(300, 600), search_queries=3, embed_texts=4, embed_repeat=2,
             gossip_processes=3, gossip_samples=3, sim_nodes=10, rss_memories=500,
             repair_memories=300)

MODES = {s.mode: s for s in (FULL, QUICK, TINY)}
