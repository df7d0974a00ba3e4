"""The conflict commands: ``conflicts`` (each conflicted memory with its versions) and
``resolve`` (keep a version, write a merged text, or ask a named resolver)."""

from __future__ import annotations

import argparse
from typing import Any

from memmesh.integrations._options import add_scope_options, scope
from memmesh.integrations._records import iso, record_json, version_id
from memmesh.integrations._resolver_options import add_resolver_options, build_resolver
from memmesh.merge import Conflict, resolver_name
from memmesh.storage import MemoryRecord, Version

from ._cli_common import (
    CliError,
    add_output_options,
    command,
    cut,
    existing_replica,
    print_json,
    read_text,
    width,
)


def _cmd_conflicts(args: argparse.Namespace) -> int:
    with existing_replica(args) as replica:
        records = replica.conflicts(**scope(args))
    if args.json:
        print_json([record_json(r) for r in records])
        return 0
    for record in records:
        print(f"{record.id}  ({len(record.versions)} versions)")
        for i, v in enumerate(record.versions, 1):
            head = (f"  [{i}] {version_id(v.dot)}  {iso(v.timestamp)}  actor={v.actor} "
                    f"role={v.role} confidence={v.confidence:g}  ")
            print(head + cut(v.text, width() - len(head), args.full))
    return 0


def _chosen(record: MemoryRecord, pick: str) -> Version:
    """The version ``pick`` names: its 1-based index in ``conflicts`` or its version id."""
    if pick.isdigit() and 1 <= int(pick) <= len(record.versions):
        return record.versions[int(pick) - 1]
    for v in record.versions:
        if version_id(v.dot) == pick:
            return v
    raise CliError(f"memory {record.id} has no version {pick!r}; give an index 1.."
                   f"{len(record.versions)} or a version id from memmesh conflicts")


def _cmd_resolve(args: argparse.Namespace) -> int:
    with existing_replica(args) as replica:
        record = replica.get(args.memory_id)
        if record is None:
            raise CliError(f"no memory {args.memory_id} in {replica.path}; list conflicts "
                           "with memmesh conflicts")
        if not record.conflicted:
            raise CliError(f"memory {args.memory_id} is not conflicted; nothing to resolve")
        meta: dict[str, Any] = {}
        confidence = None
        if args.pick is not None:
            text, name, meta["resolution"] = _chosen(record, args.pick).text, "cli", "pick"
        elif args.text is not None:
            text, name, meta["resolution"] = read_text(args.text), "cli", "merged"
        else:
            resolver = build_resolver(args)
            assert resolver is not None
            resolution = resolver(Conflict.from_record(record))
            if resolution is None:
                raise CliError(f"resolver {args.resolver} has no opinion on {record.id}; "
                               "pick a version (--pick) or write one (--text)")
            text, confidence = resolution.text, resolution.confidence
            name = resolution.resolver or resolver_name(resolver)
            meta["resolution"] = resolution.kind
            if resolution.rationale:
                meta["rationale"] = resolution.rationale
        if args.rationale:
            meta["rationale"] = args.rationale
        replica.resolve(record.id, text, resolver=name, inputs=tuple(v.dot for v in
                                                                        record.versions),
                        actor=args.actor, confidence=confidence, metadata=meta)
    print(f"resolved {record.id} ({meta['resolution']} by {name})")
    return 0


def add_commands(sub: Any) -> None:
    p = command(sub, "conflicts", "conflicted memories, each with its versions",
                _cmd_conflicts)
    add_scope_options(p)
    add_output_options(p)

    p = command(sub, "resolve", "settle a conflicted memory", _cmd_resolve)
    p.add_argument("memory_id")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--pick", metavar="VERSION",
                     help="keep this version: its index in memmesh conflicts, or its id")
    how.add_argument("--text", help="write this merged text (- reads it from stdin)")
    how.add_argument("--resolver", metavar="NAME[,NAME...]",
                     help="ask these resolvers (see memmesh node --resolver)")
    p.add_argument("--actor", default=None)
    p.add_argument("--rationale", default=None, help="why (kept in the metadata)")
    add_resolver_options(p, with_resolver=False)
