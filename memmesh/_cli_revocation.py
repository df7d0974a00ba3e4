"""The revocation commands: ``revocation add`` (keep an authority's revocation in the
replica on ``--data``; the node gossips it to every member), ``revocation list``, and
``audit`` (re-check every stored write against the trust store now: one line per
finding, then a summary line; ``--hide`` hides the lapsed versions from this replica's
reads). Each opens the replica with a trust store: ``--credential FILE`` (the member's
identity, as its node runs) or ``--authority FILE`` (the authority's public
certificate: checks only). A revocation file holds its bytes as issued or a PEM block
of them (what ``memmesh authority revoke`` writes).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import re
from pathlib import Path
from typing import Any

from memmesh.integrations._options import (
    add_logging_options,
    data_dir,
    load_identity,
    member_replica_options,
)
from memmesh.storage import Replica
from memmesh.trust import AuthorityPublic, Revocation, TrustStore

from ._cli_common import CliError, command, existing_replica, print_json

__all__ = ["add_commands", "read_revocation"]

_MAX_FILE = 64 * 1024
_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]*REVOCATION)-----\r?\n(.*?)-----END \1-----", re.S)


def read_revocation(path: Path) -> Revocation:
    """The revocation in ``path``: its bytes as issued, or a ``... REVOCATION`` PEM
    block of them (parsed, not yet verified)."""
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_FILE + 1)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > _MAX_FILE:
        raise CliError(f"{path} is larger than {_MAX_FILE} bytes: not a revocation")
    if data.lstrip().startswith(b"-----BEGIN"):
        found = _PEM.search(data)
        if found is None:
            raise CliError(f"{path} holds no REVOCATION block; give the file memmesh "
                           "authority revoke wrote")
        try:
            data = base64.b64decode(b"".join(found.group(2).split()), validate=True)
        except binascii.Error:
            raise CliError(f"{path}: the revocation block is not base64") from None
    return Revocation.from_bytes(data)


def _trusting_replica(args: argparse.Namespace) -> Replica:
    """The replica on ``--data`` opened with the trust store the options name: the
    member's (``--credential``: signed, encrypted at rest as its node runs it) or the
    authority's alone (``--authority``: checks, signs nothing; plaintext replicas)."""
    identity = load_identity(args)
    if (identity is None) == (args.authority is None):
        raise CliError("name whose trust to check against: --credential FILE (the "
                       "member's) or --authority FILE (the authority's public "
                       "certificate), one of the two", code=2)
    existing_replica(args).close()  # the usual checks and messages: a replica is there
    path = data_dir(args)
    if identity is not None:
        return Replica.open(path, **member_replica_options(path, identity))
    return Replica.open(path, trust=TrustStore(AuthorityPublic.load(args.authority)))


def _cmd_add(args: argparse.Namespace) -> int:
    revocation = read_revocation(Path(args.file))
    with _trusting_replica(args) as replica:
        new = replica.add_revocation(revocation)
    state = "added" if new else "already held (the same or an earlier one)"
    print(f"revocation of credential {revocation.credential_id.hex()} at "
          f"{revocation.revoked_at_ms} ms: {state}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    with _trusting_replica(args) as replica:
        held = replica.revocations()
    if args.json:
        print_json([{"credential_id": r.credential_id.hex(), "revoked_at_ms": r.revoked_at_ms,
                     "reason": r.reason} for r in held])
        return 0
    for r in held:
        print(f"{r.credential_id.hex()}  {r.revoked_at_ms}  {r.reason}")
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    with _trusting_replica(args) as replica:
        report = replica.audit(hide=args.hide)
    for finding in report.findings:
        print(finding.line())
    print(report.summary())
    return 0


def _trust_options(p: argparse.ArgumentParser) -> None:
    """``--authority`` beside the common ``--credential`` (one of the two is required)."""
    p.add_argument("--authority", metavar="FILE",
                   help="instead of --credential: the authority's public certificate "
                        "(check, sign nothing; a replica encrypted at rest needs "
                        "--credential)")


def add_commands(sub: Any) -> None:
    group = sub.add_parser("revocation", help="keep and list credential revocations",
                           description="keep and list credential revocations")
    inner = group.add_subparsers(dest="revocation_command", required=True)
    p = command(inner, "add", "keep a revocation; the node gossips it to every member",
                _cmd_add)
    p.add_argument("file", help="the revocation file (memmesh authority revoke)")
    _trust_options(p)
    p = command(inner, "list", "the revocations this replica holds", _cmd_list)
    p.add_argument("--json", action="store_true", help="print JSON")
    _trust_options(p)
    for inner_command in inner.choices.values():
        add_logging_options(inner_command, sub=True)
    p = command(sub, "audit", "re-check every stored write against the credentials, "
                "grants and revocations held now", _cmd_audit)
    p.add_argument("--hide", action="store_true",
                   help="hide the versions whose authority lapsed from this replica's reads")
    _trust_options(p)
