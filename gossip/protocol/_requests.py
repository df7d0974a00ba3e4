"""Storage requests: what the sync policy needs done to the replica, as plain data.

The policy turns session events into these small frozen requests; the driver performs
each with :func:`perform` (the trio node in its storage thread, the simulator and the
test driver inline) and hands the :class:`Outcome` back to ``SyncPolicy.complete``.
:func:`perform` is the only code in gossip that calls the replica's sync and fence
methods, and it never raises: an error of the replica becomes an outcome the policy
answers (close that link, count it, tell the operator), so nothing a peer sends can
reach a node's nursery as an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from memmesh.crdt import MemmeshError

from ._peerlink import PeerLink
from ._replica import ApplyReport, SyncReplica

__all__ = ["Apply", "Changes", "Fence", "Outcome", "StorageRequest", "Summary", "perform"]


@dataclass(frozen=True, slots=True, eq=False)
class Summary:
    """Take ``sync_summary()``: to pull on ``link``, to answer a peer's pull on it
    (``reply``), or to push new local writes on every link (``push``, no link).  A
    repair pull passes ``digest``/``digest_scope`` (the bucket sums over the scope the
    peer serves us) and ``want`` (keys to ship whatever the watermarks say)."""

    link: PeerLink | None
    purpose: Literal["pull", "reply", "push"]
    priority: bool = False
    digest: bool = False
    digest_scope: object = None
    want: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Changes:
    """Compute ``sync_changes(summary, max_bytes=..., peer=scope)`` for ``link``."""

    link: PeerLink
    request: int
    summary: bytes
    max_bytes: int
    scope: object
    purpose: Literal["serve", "push"]


@dataclass(frozen=True, slots=True, eq=False)
class Apply:
    """``sync_apply(data)`` for data frame ``n`` of ``link``."""

    link: PeerLink
    n: int
    data: bytes


@dataclass(frozen=True, slots=True, eq=False)
class Fence:
    """``fence_writes(reason)``, or ``unfence_writes()`` when ``reason`` is None."""

    reason: str | None


StorageRequest = Summary | Changes | Apply | Fence


@dataclass(frozen=True, slots=True)
class Outcome:
    """What performing a request gave: ``data`` (summary or changes bytes), ``result``
    (of an apply), or ``error`` (the exception's type name) with a one-line ``detail``;
    ``typed`` is False for an exception that is not a ``MemmeshError`` (a bug, still
    answered by closing the link rather than by dying)."""

    data: bytes = b""
    result: ApplyReport | None = None
    error: str | None = None
    detail: str = ""
    typed: bool = True

    @property
    def ok(self) -> bool:
        return self.error is None


def perform(replica: SyncReplica, request: StorageRequest) -> Outcome:
    """Do ``request`` against ``replica``; every exception becomes a failed outcome."""
    try:
        match request:
            case Summary(digest=False, want=()):
                return Outcome(data=replica.sync_summary())
            case Summary():
                return Outcome(data=replica.sync_summary(
                    digest=request.digest, digest_scope=request.digest_scope,
                    want=request.want))
            case Changes():
                return Outcome(data=replica.sync_changes(
                    request.summary, max_bytes=request.max_bytes, peer=request.scope))
            case Apply():
                return Outcome(result=replica.sync_apply(request.data))
            case Fence(reason=None):
                replica.unfence_writes()
                return Outcome()
            case Fence(reason=str(reason)):
                replica.fence_writes(reason)
                return Outcome()
    except MemmeshError as exc:
        return Outcome(error=type(exc).__name__, detail=_line(exc))
    except Exception as exc:  # a bug must cost one link, never the node
        return Outcome(error=type(exc).__name__, detail=_line(exc), typed=False)
    raise AssertionError(f"unknown storage request {request!r}")  # pragma: no cover


def _line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text[:200]
