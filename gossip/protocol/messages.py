"""The wire messages of the gossip protocol and their validated msgpack encoding.

Every frame body is one msgpack array ``[code, field, ...]`` packed with the canonical
:func:`memmesh.crdt.packb` and read back with explicit limits. Decoding checks
the arity, the type and the range of every field, so nothing malformed reaches the state
machine, and a HELLO of another :data:`PROTOCOL_VERSION` is refused as ``version``
before its other fields are read. The codes and fields of each message:
docs/internals.md, section 3, "Wire messages".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from memmesh.crdt import DecodeError, packb, unpackb

from ._errors import RemoteProtocolError

__all__ = [
    "MAX_HELLO_CREDENTIAL",
    "PROTOCOL_VERSION",
    "REASONS",
    "Ack",
    "Bye",
    "Changes",
    "Hello",
    "Message",
    "Ping",
    "Pong",
    "Push",
    "Reject",
    "Syn",
    "decode_message",
    "encode_message",
]

#: Bumped on any incompatible wire change; peers must agree exactly.
PROTOCOL_VERSION: Final = 2

#: Reason codes that may appear in REJECT and BYE (anything else is a protocol error).
REASONS: Final = frozenset(
    {
        "busy",
        "wrong-cluster",
        "version",
        "identity",
        "self",
        "duplicate",
        "protocol",
        "frame-size",
        "invalid-changes",
        "timeout",
        "closing",
        "overload",
        "credential",
    }
)

_MAX_U63: Final = 2**63 - 1
_MAX_ID_LEN: Final = 128
_MAX_FP_LEN: Final = 64
_MAX_DETAIL: Final = 200
#: Largest member credential a HELLO may carry (an issuer-signed envelope's own bound).
MAX_HELLO_CREDENTIAL: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class Hello:
    version: int
    fingerprint: bytes
    replica_id: str
    port: int
    window: int
    max_frame: int
    wall_ms: int = 0
    #: the sender's member credential (credential mode; None with a cluster key)
    credential: bytes | None = None


@dataclass(frozen=True, slots=True)
class Reject:
    reason: str
    sync_id: int = 0
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Syn:
    sync_id: int
    summary: bytes
    reply: bool


@dataclass(frozen=True, slots=True)
class Changes:
    n: int
    sync_id: int
    index: int
    data: bytes
    last: bool
    total: int
    more: bool


@dataclass(frozen=True, slots=True)
class Push:
    n: int
    data: bytes
    priority: bool


@dataclass(frozen=True, slots=True)
class Ack:
    n: int


@dataclass(frozen=True, slots=True)
class Ping:
    nonce: int


@dataclass(frozen=True, slots=True)
class Pong:
    nonce: int


@dataclass(frozen=True, slots=True)
class Bye:
    reason: str


Message = Hello | Reject | Syn | Changes | Push | Ack | Ping | Pong | Bye

_CODES: Final[dict[type, int]] = {
    Hello: 1,
    Reject: 2,
    Syn: 3,
    Changes: 4,
    Push: 5,
    Ack: 6,
    Ping: 7,
    Pong: 8,
    Bye: 9,
}


def encode_message(msg: Message) -> bytes:
    """Canonical msgpack body of ``msg``."""
    code = _CODES[type(msg)]
    match msg:
        case Hello():
            fields: list[object] = [
                msg.version, msg.fingerprint, msg.replica_id, msg.port, msg.window,
                msg.max_frame, msg.wall_ms,
            ]
            if msg.credential is not None:  # absent, not nil: cluster-key HELLOs unchanged
                fields.append(msg.credential)
        case Reject():
            fields = [msg.reason, msg.sync_id, msg.detail]
        case Syn():
            fields = [msg.sync_id, msg.summary, msg.reply]
        case Changes():
            fields = [msg.n, msg.sync_id, msg.index, msg.data, msg.last, msg.total, msg.more]
        case Push():
            fields = [msg.n, msg.data, msg.priority]
        case Ack() | Ping() | Pong():
            fields = [msg.n if isinstance(msg, Ack) else msg.nonce]
        case Bye():
            fields = [msg.reason]
    body: bytes = packb([code, *fields])
    return body


def _bad(what: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"malformed message: {what}")


def _int(v: object, lo: int = 0, hi: int = _MAX_U63) -> int:
    if type(v) is not int or not lo <= v <= hi:
        raise _bad(f"integer outside {lo}..{hi}")
    return v


def _bool(v: object) -> bool:
    if type(v) is not bool:
        raise _bad("boolean expected")
    return v


def _bytes(v: object, max_len: int | None = None) -> bytes:
    if type(v) is not bytes or (max_len is not None and len(v) > max_len):
        raise _bad("bytes expected")
    return v


def _str(v: object, max_len: int) -> str:
    if type(v) is not str or len(v) > max_len:
        raise _bad("short string expected")
    return v


def _reason(v: object) -> str:
    s = _str(v, 32)
    if s not in REASONS:
        raise _bad("unknown reason code")
    return s


_ARITY: Final = {1: 7, 2: 3, 3: 3, 4: 7, 5: 3, 6: 1, 7: 1, 8: 1, 9: 1}


def decode_message(body: bytes) -> Message:
    """Parse and validate one frame body; any defect is a :class:`RemoteProtocolError`."""
    try:
        obj = unpackb(body)
    except DecodeError as exc:
        raise RemoteProtocolError("frame body is not valid msgpack") from exc
    if not isinstance(obj, tuple) or not obj:
        raise _bad("array expected")
    code, *f = obj
    if type(code) is not int or code not in _ARITY:
        raise _bad("unknown message code")
    if code == 1 and f and type(f[0]) is int and f[0] != PROTOCOL_VERSION:
        raise RemoteProtocolError(f"protocol version {f[0]}", reason="version")
    if len(f) != _ARITY[code] and not (code == 1 and len(f) == _ARITY[1] + 1):
        raise _bad("wrong number of fields")
    if code == 1:
        rid = _str(f[2], _MAX_ID_LEN)
        if not rid:
            raise _bad("empty replica id")
        return Hello(
            _int(f[0], 0, 2**16), _bytes(f[1], _MAX_FP_LEN), rid, _int(f[3], 0, 65535),
            _int(f[4], 1, 4096), _int(f[5], 64, 2**31), _int(f[6]),
            _bytes(f[7], MAX_HELLO_CREDENTIAL) if len(f) > 7 else None,
        )
    if code == 2:
        return Reject(_reason(f[0]), _int(f[1]), _str(f[2], _MAX_DETAIL))
    if code == 3:
        return Syn(_int(f[0], 1), _bytes(f[1]), _bool(f[2]))
    if code == 4:
        return Changes(
            _int(f[0], 1), _int(f[1], 1), _int(f[2]), _bytes(f[3]), _bool(f[4]), _int(f[5]),
            _bool(f[6]),
        )
    if code == 5:
        return Push(_int(f[0], 1), _bytes(f[1]), _bool(f[2]))
    if code == 6:
        return Ack(_int(f[0], 1))
    if code == 7:
        return Ping(_int(f[0]))
    if code == 8:
        return Pong(_int(f[0]))
    return Bye(_reason(f[0]))
