"""The ``memmesh`` command line.

Sub-commands work on a data directory (``--data DIR``, default ``$MEMMESH_DATA`` or
``./memmesh-data``) holding one LMDB replica. Several processes may open it at once
(LMDB's own locking), so ``memmesh add`` works while ``memmesh node`` runs there: the node
notices the write in the replica's change journal and pushes it to its peers. One module
per command group: ``_cli_memory``, ``_cli_search``, ``_cli_node`` (the node, status and
mcp wiring; ``node``, ``mcp``, ``simulate``, ``bench`` and ``demo`` hand over to their
own modules).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from memmesh.crdt import MemmeshError

from . import _cli_memory, _cli_node, _cli_search


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memmesh", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _cli_memory.add_commands(sub)
    _cli_search.add_commands(sub)
    _cli_node.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except MemmeshError as exc:
        print(f"memmesh: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result
