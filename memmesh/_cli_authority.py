"""``memmesh authority``: run a fleet on member credentials (issue 16).

``init`` makes the issuer key (kept offline) and its public file, ``issue`` a member's
credential file (credential, TLS certificate, private key, the authority's certificate:
what ``memmesh node --credential`` runs on), ``revoke`` a signed revocation, ``show``
one line per credential, authority or revocation file. Every mistake is one line on
stderr and exit status 2. The Python API is :mod:`memmesh.trust`; the walk-through is
docs/credentials.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from memmesh.integrations._options import add_logging_options
from memmesh.trust import (
    Authority,
    AuthorityPublic,
    Credential,
    MemberIdentity,
    Revocation,
    parse_grants,
)

from ._cli_common import CliError, command

T = TypeVar("T")

_UNITS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000}
_DURATION = re.compile(r"^([0-9]{1,6})([dhms])$")


def parse_duration(text: str) -> int:
    """``90d``, ``12h``, ``30m``, ``45s`` in milliseconds (:class:`CliError` otherwise)."""
    m = _DURATION.match(text.strip())
    if m is None or int(m.group(1)) == 0:
        raise CliError(f"--expires {text!r} is not a duration: write e.g. 90d, 12h or 30m",
                       code=2)
    return int(m.group(1)) * _UNITS[m.group(2)]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _load(what: str, path: str, loader: Callable[[str], T]) -> T:
    """``loader(path)``, any failure one line naming the file and what it should be."""
    try:
        return loader(path)
    except (ValueError, TypeError, OSError) as exc:  # CredentialError is a ValueError
        raise CliError(f"{path}: not a usable {what}: {exc}", code=2) from None


def _names(text: str | None) -> tuple[str, ...]:
    return () if not text else tuple(v.strip() for v in text.split(",") if v.strip())


# -- init -----------------------------------------------------------------------------


def _cmd_init(args: argparse.Namespace) -> int:
    key_path = Path(args.out)
    pub_path = key_path.with_suffix(".pub")
    for path in (key_path, pub_path):
        if path.exists():
            raise CliError(f"{path} exists: refusing to overwrite it (a lost issuer key "
                           "cannot be recovered); move it away or choose another --out",
                           code=2)
    authority = Authority.create(args.name)
    authority.save(key_path)
    authority.public.save(pub_path)
    print(f"authority {authority.name!r}, fingerprint {authority.public.fingerprint.hex()}")
    print(f"  {key_path}: the issuer key (0600). Keep it OFFLINE (an encrypted USB stick, a "
          "vault): whoever holds it can make members")
    print(f"  {pub_path}: the public certificate; every member file already carries it")
    return 0


# -- issue ----------------------------------------------------------------------------


def _cmd_issue(args: argparse.Namespace) -> int:
    authority = _load("authority key file (made by 'memmesh authority init')",
                      args.authority, Authority.load)
    try:
        read, write = parse_grants(args.read or ()), parse_grants(args.write or ())
    except ValueError as exc:
        raise CliError(f"{exc}", code=2) from None
    if not read and not write:
        raise CliError("give at least one --read or --write grant (e.g. --read users=alice,"
                       " --write 'apps=crm;users=alice', or --read all)", code=2)
    if Path(args.out).exists():
        raise CliError(f"{args.out} exists: refusing to overwrite it; choose another --out",
                       code=2)
    now = _now_ms()
    actors = None if args.actors is None else _names(args.actors)
    renew = None if args.renew is None else _load(
        "member credential file to renew", args.renew, MemberIdentity.load)
    try:
        member = authority.issue(args.replica_id, read=read, write=write,
                                 roles=_names(args.roles), actors=actors,
                                 expires_ms=now + parse_duration(args.expires), now_ms=now,
                                 renew=renew)
    except ValueError as exc:  # InvalidArgumentError: a replica id the format cannot hold
        raise CliError(f"cannot issue this credential: {exc}", code=2) from None
    member.save(args.out)
    print(describe_credential(member.credential))
    print(f"  wrote {args.out} (0600): give it to {args.replica_id!r} only, over a private "
          f"channel; it runs `memmesh node --credential {os.path.basename(args.out)}`")
    return 0


# -- revoke ---------------------------------------------------------------------------


def _cmd_revoke(args: argparse.Namespace) -> int:
    authority = _load("authority key file (made by 'memmesh authority init')",
                      args.authority, Authority.load)
    if (args.credential is None) == (args.id is None):
        raise CliError("name the credential to revoke: --credential FILE or --id HEX",
                       code=2)
    if args.credential is not None:
        cid = _load("member credential file", args.credential,
                    MemberIdentity.load_credential).id
    else:
        try:
            cid = bytes.fromhex(args.id)
        except ValueError:
            cid = b""
        if len(cid) != 16:
            raise CliError(f"--id {args.id!r} is not a credential id (32 hex digits, as "
                           "`memmesh authority show` prints)", code=2)
    if args.at == "now":
        at = _now_ms()
    elif args.at.isdigit():
        at = int(args.at)
    else:
        raise CliError(f"--at {args.at!r}: write now, or a time in Unix milliseconds",
                       code=2)
    if Path(args.out).exists():
        raise CliError(f"{args.out} exists: refusing to overwrite it; choose another --out",
                       code=2)
    revocation = authority.revoke(cid, at_ms=at, reason=args.reason)
    revocation.save(args.out)
    print(describe_revocation(revocation))
    print(f"  wrote {args.out}: hand it to any member; revocations spread like memories")
    return 0


# -- show -----------------------------------------------------------------------------


def describe_credential(cred: Credential) -> str:
    """One line: who, grants, roles, actors, validity."""
    read = " | ".join(map(str, cred.read)) or "nothing"
    write = " | ".join(map(str, cred.write)) or "nothing"
    actors = "any" if cred.actors is None else ",".join(sorted(cred.actors)) or "-"
    return (f"credential {cred.id.hex()} of {cred.replica_id!r}: read {read}; write "
            f"{write}; roles {','.join(sorted(cred.roles)) or '-'}; actors {actors}; valid "
            f"{_when(cred.not_before_ms)} .. {_when(cred.expires_ms)}; issuer "
            f"{cred.issuer.hex()}")


def describe_revocation(rev: Revocation) -> str:
    reason = f" ({rev.reason})" if rev.reason else ""
    return (f"revocation of credential {rev.credential_id.hex()}: its writes stamped from "
            f"{_when(rev.revoked_at_ms)} ({rev.revoked_at_ms} ms) on are refused{reason}; "
            f"issuer {rev.issuer.hex()}")


def describe_authority(public: AuthorityPublic, *, secret: bool) -> str:
    what = "authority key file (SECRET: keep it offline)" if secret else "authority"
    name = public.name.removeprefix("memmesh authority ")
    return f"{what} {name!r}: fingerprint {public.fingerprint.hex()}"


def _describe_file(path: str) -> str:
    if not Path(path).is_file():
        raise CliError(f"cannot read {path}: no such file", code=2)
    readers: list[tuple[Callable[[str], Any], Callable[[Any], str]]] = [
        (MemberIdentity.load, lambda m: describe_credential(m.credential)),
        (MemberIdentity.load_credential, describe_credential),
        (Revocation.load, describe_revocation),
        (Authority.load, lambda a: describe_authority(a.public, secret=True)),
        (AuthorityPublic.load, lambda p: describe_authority(p, secret=False)),
    ]
    for load, describe in readers:
        try:
            return describe(load(path))
        except (ValueError, TypeError):
            continue
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror or exc}", code=2) from None
    raise CliError(f"{path} is not a memmesh credential, authority or revocation file",
                   code=2)


def _cmd_show(args: argparse.Namespace) -> int:
    for path in args.files:
        print(f"{path}: {_describe_file(path)}")
    return 0


# -- wiring ---------------------------------------------------------------------------


def add_commands(sub: Any) -> None:
    p = command(sub, "authority", "issue and revoke member credentials (run a fleet on "
                "credentials: docs/credentials.md)", _usage, data=False)
    asub = p.add_subparsers(dest="authority_command")

    q = command(asub, "init", "make an issuer key (keep it offline) and its public file",
                _cmd_init, data=False)
    q.add_argument("--out", required=True, help="issuer key file to write (0600); the "
                   "public file is written beside it with the suffix .pub")
    q.add_argument("--name", default="memmesh", help="the authority's name (default memmesh)")

    q = command(asub, "issue", "issue a member credential file", _cmd_issue, data=False)
    q.add_argument("--authority", required=True, help="the issuer key file")
    q.add_argument("--replica-id", required=True, help="the member's replica id")
    q.add_argument("--read", action="append", metavar="GRANT",
                   help="what the member may receive (repeatable, a union): all, or "
                        "tier=v1,v2 parts joined by ';' (tiers apps, users, agents, runs; "
                        "- for unset), e.g. 'apps=crm;users=alice,-'")
    q.add_argument("--write", action="append", metavar="GRANT",
                   help="what the member may write (repeatable; same syntax)")
    q.add_argument("--roles", default=None, help="roles its writes may claim (comma-separated)")
    q.add_argument("--actors", default=None,
                   help="actors its writes may name (comma-separated; default any)")
    q.add_argument("--expires", default="90d", help="validity: 90d, 12h, 30m (default 90d)")
    q.add_argument("--renew", default=None, metavar="FILE",
                   help="renew this member credential file: same replica id and member key "
                        "(so its replica, encrypted under that key, stays readable), new "
                        "grants and expiry")
    q.add_argument("--out", required=True, help="member credential file to write (0600)")

    q = command(asub, "revoke", "revoke a member credential", _cmd_revoke, data=False)
    q.add_argument("--authority", required=True, help="the issuer key file")
    q.add_argument("--credential", default=None, help="the member credential file")
    q.add_argument("--id", default=None, help="or the credential id (hex)")
    q.add_argument("--at", default="now",
                   help="revoke writes stamped from this time on: now or Unix ms")
    q.add_argument("--reason", default="", help="why (kept in the revocation)")
    q.add_argument("--out", required=True, help="revocation file to write")

    q = command(asub, "show", "one line per credential, authority or revocation file",
                _cmd_show, data=False)
    q.add_argument("files", nargs="+", metavar="FILE")
    for q in asub.choices.values():
        add_logging_options(q, sub=True)


def _usage(args: argparse.Namespace) -> int:
    raise CliError("memmesh authority needs a command: init, issue, revoke or show", code=2)
