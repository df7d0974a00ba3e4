"""Command-line options shared by the ``memmesh`` sub-commands, the node runner and
the MCP server.

One definition each of the data directory, scope, node and logging options, and of how
their values are read (seeds, the cluster key, the log level), so every entry point
accepts the same flags.  A value that cannot be used is an :class:`OperatorError`: one
line naming the problem and the fix (:func:`error_line`), never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from memmesh.crdt import MemmeshError
from memmesh.gossip import AddressError, ListenError, check_port, parse_addresses
from memmesh.storage import holds_plaintext_replica
from memmesh.trust import MemberIdentity

SCOPE_FIELDS = ("app_id", "user_id", "agent_id", "run_id")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class OperatorError(MemmeshError):
    """A mistake in how memmesh was started (an option, a file, a directory in use);
    the message names the problem and the fix."""


def error_line(exc: MemmeshError) -> str:
    """The one line an entry point prints for ``exc``: an operator's mistake (or a port
    it cannot listen on) as its message, any other library error with its type."""
    if isinstance(exc, OperatorError | ListenError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def add_logging_options(p: argparse.ArgumentParser, *, sub: bool = False) -> None:
    """``-v``/``--verbose`` (INFO; ``-vv`` DEBUG) and ``--log-level``.  On a sub-command
    (``sub=True``) absent flags leave the main parser's values alone, so both
    ``memmesh -v node`` and ``memmesh node -v`` work."""
    default: object = argparse.SUPPRESS if sub else None
    p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS if sub else 0,
                   help="log more: -v INFO (connections, peers), -vv DEBUG")
    p.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, default=default,
                   help="log level (default WARNING: only what needs attention)")


def log_level(args: argparse.Namespace) -> int:
    """The level asked for: ``--log-level``, else ``-v``/``-vv``, else WARNING
    (``$MEMMESH_DEBUG`` forces DEBUG)."""
    if os.environ.get("MEMMESH_DEBUG"):
        return logging.DEBUG
    name = getattr(args, "log_level", None)
    if name:
        return int(getattr(logging, name))
    verbose = int(getattr(args, "verbose", 0) or 0)
    return logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG


def configure_logging(args: argparse.Namespace) -> Callable[[], None]:
    """Send memmesh's log records at the level asked for to stderr, one line each;
    returns the function that undoes it (for commands run inside another program).

    One handler on the ``memmesh`` logger; the root logger and other libraries'
    loggers are left to the application.  The logger's own level is lowered only for
    ``-v``/``-vv``: at the default the handler filters, so an embedding program's
    logging setup keeps its levels."""
    logger = logging.getLogger("memmesh")
    level = log_level(args)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(level)
    before = logger.level
    logger.addHandler(handler)
    if level < logging.WARNING:
        logger.setLevel(level)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(before)

    return undo


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
    add_credential_option(p)
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
        raise OperatorError(f"--seed {exc}") from None
    return addresses


def load_cluster_key(args: argparse.Namespace) -> bytes | None:
    """The cluster key from ``--key-file`` or ``$MEMMESH_CLUSTER_KEY`` (hex), or None.
    A key file that cannot be read, or a key that is not 16+ bytes of hex, is an
    :class:`OperatorError`."""
    text: str | None = None
    where = "$MEMMESH_CLUSTER_KEY"
    if getattr(args, "key_file", None):
        where = f"the key file {args.key_file}"
        try:
            text = Path(args.key_file).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or type(exc).__name__
            raise OperatorError(
                f"cannot read the cluster key file {args.key_file}: {why}; create it once "
                f"with `memmesh keygen > {args.key_file}` and copy it to every member"
            ) from None
    elif os.environ.get("MEMMESH_CLUSTER_KEY"):
        text = os.environ["MEMMESH_CLUSTER_KEY"].strip()
    if text is None:
        return None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise OperatorError(f"the cluster key in {where} is not hex: make one with "
                            f"`memmesh keygen`") from None
    if len(key) < 16:
        raise OperatorError(f"the cluster key in {where} is too short: at least 16 bytes "
                            f"(32 hex digits); `memmesh keygen` makes 32")
    return key


def add_credential_option(p: argparse.ArgumentParser) -> None:
    """``--credential FILE`` (once per parser: memory commands and node commands share it)."""
    if "--credential" in p._option_string_actions:
        return
    p.add_argument("--credential", default=None, metavar="FILE",
                   help="act as this member (a credential file made by `memmesh authority "
                        "issue`): writes are signed, the replica is encrypted at rest with "
                        "the member's key, a node runs TLS on it instead of a cluster key")


def member_replica_options(path: str | os.PathLike[str],
                           identity: MemberIdentity | None) -> dict[str, Any]:
    """``Replica.open`` keywords for a member: ``identity`` (signed, checked writes) and,
    for a new replica or one already encrypted, ``at_rest_key`` derived from the
    member's key (a plaintext replica made before credentials stays plaintext; see
    docs/security.md)."""
    if identity is None:
        return {}
    options: dict[str, Any] = {"identity": identity}
    if not holds_plaintext_replica(path):
        options["at_rest_key"] = identity.at_rest_key()
    return options


def load_identity(args: argparse.Namespace) -> MemberIdentity | None:
    """The member identity of ``--credential FILE`` (None without one); it excludes
    ``--key-file`` and ``--insecure``. A file that is not a usable member credential is
    an :class:`OperatorError` naming it."""
    path = getattr(args, "credential", None)
    if path is None:
        return None
    if getattr(args, "key_file", None) or getattr(args, "insecure", False):
        raise OperatorError("--credential runs the node on member credentials: drop "
                            "--key-file and --insecure")
    try:
        return MemberIdentity.load(path)
    except (ValueError, TypeError) as exc:  # CredentialError, a damaged key block
        raise OperatorError(f"--credential {path}: {exc}") from None


def node_security(args: argparse.Namespace) -> dict[str, Any]:
    """``Node`` keyword arguments for the security options: ``identity`` on
    ``--credential``, else ``cluster_key`` (``--key-file`` or ``$MEMMESH_CLUSTER_KEY``),
    ``insecure`` when neither is given (callers refuse that unless ``--insecure``)."""
    identity = load_identity(args)
    if identity is not None:
        return {"identity": identity}
    key = load_cluster_key(args)
    return {"cluster_key": key, "insecure": key is None}


def run_entry_point(label: str, parser: argparse.ArgumentParser,
                    run: Callable[[argparse.Namespace], int],
                    argv: Sequence[str] | None = None) -> int:
    """A ``python -m`` entry point: the logging options added to ``parser``, ``run`` on
    the parsed arguments, a library error as one line prefixed by ``label`` (exit 2)."""
    add_logging_options(parser)
    args = parser.parse_args(argv)
    undo_logging = configure_logging(args)
    try:
        return run(args)
    except MemmeshError as exc:
        print(f"{label}: {error_line(exc)}", file=sys.stderr)
        return 2
    finally:
        undo_logging()
