"""The commands that run or watch a node and the tools around it: ``status``, ``node``,
``mcp``, ``simulate``, ``bench``, ``keygen``, ``demo`` (each hands over to its module)."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from typing import Any

from memmesh.integrations._options import data_dir

from ._cli_common import command


def _cmd_keygen(args: argparse.Namespace) -> int:
    print(secrets.token_hex(32))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from memmesh.integrations._nodestatus import format_status, read_status, running_pid

    data = data_dir(args)
    pid = running_pid(data)
    status = None if pid is None else read_status(data)
    if args.json:
        out: dict[str, Any] = {"running": pid is not None, "pid": pid, "data": str(data)}
        print(json.dumps({**out, **(status or {})}, indent=1))
    elif pid is None:
        print(f"memmesh: no node is running on {data}: start one with "
              f"`memmesh node --data {data} --key-file cluster.key`", file=sys.stderr)
    elif status is None:
        print(f"node running on {data}, pid {pid or 'unknown'}; no status file: it is "
              f"starting, or it is the node of a memmesh mcp server (which writes none)")
    else:
        print(format_status(status))
    return 0 if pid is not None else 1


def _cmd_node(args: argparse.Namespace) -> int:
    from memmesh.integrations.node import run

    return run(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from memmesh._demo import run_demo

    return run_demo(mdns=args.mdns, semantic=not args.no_semantic)


def _cmd_mcp(args: argparse.Namespace) -> int:
    from memmesh.integrations.mcp import run

    return int(run(args) or 0)


def add_commands(sub: Any) -> None:
    p = command(sub, "status", "peers, seeds and lag of the node running on --data",
                _cmd_status)
    p.add_argument("--json", action="store_true",
                   help="the node's whole status snapshot as JSON (running: false when none)")

    from memmesh.integrations.mcp import build_parser as add_mcp_options
    from memmesh.integrations.node import add_runner_options

    add_runner_options(command(sub, "node", "run a gossip node on --data until interrupted",
                               _cmd_node, data=False))
    add_mcp_options(command(sub, "mcp", "serve memory tools over stdio (Model Context "
                            "Protocol)", _cmd_mcp, data=False))

    from memmesh.benchmarks.run import add_parser as add_bench
    from memmesh.simulations.cli import add_parser as add_simulate

    add_simulate(sub)
    add_bench(sub)

    command(sub, "keygen", "print a new random cluster key (hex)", _cmd_keygen, data=False)
    p = command(sub, "demo", "three agents on this machine converge, conflicts resolved",
                _cmd_demo, data=False)
    p.add_argument("--mdns", action="store_true",
                   help="discover peers by mDNS on loopback instead of seeds")
    p.add_argument("--no-semantic", action="store_true",
                   help="resolve by last-writer-wins, no model")
