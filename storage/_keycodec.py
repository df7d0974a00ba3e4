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
    KIND_MEMORY,
    KIND_SET,
    OP_DELETE,
    OP_RESOLVE,
    OPS,
    POLICIES,
    TIERS,
    Header,
    KeyState,
    VersionData,
)

from .wire import MAX_KEY_LEN

__all__ = ["MAX_FIELD_LEN", "decode", "encode"]

_LIMITS = DEFAULT_LIMITS
_POLICY_CODE = {name: i for i, name in enumerate(POLICIES)}
_TIER_CODE = {name: i for i, name in enumerate(TIERS)}
_new_version = tuple.__new__  # VersionData from a ready tuple, without its __new__ call

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
    return sorted(names)


def _flat(pairs: Any, index: dict[str, int]) -> tuple[int, ...]:
    """Flatten sorted (replica, counter) pairs to (ri, counter, ri, counter, ...)."""
    out: list[int] = []
    for replica, counter in sorted(pairs):
        out.append(index[replica])
        out.append(counter)
    return tuple(out)


def encode(state: KeyState) -> bytes:
    """The canonical bytes of ``state``."""
    h = state.header
    if h.kind == KIND_MEMORY and len(state.ctx) == 1 and len(state.body) == 1:
        # the commonest state (a memory one replica wrote once, e.g. a fresh add): the
        # general layout below with a single replica id at index 0, built directly
        ((origin, counter),) = state.ctx.items()
        ((dot, v),) = state.body.items()
        if counter and dot.replica == origin and v.op != OP_RESOLVE and \
                (h.created is None or h.created.replica == origin):
            fresh: bytes = pack_canonical((1, (origin,), _header_plain(h, {origin: 0}),
                                           (0, counter), state.forgotten,
                                           ((0, dot.counter, v[:8]),)))
            return fresh
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
        body = []
        for dot, v in sorted(state.body.items()):
            version: tuple[Any, ...] = v[:8]  # all but resolver and inputs
            if v.op == OP_RESOLVE:
                version = (*version, v.resolver, _flat(v.inputs, index))
            body.append((index[dot.replica], dot.counter, version))
    plain = (1, tuple(rids), _header_plain(state.header, index), tuple(ctx),
             state.forgotten, tuple(body))
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
    if type(raw) is not tuple or len(raw) not in (8, 10):
        raise _bad("a version is a tuple of 8 or 10 fields")
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
    if op == OP_RESOLVE:
        if len(raw) != 10:
            raise _bad("RESOLVE versions carry resolver and inputs")
        _, _, _, _, _, _, _, _, raw_resolver, raw_inputs = raw
        resolver = _opt_str(raw_resolver, "resolver")
        inputs = tuple((d.replica, d.counter) for d in _dots(raw_inputs, rids, used))
        return VersionData(text, actor, role, wall, logical, confidence, metadata, op,
                           resolver, inputs)
    if len(raw) != 8:
        raise _bad("only RESOLVE versions carry resolver and inputs")
    version: VersionData = _new_version(VersionData, (*raw, None, ()))
    return version


def decode(data: bytes, *, check_canonical: bool = True) -> KeyState:
    """Decode and validate key-state bytes; :class:`DecodeError` on anything wrong.

    With ``check_canonical`` (always, for bytes from a peer) the bytes must be exactly
    what :func:`encode` writes for the decoded state.
    """
    plain = _unpack(data)
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
        for version in state.body.values() if state.header.kind == KIND_MEMORY else ():
            _check_meta(version.metadata, 0)
            if math.copysign(1.0, version.confidence) < 0:
                raise _bad("confidence is negative zero")
        try:
            again = pack_canonical(plain)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        if again != data:
            raise _bad("bytes are not in canonical form")
    return state


def _unpack(data: bytes) -> Any:
    """msgpack under the codec's explicit limits, without the generic validation walk:
    :func:`_from_plain` checks the type of every field of the layout itself and
    :func:`_check_meta` walks the only free-form part (metadata)."""
    if not isinstance(data, bytes):
        raise _bad("expected bytes")
    return unpack_unchecked(data, limits=_LIMITS)


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

    Hot path of ``sync_apply`` (every shipped state goes through it), so the checks of
    the common case (a memory) are written inline rather than through helpers.
    """
    if type(plain) is not tuple or len(plain) != 6 or plain[0] != 1:
        raise _bad("expected (1, rids, header, ctx, forgotten, body)")
    _, rids, raw_header, raw_ctx, forgotten, raw_body = plain
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
    if len(used) != nrids:
        raise _bad("unused replica id in rids")
    return KeyState(header, ctx, forgotten, body)


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
