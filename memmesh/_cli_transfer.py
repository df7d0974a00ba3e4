"""Moving memories in and out: ``export``/``import`` (JSONL, and Mem0's export shape) and
``backup``/``restore`` (a consistent, compacted LMDB copy of the whole replica) and
``compact`` (the replica rewritten in place without free pages)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from memmesh.integrations._options import SCOPE_FIELDS, add_scope_options, data_dir, scope
from memmesh.integrations._records import record_json
from memmesh.storage import Replica, compact

from ._cli_common import DATA_FILE, CliError, command, existing_replica, open_replica


def _cmd_export(args: argparse.Namespace) -> int:
    with existing_replica(args) as replica:
        records = replica.list(**scope(args))
    out: TextIO = sys.stdout if args.out in (None, "-") else open(args.out, "w")  # noqa: SIM115
    try:
        for record in records:
            out.write(json.dumps(record_json(record), ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def _items(stream: TextIO, fmt: str) -> Iterator[dict[str, Any]]:
    """The objects of the input: JSON Lines, or (mem0) one JSON document, a list or a
    ``{"results": [...]}`` page as Mem0's ``get_all`` returns."""
    text = stream.read()
    if fmt == "mem0" and text.lstrip()[:1] in ("[", "{"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, list) or (isinstance(doc, dict) and "results" in doc):
            items = doc if isinstance(doc, list) else doc["results"]
            for item in items:
                if not isinstance(item, dict):
                    raise CliError("a Mem0 export holds objects; got "
                                   f"{type(item).__name__}")
                yield item
            return
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise CliError(f"line {n} is not JSON ({exc}); import reads JSON Lines as "
                           "memmesh export writes them") from None
        if not isinstance(item, dict):
            raise CliError(f"line {n} is not a JSON object")
        yield item


def _as_add(item: dict[str, Any], fmt: str) -> dict[str, Any]:
    """The keyword arguments of ``replica.add`` for one exported memory."""
    kwargs: dict[str, Any] = {f: item.get(f) for f in SCOPE_FIELDS}
    if fmt == "mem0":
        text = item.get("memory", item.get("text"))
        meta = dict(item.get("metadata") or {})
        if item.get("id") is not None:
            meta["mem0_id"] = str(item["id"])
        if item.get("categories"):
            meta["categories"] = list(item["categories"])
        kwargs.update(text=text, metadata=meta)
    else:
        versions = item.get("versions") or []
        if not versions:
            raise CliError(f"memory {item.get('id')} has no versions")
        newest = max(versions, key=lambda v: v.get("timestamp_ms") or 0)
        meta = dict(newest.get("metadata") or {})
        others = [v["text"] for v in versions if v is not newest]
        if others:
            meta["alternatives"] = others
        kwargs.update(text=newest.get("text"), metadata=meta, actor=newest.get("actor"),
                      role=newest.get("role"), confidence=newest.get("confidence", 1.0),
                      policy=item.get("policy", "mv"), tier=item.get("tier"))
    if not isinstance(kwargs["text"], str):
        raise CliError(f"memory {item.get('id')} has no text")
    return kwargs


def _cmd_import(args: argparse.Namespace) -> int:
    stream: TextIO = sys.stdin if args.file == "-" else open(args.file)  # noqa: SIM115
    try:
        adds = [_as_add(item, args.format) for item in _items(stream, args.format)]
    finally:
        if stream is not sys.stdin:
            stream.close()
    forced = scope(args)
    with open_replica(args) as replica, replica.batch():
        for kwargs in adds:
            text = kwargs.pop("text")
            replica.add(text, **{**kwargs, **forced})
    print(f"imported {len(adds)} memories", file=sys.stderr)
    return 0


def _cmd_backup(args: argparse.Namespace) -> int:
    dest = Path(args.dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise CliError(f"{dest} exists and is not an empty directory; back up into a new "
                       "directory")
    with existing_replica(args) as replica:
        try:
            replica.backup(dest)
        except OSError as exc:
            raise CliError(f"cannot write the backup to {dest}: {exc}") from None
    print(f"backed up {data_dir(args)} to {dest}", file=sys.stderr)
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    from memmesh.integrations._nodestatus import running_pid

    source, data = Path(args.backup), data_dir(args)
    if not (source / DATA_FILE).is_file():
        raise CliError(f"no memmesh backup at {source}; make one with memmesh backup")
    pid = running_pid(data) if data.is_dir() else None
    if pid is not None:
        raise CliError(f"a node (pid {pid or 'unknown'}) is running on {data}; stop it "
                       f"before restoring")
    if data.exists() and any(data.iterdir()) and not args.force:
        raise CliError(f"{data} already holds a replica; add --force to replace it")
    with Replica.open(source):  # a backup that opens (and is not some other directory)
        pass
    staged = data.with_name(data.name + ".restoring")
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(source, staged)
    (staged / "lock.mdb").unlink(missing_ok=True)
    if data.exists():
        shutil.rmtree(data)
    staged.rename(data)
    print(f"restored {source} to {data}; its next writes mint under a new incarnation",
          file=sys.stderr)
    return 0


def _cmd_compact(args: argparse.Namespace) -> int:
    if not (Path(args.data) / DATA_FILE).is_file():
        raise CliError(f"no replica at {args.data}; name a replica's data directory")
    before, after = compact(args.data)
    print(f"compacted {args.data}: {before} -> {after} bytes (freed pages dropped)",
          file=sys.stderr)
    return 0


def add_commands(sub: Any) -> None:
    p = command(sub, "export", "memories as JSON Lines (scope, versions, metadata)",
                _cmd_export)
    add_scope_options(p)
    p.add_argument("--out", default=None, help="file to write (default stdout)")

    p = command(sub, "import", "add the memories of an export", _cmd_import)
    p.add_argument("file", help="JSON Lines from memmesh export (- for stdin), or with "
                                "--format mem0 a Mem0 get_all/export JSON")
    p.add_argument("--format", choices=("memmesh", "mem0"), default="memmesh")
    add_scope_options(p)

    p = command(sub, "backup", "a consistent, compacted copy of the replica (safe while a "
                "node runs)", _cmd_backup)
    p.add_argument("dest", help="a new or empty directory")

    p = command(sub, "restore", "put a backup in place of --data (no node running)",
                _cmd_restore)
    p.add_argument("backup", help="a directory written by memmesh backup")
    p.add_argument("--force", action="store_true", help="replace the replica on --data")

    p = command(sub, "compact", "rewrite a replica without free pages, so forgotten texts "
                "leave the disk (no process may have it open)", _cmd_compact, data=False)
    p.add_argument("data", help="the replica's data directory")
