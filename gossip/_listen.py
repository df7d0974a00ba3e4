"""Where a node listens: the default bind address, and opening the listening socket.

The rule (DESIGN.md, ``Node``; issue 13): a node listens on loopback only while
everything it was told about is on this machine.  An explicit ``host`` is used as
given; with none, a seed off this machine makes the node listen on every interface,
since a peer that is dialled must usually be able to dial back (and mDNS must advertise
an address other machines can reach).  "Every interface" is ``::`` with IPv6 sockets
accepting IPv4 too (``IPV6_V6ONLY`` off, as nginx's ``[::]:80 ipv6only=off``), or
``0.0.0.0`` on a machine without IPv6.  A failure to listen is a :class:`ListenError`
whose message names the cause and the fix (a port in use, an address this machine does
not have), never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import trio

from memmesh.crdt import InvalidArgumentError

from ._peers import format_address
from .protocol import GossipError

__all__ = ["ANY", "LOOPBACK", "BindChoice", "ListenError", "check_port", "choose_host",
           "is_loopback", "is_wildcard", "open_listener"]

#: The default "every interface" host (dual-stack; ``0.0.0.0`` where IPv6 is missing).
ANY: Final = "::"
#: The default host of a node whose seeds are all on this machine.
LOOPBACK: Final = "127.0.0.1"
_WILDCARDS: Final = frozenset({"", "0.0.0.0", "::"})
_BACKLOG: Final = 128


class ListenError(GossipError):
    """The node cannot listen where it was asked to; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class BindChoice:
    """The host a node binds and why (the reason goes into the node's start-up line)."""

    host: str
    why: str


def check_port(port: object) -> int:
    """``port`` as a TCP port number, 0..65535 (0: any free port); else
    :class:`~memmesh.crdt.InvalidArgumentError` (a port is never wrapped modulo 65536)."""
    if type(port) is not int or not 0 <= port <= 65535:
        raise InvalidArgumentError(
            f"{port!r} is not a TCP port: want 0..65535 (0 picks a free port)")
    return port


def is_wildcard(host: str) -> bool:
    """True for the every-interface hosts ``""``, ``0.0.0.0`` and ``::``."""
    return host in _WILDCARDS


def is_loopback(host: str) -> bool:
    """True when ``host`` names this machine only: ``localhost`` or a loopback literal.
    Other names count as off the machine (they are rarely loopback, and resolving them
    here would block)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def choose_host(host: str | None, seeds: Sequence[tuple[str, int]]) -> BindChoice:
    """The rule of the module docstring: ``host`` if given, else every interface when a
    seed is off this machine, else loopback."""
    if host is not None:
        return BindChoice(host, "as configured")
    for seed_host, seed_port in seeds:
        if not is_loopback(seed_host):
            return BindChoice(ANY, f"every interface, since seed "
                                   f"{format_address(seed_host, seed_port)} is off this machine")
    return BindChoice(LOOPBACK, "loopback only: no host given and no seed off this machine; "
                                "other machines cannot connect (give a host, e.g. "
                                "--host 0.0.0.0, or a seed on another machine)")


def open_listener(host: str, port: int) -> tuple[trio.SocketListener, str, int]:
    """Bind and listen on ``(host, port)``; returns the listener, the host actually bound
    (``::`` falls back to ``0.0.0.0`` without IPv6) and the port (``port=0``: the one the
    system picked).  Raises :class:`ListenError` with a one-line cause and fix."""
    check_port(port)
    try:
        sock = _bind(host, port)
    except OSError as exc:
        if host != ANY or exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
            raise _listen_error(host, port, exc) from None
        host = "0.0.0.0"
        try:
            sock = _bind(host, port)
        except OSError as exc4:
            raise _listen_error(host, port, exc4) from None
    bound_port: int = sock.getsockname()[1]
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock)), host, bound_port


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # "::" serves IPv4 too; a named IPv6 address only itself
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == ANY else 1)
        sock.bind(sockaddr)
        sock.listen(_BACKLOG)
    except BaseException:
        with contextlib.suppress(OSError):
            sock.close()
        raise
    return sock


def _listen_error(host: str, port: int, exc: OSError) -> ListenError:
    where = format_address(host or ANY, port)
    if isinstance(exc, socket.gaierror):
        fix = f"{host!r} is not an address of this machine or a name that resolves"
    elif exc.errno == errno.EADDRINUSE:
        fix = (f"port {port} is in use (another memmesh node, or another program, holds "
               f"it): stop it or choose another port (--port; 0 picks a free one)")
    elif exc.errno == errno.EADDRNOTAVAIL:
        fix = (f"{host} is not an address of this machine: give one of its addresses, "
               f"or 0.0.0.0 / :: for every interface")
    elif exc.errno == errno.EACCES:
        fix = f"port {port} needs privileges (ports below 1024): choose a port above 1023"
    else:
        fix = exc.strerror or type(exc).__name__
    return ListenError(f"cannot listen on {where}: {fix}")
