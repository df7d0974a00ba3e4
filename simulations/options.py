"""The options of one simulation run, shared by every scenario and the CLI.

Everything that can change a run's outcome is here, and the whole object goes into
``report.json`` so that a report names exactly what produced it. Scenarios read the
fields they need and ignore the rest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .network import Latency, NetworkConfig, SimulationConfigError


@dataclass(frozen=True, slots=True)
class SimOptions:
    """Options of a run. Times are milliseconds; probabilities are per message.

    ``nodes``: fleet size (scenarios may add nodes that join later).
    ``seed``: the run seed; every random stream derives from it.
    ``loss``/``duplicate``/``reorder``: per-segment network faults.
    ``latency``: one-way latency distribution spec (see ``network.Latency``).
    ``skew_ms``: each node's clock is off by a fixed amount uniform in [-skew, +skew].
    ``interval_ms``: the gossip round: every node starts one anti-entropy exchange per
    interval (with +-10% jitter), so "rounds" are intervals of simulated time.
    ``max_rounds``: give up converging after this many rounds past the scenario's end.
    ``partitions``: add random partitions to ``churn`` (``partition-heal`` always has
    its one partition).
    ``users``: how many users (ACL scopes) ``fleet`` spreads its agents over.
    ``sizes``: the fleet sizes ``fleet`` sweeps (empty: just ``nodes``).
    ``writes``: how many writes the workload makes (scenario-specific meaning).
    ``resolve_deadline_ms``: the arbiter election's deadline (``memmesh.merge.Election``):
    candidate ``i`` may resolve ``i * deadline`` after the newest version; 2000 is
    ``gossip.Node``'s default.
    """

    nodes: int = 10
    seed: int = 1
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    latency: str = "lognormal:5:0.5"
    skew_ms: int = 0
    interval_ms: int = 1000
    max_rounds: int = 200
    partitions: bool = False
    users: int = 4
    sizes: tuple[int, ...] = field(default_factory=tuple)
    writes: int = 20
    resolve_deadline_ms: int = 2_000

    def __post_init__(self) -> None:
        if self.nodes < 1 or self.nodes > 100_000:
            raise SimulationConfigError(f"nodes must be in 1..100000, got {self.nodes}")
        if self.interval_ms < 10:
            raise SimulationConfigError("interval_ms must be at least 10")
        if self.max_rounds < 1:
            raise SimulationConfigError("max_rounds must be positive")
        if self.skew_ms < 0:
            raise SimulationConfigError("skew_ms must be >= 0")
        if self.users < 1 or self.writes < 0:
            raise SimulationConfigError("users must be >= 1 and writes >= 0")
        if self.resolve_deadline_ms < 0:
            raise SimulationConfigError("resolve_deadline_ms must be >= 0")
        if any(n < 1 for n in self.sizes):
            raise SimulationConfigError("sizes must be positive")
        self.network_config()  # validates loss, duplicate, reorder, latency

    def network_config(self) -> NetworkConfig:
        return NetworkConfig(
            latency=Latency.parse(self.latency),
            loss=self.loss,
            duplicate=self.duplicate,
            reorder=self.reorder,
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sizes"] = list(self.sizes)
        return data
