"""Reading a peer's changes payload: the envelope (:mod:`.wire`), then every key state
on its own.

The envelope is all or nothing: malformed, it raises :class:`DecodeError` and nothing
changes. Each key state inside is judged on its own (``invalid``, ``private``,
``duplicate``, ``clock-ahead``, ``clock-logical``; the write transaction adds
``join-failed``, ``private`` and ``claims-cap``: docs/faulty-members.md) and a refused
one is skipped with a :class:`Refusal`, so one broken or malicious key never blocks the
memories relayed with it. Claims never vouch for a refused key: each origin of its
context caps the accepted ``through`` claim just below its counter (``caps``); a state
that does not decode hides its context, so the payload's claims are dropped (``blind``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from memmesh.crdt import LOGICAL_CEILING, DecodeError, Timestamp, unpackb
from memmesh.crdt.keystate import KIND_MEMORY, KeyState

from ._indexes import unstorable
from ._keycodec import decode
from ._records import Refusal
from .wire import MAX_KEY_LEN, PeerScope, parse_changes

__all__ = ["Incoming", "cap", "read_changes"]


def cap(caps: dict[str, int], ctx: Mapping[str, int]) -> None:
    """Keep claims below every event of a refused state (``ctx``), so the sender's
    claims cannot raise a watermark over it and it is shipped again next time."""
    for origin, counter in ctx.items():
        if counter - 1 < caps.get(origin, counter):
            caps[origin] = counter - 1


@dataclass(slots=True)
class Incoming:
    """A changes payload read by :func:`read_changes`."""

    sender: str
    scope: PeerScope | None  # the scope the sender says it filtered with
    through: dict[str, tuple[int, int]]
    states: list[tuple[bytes, KeyState]]  # (canonical bytes, state), all accepted so far
    newest: Timestamp | None  # the newest hybrid timestamp the accepted states carry
    hashes: tuple[tuple[str, bytes], ...]  # digest repair's (key, hash8) listing
    refused: list[Refusal] = field(default_factory=list)
    caps: dict[str, int] = field(default_factory=dict)  # origin -> highest claim allowed
    blind: bool = False  # a state could not be decoded: accept no claims at all
    proofs: dict[str, tuple[tuple[str, int, bytes], ...]] = field(default_factory=dict)
    creds: tuple[bytes, ...] = ()  # credentials the proofs name (signed writes)
    revocations: tuple[bytes, ...] = ()  # issuer-signed revocations, checked by storage
    retired: dict[str, int] | None = None  # retirement table entries (_retired.py)

    def refuse(self, refusal: Refusal, ctx: Mapping[str, int]) -> None:
        self.refused.append(refusal)
        cap(self.caps, ctx)


def _key_hint(raw: bytes) -> str | None:
    """The key id of state bytes that failed to decode, when it can be read at all."""
    try:
        plain = unpackb(raw)
        key = plain[2][0]
    except (DecodeError, TypeError, IndexError, KeyError):
        return None
    return key if type(key) is str and len(key) <= MAX_KEY_LEN else None


def read_changes(data: bytes, *, wall: int, max_drift_ms: int) -> Incoming:
    """Validate a changes payload: the envelope raises :class:`DecodeError`; each key
    state is accepted or refused on its own (see module doc)."""
    envelope = parse_changes(data)
    out = Incoming(envelope.rid, envelope.scope, envelope.through, [], None, envelope.hashes,
                   creds=envelope.creds, revocations=envelope.revocations,
                   retired=envelope.retired)
    decoded: list[tuple[bytes, KeyState]] = []
    proofs = envelope.proofs
    for i, raw in enumerate(envelope.states):
        try:
            state = decode(raw)
        except DecodeError as exc:
            out.refused.append(Refusal(_key_hint(raw), "invalid", str(exc)))
            out.blind = True
            continue
        decoded.append((raw, state))
        if proofs and proofs[i]:
            out.proofs[state.header.key] = proofs[i]
    count = Counter([state.header.key for _, state in decoded])
    repeated = len(count) < len(decoded)
    limit = wall + max_drift_ms
    newest: tuple[int, int, str] | None = None
    reported: set[str] = set()
    for raw, state in decoded:
        key = state.header.key
        if repeated and count[key] > 1:  # one refusal per key; claims capped for every copy
            if key not in reported:
                reported.add(key)
                out.refused.append(Refusal(key, "duplicate",
                                           f"the key appears {count[key]} times in the payload"))
            cap(out.caps, state.ctx)
            continue
        why, stamp = _judge(state, len(raw), wall, limit)
        if why is not None:
            out.refuse(Refusal(key, *why), state.ctx)
            continue
        out.states.append((raw, state))
        if stamp is not None and (newest is None or stamp > newest):
            newest = stamp
    out.newest = None if newest is None else Timestamp(*newest)
    return out


def _judge(state: KeyState, size: int, wall: int, limit: int
           ) -> tuple[tuple[str, str] | None, tuple[int, int, str] | None]:
    """``(reason, detail)`` if the decoded ``state`` (``size`` bytes) must be refused,
    else None; and the newest hybrid timestamp it carries (the header's ``created``, each
    version's and each event's), as a plain ``(wall, logical, replica)`` tuple."""
    h = state.header
    if not h.shareable:
        return ("private", "a private key state cannot be received"), None
    why = unstorable(state, size)
    if why is not None:
        return ("invalid", why), None
    created = h.created
    newest = None if created is None else (created.wall_ms, created.logical, created.replica)
    logical = -1 if created is None else created.logical
    if h.kind == KIND_MEMORY:  # the versions, and the events of the timeline
        for dot, v in (*state.body.items(), *state.events.items()):
            stamp = (v.wall_ms, v.logical, dot.replica)
            if newest is None or stamp > newest:
                newest = stamp
            if v.logical > logical:
                logical = v.logical
    if newest is None:
        return None, None
    if newest[0] > limit:
        return ("clock-ahead", (f"a timestamp of {newest[2]} is {newest[0] - wall} ms ahead"
                                f" of the local clock (max drift {limit - wall} ms)")), None
    if logical > LOGICAL_CEILING:
        return ("clock-logical", (f"a timestamp has logical part {logical}"
                                  f" (at most {LOGICAL_CEILING})")), None
    return None, newest
