"""Parking replicas beyond ``--open-replicas`` (simulations/openfiles.py) changes no
simulated outcome: the report is the same bytes, while files really were closed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memmesh.simulations import SimOptions, run_scenario
from memmesh.simulations.openfiles import OpenReplicas
from memmesh.simulations.report import dumps


@pytest.mark.parametrize("scenario", ["spread", "churn", "restore"])
def test_a_run_parking_replicas_reports_the_same_bytes(scenario: str, tmp_path: Path) -> None:
    options = SimOptions(nodes=12, seed=3, writes=10, loss=0.1, skew_ms=30_000)
    unlimited = run_scenario(scenario, options)
    parked = run_scenario(scenario, options, out=tmp_path, plots=False, open_replicas=3)
    assert dumps(parked) == dumps(unlimited)
    timings = json.loads((tmp_path / "timings.json").read_text())
    assert timings["open_replicas"] == 3
    assert timings["replicas_parked"] > 0


def test_the_cli_takes_open_replicas_and_refuses_zero(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "memmesh.simulations", "spread", "--nodes", "6",
            "--seed", "2", "--no-plots", "--quiet"]
    env = dict(os.environ)
    ok = subprocess.run([*base, "--open-replicas", "2", "--out", str(tmp_path / "a")],
                        env=env, capture_output=True, text=True, timeout=240)
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "a" / "timings.json").read_text())["replicas_parked"] > 0
    bad = subprocess.run([*base, "--open-replicas", "0", "--out", str(tmp_path / "b")],
                         env=env, capture_output=True, text=True, timeout=240)
    assert bad.returncode == 2 and "--open-replicas" in bad.stderr
    assert not (tmp_path / "b").exists()


def test_the_least_recently_used_replica_is_parked_first(tmp_path: Path) -> None:
    from memmesh.storage import Replica

    replicas = {name: Replica.open(tmp_path / name, replica_id=name, durable=False)
                for name in "abc"}
    try:
        pool = OpenReplicas(2)
        pool.touch("a", replicas["a"])
        pool.touch("b", replicas["b"])
        pool.touch("a", replicas["a"])
        pool.touch("c", replicas["c"])
        assert [n for n, r in replicas.items() if r._env.parked] == ["b"]
        assert pool.parks == 1
        pool.forget("a")
        pool.touch("b", replicas["b"])
        assert pool.parks == 1  # room for b again: nothing more parked
        assert replicas["b"].stats()["replica_id"] == "b"  # its next use reopens it
        assert not replicas["b"]._env.parked
    finally:
        for replica in replicas.values():
            replica.close()
