"""Metadata filters: validated once, then evaluated by every reader.

The syntax is the one Mem0 and LangGraph users write (MongoDB's query operators, as
LangGraph's stores and Mem0's vector stores adopted them): ``{"field": value}`` is
equality, ``{"field": {"$gt": 3, "$lte": 9}}`` applies operators (all must hold),
``{"$and": [f, ...]}`` and ``{"$or": [f, ...]}`` combine filters, and several keys in
one mapping must all hold. As in LangGraph's ``matches_filter``, a plain mapping as the
wanted value matches a nested mapping key by key (its other keys free), a list matches a
list element by element, and ``$eq``/``$ne``/``$in``/``$nin`` compare whole values, so
this evaluator is a superset of the one in ``memmesh.integrations.langgraph``.
Operators: ``$eq $ne $gt $gte $lt $lte $in $nin``. An ordering operator compares
numbers as LangGraph does (both sides through ``float()``: ``True`` is 1, ``"5"`` is 5);
where that fails it compares two strings as strings (ISO-8601 dates), and otherwise
does not hold (LangGraph raises there). A missing field is ``None``: no ordering holds
for it, while ``$ne`` and ``$nin`` do, as in MongoDB.

One option, ``numeric_ranges=True``, gives LangGraph's dialect as ``MemmeshStore``
serves it (docs/langgraph.md): an ordering operator is numeric only, so its bound must
be a number or a numeric string (anything else is refused up front), and a value that
is not one (a bool, a non-numeric string, a container, a missing field) is in no range;
two strings are never compared as strings. Everything else is the same evaluator.

:func:`compile_filter` checks the whole filter up front (an unknown operator raises
:class:`InvalidFilterError` naming it, before anything is read) and returns a predicate
over a metadata mapping; :func:`record_matches` applies one to a memory record (any of
its standing versions may match, as search finds a conflicted memory by any version).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from memmesh.crdt import InvalidArgumentError

__all__ = ["OPERATORS", "InvalidFilterError", "MetadataFilter", "check_page",
           "compile_filter", "page", "record_matches"]

#: The comparison operators (field level); ``$and``/``$or`` combine whole filters.
OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin")
_COMBINERS = ("$and", "$or")
#: Nesting bound of ``$and``/``$or`` and of nested mappings: a filter is caller input.
MAX_DEPTH = 32

MetadataFilter = Callable[[Mapping[str, Any]], bool]
T = TypeVar("T")


class InvalidFilterError(InvalidArgumentError):  # type: ignore[misc, unused-ignore]
    """A metadata filter is malformed (unknown operator, wrong operand type)."""


def _norm(value: Any) -> Any:
    """Lists and tuples alike (stored metadata comes back with tuples)."""
    if isinstance(value, tuple):
        return list(value)
    return value


def _equal(value: Any, wanted: Any) -> bool:
    """Exact equality (``$eq``, ``$in`` ...), a list equal to a tuple of equal items."""
    if isinstance(wanted, Mapping):
        return (isinstance(value, Mapping) and value.keys() == wanted.keys()
                and all(_equal(value[k], v) for k, v in wanted.items()))
    if isinstance(wanted, list | tuple):
        value = _norm(value)
        return (isinstance(value, list) and len(value) == len(wanted)
                and all(_equal(a, b) for a, b in zip(value, wanted, strict=True)))
    return bool(value == wanted)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_float(value: Any, numeric: bool = False) -> float | None:
    """LangGraph's coercion for a range test: ``float(value)``, None when it fails
    (``numeric``: also None for a bool, which JSON does not count as a number)."""
    if value is None or isinstance(value, Mapping | list | tuple):
        return None
    if numeric and isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _ordered(value: Any, arg: Any, op: str, numeric: bool) -> bool:
    a, b = _as_float(value, numeric), _as_float(arg, numeric)
    if a is None or b is None:
        if numeric or not (type(value) is str and type(arg) is str):
            return False
        a, b = value, arg  # type: ignore[assignment]  # both str: e.g. ISO-8601 dates
    if op == "$gt":
        return bool(a > b)  # type: ignore[operator]
    if op == "$gte":
        return bool(a >= b)  # type: ignore[operator]
    if op == "$lt":
        return bool(a < b)  # type: ignore[operator]
    return bool(a <= b)  # type: ignore[operator]


def _operator(op: str, arg: Any, where: str, numeric: bool) -> Callable[[Any], bool]:
    if op == "$eq":
        return lambda v: _equal(v, arg)
    if op == "$ne":
        return lambda v: not _equal(v, arg)
    if op in ("$in", "$nin"):
        if not isinstance(arg, list | tuple | set | frozenset):
            raise InvalidFilterError(f"{op} at {where} takes a list, not {type(arg).__name__}")
        options = list(arg)
        if op == "$in":
            return lambda v: any(_equal(v, o) for o in options)
        return lambda v: not any(_equal(v, o) for o in options)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if numeric:
            bound = _as_float(arg, numeric)
            if bound is None or math.isnan(bound):
                raise InvalidFilterError(f"{op} at {where} takes a number, not {arg!r}")
        elif not (_number(arg) or type(arg) is str) or (_number(arg) and math.isnan(arg)):
            raise InvalidFilterError(
                f"{op} at {where} takes a number or a str, not {type(arg).__name__}")
        return lambda v: _ordered(v, arg, op, numeric)
    raise InvalidFilterError(
        f"unknown filter operator {op!r} at {where}; use one of {', '.join(OPERATORS)},"
        f" $and, $or")


def _matcher(wanted: Any, where: str, depth: int, numeric: bool) -> Callable[[Any], bool]:
    """The test a field's value must pass: operators for a mapping of ``$`` keys, key by
    key for a plain mapping, element by element for a list, else equality (LangGraph's
    ``_compare``, compiled once)."""
    if depth > MAX_DEPTH:
        raise InvalidFilterError(f"filter nested deeper than {MAX_DEPTH} levels")
    if isinstance(wanted, Mapping):
        keys = list(wanted)
        if any(not isinstance(k, str) for k in keys):
            raise InvalidFilterError(f"filter keys must be str at {where}")
        if any(k.startswith("$") for k in keys):
            checks = [_operator(op, arg, where, numeric) for op, arg in wanted.items()]
            return lambda v: all(check(v) for check in checks)
        fields = [(k, _matcher(v, f"{where}.{k}", depth + 1, numeric))
                  for k, v in wanted.items()]
        return lambda v: isinstance(v, Mapping) and all(m(v.get(k)) for k, m in fields)
    if isinstance(wanted, list | tuple):
        items = [_matcher(w, where, depth + 1, numeric) for w in wanted]

        def elementwise(v: Any) -> bool:
            v = _norm(v)
            return (isinstance(v, list) and len(v) == len(items)
                    and all(m(a) for m, a in zip(items, v, strict=True)))
        return elementwise
    return lambda v: bool(v == wanted)


def _combine(combiner: str, subs: list[MetadataFilter]) -> MetadataFilter:
    if combiner == "$and":
        return lambda m: all(s(m) for s in subs)
    return lambda m: any(s(m) for s in subs)


def _on_field(name: str, match: Callable[[Any], bool]) -> MetadataFilter:
    return lambda m: match(m.get(name))


def _compile(spec: Any, depth: int, numeric: bool) -> MetadataFilter:
    if depth > MAX_DEPTH:
        raise InvalidFilterError(f"filter nested deeper than {MAX_DEPTH} levels")
    if not isinstance(spec, Mapping):
        raise InvalidFilterError(f"a filter is a mapping, not {type(spec).__name__}")
    parts: list[MetadataFilter] = []
    for key, wanted in spec.items():
        if not isinstance(key, str):
            raise InvalidFilterError(f"filter keys must be str, not {key!r}")
        if key in _COMBINERS:
            if not isinstance(wanted, list | tuple) or not wanted:
                raise InvalidFilterError(f"{key} takes a non-empty list of filters")
            parts.append(_combine(key, [_compile(s, depth + 1, numeric) for s in wanted]))
        elif key.startswith("$"):
            raise InvalidFilterError(
                f"unknown filter operator {key!r} at the top of a filter; use $and, $or,"
                f" or a field name")
        else:
            parts.append(_on_field(key, _matcher(wanted, repr(key), depth + 1, numeric)))
    return lambda m: all(p(m) for p in parts)


def compile_filter(spec: Mapping[str, Any] | None, *,
                   numeric_ranges: bool = False) -> MetadataFilter | None:
    """The predicate of the metadata filter ``spec`` (None when ``spec`` is None or
    empty: nothing to filter), validated in full first. ``numeric_ranges``: LangGraph's
    dialect, ordering operators on numbers only (see the module docstring)."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise InvalidFilterError(f"filters must be a mapping, not {type(spec).__name__}")
    if not spec:
        return None
    return _compile(spec, 0, numeric_ranges)


def record_matches(record: Any, predicate: MetadataFilter | None) -> bool:
    """Whether one standing version of ``record`` (a ``MemoryRecord``) has metadata that
    ``predicate`` accepts (always, with no predicate)."""
    return predicate is None or any(predicate(v.metadata) for v in record.versions)


def page(items: Iterable[T], limit: int | None, offset: int) -> list[T]:
    """``items[offset:offset + limit]`` (checked by :func:`check_page` up front)."""
    out = list(items)[offset:]
    return out if limit is None else out[:limit]


def check_page(limit: int | None, offset: int) -> None:
    """Refuse a ``limit`` (None: no limit) or ``offset`` that is not a non-negative int."""
    if limit is not None and (type(limit) is not int or limit < 0):
        raise InvalidArgumentError("limit must be a non-negative int or None")
    if type(offset) is not int or offset < 0:
        raise InvalidArgumentError("offset must be a non-negative int")
