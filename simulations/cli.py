"""``memmesh simulate SCENARIO [options] [--out DIR]``: run a scenario from the shell.

``memmesh/_cli.py`` calls ``add_parser(subparsers)``; ``main(argv)`` runs the
same command on its own (``python -m memmesh.simulations``). Writes ``DIR/report.json``
(byte-identical for the same scenario, seed and options), ``DIR/timings.json`` and PNG
plots; with ``--runs K`` it runs seeds ``S .. S+K-1`` into ``DIR/seed-NNNN/`` and writes
``DIR/summary.json`` (how many converged, the rounds distribution). A progress bar
goes to stderr. Exit status 0 when every run converged with every invariant held.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .network import SimulationConfigError
from .openfiles import pin_mmap_threshold, raise_fd_limit
from .options import SimOptions
from .report import write_json
from .transport import MODES


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes takes comma-separated integers: {text!r}"
        ) from None


def configure(p: argparse.ArgumentParser) -> None:
    """Add the ``simulate`` arguments to parser ``p``."""
    from .scenarios import SCENARIOS

    d = SimOptions()
    p.add_argument("scenario", choices=sorted(SCENARIOS), help="which scenario to run")
    p.add_argument("--nodes", type=int, default=d.nodes, help="fleet size N")
    p.add_argument("--seed", type=int, default=d.seed, help="run seed")
    p.add_argument("--runs", type=int, default=1, help="run seeds SEED..SEED+RUNS-1")
    p.add_argument("--loss", type=float, default=d.loss, help="packet loss probability")
    p.add_argument("--duplicate", type=float, default=d.duplicate,
                   help="packet duplication probability")
    p.add_argument("--reorder", type=float, default=d.reorder,
                   help="probability a packet is held back and overtaken")
    p.add_argument("--latency", default=d.latency,
                   help="one-way latency: constant:MS | uniform:A:B | lognormal:MEDIAN:SIGMA "
                        "| exponential:MEAN")
    p.add_argument("--skew-ms", type=int, default=d.skew_ms,
                   help="per-node clock skew, uniform in [-S, +S] ms")
    p.add_argument("--interval-ms", type=int, default=d.interval_ms, help="gossip round")
    p.add_argument("--max-rounds", type=int, default=d.max_rounds,
                   help="give up converging after this many rounds")
    p.add_argument("--partitions", action="store_true", help="add random partitions (churn)")
    p.add_argument("--users", type=int, default=d.users, help="users (fleet ACL scopes)")
    p.add_argument("--sizes", type=_sizes, default=(),
                   help="fleet sizes to sweep, e.g. 10,100,1000")
    p.add_argument("--writes", type=int, default=d.writes, help="workload size")
    p.add_argument("--resolve-deadline-ms", type=int, default=d.resolve_deadline_ms,
                   help="arbiter election deadline (gossip.Node's default: 2000)")
    p.add_argument("--transport", choices=MODES, default="tcp",
                   help="tcp: faults hit a reliable stream's segments; frames: they hit "
                        "protocol frames directly")
    p.add_argument("--open-replicas", type=int, default=None, metavar="K",
                   help="keep at most K replicas' LMDB files open, parking the least "
                        "recently used (default: as many as the raised fd limit allows); "
                        "changes no result")
    p.add_argument("--out", type=Path, default=Path("sim-out"), help="output directory")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``simulate`` on an ``argparse`` sub-parsers object; returns the parser."""
    p = subparsers.add_parser(
        "simulate",
        help="simulate a fleet on the real protocol core (report.json + plots)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    configure(p)
    p.set_defaults(func=run)
    return p


def _options(args: argparse.Namespace, seed: int) -> SimOptions:
    return SimOptions(
        nodes=args.nodes, seed=seed, loss=args.loss, duplicate=args.duplicate,
        reorder=args.reorder, latency=args.latency, skew_ms=args.skew_ms,
        interval_ms=args.interval_ms, max_rounds=args.max_rounds,
        partitions=args.partitions, users=args.users, sizes=tuple(args.sizes),
        writes=args.writes, resolve_deadline_ms=args.resolve_deadline_ms,
    )


def _line(report: dict[str, Any]) -> str:
    ok = all(report["invariants"].values())
    return (
        f"{report['scenario']} N={report['nodes']} seed={report['seed']}: "
        f"converged={report['converged']} rounds={report['rounds_to_converge']} "
        f"bytes/node/round={report['bytes_per_node']:.0f} invariants={'ok' if ok else 'FAILED'}"
    )


def run(args: argparse.Namespace) -> int:
    """Run the command described by parsed ``args``; exit status."""
    from .runner import run_scenario, summarise_runs

    if args.runs < 1:
        print("memmesh simulate: --runs must be >= 1", file=sys.stderr)
        return 2
    if args.open_replicas is not None and args.open_replicas < 1:
        print("memmesh simulate: --open-replicas must be >= 1", file=sys.stderr)
        return 2
    raise_fd_limit()
    pin_mmap_threshold()
    try:
        seeds = [args.seed + k for k in range(args.runs)]
        option_sets = [_options(args, seed) for seed in seeds]
    except SimulationConfigError as exc:
        print(f"memmesh simulate: {exc}", file=sys.stderr)
        return 2
    reports = []
    started = time.perf_counter()
    for options in option_sets:
        out = args.out if args.runs == 1 else args.out / f"seed-{options.seed:04d}"
        report = run_scenario(
            args.scenario, options, out=out, transport=args.transport,
            progress=not args.quiet, plots=not args.no_plots and args.runs == 1,
            open_replicas=args.open_replicas,
        )
        reports.append(report)
        print(_line(report), file=sys.stderr)
    if args.runs > 1:
        summary = summarise_runs(reports)
        summary["scenario"] = args.scenario
        write_json(args.out / "summary.json", summary)
        write_json(args.out / "summary-timings.json",
                   {"wall_s": time.perf_counter() - started})
        print(f"{summary['converged']}/{summary['runs']} converged, "
              f"{summary['all_invariants_held']}/{summary['runs']} with every invariant; "
              f"rounds {summary['rounds_to_converge']}", file=sys.stderr)
    print(f"wrote {args.out}", file=sys.stderr)
    ok = all(r["converged"] and all(r["invariants"].values()) for r in reports)
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="memmesh simulate", description=__doc__)
    configure(parser)
    return run(parser.parse_args(argv))
