"""The sans-IO core of memmesh gossip: frames, messages, the link session, the sync policy.

Nothing here performs I/O, reads a clock or draws random numbers of its own, so the
trio shell (:mod:`memmesh.gossip`), ``simulations/`` and unit tests run the same code
(h11's model). :class:`Session` is one link's state machine, :class:`SyncPolicy` makes
every decision around the sessions and :func:`perform` is the one caller of the replica.
Public modules: :mod:`.events` (what a session reports), :mod:`.messages` (the wire
vocabulary) and :mod:`.driver` (``MemoryNetwork``, for tests). Driving one policy::

    link = policy.open_link(now, wall_ms, outbound=True, expected_peer_id="B")
    policy.receive_data(link, data, now, wall_ms)    # bytes from the transport
    while (req := policy.next_request()) is not None:
        policy.complete(req, perform(replica, req), now)
    # then send link.session.data_to_send(); policy.handle_timeout(link, now) at
    # link.session.next_deadline(), policy.round(now, wall_ms) at policy.next_round
"""

from __future__ import annotations

from . import events, messages
from ._acl import AccessList
from ._admission import HandshakeGate
from ._config import SessionConfig
from ._errors import GossipError, LocalProtocolError, ProtocolError, RemoteProtocolError
from ._frames import FrameDecoder, encode_frame
from ._handshake import Phase, State
from ._peerlink import PeerLink
from ._policy import Notice, PolicyConfig, SyncPolicy
from ._pushes import SYNC_MODES, PushDecision, push_decision
from ._replica import NodeReplica, SyncReplica
from ._requests import Apply, Changes, Fence, Outcome, StorageRequest, Summary, perform
from ._session import Session
from ._summary import advance_summary, changes_empty, summary_lag, watermarks

__all__ = [
    "SYNC_MODES",
    "AccessList",
    "Apply",
    "Changes",
    "Fence",
    "FrameDecoder",
    "GossipError",
    "HandshakeGate",
    "LocalProtocolError",
    "NodeReplica",
    "Notice",
    "Outcome",
    "PeerLink",
    "Phase",
    "PolicyConfig",
    "ProtocolError",
    "PushDecision",
    "RemoteProtocolError",
    "Session",
    "SessionConfig",
    "State",
    "StorageRequest",
    "Summary",
    "SyncPolicy",
    "SyncReplica",
    "advance_summary",
    "changes_empty",
    "encode_frame",
    "events",
    "messages",
    "perform",
    "push_decision",
    "summary_lag",
    "watermarks",
]
