"""Plain data and its canonical msgpack form.

"Plain data" is what memmesh stores as register values and set elements and puts on the
wire: ``None``, ``bool``, ``int`` (64-bit msgpack range), ``float`` (not NaN), ``str``,
``bytes``, ``list``/``tuple`` and ``dict`` with ``str`` keys, at most ``MAX_DEPTH`` deep;
exact types only, since a subclass's msgpack form would not round-trip. :func:`packb`
is deterministic (sorted map keys, 64-bit floats, ``-0.0`` as ``0.0``) because digests
hash its bytes; :func:`unpackb` is its strict inverse under explicit msgpack limits
(FIELD-NOTES.md), every failure a :class:`DecodeError`. The module stands apart from the
state codec (``_codec``) so the CRDT types can canonicalise values without an import cycle.
"""

from __future__ import annotations

import math
import threading
from typing import NoReturn

import msgpack

from ._errors import DecodeError, InvalidArgumentError
from ._limits import DEFAULT_LIMITS, MAX_DEPTH, MAX_INT, MIN_INT, Limits

__all__ = [
    "check_element",
    "freeze",
    "pack_canonical",
    "packb",
    "same_value",
    "unpack_unchecked",
    "unpackb",
]


def _fail(message: str) -> NoReturn:
    raise InvalidArgumentError(message)


def _float(value: float) -> float:
    """A float as plain data: never NaN, ``-0.0`` written as ``0.0``."""
    if math.isnan(value):
        _fail("NaN is not plain data (it is not equal to itself)")
    return 0.0 if value == 0.0 else value


def freeze(obj: object, _depth: int = 0) -> object:
    """Validate plain data; return it normalised: lists become tuples, dicts are copied
    with their keys in sorted order, ``-0.0`` becomes ``0.0``.

    Normalising means a value reads back from ``decode`` exactly as it was written,
    and that :func:`pack_canonical` can pack it without another pass.
    Raises :class:`InvalidArgumentError` for anything that is not plain data.
    """
    kind = type(obj)
    if obj is None or kind is bool or kind is bytes:
        return obj
    if kind is str:
        assert isinstance(obj, str)
        if not obj.isascii():
            try:
                obj.encode("utf-8")
            except UnicodeEncodeError:
                _fail("strings must be valid UTF-8 text (no lone surrogates)")
        return obj
    if kind is int:
        assert isinstance(obj, int)
        if not MIN_INT <= obj <= MAX_INT:
            _fail("integers must fit msgpack's 64-bit range")
        return obj
    if kind is float:
        assert isinstance(obj, float)
        return _float(obj)
    if _depth >= MAX_DEPTH:
        _fail(f"plain data nested deeper than {MAX_DEPTH} levels")
    if kind is tuple or kind is list:
        assert isinstance(obj, tuple | list)
        return tuple(freeze(item, _depth + 1) for item in obj)
    if kind is dict:
        assert isinstance(obj, dict)
        for key in obj:
            if type(key) is not str:
                _fail(f"dict keys must be str, got {type(key).__name__}")
            freeze(key)
        return {key: freeze(obj[key], _depth + 1) for key in sorted(obj)}
    _fail(f"{kind.__name__} is not plain data")


def check_element(obj: object, _depth: int = 0) -> object:
    """Validate a set element; return it normalised (lists become tuples).

    Set elements are restricted to ``None``, ``str``, ``bytes``, ``int`` (not ``bool``)
    and tuples of these: types whose Python equality coincides with equality of their
    canonical bytes.  (``1 == 1.0 == True`` would otherwise make two elements with
    different encodings the same dict key, and equal sets could encode differently.)
    """
    kind = type(obj)
    if obj is None or kind is bytes or kind is str or kind is int:
        return freeze(obj)
    if kind is tuple or kind is list:
        assert isinstance(obj, tuple | list)
        if _depth >= MAX_DEPTH:
            _fail(f"set element nested deeper than {MAX_DEPTH} levels")
        return tuple(check_element(item, _depth + 1) for item in obj)
    _fail(f"set elements must be None, str, bytes, int or tuples of them, not {kind.__name__}")


def _canon(obj: object) -> object:
    """Plain data with dict keys in sorted order, ready for msgpack (validated)."""
    kind = type(obj)
    if kind is dict:
        assert isinstance(obj, dict)
        if not all(type(key) is str for key in obj):
            _fail("dict keys must be str")
        return {key: _canon(obj[key]) for key in sorted(obj)}
    if kind is tuple or kind is list:
        assert isinstance(obj, tuple | list)
        return [_canon(item) for item in obj]
    if kind is float:
        assert isinstance(obj, float)
        return _float(obj)
    if obj is None or kind is bool or kind is int or kind is str or kind is bytes:
        return obj
    if isinstance(obj, tuple) and hasattr(kind, "_fields"):  # a named tuple: its fields
        return [_canon(item) for item in obj]
    _fail(f"{kind.__name__} is not plain data")


def packb(obj: object) -> bytes:
    """Canonical msgpack bytes of plain data (sorted map keys, 64-bit floats); a named
    tuple packs as the array of its fields, exactly as the plain tuple equal to it.

    Raises :class:`InvalidArgumentError` for anything that is not plain data.
    """
    try:
        canon = _canon(obj)
    except RecursionError:
        raise InvalidArgumentError("plain data nested too deeply") from None
    return pack_canonical(canon)


# One packer reused (``msgpack.packb`` builds a Packer per call, most of the cost of
# packing a small state), guarded by a lock taken without blocking: a second thread, or
# a finalizer that packs while a pack is under way, builds its own instead.
_PACKER = msgpack.Packer(use_bin_type=True, use_single_float=False)
_PACKER_LOCK = threading.Lock()


def pack_canonical(obj: object) -> bytes:
    """msgpack bytes of data that is already canonical (the output of :func:`freeze`,
    or built from it with sorted dicts): no validating pass, only msgpack's own checks.
    """
    try:
        if _PACKER_LOCK.acquire(blocking=False):
            try:
                return _PACKER.pack(obj)  # type: ignore[no-any-return]
            finally:  # (msgpack resets the packer's buffer when a pack fails)
                _PACKER_LOCK.release()
        return msgpack.packb(obj, use_bin_type=True, use_single_float=False)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise InvalidArgumentError(f"cannot encode as msgpack: {exc}") from None


def _reject_ext(code: int, data: bytes) -> NoReturn:
    raise DecodeError(f"msgpack ext type {code} is not allowed")


def _pairs_to_dict(pairs: list[tuple[object, object]]) -> dict[object, object]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise DecodeError("duplicate key in msgpack map")
    return out


def _check_decoded(obj: object, depth: int, max_depth: int) -> None:
    kind = type(obj)
    if kind is tuple:
        assert isinstance(obj, tuple)
        if depth >= max_depth:
            raise DecodeError(f"data nested deeper than {max_depth} levels")
        for item in obj:
            _check_decoded(item, depth + 1, max_depth)
    elif kind is dict:
        assert isinstance(obj, dict)
        if depth >= max_depth:
            raise DecodeError(f"data nested deeper than {max_depth} levels")
        for value in obj.values():
            _check_decoded(value, depth + 1, max_depth)
    elif kind is float:
        assert isinstance(obj, float)
        if math.isnan(obj):
            raise DecodeError("NaN is not allowed")
    elif not (obj is None or kind is bool or kind is int or kind is str or kind is bytes):
        raise DecodeError(f"unexpected decoded type {kind.__name__}")


def unpackb(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> object:
    """Decode one msgpack object from ``data`` under explicit limits.

    Arrays come back as tuples, maps as dicts with ``str`` keys.  Any failure (bad
    bytes, trailing bytes, limits, ext types, duplicate keys, NaN, nesting) raises
    :class:`DecodeError`.
    """
    obj = unpack_unchecked(data, limits=limits)
    _check_decoded(obj, 0, limits.max_depth)
    return obj


def unpack_unchecked(data: bytes, *, limits: Limits = DEFAULT_LIMITS,
                     check_keys: bool = True) -> object:
    """:func:`unpackb` without the final walk over the result (NaN, nesting depth).

    For callers that validate every value themselves anyway (``_codec.load``).
    ``check_keys=False`` also leaves duplicate map keys undetected (the last one wins),
    for callers that re-pack what they decoded and compare it with ``data``, which a
    duplicate key shortens, or that read bytes they wrote themselves.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > limits.max_buffer_size:
        raise DecodeError(f"{len(data)} bytes exceed the {limits.max_buffer_size}-byte limit")
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            use_list=False,
            strict_map_key=True,
            max_str_len=limits.max_str_len,
            max_bin_len=limits.max_bin_len,
            max_array_len=limits.max_array_len,
            max_map_len=limits.max_map_len,
            max_ext_len=0,
            ext_hook=_reject_ext,
            object_pairs_hook=_pairs_to_dict if check_keys else None,
        )
    except DecodeError:
        raise
    except Exception as exc:  # msgpack raises many types (ValueError, TypeError, ...)
        raise DecodeError(f"invalid msgpack: {type(exc).__name__}: {exc}") from None
    return obj


def same_value(a: object, b: object) -> bool:
    """Whether two plain values are the same, including their type (``1`` is not ``1.0``).

    Python's ``==`` says ``1 == 1.0 == True``; states must compare as their bytes do.
    """
    return a is b or (a == b and packb(a) == packb(b))
