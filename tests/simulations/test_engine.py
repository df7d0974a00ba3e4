"""The event loop runs events in (time, scheduling order) and honours cancel and limits."""

from __future__ import annotations

from memmesh.simulations.engine import EventLoop
from memmesh.simulations.rng import derive_seed, stream


def test_events_run_in_time_order_and_ties_in_scheduling_order() -> None:
    loop = EventLoop()
    seen: list[str] = []
    loop.call_at(20, lambda: seen.append("c"))
    loop.call_at(10, lambda: seen.append("a"))
    loop.call_at(10, lambda: seen.append("b"))
    loop.run()
    assert seen == ["a", "b", "c"]
    assert loop.now_us == 20


def test_cancelled_timer_never_runs() -> None:
    loop = EventLoop()
    seen: list[int] = []
    timer = loop.call_later(5, lambda: seen.append(1))
    timer.cancel()
    loop.run()
    assert seen == []


def test_run_until_stops_at_the_limit_and_sets_the_clock_there() -> None:
    loop = EventLoop()
    seen: list[int] = []
    loop.call_at(50, lambda: seen.append(50))
    loop.call_at(150, lambda: seen.append(150))
    loop.run(100)
    assert seen == [50] and loop.now_us == 100
    loop.run(200)
    assert seen == [50, 150] and loop.now_us == 200


def test_events_scheduled_in_the_past_run_now_not_before() -> None:
    loop = EventLoop()
    loop.run(100)
    times: list[int] = []
    loop.call_at(10, lambda: times.append(loop.now_us))
    loop.run()
    assert times == [100]


def test_named_streams_are_reproducible_and_independent() -> None:
    assert stream(7, "node", "n1").random() == stream(7, "node", "n1").random()
    assert derive_seed(7, "node", "n1") != derive_seed(7, "node", "n2")
    assert derive_seed(7, "x") != derive_seed(8, "x")
