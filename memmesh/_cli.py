"""The ``memmesh`` command line.

Sub-commands work on a data directory (``--data DIR``, default ``$MEMMESH_DATA`` or
``./memmesh-data``) holding one LMDB replica. Several processes may open it at once
(LMDB's own locking), so ``memmesh add`` works while ``memmesh node`` runs there: the node
notices the write in the replica's change journal and pushes it to its peers. One module
per command group: ``_cli_memory``, ``_cli_conflicts``, ``_cli_transfer`` (export, import,
backup, restore), ``_cli_search``, ``_cli_node`` (node, status and mcp wiring; ``node``,
``mcp``, ``simulate``, ``bench`` and ``demo`` hand over to their own modules),
``_cli_revocation`` (revocation add/list, audit). Every
command takes ``-v`` (INFO), ``-vv`` (DEBUG) or ``--log-level LEVEL``, before or after
its name; the default, WARNING, logs only what needs attention, one line per event.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from memmesh.crdt import MemmeshError
from memmesh.integrations._options import add_logging_options, configure_logging, error_line

from . import (
    _cli_authority,
    _cli_conflicts,
    _cli_memory,
    _cli_node,
    _cli_revocation,
    _cli_search,
    _cli_transfer,
)
from ._cli_common import CliError


def _version() -> str:
    try:
        return version("memmesh")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memmesh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"memmesh {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    _cli_memory.add_commands(sub)
    _cli_conflicts.add_commands(sub)
    _cli_transfer.add_commands(sub)
    _cli_search.add_commands(sub)
    _cli_node.add_commands(sub)
    _cli_authority.add_commands(sub)
    _cli_revocation.add_commands(sub)
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
        sys.stdout.flush()
    except BrokenPipeError:  # `memmesh list | head`: the reader left, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except CliError as exc:
        print(f"memmesh: {exc}", file=sys.stderr)
        return exc.code
    except MemmeshError as exc:
        print(f"memmesh: {error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        undo_logging()
    return result
