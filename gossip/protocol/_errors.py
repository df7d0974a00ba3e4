"""Errors of the gossip protocol core, split the way h11 splits them.

* :class:`LocalProtocolError`: *this* program misused the session (called a method in a
  state that does not allow it, answered a request twice...).  Nothing was sent and no
  state changed; it is a bug in the caller.
* :class:`RemoteProtocolError`: the *peer* sent something the protocol forbids (bad
  framing, an oversized frame, undecodable msgpack, a message out of turn, the wrong
  cluster).  The session has already queued a ``BYE``/``REJECT`` for the peer and moved
  to ``CLOSED``; the caller flushes :meth:`Session.data_to_send` and drops the link.

Both derive from :class:`memmesh.crdt.MemmeshError`.  Messages never quote peer data
(no memory text can leak into logs or back onto the wire through an error).
"""

from __future__ import annotations

from memmesh.crdt import MemmeshError

__all__ = ["GossipError", "LocalProtocolError", "ProtocolError", "RemoteProtocolError"]


class GossipError(MemmeshError):  # type: ignore[misc, unused-ignore]
    """Base class of every gossip-layer error (protocol core and network shell)."""


class ProtocolError(GossipError):
    """Base class of the two protocol-error kinds."""


class LocalProtocolError(ProtocolError):
    """The local caller used the session wrongly; nothing was sent or changed."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol; the session is closed.

    ``reason`` is one of the short wire reason codes (``"protocol"``, ``"version"``,
    ``"wrong-cluster"``, ``"identity"``, ``"timeout"``...), safe to log and to send.
    """

    def __init__(self, message: str, *, reason: str = "protocol") -> None:
        super().__init__(message)
        self.reason = reason
