"""The sans-IO core of memmesh gossip: frames, messages, the link session, the sync policy.

Nothing here performs I/O, reads a clock or draws random numbers of its own, so the
same code runs under the trio shell (:mod:`memmesh.gossip.node`), under
``simulations/`` and in plain unit tests:

* :class:`Session` (:mod:`.session`): one link's protocol state machine (h11 model),
  composing the handshake's state table (:mod:`.handshake`), the delivery window
  (:mod:`.delivery`) and the sync exchange (:mod:`.exchange`);
* :class:`SyncPolicy` (:mod:`.policy`): everything a node decides around its sessions:
  rounds and peer choice, what each session event does to the replica, sync slots, one
  link per peer, caps, the clock fence, per-peer counters;
* :func:`perform` (:mod:`.requests`): the one function that calls the replica
  (:class:`SyncReplica`), turning the policy's storage requests into outcomes.

Driving two replicas without any network (what
:class:`~memmesh.gossip.protocol.driver.MemoryNetwork` does, with faults)::

    from memmesh.gossip.protocol import SyncPolicy, perform

    pa = SyncPolicy("A", fingerprint=fp, rng=random.Random(1), now=0.0)
    pb = SyncPolicy("B", fingerprint=fp, rng=random.Random(2), now=0.0)
    la = pa.open_link(0.0, replica_a.clock(), outbound=True, expected_peer_id="B")
    lb = pb.open_link(0.0, replica_b.clock(), outbound=False, expected_peer_id="A")

    def settle(policy, replica, now):     # do what the policy asks of the replica
        while (req := policy.next_request()) is not None:
            policy.complete(req, perform(replica, req), now)

    # loop: move la.session.data_to_send() into pb.receive_data(lb, ...) and back,
    # settle both; call pa.handle_timeout(la, now) at la.session.next_deadline() and
    # pa.round(now, wall_ms) at pa.next_round; pa.local_writes() after a local write.
"""

from __future__ import annotations

from . import events
from ._summary import advance_summary, changes_empty, summary_lag, watermarks
from .errors import GossipError, LocalProtocolError, ProtocolError, RemoteProtocolError
from .frames import FrameDecoder, encode_frame
from .messages import PROTOCOL_VERSION, REASONS, decode_message, encode_message
from .peerlink import PeerLink
from .policy import Notice, PolicyConfig, SyncPolicy
from .replica import NodeReplica, SyncReplica
from .requests import Outcome, StorageRequest, perform
from .session import Phase, Session, SessionConfig, State

__all__ = [
    "PROTOCOL_VERSION",
    "REASONS",
    "FrameDecoder",
    "GossipError",
    "LocalProtocolError",
    "NodeReplica",
    "Notice",
    "Outcome",
    "PeerLink",
    "Phase",
    "PolicyConfig",
    "ProtocolError",
    "RemoteProtocolError",
    "Session",
    "SessionConfig",
    "State",
    "StorageRequest",
    "SyncPolicy",
    "SyncReplica",
    "advance_summary",
    "changes_empty",
    "decode_message",
    "encode_frame",
    "encode_message",
    "events",
    "perform",
    "summary_lag",
    "watermarks",
]
