"""What every ``memmesh`` sub-command shares: how a command is declared and how it opens
the replica on ``--data``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from memmesh.integrations._options import add_data_option, data_dir
from memmesh.storage import Replica

Command = Callable[[argparse.Namespace], int]


def command(sub: Any, name: str, help: str, func: Command, *,
            data: bool = True) -> argparse.ArgumentParser:
    """A sub-command running ``func``, with ``--data`` unless ``data`` is False."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help)
    p.set_defaults(func=func)
    if data:
        add_data_option(p)
    return p


def open_replica(args: argparse.Namespace) -> Replica:
    """The replica on ``--data``."""
    return Replica.open(data_dir(args))
