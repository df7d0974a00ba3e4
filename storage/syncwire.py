"""Reading sync messages from a peer: the envelope, then every key state on its own.

A peer is untrusted input even when it holds the cluster key. The *envelope* of a
message (not a map, wrong version, bad ``rid`` or ``through``, too big) is all or
nothing: it raises :class:`DecodeError` and nothing changes. Inside a changes payload
each key state is judged on its own (issue 11, deliverable 5): a state that does not
decode, is private, appears twice, cannot be stored, carries a timestamp beyond the
drift bound or a logical part beyond :data:`LOGICAL_CEILING` is skipped with a
:class:`Refusal` and the rest of the payload applies, so one broken or malicious key
(or one member whose clock is a year ahead) never blocks the memories relayed with it.

Refusal reason codes (stable, for counters and logs): ``invalid`` (does not decode, or
would not fit the indexes), ``private``, ``duplicate``, ``clock-ahead``,
``clock-logical``, and, decided later in the write transaction, ``join-failed``,
``private`` (the key is private here) and ``claims-cap`` (see :mod:`.watermarks`).

Claims never vouch for refused keys: for every origin of a refused state's context the
accepted ``through`` claim is capped just below that key's counter (``caps``), so the
sender ships it again next time; when a state could not be decoded at all its context
is unknown and the payload's claims are dropped entirely (``blind``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from memmesh.crdt import DecodeError, InvalidArgumentError, Timestamp
from memmesh.crdt.codec import unpackb
from memmesh.crdt.dot import base_replica, check_replica
from memmesh.crdt.keystate import KIND_MEMORY, KeyState
from memmesh.crdt.limits import LOGICAL_CEILING

from . import digest
from .indexes import unstorable
from .keycodec import MAX_KEY_LEN, decode
from .records import PeerScope, Refusal
from .repair import DIGEST_BUCKET_BYTES, MAX_HASHES, MAX_SCOPE_VALUES, check_want, normal

__all__ = ["MAX_COUNTER", "Incoming", "Summary", "bad", "cap", "claim_map", "counter_map",
           "parse_hashes", "parse_scope", "parse_summary", "read_changes", "scope_plain"]

MAX_COUNTER = 2**63 - 1


def bad(message: str) -> DecodeError:
    return DecodeError(f"invalid sync message: {message}")


def counter_map(value: Any, what: str) -> dict[str, int]:
    """A validated ``{origin: counter}`` map."""
    if type(value) is not dict:
        raise bad(f"{what} must be a map")
    out: dict[str, int] = {}
    for origin, counter in value.items():
        try:
            check_replica(origin)
        except ValueError:
            raise bad(f"{what} has a bad replica id") from None
        if "\x00" in origin or type(counter) is not int or not 0 <= counter <= MAX_COUNTER:
            raise bad(f"{what} entries must be replica -> counter")
        out[origin] = counter
    return out


def claim_map(value: Any) -> dict[str, tuple[int, int]]:
    """A validated ``through`` map: ``{origin: (base, counter)}`` with ``base < counter``."""
    if type(value) is not dict:
        raise bad("through must be a map")
    out: dict[str, tuple[int, int]] = {}
    for origin, claim in value.items():
        if type(claim) is not tuple or len(claim) != 2:
            raise bad("through entries must be replica -> (base, counter)")
        base, counter = counter_map({origin: claim[0]}, "through"), \
            counter_map({origin: claim[1]}, "through")
        if base[origin] >= counter[origin]:
            raise bad("a through claim must move past its base")
        out[origin] = (base[origin], counter[origin])
    return out


def scope_plain(scope: PeerScope | None) -> tuple[Any, Any] | None:
    """The wire form of a peer scope: None (unrestricted) or ``(apps, users)``, each
    None or a sorted tuple of values (None first)."""
    scope = normal(scope)
    if scope is None:
        return None
    return (None if scope.apps is None else _sorted_values(scope.apps),
            None if scope.users is None else _sorted_values(scope.users))


def _sorted_values(values: frozenset[str | None]) -> tuple[str | None, ...]:
    return tuple(sorted(values, key=lambda v: (v is not None, v or "")))


def parse_scope(plain: Any) -> PeerScope | None:
    """The peer scope of :func:`scope_plain`'s wire form (DecodeError if malformed)."""
    if plain is None:
        return None
    if type(plain) is not tuple or len(plain) != 2:
        raise bad("a scope is None or (apps, users)")
    fields: list[frozenset[str | None] | None] = []
    for values in plain:
        if values is None:
            fields.append(None)
            continue
        if type(values) is not tuple or len(values) > MAX_SCOPE_VALUES or any(
                v is not None and (type(v) is not str or len(v) > MAX_KEY_LEN or "\x00" in v)
                for v in values):
            raise bad(f"scope values are at most {MAX_SCOPE_VALUES} ids or None")
        if _sorted_values(frozenset(values)) != values:
            raise bad("scope values must be sorted and unique")
        fields.append(frozenset(values))
    return normal(PeerScope(fields[0], fields[1]))


@dataclass(frozen=True, slots=True)
class Summary:
    """A peer's summary, validated."""

    rid: str
    wm: dict[str, int]
    root: bytes
    me: str | None  # the sender's minting origin, when it names it
    digest: tuple[PeerScope | None, bytes] | None  # (scope, 256 sums of 8 bytes)
    want: tuple[str, ...]  # key ids the sender asks for whatever the watermarks say


def parse_summary(data: bytes) -> Summary:
    plain = unpackb(data)
    if type(plain) is not dict or plain.get("v") != 1:
        raise bad("expected a version-1 summary map")
    if not set(plain) <= {"v", "rid", "wm", "root", "me", "digest", "want"}:
        raise bad("unknown summary field")
    rid = plain.get("rid")
    if type(rid) is not str:
        raise bad("rid must be a str")
    wm = counter_map(plain.get("wm"), "wm")
    root = plain.get("root")
    if type(root) is not bytes or len(root) != 32:
        raise bad("root must be 32 bytes")
    me = plain.get("me")
    if me is not None:
        counter_map({me: 0} if type(me) is str else None, "me")
        if me == rid or base_replica(me) != rid:
            raise bad("me must be an origin of the summary's rid")
    found = plain.get("digest")
    dig: tuple[PeerScope | None, bytes] | None = None
    if found is not None:
        if type(found) is not dict or set(found) != {"scope", "sums"}:
            raise bad("digest must be {scope, sums}")
        sums = found["sums"]
        if type(sums) is not bytes or len(sums) != digest.BUCKETS * DIGEST_BUCKET_BYTES:
            raise bad(f"digest sums must be {digest.BUCKETS} x {DIGEST_BUCKET_BYTES} bytes")
        dig = (parse_scope(found["scope"]), sums)
    want = plain.get("want", ())
    if type(want) is not tuple:
        raise bad("want must be an array of memory ids")
    try:
        check_want(want)
    except InvalidArgumentError as exc:
        raise bad(str(exc)) from None
    return Summary(rid, wm, root, me, dig, want)


def parse_hashes(plain: Any) -> tuple[tuple[str, bytes], ...]:
    """A changes payload's ``hashes``: ``((key, 8-byte hash), ...)``, at most
    :data:`~memmesh.storage.repair.MAX_HASHES` of them."""
    if type(plain) is not tuple or len(plain) > MAX_HASHES or any(
            type(item) is not tuple or len(item) != 2 or type(item[0]) is not str
            or not 0 < len(item[0]) <= MAX_KEY_LEN or "\x00" in item[0]
            or type(item[1]) is not bytes or len(item[1]) != DIGEST_BUCKET_BYTES
            for item in plain):
        raise bad("hashes must be (key, 8-byte hash) pairs")
    return plain


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
    return key if type(key) is str and len(key) <= 256 else None


def read_changes(data: bytes, *, wall: int, max_drift_ms: int) -> Incoming:
    """Validate a changes payload: the envelope raises :class:`DecodeError`; each key
    state is accepted or refused on its own (see module doc)."""
    plain = unpackb(data)
    if type(plain) is not dict or plain.get("v") != 1 or \
            not {"v", "rid", "scope", "states", "through"} <= set(plain) <= \
            {"v", "rid", "scope", "states", "through", "hashes"}:
        raise bad("expected a version-1 changes map")
    scope = parse_scope(plain["scope"])
    hashes = parse_hashes(plain.get("hashes", ()))
    rid, raws = plain["rid"], plain["states"]
    if type(rid) is not str:
        raise bad("rid must be a str")
    try:
        check_replica(rid)
    except ValueError:
        raise bad("bad rid") from None
    through = claim_map(plain["through"])
    if type(raws) is not tuple or any(type(r) is not bytes for r in raws):
        raise bad("states must be an array of byte strings")
    out = Incoming(rid, scope, through, [], None, hashes)
    decoded: list[tuple[bytes, KeyState]] = []
    count: dict[str, int] = {}
    for raw in raws:
        try:
            state = decode(raw)
        except DecodeError as exc:
            out.refused.append(Refusal(_key_hint(raw), "invalid", str(exc)))
            out.blind = True
            continue
        decoded.append((raw, state))
        count[state.header.key] = count.get(state.header.key, 0) + 1
    limit = wall + max_drift_ms
    newest: tuple[int, int, str] | None = None
    reported: set[str] = set()
    for raw, state in decoded:
        key = state.header.key
        if count[key] > 1:  # one refusal per key; claims capped for every copy
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
    else None; and the newest hybrid timestamp it carries (the header's ``created`` and
    each version's), as a plain ``(wall, logical, replica)`` tuple."""
    h = state.header
    if not h.shareable:
        return ("private", "a private key state cannot be received"), None
    why = unstorable(state, size)
    if why is not None:
        return ("invalid", why), None
    created = h.created
    newest = None if created is None else (created.wall_ms, created.logical, created.replica)
    logical = -1 if created is None else created.logical
    if h.kind == KIND_MEMORY:
        for dot, v in state.body.items():
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
