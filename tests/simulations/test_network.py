"""The network model: latency specs, loss, duplication, partitions; seeded and repeatable."""

from __future__ import annotations

import pytest

from memmesh.crdt import MemmeshError
from memmesh.simulations.engine import EventLoop
from memmesh.simulations.network import Latency, Network, NetworkConfig, SimulationConfigError


def _net(config: NetworkConfig, seed: int = 1) -> tuple[EventLoop, Network, list[tuple]]:
    loop = EventLoop()
    got: list[tuple] = []
    net = Network(loop, config, seed, deliver=lambda s, d, p: got.append((loop.now_us, s, d, p)))
    return loop, net, got


@pytest.mark.parametrize("spec", ["constant:5", "uniform:1:9", "lognormal:5:0.5", "exponential:3"])
def test_latency_specs_round_trip(spec: str) -> None:
    assert Latency.parse(spec).spec() == spec


@pytest.mark.parametrize("spec", ["gauss:1", "uniform:9:1", "constant:-1", "lognormal:5", "x"])
def test_bad_latency_specs_raise_a_typed_error(spec: str) -> None:
    with pytest.raises(SimulationConfigError) as info:
        Latency.parse(spec)
    assert isinstance(info.value, MemmeshError)


def test_probabilities_outside_the_unit_interval_are_refused() -> None:
    with pytest.raises(SimulationConfigError):
        NetworkConfig(loss=1.0)
    with pytest.raises(SimulationConfigError):
        NetworkConfig(duplicate=-0.1)


def test_clean_network_delivers_everything_after_a_positive_latency() -> None:
    loop, net, got = _net(NetworkConfig(latency=Latency("constant", 5.0)))
    for i in range(20):
        net.send("a", "b", i, 10)
    loop.run()
    assert sorted(p for *_, p in got) == list(range(20))
    assert all(t > 0 for t, *_ in got)


def test_loss_and_duplication_happen_at_about_their_rates() -> None:
    loop, net, got = _net(NetworkConfig(loss=0.3, duplicate=0.2))
    for i in range(2000):
        net.send("a", "b", i, 10)
    loop.run()
    assert 0.25 < net.stats.lost / 2400 < 0.35
    assert 300 < net.stats.duplicated < 500
    assert len(got) == net.stats.delivered


def test_partition_drops_across_groups_until_healed() -> None:
    loop, net, got = _net(NetworkConfig())
    net.partition([["a"], ["b"]])
    net.send("a", "b", "cut", 10)
    net.send("a", "c", "ok", 10)  # c is in no group: reachable
    loop.run()
    assert [p for *_, p in got] == ["ok"]
    net.heal()
    net.send("a", "b", "healed", 10)
    loop.run()
    assert [p for *_, p in got] == ["ok", "healed"]


def test_same_seed_gives_the_same_schedule() -> None:
    runs = []
    for _ in range(2):
        loop, net, got = _net(NetworkConfig(loss=0.2, reorder=0.3, duplicate=0.1), seed=5)
        for i in range(100):
            net.send("a", "b", i, 10)
        loop.run()
        runs.append(got)
    assert runs[0] == runs[1]


def test_links_have_fixed_distinct_latency_scales() -> None:
    _, net, _ = _net(NetworkConfig(link_spread=0.5))
    assert net.link_scale("a", "b") == net.link_scale("b", "a")
    assert net.link_scale("a", "b") != net.link_scale("a", "c")
