"""What a run measures, bucketed by gossip round.

Round ``r`` is the simulated interval ``[r * interval, (r + 1) * interval)``. Per round
the collector keeps the protocol bytes every node sent (what the sessions produced) and
the wire bytes (with transport headers, retransmissions and duplicates), the sizes of
the summaries (``sync_summary``, the per-origin watermarks: the vector-clock growth
question) and change sets shipped, and a snapshot of every live node's
``state_digest``. Reads record their staleness; conflicts and resolver calls are
counted. ``Metrics.summary`` condenses it all into plain data for the report.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class RoundStats:
    app_bytes: int = 0
    wire_bytes: int = 0
    summaries: int = 0
    summary_bytes: int = 0
    summary_max: int = 0
    changes: int = 0
    changes_bytes: int = 0
    push_bytes: int = 0
    live_nodes: int = 0
    agreeing: int = 0  # live nodes whose digest equals their class's most common one


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) by linear interpolation (values sorted ascending)."""
    if not sorted_values:
        return 0.0
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def distribution(values: list[float]) -> dict[str, float]:
    """count, mean, min, p50, p90, p99, max of ``values``."""
    data = sorted(values)
    if not data:
        return {"count": 0}
    return {
        "count": len(data),
        "mean": sum(data) / len(data),
        "min": data[0],
        "p50": percentile(data, 0.5),
        "p90": percentile(data, 0.9),
        "p99": percentile(data, 0.99),
        "max": data[-1],
    }


def _zero() -> int:
    return 0


@dataclass
class Metrics:
    interval_us: int
    clock: Callable[[], int] = _zero  # simulated microseconds, set by the cluster
    rounds: list[RoundStats] = field(default_factory=list)
    bytes_by_node: Counter[str] = field(default_factory=Counter)
    staleness_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    conflicts: set[str] = field(default_factory=set)
    conflict_events: int = 0
    resolver_calls: int = 0
    syncs_completed: int = 0
    links_opened: int = 0
    counters: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    #: per round: node -> digest, for the nodes up at the end of the round
    digests: list[dict[str, str]] = field(default_factory=list)

    def round_at(self, time_us: int) -> RoundStats:
        index = time_us // self.interval_us
        while len(self.rounds) <= index:
            self.rounds.append(RoundStats())
        return self.rounds[index]

    @property
    def now_us(self) -> int:
        return self.clock()

    def count(self, family: str, reason: str) -> None:
        self.counters[family][reason] += 1

    def app_bytes(self, src: str, dst: str, n: int) -> None:
        self.round_at(self.now_us).app_bytes += n
        self.bytes_by_node[src] += n

    def wire_bytes(self, src: str, dst: str, n: int) -> None:
        self.round_at(self.now_us).wire_bytes += n

    def summary(self, node: str, size: int) -> None:
        stats = self.round_at(self.now_us)
        stats.summaries += 1
        stats.summary_bytes += size
        stats.summary_max = max(stats.summary_max, size)

    def changes(self, node: str, size: int, *, push: bool) -> None:
        stats = self.round_at(self.now_us)
        stats.changes += 1
        stats.changes_bytes += size
        if push:
            stats.push_bytes += size

    def staleness(self, klass: str, ms: float) -> None:
        self.staleness_ms[klass].append(ms)

    # -- condensed ---------------------------------------------------------------------

    def bytes_per_node_per_round(self) -> list[float]:
        return [r.app_bytes / r.live_nodes if r.live_nodes else 0.0 for r in self.rounds]

    def summary_sizes(self) -> dict[str, float]:
        total = sum(r.summary_bytes for r in self.rounds)
        count = sum(r.summaries for r in self.rounds)
        return {
            "mean": total / count if count else 0.0,
            "max": max((r.summary_max for r in self.rounds), default=0),
            "count": count,
        }

    def staleness_summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for klass in sorted(self.staleness_ms):
            values = self.staleness_ms[klass]
            summary = distribution(values)
            summary["fresh_fraction"] = (
                sum(1 for v in values if v == 0) / len(values) if values else 0.0
            )
            out[klass] = summary
        return out

    def counter_summary(self) -> dict[str, dict[str, int]]:
        return {
            family: dict(sorted(counter.items()))
            for family, counter in sorted(self.counters.items())
        }
