"""The memory commands: ``add``, ``get``, ``list``, ``history``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from memmesh.integrations._options import SCOPE_FIELDS, add_scope_options, scope

from ._cli_common import command, open_replica


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


def _cmd_add(args: argparse.Namespace) -> int:
    with open_replica(args) as replica:
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
    with open_replica(args) as replica:
        record = replica.get(args.memory_id)
        if record is None:
            print(f"memmesh: no memory {args.memory_id}", file=sys.stderr)
            return 1
        print(json.dumps(_record_to_json(record), indent=2, ensure_ascii=False))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    with open_replica(args) as replica:
        for record in replica.list(**scope(args)):
            texts = " | ".join(v.text for v in record.versions)
            flag = " [CONFLICT]" if record.conflicted else ""
            print(f"{record.id}  {texts}{flag}")
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    with open_replica(args) as replica:
        for event in replica.history(args.memory_id):
            text = "" if event.text is None else f"  {event.text!r}"
            print(f"{event.timestamp}  {event.op:<8} actor={event.actor} "
                  f"replica={event.replica}{text}")
    return 0


def add_commands(sub: Any) -> None:
    p = command(sub, "add", "add a memory", _cmd_add)
    p.add_argument("text")
    add_scope_options(p)
    p.add_argument("--actor", default=None)
    p.add_argument("--confidence", type=float, default=1.0)
    p.add_argument("--ttl", type=float, default=None, help="seconds until the memory expires")
    p.add_argument("--policy", choices=("mv", "lww"), default="mv")
    p.add_argument("--tier", choices=("shared", "private"), default=None)

    command(sub, "get", "show one memory as JSON", _cmd_get).add_argument("memory_id")
    add_scope_options(command(sub, "list", "list memories in a scope", _cmd_list))
    command(sub, "history", "the event history of one memory",
            _cmd_history).add_argument("memory_id")
