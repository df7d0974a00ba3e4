"""What every ``memmesh`` sub-command shares: how a command is declared, how it opens
the replica on ``--data`` (read commands never create one), and how it reads and prints
texts (``-`` for stdin, ``--metadata KEY=VALUE``, cut to the terminal, ``--json``)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memmesh.crdt import MemmeshError
from memmesh.integrations._options import (
    OperatorError,
    add_credential_option,
    add_data_option,
    data_dir,
    load_identity,
    member_replica_options,
)
from memmesh.storage import AtRestKeyError, Replica

Command = Callable[[argparse.Namespace], int]

#: the file LMDB keeps a replica in, inside the data directory
DATA_FILE = "data.mdb"


class CliError(OperatorError):
    """A mistake on the command line: one line naming the problem and the fix."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def command(sub: Any, name: str, help: str, func: Command, *,
            data: bool = True) -> argparse.ArgumentParser:
    """A sub-command running ``func``, with ``--data`` unless ``data`` is False."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
    p.set_defaults(func=func)
    if data:
        add_data_option(p)
        add_credential_option(p)
    return p


def add_output_options(p: argparse.ArgumentParser, *, full: bool = True) -> None:
    p.add_argument("--json", action="store_true", help="print JSON (ISO-8601 times)")
    if full:
        p.add_argument("--full", action="store_true",
                       help="print whole texts (default: cut to the terminal width)")


def check_data_dir(path: Path) -> None:
    """Refuse a ``--data`` that is a file or cannot hold a replica, before LMDB tries."""
    if path.exists() and not path.is_dir():
        raise CliError(f"--data {path} is a file, not a directory; point --data at a "
                       "replica directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create a replica at {path}: {exc.strerror or exc}; point "
                       "--data at a writable directory") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CliError(f"cannot write to {path}: permission denied; point --data at a "
                       "writable directory")


def _open(path: Path, args: argparse.Namespace) -> Replica:
    identity = load_identity(args)
    try:
        return Replica.open(path, **member_replica_options(path, identity))
    except AtRestKeyError as exc:
        if identity is None:
            raise CliError(f"{exc}: pass --credential FILE, the member credential it was "
                           "created with") from None
        raise
    except MemmeshError:
        raise
    except Exception as exc:  # lmdb.Error, OSError: the directory is not usable
        raise CliError(f"cannot open the replica at {path}: {exc}; point --data at a "
                       "replica directory") from None


def open_replica(args: argparse.Namespace) -> Replica:
    """The replica on ``--data``, created if there is none (write commands)."""
    path = data_dir(args)
    check_data_dir(path)
    return _open(path, args)


def existing_replica(args: argparse.Namespace) -> Replica:
    """The replica on ``--data``; :class:`CliError` when there is none (read commands)."""
    path = data_dir(args)
    if path.exists() and not path.is_dir():
        raise CliError(f"--data {path} is a file, not a directory; point --data at a "
                       "replica directory")
    if not (path / DATA_FILE).is_file():
        raise CliError(f"no memmesh replica at {path}; create one with memmesh node or "
                       "memmesh add")
    return _open(path, args)


def read_text(value: str) -> str:
    """A text argument; ``-`` reads it from stdin (without the final newline)."""
    if value != "-":
        return value
    text = sys.stdin.read()
    return text[:-1] if text.endswith("\n") else text


def key_values(pairs: list[str] | None, option: str = "--metadata") -> dict[str, str]:
    """``KEY=VALUE`` option values (``--metadata``, ``--filter``) as a mapping."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"{option} {pair!r} is not KEY=VALUE; write e.g. "
                           f"{option} source=chat")
        out[key] = value
    return out


def metadata(pairs: list[str] | None) -> dict[str, str] | None:
    """``--metadata KEY=VALUE`` values as a mapping (None when none was given)."""
    return key_values(pairs) or None


def add_metadata_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metadata", action="append", metavar="KEY=VALUE",
                   help="metadata entry (repeatable)")


def cut(text: str, room: int, full: bool) -> str:
    """``text`` on one line, cut with an ellipsis to ``room`` characters unless ``full``."""
    if full:
        return text
    line = " ".join(text.split())
    room = max(room, 10)
    return line if len(line) <= room else line[:room - 1] + "…"


def width() -> int:
    return shutil.get_terminal_size((100, 24)).columns


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))
