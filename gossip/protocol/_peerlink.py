"""One link as the sync policy tracks it: its session plus what the policy decided.

A :class:`PeerLink` is created by ``SyncPolicy.open_link`` for every connection (inbound
or outbound) and handed back by the policy in every call about that connection; the
driver keeps its transport object beside it.  ``registered`` becomes True only when
the policy accepted the link as *the* link of its authenticated peer id, and ``scope``
(what the peer may receive) is set from that id at the same moment, before anything
can be served.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._handshake import State
from ._repair import PullRecord, RootPair
from ._session import Session

__all__ = ["PeerLink"]


@dataclass(eq=False, slots=True)
class PeerLink:
    session: Session
    outbound: bool
    #: the identity the peer must prove (TLS name), or the member a dial was meant for
    expected_peer_id: str | None
    #: the peer's host (per-address caps); None when unknown (memory streams)
    address: str | None
    opened_at: float
    peer_id: str | None = None
    registered: bool = False
    scope: object = None
    want_pull: bool = False
    awaiting_summary: bool = False
    holding_slot: bool = False
    follow_ups: int = 0
    #: our pull running on this link: what it asked for and got (digest repair)
    pull: PullRecord | None = None
    #: our last quiet pull's summary and the peer's last SYN summary, to compare roots
    roots: RootPair = field(default_factory=RootPair)
    #: last time this link did something useful (handshake, a chunk applied or served)
    last_progress: float = 0.0
    rejected_reason: str | None = None
    closed_reason: str | None = None

    @property
    def open(self) -> bool:
        """Registered and its session still open: the link may pull, push and serve."""
        return self.registered and self.session.state is State.OPEN

    @property
    def closed(self) -> bool:
        return self.session.state is State.CLOSED

    @property
    def idle(self) -> bool:
        """Nothing in flight, nothing asked of us: closing it loses no work."""
        return (self.session.idle and not self.want_pull and not self.holding_slot
                and not self.awaiting_summary)

    @property
    def held_bytes(self) -> int:
        """Bytes this link makes us hold: a partial frame plus unapplied data frames."""
        return self.session.buffered + self.session.pending_bytes

    @property
    def name(self) -> str:
        """For logs: the peer id once known, else what we expected."""
        return self.peer_id or self.expected_peer_id or "?"
