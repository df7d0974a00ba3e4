"""``memmesh search``: semantic search in a scope."""

from __future__ import annotations

import argparse
from typing import Any

from memmesh.integrations._options import add_scope_options, scope

from ._cli_common import command, open_replica


def _cmd_search(args: argparse.Namespace) -> int:
    from memmesh.semantic import SemanticIndex

    with open_replica(args) as replica:
        index = SemanticIndex(replica)
        for hit in index.search(args.query, k=args.k, **scope(args)):
            record = hit.record
            texts = " | ".join(v.text for v in record.versions)
            print(f"{hit.score:6.3f}  {record.id}  {texts}")
    return 0


def add_commands(sub: Any) -> None:
    p = command(sub, "search", "semantic search in a scope", _cmd_search)
    p.add_argument("query")
    p.add_argument("-k", type=int, default=10)
    add_scope_options(p)
