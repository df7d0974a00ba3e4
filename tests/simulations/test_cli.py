"""``memmesh simulate``: report, timings and plots on disk; several seeds; bad options."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from memmesh.simulations.cli import add_parser, main


def test_simulate_writes_report_timings_and_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["spread", "--nodes", "6", "--seed", "4", "--out", str(tmp_path)])
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    for key in ("scenario", "nodes", "seed", "converged", "rounds_to_converge",
                "bytes_per_node", "invariants"):
        assert key in report
    assert report["scenario"] == "spread" and report["nodes"] == 6 and report["seed"] == 4
    assert "wall_s" in json.loads((tmp_path / "timings.json").read_text())
    assert (tmp_path / "convergence.png").stat().st_size > 1000
    assert (tmp_path / "bytes_per_round.png").exists()
    assert "simulate spread" in capsys.readouterr().err  # the progress bar


def test_fleet_draws_metadata_size_against_n(tmp_path: Path) -> None:
    main(["fleet", "--sizes", "4,8", "--users", "2", "--out", str(tmp_path), "--quiet"])
    assert (tmp_path / "metadata_vs_n.png").exists()


def test_several_seeds_write_a_summary(tmp_path: Path) -> None:
    code = main(["spread", "--nodes", "5", "--runs", "2", "--out", str(tmp_path), "--quiet"])
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["runs"] == 2 and summary["converged"] == 2
    assert (tmp_path / "seed-0001" / "report.json").exists()
    assert (tmp_path / "seed-0002" / "report.json").exists()


def test_out_of_range_option_exits_with_2(tmp_path: Path) -> None:
    assert main(["spread", "--loss", "1.5", "--out", str(tmp_path), "--quiet"]) == 2
    assert not (tmp_path / "report.json").exists()


def test_add_parser_registers_simulate_on_a_host_cli() -> None:
    parser = argparse.ArgumentParser(prog="memmesh")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["simulate", "zylos", "--seed", "3"])
    assert args.scenario == "zylos" and args.seed == 3 and callable(args.func)
    assert args.out == Path("sim-out")
