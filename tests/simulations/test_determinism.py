"""Same scenario, seed and options: the very same report bytes, in and across processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from memmesh.simulations import SimOptions, run_scenario
from memmesh.simulations.report import dumps


def test_same_seed_same_report_bytes_in_process() -> None:
    options = SimOptions(nodes=8, seed=11, loss=0.2, duplicate=0.1, reorder=0.1,
                         skew_ms=60_000, partitions=True, writes=12)
    first = dumps(run_scenario("churn", options))
    second = dumps(run_scenario("churn", options))
    assert first == second


def test_different_seed_gives_a_different_run() -> None:
    a = run_scenario("spread", SimOptions(nodes=10, seed=1))
    b = run_scenario("spread", SimOptions(nodes=10, seed=2))
    assert dumps(a) != dumps(b)


def test_report_bytes_do_not_depend_on_the_process_or_hash_seed(tmp_path: Path) -> None:
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / hash_seed
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run(
            [sys.executable, "-m", "memmesh.simulations", "partition-heal", "--nodes", "4",
             "--writes", "8", "--seed", "9", "--loss", "0.1", "--out", str(out),
             "--no-plots", "--quiet"],
            check=True, env=env, capture_output=True, timeout=240,
        )
        outputs.append((out / "report.json").read_bytes())
    assert outputs[0] == outputs[1]


def test_memory_ids_are_drawn_from_the_run_seed_and_node(tmp_path: Path) -> None:
    from memmesh.simulations.ids import memory_ids
    from memmesh.storage import Replica

    ids = []
    for k in range(2):
        with Replica.open(tmp_path / str(k), durable=False,
                          id_factory=memory_ids(5, "n0001")) as replica:
            ids.append([replica.add("x"), replica.add("y")])
    assert ids[0] == ids[1] and ids[0][0] != ids[0][1]
    with Replica.open(tmp_path / "other", durable=False,
                      id_factory=memory_ids(5, "n0002")) as replica:
        assert replica.add("x") not in ids[0]  # another node: another stream
    with Replica.open(tmp_path / "free", durable=False) as replica:
        assert replica.add("x") not in ids[0]  # no factory: random
