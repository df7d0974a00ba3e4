"""Running a named scenario: temp replicas, the report, timings and plots.

``run_scenario(name, options, out=DIR)`` runs the scenario function, adds the fields
every report shares (``common_report``), checks the invariants, and writes
``DIR/report.json`` (deterministic: same scenario, seed and options, same bytes),
``DIR/timings.json`` (wall-clock, host-dependent) and the PNG plots. Replicas live in a
temporary directory (on ``/dev/shm`` when there is one) that is removed afterwards.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memmesh.storage._rss import untracked

from . import invariants
from .cluster import Cluster, Convergence
from .engine import US_PER_MS
from .metrics import distribution
from .openfiles import default_limit
from .options import SimOptions
from .progress import Progress
from .report import normalise, write_json

#: Upper edges (ms) of the staleness histogram bins; the last bin is open.
STALENESS_BINS_MS = (0, 10, 50, 100, 250, 500, 1_000, 2_000, 5_000, 10_000, 30_000)


@dataclass
class RunContext:
    """What a scenario function gets: options, a scratch directory, a progress bar."""

    options: SimOptions
    workdir: Path
    transport: str = "tcp"
    progress: Progress | None = None
    open_replicas: int | None = None  # replicas kept open (None: the fd limit's worth)
    clusters: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    _made: list[Cluster] = field(default_factory=list)  # every cluster made, in order

    def cluster(self, options: SimOptions | None = None, **kwargs: Any) -> Cluster:
        """A fresh cluster in its own subdirectory of the scratch directory."""
        self.clusters += 1
        path = self.workdir / f"cluster{self.clusters:02d}"
        path.mkdir(parents=True, exist_ok=True)
        cluster = Cluster(
            options or self.options, path, transport=self.transport,
            progress=self.progress, open_replicas=self.open_replicas, **kwargs,
        )
        self._made.append(cluster)
        return cluster

    def parked(self) -> int:
        """Replica environments parked so far by this run's clusters."""
        return sum(c.open_replicas.parks for c in self._made)


def staleness_histogram(values: list[float]) -> list[int]:
    """Counts per bin of ``STALENESS_BINS_MS`` (bin i: <= edge i), plus the open bin."""
    counts = [0] * (len(STALENESS_BINS_MS) + 1)
    for v in values:
        for i, edge in enumerate(STALENESS_BINS_MS):
            if v <= edge:
                counts[i] += 1
                break
        else:
            counts[-1] += 1
    return counts


def converged_report(cluster: Cluster, nodes: int, max_rounds: int) -> dict[str, Any]:
    """Run ``cluster`` from now until it converges (at most ``max_rounds`` rounds) and
    return the fields every scenario reports, with its number of ``nodes``."""
    convergence = cluster.run_until_converged(cluster.loop.now_us, max_rounds)
    report = common_report(cluster, convergence)
    report["nodes"] = nodes
    return report


def common_report(cluster: Cluster, convergence: Convergence) -> dict[str, Any]:
    """The fields every scenario reports, from one cluster's metrics."""
    m = cluster.metrics
    node_rounds = sum(r.live_nodes for r in m.rounds)
    app = sum(r.app_bytes for r in m.rounds)
    wire = sum(r.wire_bytes for r in m.rounds)
    checks, violations = invariants.check(cluster)
    rounds = len(m.rounds)
    return {
        "converged": convergence.converged,
        "rounds_to_converge": convergence.rounds,
        "convergence_time_ms": convergence.time_ms,
        "simulated_ms": cluster.loop.now_us / US_PER_MS,
        "bytes_per_node": app / node_rounds if node_rounds else 0.0,
        "wire_bytes_per_node": wire / node_rounds if node_rounds else 0.0,
        "bytes_per_node_max": max(m.bytes_by_node.values(), default=0) / max(1, rounds),
        "summary_bytes": m.summary_sizes(),
        "staleness_ms": m.staleness_summary(),
        "staleness_histogram": {
            "bins_ms": list(STALENESS_BINS_MS),
            "counts": {k: staleness_histogram(v) for k, v in sorted(m.staleness_ms.items())},
        },
        "conflicts": len(m.conflicts),
        "conflict_events": m.conflict_events,
        "resolver_calls": m.resolver_calls,
        "writes": cluster.writelog.count,
        "memories": len(cluster.writelog.memories),
        "syncs_completed": m.syncs_completed,
        "links_opened": m.links_opened,
        "network": {
            **asdict(cluster.network.stats),
            "retransmissions": cluster.transport.retransmissions,
            "connections": cluster.transport.stats.connections,
        },
        "events": m.counter_summary(),
        "invariants": checks,
        "violations": violations,
        "series": {
            "bytes_per_node": m.bytes_per_node_per_round(),
            "wire_bytes_per_node": [
                r.wire_bytes / r.live_nodes if r.live_nodes else 0.0 for r in m.rounds
            ],
            "agreeing_fraction": [
                r.agreeing / r.live_nodes if r.live_nodes else 0.0 for r in m.rounds
            ],
            "live_nodes": [r.live_nodes for r in m.rounds],
            "summary_bytes_mean": [
                r.summary_bytes / r.summaries if r.summaries else 0.0 for r in m.rounds
            ],
        },
    }


def arrival_curve(cluster: Cluster, memory_id: str, since_us: int, nodes: int) -> list[float]:
    """Fraction of ``nodes`` holding ``memory_id`` at the end of each round after ``since_us``."""
    times = sorted(cluster.arrivals.get(memory_id, {}).values())
    if not times:
        return []
    last = math.ceil((times[-1] - since_us) / cluster.interval_us) if times else 0
    curve = []
    for r in range(last + 1):
        cutoff = since_us + r * cluster.interval_us
        curve.append(sum(1 for t in times if t <= cutoff) / nodes)
    return curve


def peak_rss_mb() -> float:
    """This process's peak resident set so far, MiB (Linux reports KiB, macOS bytes)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


ScenarioFn = Callable[[RunContext], dict[str, Any]]


@contextmanager
def scratch_dir() -> Iterator[Path]:
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix="memmesh-sim-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_scenario(
    name: str,
    options: SimOptions,
    *,
    out: Path | None = None,
    transport: str = "tcp",
    progress: bool = False,
    plots: bool = True,
    open_replicas: int | None = None,
) -> dict[str, Any]:
    """Run scenario ``name``; write report, timings and plots under ``out`` if given.

    ``open_replicas``: how many replicas keep their LMDB files open at once (None: as
    many as the descriptor limit allows); it changes no simulated outcome, only how
    often environments are parked and reopened (``timings.json`` counts them).
    Replicas are opened outside the map trimmer's tracking (``storage._rss.untracked``):
    learning each map from ``/proc/self/maps`` would cost O(N) per open."""
    from .scenarios import SCENARIOS

    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}")
    fn = SCENARIOS[name]
    bar = Progress(f"simulate {name}", 1000, enabled=progress)
    started = time.perf_counter()
    with scratch_dir() as workdir, untracked():
        ctx = RunContext(options, workdir, transport=transport, progress=bar,
                         open_replicas=open_replicas)
        body = fn(ctx)
    wall = time.perf_counter() - started
    bar.close("done")
    report: dict[str, Any] = {
        "scenario": name,
        "nodes": options.nodes,
        "seed": options.seed,
        "transport": transport,
        "options": options.as_dict(),
    }
    report.update(body)
    report = normalise(report)
    if out is not None:
        write_json(out / "report.json", report)
        write_json(out / "timings.json", {
            "wall_s": wall, "scenario": name, "peak_rss_mb": peak_rss_mb(),
            "open_replicas": ctx.open_replicas or default_limit(),
            "replicas_parked": ctx.parked(),
        })
        if plots:
            from .plots import write_plots

            write_plots(report, out)
    return report


def summarise_runs(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate of several seeds: how many converged, rounds distribution, failures."""
    rounds = [float(r["rounds_to_converge"]) for r in reports if r.get("converged")]
    failed = {
        name: sum(1 for r in reports if not r["invariants"].get(name, True))
        for name in sorted({n for r in reports for n in r["invariants"]})
    }
    return normalise({
        "runs": len(reports),
        "converged": sum(1 for r in reports if r.get("converged")),
        "all_invariants_held": sum(1 for r in reports if all(r["invariants"].values())),
        "invariant_failures": failed,
        "rounds_to_converge": distribution(rounds),
        "seeds": [r["seed"] for r in reports],
        "rounds_by_seed": {str(r["seed"]): r["rounds_to_converge"] for r in reports},
    })
