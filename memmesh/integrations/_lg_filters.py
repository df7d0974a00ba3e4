"""LangGraph's store filters and namespace conditions, for ``MemmeshStore``.

The semantics are those of LangGraph's ``InMemoryStore`` (and, for plain keys, the SQL
stores): a filter key names a top-level value key (not a JSON path), nested dicts match
recursively, lists element-wise, and a dict of ``$eq $ne $gt $gte $lt $lte`` applies the
operators; ``MatchCondition`` paths match namespace labels with ``*`` as a wildcard.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.store.base import MatchCondition

from memmesh.crdt import InvalidArgumentError

__all__ = ["matches_filter", "namespace_matches", "thaw"]

Namespace = tuple[str, ...]


def thaw(value: Any) -> Any:
    """Stored plain data back to JSON-like Python (tuples become lists)."""
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    return value


def _compare(item_value: Any, wanted: Any) -> bool:
    if isinstance(wanted, Mapping):
        if any(str(k).startswith("$") for k in wanted):
            return all(_apply_operator(item_value, op, arg) for op, arg in wanted.items())
        if not isinstance(item_value, Mapping):
            return False
        return all(_compare(item_value.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list | tuple):
        return (isinstance(item_value, list | tuple) and len(item_value) == len(wanted)
                and all(_compare(a, b) for a, b in zip(item_value, wanted, strict=True)))
    return bool(item_value == wanted)


def _apply_operator(value: Any, operator: str, arg: Any) -> bool:
    if operator == "$eq":
        return bool(value == arg)
    if operator == "$ne":
        return bool(value != arg)
    if operator in ("$gt", "$gte", "$lt", "$lte"):
        b = _number(arg)
        if b is None:
            raise InvalidArgumentError(f"filter {operator} needs a number, not {arg!r}")
        a = _number(value)
        if a is None:  # a missing or non-numeric value is not in any range
            return False
        return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[operator]
    raise InvalidArgumentError(f"unsupported filter operator {operator!r}")


def matches_filter(value: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """LangGraph's filter semantics (those of ``InMemoryStore`` and the SQL stores):
    every key must match; nested dicts match recursively, lists element-wise, and a dict
    of ``$eq $ne $gt $gte $lt $lte`` applies the operators."""
    if not filter:
        return True
    return all(_compare(value.get(k), v) for k, v in filter.items())


def namespace_matches(condition: MatchCondition, namespace: Namespace) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    else:
        raise InvalidArgumentError(f"unsupported match type {condition.match_type!r}")
    return all(p == "*" or n == p for n, p in pairs)


def _number(value: Any) -> float | None:
    """``value`` as a float (numbers and numeric strings, as ``InMemoryStore`` reads
    them), or None."""
    if value is None or isinstance(value, bool | Mapping | list | tuple):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
