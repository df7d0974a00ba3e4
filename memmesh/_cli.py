"""The ``memmesh`` command line.

Sub-commands work on a data directory (``--data DIR``, default ``$MEMMESH_DATA`` or
``./memmesh-data``) holding one LMDB replica. Several processes may open it at once
(LMDB's own locking), so ``memmesh add`` works while ``memmesh node`` runs there: the node
notices the write in the replica's change journal and pushes it to its peers. ``node``,
``mcp``, ``simulate``, ``bench`` and ``demo`` hand over to their own modules.
Every command takes ``-v`` (INFO), ``-vv`` (DEBUG) or ``--log-level LEVEL``, before or
after its name; the default, WARNING, logs only what needs attention, one line per event.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from collections.abc import Callable, Sequence
from typing import Any

from memmesh.crdt import MemmeshError
from memmesh.integrations._options import (
    SCOPE_FIELDS,
    add_data_option,
    add_logging_options,
    add_scope_options,
    configure_logging,
    data_dir,
    error_line,
    scope,
)


def _record_to_json(record: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": record.id}
    for f in SCOPE_FIELDS:
        out[f] = getattr(record, f)
    out["conflicted"] = record.conflicted
    out["versions"] = [
        {
            "text": v.text,
            "actor": v.actor,
            "replica": v.replica,
            "timestamp": str(v.timestamp),
            "confidence": v.confidence,
            "metadata": v.metadata,
        }
        for v in record.versions
    ]
    return out




def _cmd_keygen(args: argparse.Namespace) -> int:
    print(secrets.token_hex(32))
    return 0


def _open(args: argparse.Namespace) -> Any:
    from memmesh.storage import Replica

    return Replica.open(data_dir(args))


def _cmd_add(args: argparse.Namespace) -> int:
    with _open(args) as replica:
        memory_id = replica.add(
            args.text,
            actor=args.actor,
            confidence=args.confidence,
            ttl=args.ttl,
            policy=args.policy,
            tier=args.tier,
            **scope(args),
        )
    print(memory_id)
    return 0


def _cmd_get(args: argparse.Namespace) -> int:
    with _open(args) as replica:
        record = replica.get(args.memory_id)
        if record is None:
            print(f"memmesh: no memory {args.memory_id}", file=sys.stderr)
            return 1
        print(json.dumps(_record_to_json(record), indent=2, ensure_ascii=False))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    with _open(args) as replica:
        for record in replica.list(**scope(args)):
            texts = " | ".join(v.text for v in record.versions)
            flag = " [CONFLICT]" if record.conflicted else ""
            print(f"{record.id}  {texts}{flag}")
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    with _open(args) as replica:
        for event in replica.history(args.memory_id):
            text = "" if event.text is None else f"  {event.text!r}"
            print(f"{event.timestamp}  {event.op:<8} actor={event.actor} "
                  f"replica={event.replica}{text}")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from memmesh.semantic import SemanticIndex

    with _open(args) as replica:
        index = SemanticIndex(replica)
        for hit in index.search(args.query, k=args.k, **scope(args)):
            record = hit.record
            texts = " | ".join(v.text for v in record.versions)
            print(f"{hit.score:6.3f}  {record.id}  {texts}")
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


Command = Callable[[argparse.Namespace], int]


def _command(sub: Any, name: str, help: str, func: Command, *,
             data: bool = True) -> argparse.ArgumentParser:
    """A sub-command running ``func``, with ``--data`` unless ``data`` is False."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help)
    p.set_defaults(func=func)
    if data:
        add_data_option(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memmesh", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = _command(sub, "add", "add a memory", _cmd_add)
    p.add_argument("text")
    add_scope_options(p)
    p.add_argument("--actor", default=None)
    p.add_argument("--confidence", type=float, default=1.0)
    p.add_argument("--ttl", type=float, default=None, help="seconds until the memory expires")
    p.add_argument("--policy", choices=("mv", "lww"), default="mv")
    p.add_argument("--tier", choices=("shared", "private"), default=None)

    _command(sub, "get", "show one memory as JSON", _cmd_get).add_argument("memory_id")
    add_scope_options(_command(sub, "list", "list memories in a scope", _cmd_list))
    _command(sub, "history", "the event history of one memory",
             _cmd_history).add_argument("memory_id")

    p = _command(sub, "search", "semantic search in a scope", _cmd_search)
    p.add_argument("query")
    p.add_argument("-k", type=int, default=10)
    add_scope_options(p)

    p = _command(sub, "status", "peers, seeds and lag of the node running on --data",
                 _cmd_status)
    p.add_argument("--json", action="store_true",
                   help="the node's whole status snapshot as JSON (running: false when none)")

    from memmesh.integrations.mcp import build_parser as add_mcp_options
    from memmesh.integrations.node import add_runner_options

    add_runner_options(_command(sub, "node", "run a gossip node on --data until interrupted",
                                _cmd_node, data=False))
    add_mcp_options(_command(sub, "mcp", "serve memory tools over stdio (Model Context "
                             "Protocol)", _cmd_mcp, data=False))

    from memmesh.benchmarks.run import add_parser as add_bench
    from memmesh.simulations.cli import add_parser as add_simulate

    add_simulate(sub)
    add_bench(sub)

    _command(sub, "keygen", "print a new random cluster key (hex)", _cmd_keygen, data=False)
    p = _command(sub, "demo", "three agents on this machine converge, conflicts resolved",
                 _cmd_demo, data=False)
    p.add_argument("--mdns", action="store_true",
                   help="discover peers by mDNS on loopback instead of seeds")
    p.add_argument("--no-semantic", action="store_true",
                   help="resolve by last-writer-wins, no model")
    add_logging_options(parser)
    for command in sub.choices.values():
        add_logging_options(command, sub=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    undo_logging = configure_logging(args)
    try:
        result: int = args.func(args)
    except MemmeshError as exc:
        print(f"memmesh: {error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        undo_logging()
    return result

