"""The handshake of one link as an explicit state table (the h11 model).

Both ends send ``HELLO`` at once; the link opens when the peer's HELLO is in and valid
(same protocol version and cluster fingerprint, not ourselves, the identity the TLS
certificate proved; on credentials, a credential admitted by :mod:`._credentials`). The
sub-states are named :class:`Phase` values, never inferred from optional fields:
``HELLO_IN`` (open, the peer may still lack our HELLO) and ``ESTABLISHED`` (the peer
sent a frame after its HELLO, so it has ours) differ only on a lossy transport, where a
repeated HELLO in ``HELLO_IN`` is answered with ours. :data:`TRANSITIONS` lists the
messages each phase admits and the phase each leads to.
"""

from __future__ import annotations

import enum
from typing import Final

from memmesh.trust import Credential, TrustStore

from . import messages as wire
from ._config import SessionConfig
from ._credentials import admit_peer
from ._errors import RemoteProtocolError
from ._outbox import Outbox

__all__ = ["CREDENTIAL_HANDSHAKE_FRAME", "HANDSHAKE_FRAME", "TRANSITIONS", "Handshake",
           "Phase", "State"]

#: Largest frame body accepted before the peer's HELLO (a HELLO or a REJECT fits); a
#: node on credentials accepts a HELLO carrying a credential too.
HANDSHAKE_FRAME: Final = 1024
CREDENTIAL_HANDSHAKE_FRAME: Final = HANDSHAKE_FRAME + wire.MAX_HELLO_CREDENTIAL


class State(enum.Enum):
    """The coarse state callers see: a session never leaves ``CLOSED``."""

    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"


class Phase(enum.Enum):
    """The handshake's sub-states."""

    AWAIT_HELLO = "await-hello"  # our HELLO is out, the peer's is not in
    HELLO_IN = "hello-in"  # open; the peer may not have our HELLO yet
    ESTABLISHED = "established"  # open; the peer spoke after its HELLO: it has ours
    CLOSED = "closed"

    @property
    def state(self) -> State:
        return _STATE[self]


_STATE: Final = {Phase.AWAIT_HELLO: State.HANDSHAKE, Phase.HELLO_IN: State.OPEN,
                 Phase.ESTABLISHED: State.OPEN, Phase.CLOSED: State.CLOSED}

_OPEN_TRAFFIC: Final = (wire.Syn, wire.Changes, wire.Push, wire.Ack, wire.Ping, wire.Pong)

#: phase -> message type it admits -> the phase after it, unless the message closes the
#: link (a BYE always, a REJECT of the whole link; a REJECT of one sync leaves it open).
#: A message absent from its phase's row is a protocol error.
TRANSITIONS: Final[dict[Phase, dict[type, Phase]]] = {
    Phase.AWAIT_HELLO: {
        wire.Hello: Phase.HELLO_IN,
        wire.Reject: Phase.CLOSED,
        wire.Bye: Phase.CLOSED,
    },
    Phase.HELLO_IN: {
        wire.Hello: Phase.HELLO_IN,  # repeated: the peer may lack ours, answered once per rto
        wire.Reject: Phase.ESTABLISHED,
        wire.Bye: Phase.CLOSED,
        **dict.fromkeys(_OPEN_TRAFFIC, Phase.ESTABLISHED),
    },
    Phase.ESTABLISHED: {
        wire.Hello: Phase.ESTABLISHED,  # repeated (a network duplicate): never answered
        wire.Reject: Phase.ESTABLISHED,
        wire.Bye: Phase.CLOSED,
        **dict.fromkeys(_OPEN_TRAFFIC, Phase.ESTABLISHED),
    },
    Phase.CLOSED: {},
}


class Handshake:
    """Our HELLO, the peer's, the phase and the HELLO timers of one link."""

    __slots__ = ("_config", "_created", "_expected", "_expected_key", "_hello_sent", "_out",
                 "_trust", "credential", "hello", "peer", "phase")

    def __init__(self, out: Outbox, hello: wire.Hello, *, config: SessionConfig,
                 expected_peer_id: str | None, now: float, trust: TrustStore | None = None,
                 expected_peer_key: bytes | None = None) -> None:
        self.phase = Phase.AWAIT_HELLO
        self.hello = hello
        #: the peer's HELLO, set when the link opens (``HELLO_IN``) and kept after
        self.peer: wire.Hello | None = None
        self._out = out
        self._config = config
        self._expected = expected_peer_id
        #: credential mode: the trust store the peer's HELLO credential is admitted by,
        #: and the key its TLS certificate proved (see :mod:`._credentials`)
        self._trust = trust
        self._expected_key = expected_peer_key
        #: the peer's admitted credential, once its HELLO is in (credential mode)
        self.credential: Credential | None = None
        self._created = now
        self._hello_sent = now
        out.send(hello, now)

    @property
    def is_open(self) -> bool:
        return self.phase.state is State.OPEN

    def step(self, msg: wire.Message) -> Phase | None:
        """The phase ``msg`` leads to; None: drop it (an open-state frame overtook the
        peer's HELLO on a lossy transport, the peer sends it again).  Over a stream such
        a frame, like any message its phase does not admit, is a
        :class:`RemoteProtocolError`."""
        nxt = TRANSITIONS[self.phase].get(type(msg))
        if nxt is not None:
            return nxt
        if (self._config.retransmit and self.phase is Phase.AWAIT_HELLO
                and type(msg) in TRANSITIONS[Phase.ESTABLISHED]):
            return None
        raise RemoteProtocolError(
            f"{type(msg).__name__} not allowed in state {self.phase.state.value}")

    def enter(self, phase: Phase) -> None:
        """Move to ``phase`` after its message was handled (the session closes itself)."""
        self.phase = phase

    def receive_hello(self, msg: wire.Hello, now: float) -> bool:
        """Take the peer's HELLO; True when it opened the link.  A repeated HELLO must
        equal the first; in ``HELLO_IN`` on a lossy transport it is answered with ours
        (a network duplicate looks the same, so at most once per rto)."""
        if self.phase is Phase.AWAIT_HELLO:
            self._check(msg)
            self.peer = msg
            return True
        if msg != self.peer:
            raise RemoteProtocolError("a second, different HELLO")
        if self.phase is Phase.HELLO_IN and self._config.retransmit \
                and now >= self._hello_sent + self._config.rto:
            self._resend(now)
        return False

    def _check(self, msg: wire.Hello) -> None:
        if msg.version != wire.PROTOCOL_VERSION:
            raise RemoteProtocolError(f"protocol version {msg.version}", reason="version")
        if msg.fingerprint != self.hello.fingerprint:
            raise RemoteProtocolError("different cluster", reason="wrong-cluster")
        if msg.replica_id == self.hello.replica_id:
            raise RemoteProtocolError("connected to ourselves", reason="self")
        if self._expected is not None and msg.replica_id != self._expected:
            raise RemoteProtocolError("replica id differs from the certificate",
                                      reason="identity")
        if self._trust is not None:
            self.credential = admit_peer(self._trust, msg.credential,
                                         replica_id=msg.replica_id,
                                         tls_key=self._expected_key,
                                         wall_ms=self.hello.wall_ms)

    def deadline(self) -> float:
        """While ``AWAIT_HELLO``: the handshake timeout, or our HELLO's resend."""
        cfg = self._config
        end = self._created + cfg.handshake_timeout
        return min(end, self._hello_sent + cfg.rto) if cfg.retransmit else end

    def on_timeout(self, now: float) -> bool:
        """While ``AWAIT_HELLO``: True when the handshake timed out; else resend our
        HELLO if it is due (lossy transport)."""
        cfg = self._config
        if now >= self._created + cfg.handshake_timeout:
            return True
        if cfg.retransmit and now >= self._hello_sent + cfg.rto:
            self._resend(now)
        return False

    def _resend(self, now: float) -> None:
        self._hello_sent = now
        self._out.send(self.hello, now)
