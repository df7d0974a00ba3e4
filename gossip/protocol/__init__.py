"""The sans-IO core of memmesh gossip: frames, messages, events and the link session.

Nothing here performs I/O, reads a clock or draws random numbers, so the same code runs
under the trio shell (:mod:`memmesh.gossip.node`), under ``simulations/`` and in plain
unit tests.  To drive two replicas without any network::

    from memmesh.gossip.protocol import Session, events as ev

    a = Session(replica_id="A", fingerprint=fp, now=0.0)
    b = Session(replica_id="B", fingerprint=fp, now=0.0)

    def pump(src, dst, now):          # move bytes; drop/duplicate/reorder here to test
        data = src.data_to_send()
        if data:
            dst.receive_data(data, now)

    def serve(session, replica, now):  # do what the events ask, with a Replica
        while (e := session.next_event()) is not None:
            match e:
                case ev.NeedSummary():
                    session.start_sync(replica.sync_summary(), now, reply=True)
                case ev.NeedChanges(request=r, summary=s, max_bytes=m):
                    session.changes_ready(r, replica.sync_changes(s, max_bytes=m), now)
                case ev.ApplyChanges(n=n, data=d):
                    replica.sync_apply(d)
                    session.applied(n, now)

    pump(a, b, 0.0); pump(b, a, 0.0)                  # HELLOs: both OPEN
    a.start_sync(replica_a.sync_summary(), 0.0)      # one push-pull round
    # loop: pump both ways, serve both sides, until both sessions are idle;
    # call s.handle_timeout(now) whenever now >= s.next_deadline().

On a new local write call ``s.request_push(now, priority=..., local_summary=
replica.sync_summary())`` on each open session (False: no summary of the peer yet, so
``start_sync`` instead); with ``local_summary`` the push carries only this replica's own
writes, as the trio shell does.

:class:`~memmesh.gossip.protocol.driver.MemoryNetwork` runs exactly that loop for tests
and simulations, on virtual time, with optional loss, duplication and reordering of
whole frames, and reconnects closed links.
"""

from __future__ import annotations

from . import events
from .errors import GossipError, LocalProtocolError, ProtocolError, RemoteProtocolError
from .frames import FrameDecoder, encode_frame
from .messages import REASONS, decode_message, encode_message
from .session import PROTOCOL_VERSION, Session, SessionConfig, State
from .summary import advance_summary, changes_empty, summary_lag, watermarks

__all__ = [
    "PROTOCOL_VERSION",
    "REASONS",
    "FrameDecoder",
    "GossipError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "Session",
    "SessionConfig",
    "State",
    "advance_summary",
    "changes_empty",
    "decode_message",
    "encode_frame",
    "encode_message",
    "events",
    "summary_lag",
    "watermarks",
]
