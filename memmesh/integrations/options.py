"""Command-line options shared by the ``memmesh`` sub-commands, the node runner and
the MCP server.

One definition each of the data directory, scope and node options, and of how their
values are read (seeds, the cluster key), so every entry point accepts the same flags.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from memmesh.gossip.listen import check_port
from memmesh.gossip.peers import AddressError, parse_addresses

SCOPE_FIELDS = ("app_id", "user_id", "agent_id", "run_id")


def add_data_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None,
                   help="replica directory (default $MEMMESH_DATA or ./memmesh-data)")


def data_dir(args: argparse.Namespace) -> Path:
    """The replica directory named by ``--data``, ``$MEMMESH_DATA`` or the default."""
    return Path(args.data or os.environ.get("MEMMESH_DATA") or "memmesh-data")


def add_scope_options(p: argparse.ArgumentParser, fields: Sequence[str] = SCOPE_FIELDS) -> None:
    for f in fields:
        p.add_argument("--" + f.replace("_", "-"), dest=f, default=None, help=f"scope: {f}")


def scope(args: argparse.Namespace) -> dict[str, str]:
    """The scope filters given on the command line (absent fields are not filters)."""
    return {f: getattr(args, f) for f in SCOPE_FIELDS if getattr(args, f, None) is not None}


def add_node_options(p: argparse.ArgumentParser) -> None:
    """Listen address, seeds, discovery, anti-entropy interval and the cluster key."""
    p.add_argument("--host", default=None,
                   help="address to listen on (default: 127.0.0.1, or every interface "
                        "once a --seed is on another machine; 0.0.0.0 or :: for all)")
    p.add_argument("--port", type=port_number, default=0,
                   help="TCP port to listen on, 0..65535 (default 0: any free port)")
    p.add_argument("--seed", action="append", default=[], metavar="HOST:PORT",
                   help="a peer to dial, again and again (repeatable; IPv6: [ADDR]:PORT)")
    p.add_argument("--no-mdns", action="store_true")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--key-file", default=None, help="file holding the hex cluster key")
    p.add_argument("--insecure", action="store_true", help="no TLS (trusted networks only)")


def port_number(text: str) -> int:
    """The ``--port`` type: 0..65535, refused otherwise (never wrapped modulo 65536)."""
    try:
        return check_port(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text} is not a TCP port: want 0..65535 (0 picks a free port)") from None


def seeds(args: argparse.Namespace) -> list[tuple[str, int]]:
    """``--seed HOST:PORT`` values as ``(host, port)`` pairs."""
    try:
        addresses: list[tuple[str, int]] = parse_addresses(args.seed)
    except AddressError as exc:
        raise SystemExit(f"memmesh: --seed {exc}") from None
    return addresses


def load_cluster_key(args: argparse.Namespace) -> bytes | None:
    """The cluster key from ``--key-file`` or ``$MEMMESH_CLUSTER_KEY`` (hex), or None."""
    text: str | None = None
    if getattr(args, "key_file", None):
        text = Path(args.key_file).read_text().strip()
    elif os.environ.get("MEMMESH_CLUSTER_KEY"):
        text = os.environ["MEMMESH_CLUSTER_KEY"].strip()
    if text is None:
        return None
    try:
        key = bytes.fromhex(text)
    except ValueError as exc:
        raise SystemExit(f"memmesh: the cluster key must be hex ({exc})") from None
    if len(key) < 16:
        raise SystemExit("memmesh: the cluster key must be at least 16 bytes (32 hex digits)")
    return key
