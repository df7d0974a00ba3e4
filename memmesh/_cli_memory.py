"""The memory commands: ``add``, ``update``, ``delete``, ``forget``, ``get``, ``list``,
``history``."""

from __future__ import annotations

import argparse
from typing import Any

from memmesh.integrations._options import add_scope_options, scope
from memmesh.integrations._records import event_json, iso, record_json
from memmesh.storage import Replica

from ._cli_common import (
    CliError,
    add_metadata_option,
    add_output_options,
    command,
    cut,
    existing_replica,
    metadata,
    open_replica,
    print_json,
    read_text,
    width,
)


def _live(replica: Replica, memory_id: str) -> Any:
    record = replica.get(memory_id)
    if record is None:
        raise CliError(f"no memory {memory_id} in {replica.path}; list the ids with "
                       "memmesh list")
    return record


def _cmd_add(args: argparse.Namespace) -> int:
    text = read_text(args.text)
    with open_replica(args) as replica:
        memory_id = replica.add(
            text, actor=args.actor, confidence=args.confidence, ttl=args.ttl,
            policy=args.policy, tier=args.tier, role=args.role, priority=args.priority,
            metadata=metadata(args.metadata), importance=args.importance, sync=args.sync,
            **scope(args))
    print(memory_id)
    return 0


def _cmd_update(args: argparse.Namespace) -> int:
    text = read_text(args.text)
    with existing_replica(args) as replica:
        _live(replica, args.memory_id)
        replica.update(args.memory_id, text, actor=args.actor, confidence=args.confidence,
                       metadata=metadata(args.metadata), role=args.role,
                       importance=args.importance, sync=args.sync)
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    with existing_replica(args) as replica:
        _live(replica, args.memory_id)
        replica.delete(args.memory_id, actor=args.actor, role=args.role)
    return 0


def _cmd_forget(args: argparse.Namespace) -> int:
    with existing_replica(args) as replica:
        if not replica.forget(args.memory_id, actor=args.actor, role=args.role):
            raise CliError(f"no memory {args.memory_id} in {replica.path}; list the ids "
                           "with memmesh list")
    return 0


def _cmd_get(args: argparse.Namespace) -> int:
    with existing_replica(args) as replica:
        print_json(record_json(_live(replica, args.memory_id)))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    with existing_replica(args) as replica:
        records = replica.list(limit=args.limit, **scope(args))
    if args.json:
        print_json([record_json(r) for r in records])
        return 0
    for record in records:
        flag = " [CONFLICT]" if record.conflicted else ""
        head = f"{record.id}  "
        texts = " | ".join(v.text for v in record.versions)
        print(head + cut(texts, width() - len(head) - len(flag), args.full) + flag)
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    with existing_replica(args) as replica:
        events = replica.history(args.memory_id)
        if not events and replica.get(args.memory_id) is None:
            raise CliError(f"no memory {args.memory_id} in {replica.path}; list the ids "
                           "with memmesh list")
    if args.json:
        print_json([event_json(e) for e in events])
        return 0
    for event in events:
        head = (f"{iso(event.timestamp)}  {event.op:<8} actor={event.actor} "
                f"replica={event.replica}")
        text = "" if event.text is None else "  " + cut(event.text, width() - len(head) - 2,
                                                         args.full)
        print(head + text)
    return 0


def _add_write_options(p: argparse.ArgumentParser, *, new: bool) -> None:
    p.add_argument("--actor", default=None, help="who writes (recorded on the version)")
    p.add_argument("--role", default=None, help="the writer's role (for role priority)"
                   + ("" if new else "; default: the role of the version it replaces"))
    p.add_argument("--confidence", type=float, default=1.0 if new else None,
                   help="0..1" + ("" if new else "; default: that of the version it replaces"))
    p.add_argument("--importance", type=float, default=None,
                   help="0..1: conflicts at or above the importance threshold go to the LLM"
                   " arbiter" + ("" if new else "; default: that of the version it replaces"))
    p.add_argument("--sync", choices=("push", "pull"), default=None,
                   help="push: a running node sends it to peers at once; pull: peers get it"
                   " by anti-entropy. Remembered for the memory; default: the remembered"
                   " mode, else push for --priority, else the node's default (push)")
    add_metadata_option(p)


def _add_remover_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("memory_id")
    p.add_argument("--actor", default=None, help="who removes it (recorded on the event)")
    p.add_argument("--role", default=None, help="the remover's role (recorded on the event)")


def add_commands(sub: Any) -> None:
    p = command(sub, "add", "add a memory", _cmd_add)
    p.add_argument("text", help="the text, or - to read it from stdin")
    add_scope_options(p)
    _add_write_options(p, new=True)
    p.add_argument("--ttl", type=float, default=None, help="seconds until the memory expires")
    p.add_argument("--policy", choices=("mv", "lww"), default="mv")
    p.add_argument("--tier", choices=("shared", "private"), default=None)
    p.add_argument("--priority", action="store_true", help="push to peers at once")

    p = command(sub, "update", "write a new version of a memory", _cmd_update)
    p.add_argument("memory_id")
    p.add_argument("text", help="the new text, or - to read it from stdin")
    _add_write_options(p, new=False)

    _add_remover_options(command(
        sub, "delete", "delete a memory (a concurrent edit elsewhere survives)", _cmd_delete))
    _add_remover_options(command(
        sub, "forget", "erase a memory and its history on every replica", _cmd_forget))

    p = command(sub, "get", "show one memory as JSON", _cmd_get)
    p.add_argument("memory_id")
    p.add_argument("--json", action="store_true", help="(get always prints JSON)")

    p = command(sub, "list", "list memories in a scope", _cmd_list)
    add_scope_options(p)
    p.add_argument("--limit", type=int, default=None)
    add_output_options(p)

    p = command(sub, "history", "the event history of one memory", _cmd_history)
    p.add_argument("memory_id")
    add_output_options(p)
