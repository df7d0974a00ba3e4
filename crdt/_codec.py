"""Canonical msgpack encoding of CRDT states, with strict validation on the way in.

* :func:`dump` / :func:`load` turn a state into plain data and back, so another layer
  can nest a state inside its own message. ``load`` trusts nothing (types, ranges,
  sizes, duplicate dots and elements, every live dot covered by the context) and
  raises :class:`DecodeError`.
* :func:`encode` / :func:`decode`: ``FORMAT_VERSION`` byte + ``packb(dump(state))``.
  ``decode`` accepts only the canonical encoding (``encode(decode(b)) == b``), so equal
  states have equal bytes, which digests hash.

Inside a state each replica id is written once, in a sorted table the context and the
live dots refer to by index (the plain forms: docs/internals.md, section 1).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator
from typing import Any, NoReturn, TypeAlias

from ._canonical import check_element, freeze, pack_canonical, unpack_unchecked
from ._causal_context import CausalContext
from ._dot import Dot
from ._dotstore import unchecked
from ._errors import DecodeError, InvalidArgumentError, MemmeshError
from ._hlc import Timestamp
from ._limits import DEFAULT_LIMITS, Limits
from ._lwwregister import LWWRegister
from ._mvregister import MVRegister
from ._orset import ORSet

__all__ = [
    "FORMAT_VERSION",
    "State",
    "decode",
    "dump",
    "dump_context",
    "dump_dot",
    "dump_timestamp",
    "encode",
    "load",
    "load_context",
    "load_dot",
    "load_timestamp",
]

#: The first byte of every :func:`encode` output.
FORMAT_VERSION = 1
_VERSION_BYTE = bytes((FORMAT_VERSION,))

TAG_ORSET = "ors"
TAG_MVREGISTER = "mvr"
TAG_LWWREGISTER = "lww"

State: TypeAlias = "ORSet[Any] | MVRegister[Any] | LWWRegister[Any]"


def _bad(message: str) -> NoReturn:
    raise DecodeError(message)


def _tuple(obj: object, what: str, length: int | None = None) -> tuple[object, ...]:
    if type(obj) is not tuple and type(obj) is not list:
        _bad(f"{what}: expected an array, got {type(obj).__name__}")
    items = tuple(obj)
    if length is not None and len(items) != length:
        _bad(f"{what}: expected {length} items, got {len(items)}")
    return items


def _dict(obj: object, what: str) -> dict[object, object]:
    if type(obj) is not dict:
        _bad(f"{what}: expected a map, got {type(obj).__name__}")
    return obj


def _wrap(what: str, build: Any, *args: object) -> Any:
    try:
        return build(*args)
    except DecodeError:
        raise
    except MemmeshError as exc:
        raise DecodeError(f"{what}: {exc}") from None


# -- dots, timestamps, contexts ----------------------------------------------------


def dump_dot(dot: Dot) -> tuple[str, int]:
    """Plain form of a dot: ``(replica, counter)``."""
    return (dot.replica, dot.counter)


def load_dot(plain: object) -> Dot:
    """Dot from its plain form; :class:`DecodeError` if invalid."""
    replica, counter = _tuple(plain, "dot", 2)
    dot: Dot = _wrap("dot", Dot, replica, counter)
    return dot


def dump_timestamp(timestamp: Timestamp) -> tuple[int, int, str]:
    """Plain form of a timestamp: ``(wall_ms, logical, replica)``."""
    return (timestamp.wall_ms, timestamp.logical, timestamp.replica)


def load_timestamp(plain: object) -> Timestamp:
    """Timestamp from its plain form; :class:`DecodeError` if invalid."""
    wall_ms, logical, replica = _tuple(plain, "timestamp", 3)
    timestamp: Timestamp = _wrap("timestamp", Timestamp, wall_ms, logical, replica)
    return timestamp


def dump_context(context: CausalContext) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    """Plain form of a causal context: ``({replica: n}, {replica: (counter, ...)})``."""
    return ({replica: context.vv[replica] for replica in sorted(context.vv)},
            _cloud_counters(context))


def load_context(plain: object) -> CausalContext:
    """Causal context from its plain form; :class:`DecodeError` if invalid.

    Rejects zero or negative entries, cloud counters that repeat or that the vector
    already covers (duplicate dots); a non-compacted cloud is compacted.
    """
    vv_plain, cloud_plain = _tuple(plain, "context", 2)
    vv = {replica: _vv_entry(n) for replica, n in _dict(vv_plain, "context vector").items()}
    return _context(vv, _dict(cloud_plain, "context cloud").items())


def _cloud_counters(context: CausalContext) -> dict[str, tuple[int, ...]]:
    """The cloud's counters by replica, both ascending."""
    cloud: dict[str, list[int]] = {}
    for dot in context.cloud:
        cloud.setdefault(dot.replica, []).append(dot.counter)
    return {replica: tuple(sorted(cloud[replica])) for replica in sorted(cloud)}


def _vv_entry(counter: object) -> int:
    if type(counter) is not int or counter < 1:
        _bad("context vector: entries must be ints >= 1")
    return counter


def _context(vv: dict[Any, int], cloud_plain: Iterable[tuple[object, object]]) -> CausalContext:
    """The context of vector ``vv`` and the cloud's ``(replica, counters)`` pairs: each
    counter list non-empty and strictly ascending above the vector's entry."""
    cloud: list[Dot] = []
    for replica, counters_plain in cloud_plain:
        counters = _tuple(counters_plain, "context cloud counters")
        if not counters:
            _bad("context cloud: empty counter list")
        floor = vv.get(replica, 0)
        for counter in counters:
            if type(counter) is not int or counter <= floor:
                _bad("context cloud: counters must ascend strictly above the vector entry")
            cloud.append(_wrap("context cloud", Dot, replica, counter))
            floor = counter
    context: CausalContext = _wrap("context", CausalContext, vv, cloud)
    return context


# -- replica tables -----------------------------------------------------------------
#
# Inside a state, replica ids are written once, in a sorted table ``R`` of the
# replicas its context mentions; the context and the live dots refer to them by
# index.  Every live dot is covered by the context, so ``R`` covers the dots too.


def _replica_table(context: CausalContext) -> tuple[tuple[str, ...], dict[str, int]]:
    if context.cloud:
        table = tuple(sorted(set(context.vv) | {dot.replica for dot in context.cloud}))
    else:
        table = tuple(sorted(context.vv))
    return table, {replica: i for i, replica in enumerate(table)}


def _load_table(plain: object) -> tuple[str, ...]:
    table = _tuple(plain, "replica table")
    for i, replica in enumerate(table):
        if type(replica) is not str:
            _bad("replica table: ids must be str")
        if i and not table[i - 1] < replica:  # type: ignore[operator]
            _bad("replica table: ids must be sorted and unique")
    return table  # type: ignore[return-value]


def _index(table: tuple[str, ...], index: object) -> str:
    if type(index) is not int or not 0 <= index < len(table):
        _bad("replica index out of range")
    return table[index]


def _indexed_pairs(table: tuple[str, ...], plain: object, what: str, second: str
                   ) -> Iterator[tuple[str, object]]:
    """``(table[index], value)`` for each pair of the flat ``(index, value, ...)`` array
    ``plain``, indexes strictly ascending."""
    flat = _tuple(plain, what)
    if len(flat) % 2:
        _bad(f"{what}: expected (index, {second}) pairs")
    last = -1
    for i in range(0, len(flat), 2):
        replica = _index(table, flat[i])
        if flat[i] <= last:  # type: ignore[operator]
            _bad(f"{what}: replica indexes must ascend")
        last = flat[i]  # type: ignore[assignment]
        yield replica, flat[i + 1]


def _dump_dotted(tag: str, context: CausalContext
                 ) -> tuple[dict[str, int], tuple[object, ...]]:
    """The replica index of a dot-store state, and its plain form's head ``(tag, R, VV,
    CL)``; the caller appends the entries."""
    table, index = _replica_table(context)
    vv: list[int] = []
    for replica in sorted(context.vv):
        vv += (index[replica], context.vv[replica])
    cloud: list[object] = []
    if context.cloud:
        for replica, counters in _cloud_counters(context).items():
            cloud += (index[replica], counters)
    return index, (tag, table, tuple(vv), tuple(cloud))


def _canonical_order(elements: Iterable[Any]) -> list[Any]:
    """Set elements in the order of their canonical bytes. For str elements alone that
    order is (UTF-8 length, text): msgpack's str headers grow with the length, and
    UTF-8 keeps code point order, which is Python's str order; so two C-level sorts do
    it without packing each element (one ``isascii`` over the joined texts tells when
    the length in characters is the UTF-8 length). Anything else is sorted by its packed
    bytes."""
    items = list(elements)
    if set(map(type, items)) <= {str}:
        items.sort()
        if "".join(items).isascii():
            items.sort(key=len)
        else:
            items.sort(key=lambda e: len(e.encode()))
        return items
    return [e for _, e in sorted((pack_canonical(e), e) for e in items)]


def _load_dotted(fields: tuple[object, ...], what: str
                 ) -> tuple[tuple[str, ...], CausalContext, tuple[object, ...]]:
    """The replica table, the context and the flat entries of a dot-store state."""
    table_plain, vv_plain, cloud_plain, entries_plain = fields
    table = _load_table(table_plain)
    vv = {replica: _vv_entry(n)
          for replica, n in _indexed_pairs(table, vv_plain, "context vector", "counter")}
    context = _context(vv, _indexed_pairs(table, cloud_plain, "context cloud", "counters"))
    if _replica_table(context)[0] != table:
        _bad("replica table: unused replica id")
    return table, context, _tuple(entries_plain, f"{what} entries")


def _live_dot(table: tuple[str, ...], context: CausalContext, seen: Container[Dot],
              index: object, counter: object, what: str) -> Dot:
    """The live dot ``(table[index], counter)``: new to ``seen``, covered by ``context``."""
    dot: Dot = _wrap("dot", Dot, _index(table, index), counter)
    if dot in seen:
        _bad(f"{what}: duplicate dot {dot!r}")
    if not context.contains(dot):
        _bad(f"{what}: dot {dot!r} is not covered by the context")
    return dot


# -- states ------------------------------------------------------------------------


def _dump_orset(state: ORSet[Any]) -> tuple[object, ...]:
    """The plain form; built a list at a time (the common case, one dot per element,
    with one comprehension and C-level slice assignments) rather than an element at a
    time, since an encode of a large set is dominated by per-element Python work."""
    index, head = _dump_dotted(TAG_ORSET, state.context)
    table = state.entries
    order = _canonical_order(table)
    dotsets = list(map(table.__getitem__, order))
    entries: list[object] = [None] * (2 * len(order))
    entries[::2] = order
    if sum(map(len, dotsets)) == len(dotsets):  # (every dot set is non-empty)
        entries[1::2] = [(index[d.replica], d.counter) for (d,) in dotsets]
    else:
        entries[1::2] = [_flat_dots(dots, index) for dots in dotsets]
    return (*head, tuple(entries))


def _flat_dots(dots: frozenset[Dot], index: dict[str, int]) -> tuple[int, ...]:
    """``(i, counter, i, counter, ...)`` of ``dots`` in dot order."""
    flat: list[int] = []
    for replica, counter in sorted((d.replica, d.counter) for d in dots):
        flat += (index[replica], counter)
    return tuple(flat)


def _load_orset(fields: tuple[object, ...]) -> ORSet[Any]:
    table, context, flat = _load_dotted(fields, "orset")
    if len(flat) % 2:
        _bad("orset entries: odd length")
    seen: set[Dot] = set()
    entries: dict[object, frozenset[Dot]] = {}
    for i in range(0, len(flat), 2):
        element = _wrap("orset element", check_element, flat[i])
        dots_flat = _tuple(flat[i + 1], "orset element dots")
        if not dots_flat or len(dots_flat) % 2:
            _bad("orset element dots: must be non-empty (index, counter) pairs")
        dots: list[Dot] = []
        for j in range(0, len(dots_flat), 2):
            dot = _live_dot(table, context, seen, dots_flat[j], dots_flat[j + 1], "orset")
            seen.add(dot)
            dots.append(dot)
        if element in entries:
            _bad("orset: duplicate element")
        entries[element] = frozenset(dots)
    return unchecked(ORSet, entries, context)


def _dump_mvregister(state: MVRegister[Any]) -> tuple[object, ...]:
    index, head = _dump_dotted(TAG_MVREGISTER, state.context)
    flat: list[object] = []
    entries = state.entries
    for replica, counter, dot in sorted((d.replica, d.counter, d) for d in entries):
        flat += (index[replica], counter, entries[dot])
    return (*head, tuple(flat))


def _load_mvregister(fields: tuple[object, ...]) -> MVRegister[Any]:
    table, context, flat = _load_dotted(fields, "mvregister")
    if len(flat) % 3:
        _bad("mvregister entries: expected (index, counter, value) triples")
    entries: dict[Dot, object] = {}
    for i in range(0, len(flat), 3):
        dot = _live_dot(table, context, entries, flat[i], flat[i + 1], "mvregister")
        entries[dot] = _wrap("mvregister value", freeze, flat[i + 2])
    return unchecked(MVRegister, entries, context)


def _dump_lwwregister(state: LWWRegister[Any]) -> tuple[object, ...]:
    stamp = None if state.timestamp is None else dump_timestamp(state.timestamp)
    return (TAG_LWWREGISTER, stamp, state.value)


def _load_lwwregister(fields: tuple[object, ...]) -> LWWRegister[Any]:
    stamp_plain, value_plain = fields
    if stamp_plain is None:
        if value_plain is not None:
            _bad("lwwregister: a value without a timestamp")
        return LWWRegister()
    timestamp = load_timestamp(stamp_plain)
    value = _wrap("lwwregister value", freeze, value_plain)
    return LWWRegister(timestamp, value)


_LOADERS: dict[str, tuple[int, Any]] = {
    TAG_ORSET: (4, _load_orset),
    TAG_MVREGISTER: (4, _load_mvregister),
    TAG_LWWREGISTER: (2, _load_lwwregister),
}


def dump(state: State) -> tuple[object, ...]:
    """Plain, msgpack-able form of a state, tagged with its type (docs/internals.md)."""
    if isinstance(state, ORSet):
        return _dump_orset(state)
    if isinstance(state, MVRegister):
        return _dump_mvregister(state)
    if isinstance(state, LWWRegister):
        return _dump_lwwregister(state)
    raise InvalidArgumentError(f"not a memmesh CRDT state: {type(state).__name__}")


def load(plain: object) -> State:
    """State from its plain form, fully validated; :class:`DecodeError` if invalid."""
    try:
        items = _tuple(plain, "state")
        if not items or type(items[0]) is not str or items[0] not in _LOADERS:
            _bad("state: unknown or missing type tag")
        arity, loader = _LOADERS[items[0]]
        if len(items) != arity + 1:
            _bad(f"state {items[0]!r}: expected {arity} fields, got {len(items) - 1}")
        state: State = loader(items[1:])
        return state
    except DecodeError:
        raise
    except (MemmeshError, TypeError, ValueError, RecursionError) as exc:
        raise DecodeError(f"invalid state: {type(exc).__name__}: {exc}") from None


def encode(state: State) -> bytes:
    """Canonical bytes of a state: ``FORMAT_VERSION`` byte + ``packb(dump(state))``."""
    return _VERSION_BYTE + pack_canonical(dump(state))


def decode(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> State:
    """The state encoded in ``data``; :class:`DecodeError` for anything else.

    Accepts only canonical encodings: ``encode(decode(data)) == data``.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise DecodeError("empty input")
    if data[0] != FORMAT_VERSION:
        raise DecodeError(f"unsupported format version {data[0]}")
    state = load(unpack_unchecked(data[1:], limits=limits))
    try:
        canonical = encode(state)
    except MemmeshError as exc:  # pragma: no cover - load only builds encodable states
        raise DecodeError(f"state cannot be re-encoded: {exc}") from None
    if canonical != data:
        raise DecodeError("not the canonical encoding of the state it describes")
    return state
