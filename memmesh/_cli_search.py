"""``memmesh search``: semantic search in a scope, served by the node running on
``--data`` when there is one (warm model, milliseconds), else computed here (the model
loads first, seconds). ``--threshold`` and ``--filter`` drop hits before they count
towards ``-k``."""

from __future__ import annotations

import argparse
from typing import Any

from memmesh.integrations._options import add_scope_options, data_dir, scope
from memmesh.integrations._search_socket import EMBEDDERS, MAX_K, ask_node, make_index, search

from ._cli_common import (
    CliError,
    add_output_options,
    command,
    cut,
    existing_replica,
    key_values,
    print_json,
    width,
)


def _cmd_search(args: argparse.Namespace) -> int:
    if not 1 <= args.k <= MAX_K:
        raise CliError(f"-k must be in 1..{MAX_K}")
    where = key_values(args.filter, "--filter")
    with existing_replica(args) as replica:
        hits = None if args.local else ask_node(data_dir(args), {
            "query": args.query, "k": args.k, "embedder": args.embedder,
            "threshold": args.threshold, "where": where, "scope": scope(args)})
        if hits is None:
            hits = search(make_index(replica, args.embedder), args.query, args.k,
                          threshold=args.threshold, where=where, scope=scope(args))
    if args.json:
        print_json(hits)
        return 0
    for hit in hits:
        record = hit["record"]
        flag = " [CONFLICT]" if record["conflicted"] else ""
        head = f"{hit['score']:6.3f}  {record['id']}  "
        print(head + cut(hit["text"], width() - len(head) - len(flag), args.full) + flag)
    return 0


def add_commands(sub: Any) -> None:
    p = command(sub, "search", "semantic search in a scope", _cmd_search)
    p.add_argument("query")
    p.add_argument("-k", type=int, default=10, help=f"how many hits, 1..{MAX_K}")
    p.add_argument("--embedder", choices=EMBEDDERS, default="model",
                   help="the bundled model, or word hashing (no model)")
    p.add_argument("--threshold", type=float, default=0.0,
                   help="drop hits whose similarity is below this (-1..1); hits with no "
                        "similarity at all are always dropped")
    p.add_argument("--filter", action="append", metavar="KEY=VALUE",
                   help="only memories whose metadata has KEY=VALUE (repeatable)")
    p.add_argument("--local", action="store_true",
                   help="search here even when a node serves search on --data")
    add_scope_options(p)
    add_output_options(p)
