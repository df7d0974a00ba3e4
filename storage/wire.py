"""The sync wire format: summaries and changes payloads, as both sides read and build them.

Storage answers and applies them; the sans-IO session (``gossip.protocol``) reads the
same messages to stream chunks and push, through this module only (it imports nothing
of storage but ``crdt``). A peer is untrusted input: :func:`parse_summary` and
:func:`parse_changes` validate every field and raise :class:`DecodeError` on anything
malformed; the key states inside a payload stay opaque bytes here (storage judges each
one on its own). Formats: :class:`Summary`, :class:`Changes`, :func:`scope_plain`, and
docs/internals.md, "Sync primitives".
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from memmesh.crdt import (
    DecodeError,
    InvalidArgumentError,
    base_replica,
    check_replica,
    packb,
    unpackb,
)
from memmesh.trust import Grant

from . import _sketch

__all__ = [
    "DIGEST_BUCKETS",
    "DIGEST_BUCKET_BYTES",
    "MAX_COUNTER",
    "MAX_CREDS",
    "MAX_CRED_LEN",
    "MAX_HASHES",
    "MAX_KEY_LEN",
    "MAX_PROOFS",
    "MAX_PROOF_LEN",
    "MAX_RETIRED_PER_PAYLOAD",
    "MAX_REVOCATIONS",
    "MAX_REVOCATION_LEN",
    "MAX_SCOPE_GRANTS",
    "MAX_SCOPE_GRANT_BYTES",
    "MAX_SCOPE_VALUES",
    "MAX_WANT",
    "MAX_WANT_BYTES",
    "RETIRED_BUCKETS",
    "RETIRED_BUCKET_BYTES",
    "Changes",
    "PeerScope",
    "Summary",
    "bad",
    "bounded_want",
    "check_want",
    "fold_retired",
    "fold_sketch",
    "normal",
    "parse_changes",
    "parse_scope",
    "parse_summary",
    "restrict",
    "retired_bucket",
    "retired_term",
    "scope_plain",
]

MAX_COUNTER = 2**63 - 1
#: Longest key (memory or set id), in characters.
MAX_KEY_LEN = 256
#: Buckets of the digest (``crc32(key) & 0xFF``) and bytes of each bucket's sum on the wire.
DIGEST_BUCKETS = 256
DIGEST_BUCKET_BYTES = 8
#: Most ids a ``want`` lists, and most bytes of them (beside a summary's capped
#: watermarks, a full ``want`` still fits a 4 MiB frame).
MAX_WANT = 4096
MAX_WANT_BYTES = 512 * 1024
#: Most apps or users a scope names.
MAX_SCOPE_VALUES = 256
#: Most read grants a scope lists, and most bytes of them (a credential's read grants).
MAX_SCOPE_GRANTS = 256
MAX_SCOPE_GRANT_BYTES = 64 * 1024
#: Most ``(key, hash)`` pairs one payload may list (a 4 MiB frame holds about 90k).
MAX_HASHES = 131_072

#: Signed writes: most proofs per shipped state, longest proof (bytes: the layout is
#: ``storage/_proofs.py``'s), most credentials per payload and longest credential.
MAX_PROOFS = 4096
MAX_PROOF_LEN = 234
MAX_CREDS = 1024
MAX_CRED_LEN = 4096

#: Revocations: most a summary lists (and a replica holds), most a payload carries, and
#: the longest one (a 512-character reason is at most 2048 bytes of UTF-8).
MAX_REVOCATIONS = 4096
MAX_REVOCATION_LEN = 4096
_CRED_ID_LEN = 16

#: Retired origins (``_retired.py``): buckets of a summary's table fingerprint ``rt``
#: (each an 8-byte hash sum and a 4-byte entry count) and most entries one changes
#: payload's ``retired`` map carries.
RETIRED_BUCKETS = 16
RETIRED_BUCKET_BYTES = 12
MAX_RETIRED_PER_PAYLOAD = 8192
_MASK64 = 2**64 - 1

_SUMMARY_FIELDS = frozenset({"v", "rid", "wm", "root", "me", "digest", "want", "revoked",
                             "rt", "rti"})
_CHANGES_FIELDS = frozenset({"v", "rid", "scope", "states", "through"})
_OPTIONAL_CHANGES = frozenset({"hashes", "proofs", "creds", "revocations", "retired"})


def bad(message: str) -> DecodeError:
    return DecodeError(f"invalid sync message: {message}")


# -- the retirement fingerprint ------------------------------------------------------


def retired_bucket(origin: str) -> int:
    """The fingerprint bucket of a retirement entry: ``crc32(origin) % 16``."""
    return zlib.crc32(origin.encode()) % RETIRED_BUCKETS


def retired_term(origin: str, final: int) -> int:
    """One entry's share of its bucket's sum: 64 bits of ``sha256(origin, 0, F)``."""
    digest = hashlib.sha256(origin.encode() + b"\x00" + final.to_bytes(8, "big")).digest()
    return int.from_bytes(digest[:8], "big")


def fold_retired(rt: bytes | None, entries: Mapping[str, int]) -> bytes | None:
    """The fingerprint ``rt`` (None: an empty table) with ``entries`` it lacked added."""
    if not entries:
        return rt
    rows = [(0, 0)] * RETIRED_BUCKETS if rt is None else [
        (int.from_bytes(rt[i:i + 8], "big"),
         int.from_bytes(rt[i + 8:i + RETIRED_BUCKET_BYTES], "big"))
        for i in range(0, RETIRED_BUCKETS * RETIRED_BUCKET_BYTES, RETIRED_BUCKET_BYTES)]
    for origin, final in entries.items():
        b = retired_bucket(origin)
        total, count = rows[b]
        rows[b] = ((total + retired_term(origin, final)) & _MASK64, count + 1)
    return b"".join(t.to_bytes(8, "big") + c.to_bytes(4, "big") for t, c in rows)


def fold_sketch(rt: bytes | None, rti: bytes | None, entries: Mapping[str, int]
                ) -> bytes | None:
    """The difference sketch ``rti`` of a summary with fingerprint ``rt`` (both None:
    an empty table, whose sketch is empty) with ``entries`` it lacked added; None when
    the summary had a fingerprint without a sketch."""
    if rti is None and rt is not None:
        return None
    if rti is None and not entries:
        return None
    return _sketch.toggle(_sketch.empty() if rti is None else rti,
                          (_sketch.ident(retired_term(o, f)) for o, f in entries.items()))


# -- scopes -----------------------------------------------------------------------


Values = frozenset[str | None] | None


@dataclass(frozen=True, slots=True)
class PeerScope:
    """What a peer may receive: allowed apps, users, agents and runs (``None`` = no
    restriction), all of which must hold, and, when ``grants`` is given, at least one of
    those :class:`memmesh.trust.Grant` s (a credential's read grants: a union).

    A key is shipped only if its ``app_id`` is in ``apps``, its ``user_id`` in ``users``
    and so on (for each restriction given); a key without that field is withheld from a
    restricted peer unless ``None`` is listed. ``grants=()`` allows nothing. A
    hand-written scope (``Node(acl=...)``) intersected with a peer's credential is
    :meth:`restricted_to`.
    """

    apps: Values = None
    users: Values = None
    agents: Values = None
    runs: Values = None
    grants: tuple[Grant, ...] | None = None

    def __post_init__(self) -> None:
        for tier in ("apps", "users", "agents", "runs"):
            values = getattr(self, tier)
            if values is not None and not isinstance(values, frozenset):
                object.__setattr__(self, tier, frozenset(values))
        if self.grants is not None:
            grants = tuple(self.grants)
            if any(not isinstance(g, Grant) for g in grants):
                raise InvalidArgumentError("PeerScope grants must be memmesh.trust.Grant s")
            # canonical: sorted, unique, so equal unions compare (and travel) equal
            unique = {packb(g.plain()): g for g in grants}
            object.__setattr__(self, "grants", tuple(unique[k] for k in sorted(unique)))

    def patterns(self) -> tuple[Grant, ...]:
        """The scope as a union of conjunctions: each grant intersected with the tier
        restrictions (empty intersections left out)."""
        base = Grant(self.apps, self.users, self.agents, self.runs)
        if self.grants is None:
            return (base,)
        return tuple(p for g in self.grants if (p := base.intersect(g)) is not None)

    def allows(self, app_id: str | None, user_id: str | None, agent_id: str | None = None,
               run_id: str | None = None) -> bool:
        if self.grants is None:
            return ((self.apps is None or app_id in self.apps)
                    and (self.users is None or user_id in self.users)
                    and (self.agents is None or agent_id in self.agents)
                    and (self.runs is None or run_id in self.runs))
        return any(p.covers(app_id, user_id, agent_id, run_id) for p in self.patterns())

    def restricted_to(self, grants: tuple[Grant, ...]) -> PeerScope:
        """This scope, further restricted to what ``grants`` (a union) cover."""
        if self.grants is None:
            return replace(self, grants=tuple(grants))
        both = (a.intersect(b) for a in self.grants for b in grants)
        return replace(self, grants=tuple(g for g in both if g is not None))

    def covers(self, other: PeerScope | None) -> bool:
        """Whether this scope allows every key ``other`` allows (None: every key).
        Conservative: each pattern of ``other`` must lie within one pattern of ours."""
        mine = normal(self)
        if mine is None:
            return True
        if normal(other) is None:
            return False
        assert other is not None
        ours = mine.patterns()
        return all(any(p.within(q) for q in ours) for p in other.patterns())


def normal(scope: PeerScope | None) -> PeerScope | None:
    """``scope`` with an unrestricted PeerScope as None (they allow the same keys)."""
    if scope is not None and scope.apps is None and scope.users is None \
            and scope.agents is None and scope.runs is None \
            and (scope.grants is None or Grant() in scope.grants):
        return None
    return scope


def restrict(scope: PeerScope | None, grants: tuple[Grant, ...] | None) -> PeerScope | None:
    """``scope`` (None: everything) intersected with a credential's read ``grants``
    (None: no credential, no further restriction)."""
    if grants is None:
        return scope
    return normal((scope or PeerScope()).restricted_to(grants))


def _sorted_values(values: frozenset[str | None]) -> tuple[str | None, ...]:
    return tuple(sorted(values, key=lambda v: (v is not None, v or "")))


def _tier_plain(values: Values) -> tuple[str | None, ...] | None:
    return None if values is None else _sorted_values(values)


def scope_plain(scope: PeerScope | None) -> tuple[Any, ...] | None:
    """The wire form of a peer scope: None (unrestricted), ``(apps, users)`` when only
    those are restricted (each None or sorted values, None first), else ``(apps, users,
    agents, runs, grants)`` with ``grants`` None or the canonical forms of the grants."""
    scope = normal(scope)
    if scope is None:
        return None
    head = (_tier_plain(scope.apps), _tier_plain(scope.users))
    if scope.agents is None and scope.runs is None and scope.grants is None:
        return head
    return (*head, _tier_plain(scope.agents), _tier_plain(scope.runs),
            None if scope.grants is None else tuple(g.plain() for g in scope.grants))


def _tier(values: Any) -> frozenset[str | None] | None:
    if values is None:
        return None
    if type(values) is not tuple or len(values) > MAX_SCOPE_VALUES or any(
            v is not None and (type(v) is not str or len(v) > MAX_KEY_LEN or "\x00" in v)
            for v in values):
        raise bad(f"scope values are at most {MAX_SCOPE_VALUES} ids or None")
    if _sorted_values(frozenset(values)) != values:
        raise bad("scope values must be sorted and unique")
    return frozenset(values)


def _grants(plain: Any) -> tuple[Grant, ...] | None:
    if plain is None:
        return None
    if type(plain) is not tuple or len(plain) > MAX_SCOPE_GRANTS \
            or len(packb(plain)) > MAX_SCOPE_GRANT_BYTES:
        raise bad(f"scope grants are at most {MAX_SCOPE_GRANTS} grants and "
                  f"{MAX_SCOPE_GRANT_BYTES} bytes")
    grants = tuple(Grant.from_plain(g) for g in plain)  # DecodeError if malformed
    if PeerScope(grants=grants).grants != grants:
        raise bad("scope grants must be sorted and unique")
    return grants


def parse_scope(plain: Any) -> PeerScope | None:
    """The peer scope of :func:`scope_plain`'s wire form (DecodeError if malformed)."""
    if plain is None:
        return None
    if type(plain) is not tuple or len(plain) not in (2, 5):
        raise bad("a scope is None, (apps, users) or (apps, users, agents, runs, grants)")
    if len(plain) == 2:
        return normal(PeerScope(_tier(plain[0]), _tier(plain[1])))
    scope = PeerScope(_tier(plain[0]), _tier(plain[1]), _tier(plain[2]), _tier(plain[3]),
                      _grants(plain[4]))
    if scope.agents is None and scope.runs is None and scope.grants is None:
        raise bad("a scope restricting only apps and users is (apps, users)")
    return normal(scope)


# -- fields -----------------------------------------------------------------------


def _counter_map(value: Any, what: str) -> dict[str, int]:
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


def _claim_map(value: Any) -> dict[str, tuple[int, int]]:
    """A validated ``through`` map: ``{origin: (base, counter)}`` with ``base < counter``."""
    if type(value) is not dict:
        raise bad("through must be a map")
    out: dict[str, tuple[int, int]] = {}
    for origin, claim in value.items():
        if type(claim) is not tuple or len(claim) != 2:
            raise bad("through entries must be replica -> (base, counter)")
        pair = _counter_map({origin: claim[0]}, "through")[origin], \
            _counter_map({origin: claim[1]}, "through")[origin]
        if pair[0] >= pair[1]:
            raise bad("a through claim must move past its base")
        out[origin] = pair
    return out


def _rid(value: Any) -> str:
    if type(value) is not str:
        raise bad("rid must be a str")
    try:
        check_replica(value)
    except ValueError:
        raise bad("bad rid") from None
    return value


def bounded_want(keys: Sequence[str]) -> tuple[str, ...]:
    """The first keys of ``keys`` within :data:`MAX_WANT` and :data:`MAX_WANT_BYTES`."""
    out: list[str] = []
    size = 0
    for key in keys:
        size += len(key.encode())
        if len(out) >= MAX_WANT or size > MAX_WANT_BYTES:
            break
        out.append(key)
    return tuple(out)


def check_want(want: object) -> tuple[str, ...]:
    """A ``want`` list, validated (InvalidArgumentError beyond the bounds)."""
    if isinstance(want, str | bytes) or not isinstance(want, Sequence):
        raise InvalidArgumentError("want must be a sequence of memory ids")
    keys = tuple(want)
    for key in keys:
        if type(key) is not str or not 0 < len(key) <= MAX_KEY_LEN or "\x00" in key:
            raise InvalidArgumentError(f"want lists a bad memory id {key!r:.60}")
    if bounded_want(keys) != keys:
        raise InvalidArgumentError(f"want lists more than {MAX_WANT} ids or"
                                   f" {MAX_WANT_BYTES} bytes of them")
    return keys


def _hashes(plain: Any) -> tuple[tuple[str, bytes], ...]:
    if type(plain) is not tuple or len(plain) > MAX_HASHES or any(
            type(item) is not tuple or len(item) != 2 or type(item[0]) is not str
            or not 0 < len(item[0]) <= MAX_KEY_LEN or "\x00" in item[0]
            or type(item[1]) is not bytes or len(item[1]) != DIGEST_BUCKET_BYTES
            for item in plain):
        raise bad("hashes must be (key, 8-byte hash) pairs")
    hashes: tuple[tuple[str, bytes], ...] = plain
    return hashes


def _revoked(plain: Any) -> tuple[tuple[bytes, int], ...]:
    """A summary's ``revoked`` list: sorted, unique ``(credential id, revoked_at_ms)``."""
    if type(plain) is not tuple or len(plain) > MAX_REVOCATIONS or any(
            type(item) is not tuple or len(item) != 2 or type(item[0]) is not bytes
            or len(item[0]) != _CRED_ID_LEN or type(item[1]) is not int
            or not 0 <= item[1] <= MAX_COUNTER for item in plain):
        raise bad(f"revoked must be at most {MAX_REVOCATIONS} (credential id, ms) pairs")
    if any(a[0] >= b[0] for a, b in pairwise(plain)):
        raise bad("revoked must be sorted by credential id, each id once")
    revoked: tuple[tuple[bytes, int], ...] = plain
    return revoked


def _revocations(plain: Any) -> tuple[bytes, ...]:
    if type(plain) is not tuple or len(plain) > MAX_REVOCATIONS or any(
            type(r) is not bytes or not 0 < len(r) <= MAX_REVOCATION_LEN for r in plain):
        raise bad(f"revocations must be at most {MAX_REVOCATIONS} byte strings of at most"
                  f" {MAX_REVOCATION_LEN} bytes")
    revocations: tuple[bytes, ...] = plain
    return revocations


# -- summaries --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    """A summary: what its sender holds. On the wire::

        {"v": 1, "rid", "wm": {origin: counter}, "root": 32 bytes[, "me": origin]
         [, "digest": {"scope", "sums": 256 x 8 bytes}][, "want": (key, ...)]
         [, "revoked": ((credential id, revoked_at_ms), ...)][, "rt": 16 x 12 bytes]
         [, "rti": 30 x 12 bytes]}

    ``rt`` (a replica whose retirement table is not empty) is the table's fingerprint:
    per bucket an 8-byte hash sum and a 4-byte entry count (``_retired.py``); with it, an
    origin absent from ``wm`` that the reader's table retires at F counts as held
    through F. ``rti`` (with ``rt``) is the table's difference sketch (``_sketch.py``:
    an invertible Bloom lookup table of its entries), from which a sender of changes
    reads exactly the entries the peer lacks while they are few.
    ``revoked`` (a replica with a trust store) lists the revocations its sender holds,
    sorted by credential id; absent, the sender takes none, and none are shipped to it.
    """

    rid: str
    wm: dict[str, int]
    root: bytes
    me: str | None = None  # the sender's minting origin, when it names it
    digest: tuple[PeerScope | None, bytes] | None = None  # (scope, 256 sums of 8 bytes)
    want: tuple[str, ...] = ()  # key ids the sender asks for whatever the watermarks say
    revoked: tuple[tuple[bytes, int], ...] | None = None  # revocations held, or not taken
    rt: bytes | None = None  # the retirement table's fingerprint, when it is not empty
    rti: bytes | None = None  # the retirement table's difference sketch (with ``rt``)

    def pack(self) -> bytes:
        plain: dict[str, Any] = {"v": 1, "rid": self.rid, "wm": self.wm, "root": self.root}
        if self.rt is not None:
            plain["rt"] = self.rt
            if self.rti is not None:
                plain["rti"] = self.rti
        if self.revoked is not None:
            plain["revoked"] = self.revoked
        if self.me is not None:
            plain["me"] = self.me
        if self.digest is not None:
            plain["digest"] = {"scope": scope_plain(self.digest[0]), "sums": self.digest[1]}
        if self.want:
            plain["want"] = self.want
        packed: bytes = packb(plain)
        return packed


def parse_summary(data: bytes) -> Summary:
    """A peer's summary, validated (DecodeError on anything malformed)."""
    plain = unpackb(data)
    if type(plain) is not dict or plain.get("v") != 1:
        raise bad("expected a version-1 summary map")
    if not set(plain) <= _SUMMARY_FIELDS:
        raise bad("unknown summary field")
    rid = plain.get("rid")
    if type(rid) is not str:
        raise bad("rid must be a str")
    wm = _counter_map(plain.get("wm"), "wm")
    root = plain.get("root")
    if type(root) is not bytes or len(root) != 32:
        raise bad("root must be 32 bytes")
    me = plain.get("me")
    if me is not None:
        _counter_map({me: 0} if type(me) is str else None, "me")
        if me == rid or base_replica(me) != rid:
            raise bad("me must be an origin of the summary's rid")
    found = plain.get("digest")
    dig: tuple[PeerScope | None, bytes] | None = None
    if found is not None:
        if type(found) is not dict or set(found) != {"scope", "sums"}:
            raise bad("digest must be {scope, sums}")
        sums = found["sums"]
        if type(sums) is not bytes or len(sums) != DIGEST_BUCKETS * DIGEST_BUCKET_BYTES:
            raise bad(f"digest sums must be {DIGEST_BUCKETS} x {DIGEST_BUCKET_BYTES} bytes")
        dig = (parse_scope(found["scope"]), sums)
    want = plain.get("want", ())
    if type(want) is not tuple:
        raise bad("want must be an array of memory ids")
    try:
        check_want(want)
    except InvalidArgumentError as exc:
        raise bad(str(exc)) from None
    found = plain.get("revoked")
    revoked = None if found is None else _revoked(found)
    rt = plain.get("rt")
    if rt is not None and (type(rt) is not bytes
                           or len(rt) != RETIRED_BUCKETS * RETIRED_BUCKET_BYTES):
        raise bad(f"rt must be {RETIRED_BUCKETS} x {RETIRED_BUCKET_BYTES} bytes")
    rti = plain.get("rti")
    if rti is not None and (rt is None or type(rti) is not bytes
                            or len(rti) != _sketch.SKETCH_BYTES):
        raise bad(f"rti must be {_sketch.CELLS} x {_sketch.CELL_BYTES} bytes, beside rt")
    return Summary(rid, wm, root, me, dig, want, revoked, rt, rti)


# -- changes payloads ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Changes:
    """A changes payload; ``states`` are key-state bytes, undecoded. On the wire::

        {"v": 1, "rid", "scope", "states": (bytes, ...), "through":
         {origin: (base, counter)}[, "hashes": ((key, 8 bytes), ...)]
         [, "proofs": (((origin, counter, proof bytes), ...) per state, ...)]
         [, "creds": (credential bytes, ...)][, "revocations": (bytes, ...)]
         [, "retired": {origin: final counter}]}

    ``retired``: entries of the sender's retirement table (at most
    :data:`MAX_RETIRED_PER_PAYLOAD`, counters at least 1), max-joined before the states.
    ``revocations``: issuer-signed revocations the receiver's summary lacked (or held
    later), applied before the states are judged.
    ``proofs`` (signed writes) is absent or runs parallel to ``states``; ``creds`` holds
    the credentials of the origins those proofs name, so a relay passes on third
    parties' writes (docs/internals.md, "Signed writes").
    """

    rid: str
    scope: PeerScope | None  # the scope the sender filtered with
    states: tuple[bytes, ...]
    through: dict[str, tuple[int, int]]  # origin -> (base, counter) claims
    hashes: tuple[tuple[str, bytes], ...] = ()  # digest repair's (key, hash8) listing
    proofs: tuple[tuple[tuple[str, int, bytes], ...], ...] = ()  # () or one per state
    creds: tuple[bytes, ...] = ()
    revocations: tuple[bytes, ...] = ()
    retired: dict[str, int] | None = None  # retirement table entries

    def pack(self) -> bytes:
        plain: dict[str, Any] = {"v": 1, "rid": self.rid, "scope": scope_plain(self.scope),
                                 "states": self.states, "through": self.through}
        if self.hashes:
            plain["hashes"] = self.hashes
        if any(self.proofs):
            plain["proofs"] = self.proofs
        if self.creds:
            plain["creds"] = self.creds
        if self.revocations:
            plain["revocations"] = self.revocations
        if self.retired:
            plain["retired"] = self.retired
        packed: bytes = packb(plain)
        return packed

    @property
    def empty(self) -> bool:
        """Whether it carries nothing besides its envelope (``rid`` and ``scope``)."""
        return not (self.states or self.through or self.hashes or self.revocations
                    or self.retired)


def parse_changes(data: bytes) -> Changes:
    """A peer's changes payload, its envelope validated (DecodeError if malformed)."""
    plain = unpackb(data)
    if type(plain) is not dict or plain.get("v") != 1 or \
            not _CHANGES_FIELDS <= set(plain) <= _CHANGES_FIELDS | _OPTIONAL_CHANGES:
        raise bad("expected a version-1 changes map")
    scope = parse_scope(plain["scope"])
    hashes = _hashes(plain.get("hashes", ()))
    rid, states = _rid(plain["rid"]), plain["states"]
    through = _claim_map(plain["through"])
    if type(states) is not tuple or any(type(r) is not bytes for r in states):
        raise bad("states must be an array of byte strings")
    proofs = _proofs(plain.get("proofs", ()), len(states))
    creds = plain.get("creds", ())
    if type(creds) is not tuple or len(creds) > MAX_CREDS or any(
            type(c) is not bytes or not 0 < len(c) <= MAX_CRED_LEN for c in creds):
        raise bad(f"creds must be at most {MAX_CREDS} credentials of at most"
                  f" {MAX_CRED_LEN} bytes")
    revocations = _revocations(plain.get("revocations", ()))
    retired = plain.get("retired")
    if retired is not None:
        retired = _counter_map(retired, "retired")
        if len(retired) > MAX_RETIRED_PER_PAYLOAD or 0 in retired.values():
            raise bad(f"retired is at most {MAX_RETIRED_PER_PAYLOAD} origin -> counter"
                      " entries, counters at least 1")
    return Changes(rid, scope, states, through, hashes, proofs, creds, revocations,
                   retired)


def _proofs(plain: Any, count: int) -> tuple[tuple[tuple[str, int, bytes], ...], ...]:
    """The ``proofs`` field: absent, or one tuple per state of ``(origin, counter,
    proof)`` triples (the proof bytes are parsed where they are checked)."""
    if plain == ():
        return ()
    if type(plain) is not tuple or len(plain) != count:
        raise bad("proofs must run parallel to states")
    for entry in plain:
        if type(entry) is not tuple or len(entry) > MAX_PROOFS:
            raise bad(f"a state carries at most {MAX_PROOFS} proofs")
        for item in entry:
            if type(item) is not tuple or len(item) != 3 or type(item[0]) is not str \
                    or type(item[1]) is not int or not 0 < item[1] <= MAX_COUNTER \
                    or type(item[2]) is not bytes or len(item[2]) > MAX_PROOF_LEN:
                raise bad("a proof is (origin, counter, at most"
                          f" {MAX_PROOF_LEN} bytes)")
    proofs: tuple[tuple[tuple[str, int, bytes], ...], ...] = plain
    return proofs
