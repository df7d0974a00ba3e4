"""The simulated network: per-link latency, loss, duplication, reordering, partitions.

A packet is an opaque object of a stated size from one node to another (the transport
in ``transport.py`` puts TCP-like segments in them). ``Network.send``
decides its fate with the run's seeded streams and schedules its delivery on the event
loop: it may be dropped (``loss``), delivered twice (``duplicate``), held back so later
messages overtake it (``reorder``), or cut by a partition (checked when it is sent and
again when it arrives, so a partition that starts while a message is in flight loses
it). Every link has its own latency scale, fixed per run, so some pairs of nodes are
consistently farther apart than others, as racks and regions are.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from statistics import NormalDist

from memmesh.crdt import MemmeshError

from .engine import US_PER_MS, EventLoop
from .rng import derive_seed

NodeId = str
Deliver = Callable[[NodeId, NodeId, object], None]

_STANDARD_NORMAL = NormalDist()
_DISTRIBUTIONS = ("constant", "uniform", "lognormal", "exponential")


class SimulationConfigError(MemmeshError, ValueError):
    """A simulation option is out of range or malformed."""


@dataclass(frozen=True, slots=True)
class Latency:
    """A one-way latency distribution, in milliseconds.

    ``constant:A`` (always A), ``uniform:A:B``, ``lognormal:MEDIAN:SIGMA`` (the usual
    shape of measured RTTs: a floor with a long right tail), ``exponential:MEAN``.
    """

    kind: str = "lognormal"
    a: float = 5.0
    b: float = 0.5

    @classmethod
    def parse(cls, spec: str) -> Latency:
        parts = spec.split(":")
        kind = parts[0]
        if kind not in _DISTRIBUTIONS:
            raise SimulationConfigError(f"unknown latency distribution {kind!r} in {spec!r}")
        try:
            nums = [float(p) for p in parts[1:]]
        except ValueError as exc:
            raise SimulationConfigError(f"bad latency spec {spec!r}: {exc}") from None
        need = {"constant": 1, "uniform": 2, "lognormal": 2, "exponential": 1}[kind]
        if len(nums) != need or any(n < 0 or not math.isfinite(n) for n in nums):
            raise SimulationConfigError(
                f"latency {kind} takes {need} non-negative number(s), got {spec!r}"
            )
        if kind == "uniform" and nums[0] > nums[1]:
            raise SimulationConfigError(f"uniform latency needs A <= B, got {spec!r}")
        return cls(kind, nums[0], nums[1] if need == 2 else 0.0)

    def spec(self) -> str:
        if self.kind in ("constant", "exponential"):
            return f"{self.kind}:{self.a:g}"
        return f"{self.kind}:{self.a:g}:{self.b:g}"

    def sample_ms(self, rng: random.Random) -> float:
        if self.kind == "constant":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.kind == "lognormal":
            return self.a * math.exp(self.b * rng.gauss(0.0, 1.0))
        return rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """Fault and latency parameters of the simulated network.

    ``loss``, ``duplicate`` and ``reorder`` are per-message probabilities. A reordered
    message is held back by up to ``reorder_window_ms`` extra. ``link_spread`` is the
    sigma of each link's fixed log-normal latency multiplier (0 = all links alike).
    """

    latency: Latency = field(default_factory=Latency)
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_window_ms: float = 50.0
    link_spread: float = 0.3

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise SimulationConfigError(f"{name} must be in [0, 1), got {value}")
        if self.reorder_window_ms < 0 or self.link_spread < 0:
            raise SimulationConfigError("reorder_window_ms and link_spread must be >= 0")


@dataclass(slots=True)
class NetworkStats:
    sent: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    partitioned: int = 0


class Network:
    """Delivers payloads between nodes on an ``EventLoop`` under a ``NetworkConfig``.

    ``deliver(src, dst, packet)`` is called at arrival time. ``on_bytes(src, dst,
    nbytes)`` is called once per copy put on the wire, for byte accounting.
    """

    def __init__(
        self,
        loop: EventLoop,
        config: NetworkConfig,
        seed: int,
        deliver: Deliver,
        on_bytes: Callable[[NodeId, NodeId, int], None] | None = None,
    ) -> None:
        self.loop = loop
        self.config = config
        self._seed = seed
        self._rng = random.Random(derive_seed(seed, "network"))
        self._deliver = deliver
        self._on_bytes = on_bytes
        self._link_scale: dict[tuple[NodeId, NodeId], float] = {}
        self._group: dict[NodeId, Hashable] = {}
        self.stats = NetworkStats()

    # -- partitions -------------------------------------------------------------------

    def partition(self, groups: list[list[NodeId]]) -> None:
        """Cut the network into ``groups``; nodes in no group can reach everybody."""
        self._group = {node: index for index, group in enumerate(groups) for node in group}

    def heal(self) -> None:
        self._group = {}

    @property
    def partitioned(self) -> bool:
        return bool(self._group)

    def reachable(self, src: NodeId, dst: NodeId) -> bool:
        a = self._group.get(src)
        b = self._group.get(dst)
        return a is None or b is None or a == b

    # -- latency ----------------------------------------------------------------------

    def link_scale(self, src: NodeId, dst: NodeId) -> float:
        """The fixed latency multiplier of the (undirected) link, from a hash of its ends."""
        key = (src, dst) if src <= dst else (dst, src)
        scale = self._link_scale.get(key)
        if scale is None:
            u = (derive_seed(self._seed, "link", key[0], key[1]) + 0.5) / 2.0**64
            scale = math.exp(self.config.link_spread * _STANDARD_NORMAL.inv_cdf(u))
            self._link_scale[key] = scale
        return scale

    def _delay_us(self, src: NodeId, dst: NodeId) -> int:
        ms = self.config.latency.sample_ms(self._rng) * self.link_scale(src, dst)
        return max(1, round(ms * US_PER_MS))

    # -- sending ----------------------------------------------------------------------

    def send(self, src: NodeId, dst: NodeId, packet: object, size: int) -> None:
        """Put ``packet`` (``size`` bytes on the wire) from ``src`` to ``dst``."""
        cfg = self.config
        rng = self._rng
        self.stats.sent += 1
        copies = 1
        if cfg.duplicate and rng.random() < cfg.duplicate:
            copies = 2
            self.stats.duplicated += 1
        for _ in range(copies):
            if self._on_bytes is not None:
                self._on_bytes(src, dst, size)
            if not self.reachable(src, dst):
                self.stats.partitioned += 1
                continue
            if cfg.loss and rng.random() < cfg.loss:
                self.stats.lost += 1
                continue
            delay = self._delay_us(src, dst)
            if cfg.reorder and rng.random() < cfg.reorder:
                self.stats.reordered += 1
                delay += round(rng.uniform(0.0, cfg.reorder_window_ms) * US_PER_MS)
            self.loop.call_later(delay, self._arrival(src, dst, packet))

    def _arrival(self, src: NodeId, dst: NodeId, packet: object) -> Callable[[], None]:
        def arrive() -> None:
            if not self.reachable(src, dst):
                self.stats.partitioned += 1
                return
            self.stats.delivered += 1
            self._deliver(src, dst, packet)

        return arrive
