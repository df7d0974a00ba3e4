"""The canonical byte form of a key state (:mod:`memmesh.crdt.keystate`): encode, and
decode with full validation, since states arrive from untrusted peers.

Positional msgpack with the key's replica ids interned, close to the raw size of the
payload (the layout: docs/internals.md, section 2). Equal states have equal bytes, and
:func:`decode` checks that the bytes it is given are exactly that form, so two replicas
hash equal states identically.
"""

from __future__ import annotations

import math
from typing import Any

from memmesh.crdt import (
    DEFAULT_LIMITS,
    MAX_REPLICA_LEN,
    DecodeError,
    Dot,
    InvalidArgumentError,
    Timestamp,
    check_element,
    pack_canonical,
    packb,
    unpack_unchecked,
)
from memmesh.crdt.keystate import (
    DEFAULT_KEEP,
    KIND_MEMORY,
    KIND_SET,
    MAX_KEEP,
    OP_DELETE,
    OP_FORGET,
    OP_NOOP,
    OP_RESOLVE,
    OPS,
    POLICIES,
    TIERS,
    EventData,
    Header,
    KeyState,
    VersionData,
)

from .wire import MAX_KEY_LEN

__all__ = ["MAX_FIELD_LEN", "decode", "encode"]

_LIMITS = DEFAULT_LIMITS
_POLICY_CODE = {name: i for i, name in enumerate(POLICIES)}
_TIER_CODE = {name: i for i, name in enumerate(TIERS)}
_new_version = tuple.__new__  # a named tuple from a ready tuple, without its __new__ call
# Dots and timestamps whose every field is checked already (:func:`_single_writer`),
# built without their validating ``__post_init__``: set through the slot descriptors
_new_object = object.__new__
_set_dot_replica, _set_dot_counter = (vars(Dot)[f].__set__ for f in ("replica", "counter"))
_set_wall, _set_logical, _set_replica = (vars(Timestamp)[f].__set__
                                         for f in ("wall_ms", "logical", "replica"))

MAX_FIELD_LEN = 256
MAX_INT64 = 2**63 - 1


# ------------------------------------------------------------------------ encoding


def _header_plain(h: Header, index: dict[str, int]) -> tuple[Any, ...]:
    created = None
    if h.created is not None:
        created = (h.created.wall_ms, h.created.logical, index.get(h.created.replica, -1))
    return (h.key, h.kind, h.app_id, h.user_id, h.agent_id, h.run_id,
            _POLICY_CODE[h.policy], _TIER_CODE[h.tier], h.priority, created, h.expires_at)


def _replicas(state: KeyState) -> list[str]:
    names = set(state.ctx)
    if state.header.created is not None:
        names.add(state.header.created.replica)
    if state.header.kind == KIND_SET:
        for dots in state.body.values():
            names.update(d.replica for d in dots)
    else:
        for dot, version in state.body.items():
            names.add(dot.replica)
            names.update(r for r, _ in version.inputs)
    for dot, event in state.events.items():
        names.add(dot.replica)
        names.update(r for r, _ in event.ctx)
        if event.version is not None:
            names.update(r for r, _ in event.version.inputs)
    return sorted(names)


def _flat(pairs: Any, index: dict[str, int]) -> tuple[int, ...]:
    """Flatten sorted (replica, counter) pairs to (ri, counter, ri, counter, ...)."""
    out: list[int] = []
    for replica, counter in sorted(pairs):
        out.append(index[replica])
        out.append(counter)
    return tuple(out)


def _version_plain(v: VersionData, index: dict[str, int]) -> tuple[Any, ...]:
    """A version as stored: 8 fields, 10 for a RESOLVE (resolver, inputs), 11 when it
    carries an importance."""
    plain: tuple[Any, ...] = v[:8]  # all but resolver, inputs and importance
    if v.op == OP_RESOLVE or v.importance is not None:
        plain = (*plain, v.resolver, _flat(v.inputs, index))
        if v.importance is not None:
            plain = (*plain, v.importance)
    return plain


def _event_plain(dot: Dot, e: EventData, index: dict[str, int],
                 body: dict[Any, Any]) -> tuple[Any, ...]:
    """An event as stored: ``(ri, counter, ctx, detail)`` when it wrote the version
    standing in the body under its dot (not stored twice), ``(ri, counter, ctx, detail,
    version)`` when it wrote another version (its op, actor, role and time are the
    version's), else ``(ri, counter, op, actor, role, wall_ms, logical, ctx, detail)``."""
    ctx = _flat(e.ctx, index)
    if e.version is not None:
        if body.get(dot) == e.version:
            return (index[dot.replica], dot.counter, ctx, e.detail)
        return (index[dot.replica], dot.counter, ctx, e.detail, _version_plain(e.version, index))
    return (index[dot.replica], dot.counter, e.op, e.actor, e.role, e.wall_ms, e.logical, ctx,
            e.detail)


def _encode_single_writer(state: KeyState) -> bytes | None:
    """The general layout of :func:`encode`, built directly for the commonest state (a
    memory one origin wrote: one replica id, at index 0; one version, neither a
    RESOLVE nor weighted; no event, or only the one that wrote it); None otherwise."""
    h = state.header
    ((origin, counter),) = state.ctx.items()
    ((dot, v),) = state.body.items()
    if not counter or dot.replica != origin or v.op == OP_RESOLVE \
            or v.importance is not None or (h.created is not None
                                            and h.created.replica != origin):
        return None
    body = ((0, dot.counter, v[:8]),)
    if not state.events:
        if state.keep != DEFAULT_KEEP:
            return None
        fresh: bytes = pack_canonical((1, (origin,), _header_plain(h, {origin: 0}),
                                       (0, counter), state.forgotten, body))
        return fresh
    ((edot, e),) = state.events.items()
    if edot != dot or e.version is None or len(e.ctx) != 1 or e.ctx[0][0] != origin \
            or (e.version is not v and e.version != v):
        return None
    fresh = pack_canonical((2, (origin,), _header_plain(h, {origin: 0}), (0, counter),
                            state.forgotten, body, state.keep,
                            ((0, dot.counter, (0, e.ctx[0][1]), e.detail),)))
    return fresh


def encode(state: KeyState) -> bytes:
    """The canonical bytes of ``state``."""
    h = state.header
    if h.kind == KIND_MEMORY and len(state.ctx) == 1 and len(state.body) == 1 \
            and len(state.events) <= 1:
        fresh = _encode_single_writer(state)
        if fresh is not None:
            return fresh
    return _encode_general(state)


def _encode_general(state: KeyState) -> bytes:
    """:func:`encode` for every state."""
    rids = _replicas(state)
    index = {r: i for i, r in enumerate(rids)}
    ctx: list[int] = []
    for origin in rids:
        counter = state.ctx.get(origin)
        if counter:
            ctx.append(index[origin])
            ctx.append(counter)
    body: list[Any]
    if state.header.kind == KIND_SET:
        body = sorted(((e, _flat(((d.replica, d.counter) for d in dots), index))
                       for e, dots in state.body.items()),
                      key=lambda item: packb(item[0]))
    else:
        body = [(index[dot.replica], dot.counter, _version_plain(v, index))
                for dot, v in sorted(state.body.items())]
    plain: tuple[Any, ...] = (1, tuple(rids), _header_plain(state.header, index), tuple(ctx),
                              state.forgotten, tuple(body))
    if state.events or state.keep != DEFAULT_KEEP:
        # format 2 (the timeline): format 1 plus keep and the events by dot; a state
        # without events and with the default keep is written as format 1, so states
        # written before the timeline keep their bytes (and their digest)
        events = tuple(_event_plain(d, e, index, state.body) for d, e in
                       sorted(state.events.items(), key=lambda item: (index[item[0].replica],
                                                                       item[0].counter)))
        plain = (2, *plain[1:], state.keep, events)
    # Every part is already canonical plain data (metadata maps are key-sorted by the
    # memory model and checked sorted on decode; floats are never -0.0), so msgpack's
    # own packing is exactly codec.packb here, without its validation walk.
    out: bytes = pack_canonical(plain)
    return out


# ------------------------------------------------------------------------ decoding


def _bad(message: str) -> DecodeError:
    return DecodeError(f"invalid key state: {message}")


def _opt_str(value: Any, what: str, limit: int = MAX_FIELD_LEN) -> str | None:
    if value is None:
        return None
    if type(value) is not str or len(value) > limit:
        raise _bad(f"{what} must be a str of at most {limit} characters or None")
    return value


def _int(value: Any, what: str, low: int = 0) -> int:
    if type(value) is not int or not low <= value <= MAX_INT64:
        raise _bad(f"{what} must be an int >= {low}")
    return value


def _dots(flat: Any, rids: tuple[str, ...], used: set[int]) -> tuple[Dot, ...]:
    if type(flat) is not tuple or len(flat) % 2:
        raise _bad("dot list must be a flat tuple of (ri, counter) pairs")
    out: list[Dot] = []
    prev = (-1, 0)
    for i in range(0, len(flat), 2):
        ri, counter = flat[i], flat[i + 1]
        if type(ri) is not int or not 0 <= ri < len(rids):
            raise _bad("replica index out of range")
        _int(counter, "counter", 1)
        if (ri, counter) <= prev:
            raise _bad("dots must be sorted and unique")
        prev = (ri, counter)
        used.add(ri)
        out.append(Dot(rids[ri], counter))
    return tuple(out)


_MAX_LOGICAL = 2**32 - 1


def _version(raw: Any, rids: tuple[str, ...], used: set[int], policy: str) -> VersionData:
    if type(raw) is not tuple or len(raw) not in (8, 10, 11):
        raise _bad("a version is a tuple of 8, 10 or 11 fields")
    text, actor, role, wall, logical, confidence, metadata, op = raw[:8]
    if type(op) is not int or not 0 <= op < len(OPS):
        raise _bad("unknown version op")
    if op == OP_DELETE:
        if policy != "lww" or text is not None:
            raise _bad("DELETE versions exist only under lww and carry no text")
    elif type(text) is not str:
        raise _bad("version text must be a str")
    if actor is not None and (type(actor) is not str or len(actor) > MAX_FIELD_LEN):
        _opt_str(actor, "actor")
    if role is not None and (type(role) is not str or len(role) > MAX_FIELD_LEN):
        _opt_str(role, "role")
    if type(wall) is not int or not 0 <= wall <= MAX_INT64:
        raise _bad("wall_ms must be an int >= 0")
    if type(logical) is not int or not 0 <= logical <= MAX_INT64:
        raise _bad("logical must be an int >= 0")
    if type(confidence) is not float:
        raise _bad("confidence must be a float")
    if type(metadata) is not dict:
        raise _bad("metadata must be a map")
    if logical > _MAX_LOGICAL:
        raise _bad("logical clock out of range")
    importance: float | None = None
    if len(raw) == 11:
        importance = raw[10]
        if type(importance) is not float or not 0.0 <= importance <= 1.0:
            raise _bad("importance must be a float in [0, 1]")
    if op == OP_RESOLVE:
        if len(raw) == 8:
            raise _bad("RESOLVE versions carry resolver and inputs")
        raw_resolver, raw_inputs = raw[8], raw[9]
        resolver = _opt_str(raw_resolver, "resolver")
        inputs = tuple((d.replica, d.counter) for d in _dots(raw_inputs, rids, used))
        return VersionData(text, actor, role, wall, logical, confidence, metadata, op,
                           resolver, inputs, importance)
    if len(raw) == 10 or (len(raw) == 11 and (raw[8] is not None or raw[9] != ())):
        raise _bad("only RESOLVE versions carry resolver and inputs")
    if importance is not None:
        return VersionData(text, actor, role, wall, logical, confidence, metadata, op,
                           None, (), importance)
    version: VersionData = _new_version(VersionData, (*raw, None, (), None))
    return version


def _event_ctx(flat: Any, rids: tuple[str, ...], used: set[int], ctx: dict[str, int]
               ) -> tuple[tuple[str, int], ...]:
    """An event's context: ``(ri, counter, ...)`` by ascending ri, one entry per origin,
    each within the key's context (inline: one per event of every state decoded)."""
    if type(flat) is not tuple or len(flat) % 2:
        raise _bad("dot list must be a flat tuple of (ri, counter) pairs")
    pairs: list[tuple[str, int]] = []
    prev = -1
    nrids = len(rids)
    for i in range(0, len(flat), 2):
        ri, counter = flat[i], flat[i + 1]
        if type(ri) is not int or not prev < ri < nrids:
            raise _bad("an event's context is one entry per origin, by replica index")
        origin = rids[ri]
        if type(counter) is not int or not 1 <= counter <= ctx.get(origin, 0):
            raise _bad("an event's context is within the key's")
        prev = ri
        used.add(ri)
        pairs.append((origin, counter))
    return tuple(pairs)


def _events(raw: Any, rids: tuple[str, ...], used: set[int], header: Header,
            ctx: dict[str, int], forgotten: bool, body: dict[Any, Any]
            ) -> dict[Dot, EventData]:
    """The events of a format-2 state: sorted by dot, each covered by the key's context
    with a context of its own no greater; a tombstone keeps FORGET events only, a set
    none; versions follow :func:`_version`."""
    if type(raw) is not tuple:
        raise _bad("events must be a tuple")
    if raw and header.kind != KIND_MEMORY:
        raise _bad("only memories log events")
    out: dict[Dot, EventData] = {}
    last = (-1, 0)
    for item in raw:
        if type(item) is not tuple or len(item) not in (4, 5, 9):
            raise _bad("an event is a tuple of 4, 5 or 9 fields")
        ri, counter = item[0], item[1]
        if type(ri) is not int or not 0 <= ri < len(rids):
            raise _bad("replica index out of range")
        _int(counter, "counter", 1)
        if (ri, counter) <= last:
            raise _bad("events must be sorted by dot and unique")
        last = (ri, counter)
        used.add(ri)
        dot = Dot(rids[ri], counter)
        if counter > ctx.get(dot.replica, 0):
            raise _bad("an event's dot is not covered by the key's context")
        if len(item) in (4, 5):
            if len(item) == 4:
                _, _, raw_ctx, detail = item
                version = body.get(dot)
                if version is None:
                    raise _bad("an event refers to a version the body does not hold")
            else:
                _, _, raw_ctx, detail, raw_version = item
                version = _version(raw_version, rids, used, header.policy)
                if body.get(dot) == version:
                    raise _bad("an event repeats the version the body holds")
            op, actor, role, wall, logical = (version.op, version.actor, version.role,
                                              version.wall_ms, version.logical)
        else:
            _, _, op, actor, role, wall, logical, raw_ctx, detail = item
            version = None
            if type(op) is not int or op not in (OP_DELETE, OP_NOOP, OP_FORGET) or \
                    (op == OP_DELETE and header.policy != "mv"):
                raise _bad("an event without a version is an mv DELETE, a NOOP or a FORGET")
            _opt_str(actor, "actor")
            _opt_str(role, "role")
            _int(wall, "wall_ms")
            if type(logical) is not int or not 0 <= logical <= _MAX_LOGICAL:
                raise _bad("logical clock out of range")
        if forgotten != (op == OP_FORGET):
            raise _bad("a tombstone logs FORGET events only, and only a tombstone does")
        if type(detail) is not dict:
            raise _bad("an event's detail must be a map")
        out[dot] = EventData(op, actor, role, wall, logical,
                             _event_ctx(raw_ctx, rids, used, ctx), detail, version)
    return out


def decode(data: bytes, *, check_canonical: bool = True) -> KeyState:
    """Decode and validate key-state bytes; :class:`DecodeError` on anything wrong.

    With ``check_canonical`` (always, for bytes from a peer) the bytes must be exactly
    what :func:`encode` writes for the decoded state.
    """
    plain = _unpack(data, check_keys=False)  # our own bytes, or canonical-checked below
    try:
        state = _from_plain(plain)
    except DecodeError:
        raise
    except (TypeError, ValueError) as exc:  # e.g. Dot/Timestamp range checks
        raise _bad(str(exc)) from None
    if check_canonical:
        # Equivalent to ``encode(state) == data`` (what canonical means here) at a tenth
        # of the cost: _from_plain has checked every ordering and type of the layout, so
        # what is left is msgpack's own freedom (integer widths, float sizes, str vs bin,
        # map key order, -0.0), which re-packing the decoded data and the metadata walk
        # below pin down: msgpack.packb of sorted-key plain data is exactly codec.packb.
        # (each version once: an event that wrote the version standing in the body
        # holds that very object; detail and metadata are maps, checked above)
        versions = {id(v): v for v in state.body.values()} \
            if state.header.kind == KIND_MEMORY else {}
        for event in state.events.values():
            if event.detail:
                _check_meta(event.detail, 0)
            if event.version is not None:
                versions[id(event.version)] = event.version
        for version in versions.values():
            if version.metadata:
                _check_meta(version.metadata, 0)
            if math.copysign(1.0, version.confidence) < 0:
                raise _bad("confidence is negative zero")
            if version.importance is not None and math.copysign(1.0, version.importance) < 0:
                raise _bad("importance is negative zero")
        try:
            again = pack_canonical(plain)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        if again != data:
            raise _bad("bytes are not in canonical form")
    return state


def _unpack(data: bytes, check_keys: bool) -> Any:
    """msgpack under the codec's explicit limits, without the generic validation walk:
    :func:`_from_plain` checks the type of every field of the layout itself and
    :func:`_check_meta` walks the only free-form part (metadata). Duplicate map keys
    are left to the canonical check (a duplicate shortens the re-packed map) unless
    ``check_keys``."""
    if not isinstance(data, bytes):
        raise _bad("expected bytes")
    return unpack_unchecked(data, limits=_LIMITS, check_keys=check_keys)


def _check_meta(value: Any, depth: int) -> None:
    """Metadata must be canonical plain data: sorted str keys, no NaN or -0.0, bounded."""
    kind = type(value)
    if kind is dict:
        if depth >= _LIMITS.max_depth:
            raise _bad("metadata nested too deeply")
        if not value:
            return
        keys = list(value)
        if any(type(k) is not str for k in keys):  # msgpack's strict_map_key lets bytes in
            raise _bad("metadata map keys must be str")
        if keys != sorted(keys):
            raise _bad("metadata map keys are not sorted")
        for item in value.values():
            _check_meta(item, depth + 1)
    elif kind is tuple:
        if depth >= _LIMITS.max_depth:
            raise _bad("metadata nested too deeply")
        for item in value:
            _check_meta(item, depth + 1)
    elif kind is float:
        if math.isnan(value) or (value == 0.0 and math.copysign(1.0, value) < 0):
            raise _bad("metadata floats must not be NaN or -0.0")
    elif not (value is None or kind in (bool, int, str, bytes)):
        raise _bad("metadata must be plain data")


def _from_plain(plain: Any) -> KeyState:
    """Validate decoded plain data against the layout; build the state.

    Hot path of ``sync_apply`` (every shipped state goes through it): the commonest
    layout is checked by :func:`_single_writer` in one pass, and the checks of the
    general walk are written inline rather than through helpers.
    """
    fast = _single_writer(plain)
    return fast if fast is not None else _general(plain)


def _general(plain: Any) -> KeyState:
    """:func:`_from_plain` for every layout."""
    if type(plain) is not tuple or not plain or (len(plain), plain[0]) not in ((6, 1), (8, 2)):
        raise _bad("expected (1, rids, header, ctx, forgotten, body) or"
                   " (2, rids, header, ctx, forgotten, body, keep, events)")
    _, rids, raw_header, raw_ctx, forgotten, raw_body = plain[:6]
    if type(rids) is not tuple:
        raise _bad("rids must be a tuple of str")
    prev_rid: str | None = None
    for r in rids:
        if type(r) is not str:
            raise _bad("rids must be a tuple of str")
        if prev_rid is not None and r <= prev_rid:
            raise _bad("rids must be sorted and unique")
        if not 0 < (len(r) if r.isascii() else len(r.encode())) <= MAX_REPLICA_LEN \
                or "\x00" in r:
            raise _bad("bad replica id")
        prev_rid = r
    nrids = len(rids)
    used: set[int] = set()
    header = _header(raw_header, rids, used)
    if type(forgotten) is not bool:
        raise _bad("forgotten must be a bool")
    if type(raw_ctx) is not tuple or len(raw_ctx) % 2:
        raise _bad("dot list must be a flat tuple of (ri, counter) pairs")
    ctx: dict[str, int] = {}
    prev_ri = -1
    for i in range(0, len(raw_ctx), 2):
        ri, counter = raw_ctx[i], raw_ctx[i + 1]
        if type(ri) is not int or not 0 <= ri < nrids:
            raise _bad("replica index out of range")
        if type(counter) is not int or not 1 <= counter <= MAX_INT64:
            raise _bad("counter must be an int >= 1")
        if ri <= prev_ri:
            raise _bad("one ctx entry per replica" if ri == prev_ri and counter > ctx[rids[ri]]
                       else "dots must be sorted and unique")
        prev_ri = ri
        used.add(ri)
        ctx[rids[ri]] = counter
    if type(raw_body) is not tuple:
        raise _bad("body must be a tuple")
    if forgotten and raw_body:
        raise _bad("a forgotten key keeps no content")
    body: dict[Any, Any] = {}
    if header.kind == KIND_SET:
        prev: bytes | None = None
        for item in raw_body:
            if type(item) is not tuple or len(item) != 2:
                raise _bad("set entries are (element, dots)")
            element, flat = item
            try:  # the rule ORSet itself applies: elements equal exactly when their bytes are
                check_element(element)
            except InvalidArgumentError as exc:
                raise _bad(str(exc)) from None
            key = packb(element)
            if prev is not None and key <= prev:
                raise _bad("set elements must be sorted and unique")
            prev = key
            dots = _dots(flat, rids, used)
            if not dots:
                raise _bad("a set element needs at least one dot")
            _covered(dots, ctx)
            body[element] = frozenset(dots)
    else:
        policy = header.policy
        if policy == "lww" and len(raw_body) > 1:
            raise _bad("an lww register holds at most one version")
        last = (-1, 0)
        for item in raw_body:
            if type(item) is not tuple or len(item) != 3:
                raise _bad("body entries are (ri, counter, version)")
            ri, counter, raw_version = item
            if type(ri) is not int or not 0 <= ri < nrids:
                raise _bad("replica index out of range")
            if type(counter) is not int or not 1 <= counter <= MAX_INT64:
                raise _bad("counter must be an int >= 1")
            if (ri, counter) <= last:
                raise _bad("body entries must be sorted and unique")
            last = (ri, counter)
            used.add(ri)
            replica = rids[ri]
            if counter > ctx.get(replica, 0):
                raise _bad("a dot of the body is not covered by the key's context")
            body[Dot(replica, counter)] = _version(raw_version, rids, used, policy)
    events: dict[Dot, EventData] = {}
    keep = DEFAULT_KEEP
    if len(plain) == 8:
        keep = plain[6]
        if type(keep) is not int or not 0 <= keep <= MAX_KEEP:
            raise _bad(f"keep must be an int in [0, {MAX_KEEP}]")
        events = _events(plain[7], rids, used, header, ctx, forgotten, body)
        if not events and keep == DEFAULT_KEEP:
            raise _bad("a state without events and with the default keep is format 1")
        protected = body.keys() if header.policy == "mv" and not forgotten else ()
        if sum(1 for d in events if d not in protected) > keep:
            raise _bad("the events are not compacted to keep")
    if len(used) != nrids:
        raise _bad("unused replica id in rids")
    return KeyState(header, ctx, forgotten, body, events, keep)


def _opt_field(value: Any) -> bool:
    """None, or a str the header's scope fields (and versions' actor and role, whose
    rule is laxer) accept."""
    return value is None or (type(value) is str and len(value) <= MAX_FIELD_LEN
                             and "\x00" not in value)


def _single_writer(plain: Any) -> KeyState | None:
    """The commonest layout, a memory written by one origin: one replica id, one
    version (neither a RESOLVE nor weighted) and, in format 2, exactly the event that
    wrote it. Every rule of the general walk that applies to this layout is checked
    here in one pass, so what this accepts the general walk accepts as the same state;
    None for any other layout or anything doubtful (the general walk then decides, and
    names the error)."""
    if type(plain) is not tuple:
        return None
    size = len(plain)
    if size == 8:
        fmt, rids, raw_header, raw_ctx, forgotten, raw_body, keep, raw_events = plain
        if fmt != 2 or type(fmt) is not int or type(keep) is not int \
                or not 0 <= keep <= MAX_KEEP or type(raw_events) is not tuple \
                or len(raw_events) != 1:
            return None
        event = raw_events[0]
        if type(event) is not tuple or len(event) != 4:
            return None
    elif size == 6:
        fmt, rids, raw_header, raw_ctx, forgotten, raw_body = plain
        if fmt != 1 or type(fmt) is not int:
            return None
        keep, event = DEFAULT_KEEP, None
    else:
        return None
    if forgotten is not False or type(rids) is not tuple or len(rids) != 1 \
            or type(raw_ctx) is not tuple or len(raw_ctx) != 2 \
            or type(raw_body) is not tuple or len(raw_body) != 1 \
            or type(raw_header) is not tuple or len(raw_header) != 11:
        return None
    rid = rids[0]
    if type(rid) is not str or not rid.isascii() or not 0 < len(rid) <= MAX_REPLICA_LEN \
            or "\x00" in rid:
        return None
    ri, n = raw_ctx
    if ri != 0 or type(ri) is not int or type(n) is not int or not 1 <= n <= MAX_INT64:
        return None
    item = raw_body[0]
    if type(item) is not tuple or len(item) != 3:
        return None
    ri, counter, raw_version = item
    if ri != 0 or type(ri) is not int or type(counter) is not int or not 1 <= counter <= n:
        return None
    # the header
    key, kind, app, user, agent, run, policy, tier, priority, created, expires = raw_header
    if type(key) is not str or not 0 < len(key) <= MAX_KEY_LEN or "\x00" in key \
            or kind != KIND_MEMORY or type(kind) is not int \
            or type(policy) is not int or not 0 <= policy <= 1 \
            or type(tier) is not int or not 0 <= tier <= 1 or type(priority) is not bool \
            or not ((app is None or _opt_field(app)) and (user is None or _opt_field(user))
                    and (agent is None or _opt_field(agent))
                    and (run is None or _opt_field(run))) \
            or type(created) is not tuple or len(created) != 3:
        return None
    c_wall, c_logical, ri = created
    if ri != 0 or type(ri) is not int or type(c_wall) is not int \
            or not 0 <= c_wall <= MAX_INT64 or type(c_logical) is not int \
            or not 0 <= c_logical <= _MAX_LOGICAL \
            or not (expires is None or (type(expires) is int and 0 <= expires <= MAX_INT64)):
        return None
    # the version
    if type(raw_version) is not tuple or len(raw_version) != 8:
        return None
    text, actor, role, wall, logical, confidence, metadata, op = raw_version
    if type(op) is not int or not 0 <= op < len(OPS) or op == OP_RESOLVE \
            or (type(text) is not str if op != OP_DELETE else (policy != 1 or text is not None)) \
            or not (actor is None or (type(actor) is str and len(actor) <= MAX_FIELD_LEN)) \
            or not (role is None or (type(role) is str and len(role) <= MAX_FIELD_LEN)) \
            or type(wall) is not int or not 0 <= wall <= MAX_INT64 \
            or type(logical) is not int or not 0 <= logical <= _MAX_LOGICAL \
            or type(confidence) is not float or type(metadata) is not dict:
        return None
    version: VersionData = _new_version(VersionData, (*raw_version, None, (), None))
    # the checks above are those of Dot and Timestamp (rid: an ASCII replica id within
    # MAX_REPLICA_LEN; counter within 1..MAX_COUNTER; wall and logical within their
    # ranges), so both are built unchecked
    dot: Dot = _new_object(Dot)
    _set_dot_replica(dot, rid)
    _set_dot_counter(dot, counter)
    stamp: Timestamp = _new_object(Timestamp)
    _set_wall(stamp, c_wall)
    _set_logical(stamp, c_logical)
    _set_replica(stamp, rid)
    events: dict[Dot, EventData] = {}
    if event is not None:
        ri, e_counter, raw_ctx, detail = event
        if ri != 0 or type(ri) is not int or e_counter != counter or type(e_counter) is not int \
                or type(raw_ctx) is not tuple or len(raw_ctx) != 2 or type(detail) is not dict:
            return None
        ri, seen = raw_ctx
        if ri != 0 or type(ri) is not int or type(seen) is not int or not 1 <= seen <= n \
                or (policy == 1 and keep < 1):  # lww protects no event: see _events
            return None
        events[dot] = _new_version(EventData, (op, actor, role, wall, logical, ((rid, seen),),
                                               detail, version))
    header: Header = _new_version(Header, (key, KIND_MEMORY, app, user, agent, run,
                                           POLICIES[policy], TIERS[tier], priority, stamp,
                                           expires))
    return KeyState(header, {rid: n}, False, {dot: version}, events, keep)


def _covered(dots: tuple[Dot, ...], ctx: dict[str, int]) -> None:
    for d in dots:
        if d.counter > ctx.get(d.replica, 0):
            raise _bad("a dot of the body is not covered by the key's context")


def _header(raw: Any, rids: tuple[str, ...], used: set[int]) -> Header:
    if type(raw) is not tuple or len(raw) != 11:
        raise _bad("header must have 11 fields")
    key, kind, app, user, agent, run, policy, tier, priority, created, expires = raw
    if type(key) is not str or not 0 < len(key) <= MAX_KEY_LEN or "\x00" in key:
        raise _bad("key must be a non-empty str without NUL")
    if kind not in (KIND_MEMORY, KIND_SET) or type(kind) is not int:
        raise _bad("unknown kind")
    if type(policy) is not int or not 0 <= policy < 3:
        raise _bad("unknown policy")
    if (kind == KIND_SET) != (policy == 2):
        raise _bad("sets have policy 'set', memories 'mv' or 'lww'")
    if type(tier) is not int or not 0 <= tier < 2:
        raise _bad("unknown tier")
    if type(priority) is not bool:
        raise _bad("priority must be a bool")
    for value, what in ((app, "app_id"), (user, "user_id"), (agent, "agent_id"),
                        (run, "run_id")):
        if value is None or (type(value) is str and len(value) <= MAX_FIELD_LEN
                             and "\x00" not in value):
            continue
        if type(value) is not str or "\x00" in value:
            raise _bad(f"{what} must be a str without NUL or None")
        _opt_str(value, what)
    stamp: Timestamp | None = None
    if created is not None:
        if type(created) is not tuple or len(created) != 3:
            raise _bad("created must be (wall_ms, logical, ri)")
        wall, logical, ri = created
        if type(ri) is not int or not 0 <= ri < len(rids):
            raise _bad("replica index out of range")
        used.add(ri)
        stamp = Timestamp(_int(wall, "wall_ms"), _int(logical, "logical"), rids[ri])
    elif kind == KIND_MEMORY:
        raise _bad("memories carry their creation timestamp")
    if expires is not None:
        _int(expires, "expires_at")
    return Header(key, kind, app, user, agent, run, POLICIES[policy], TIERS[tier], priority,
                  stamp, expires)
