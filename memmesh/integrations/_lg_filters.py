"""LangGraph's store filters and namespace conditions, for ``MemmeshStore``.

Filters are storage's one evaluator (``compile_filter``) in its LangGraph dialect
(``numeric_ranges=True``): the semantics of LangGraph's ``InMemoryStore`` (and, for plain
keys, the SQL stores): a filter key names a top-level value key (not a JSON path),
nested dicts match recursively, lists element-wise, a dict of ``$eq $ne $gt $gte $lt
$lte`` applies the operators, and a range test skips a value that is not a number (as
docs/langgraph.md says); ``$in $nin $and $or`` come with the evaluator. The filter is
checked before anything is read (``InvalidFilterError``). ``MatchCondition`` paths match
namespace labels with ``*`` as a wildcard.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.store.base import MatchCondition

from memmesh.crdt import InvalidArgumentError
from memmesh.storage import MetadataFilter, compile_filter

__all__ = ["compile_lg_filter", "matches_filter", "namespace_matches", "thaw"]

Namespace = tuple[str, ...]


def thaw(value: Any) -> Any:
    """Stored plain data back to JSON-like Python (tuples become lists)."""
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    return value


def compile_lg_filter(filter: Mapping[str, Any] | None) -> MetadataFilter | None:
    """The predicate of a LangGraph ``filter=`` (None: no filter), validated in full
    before anything is read: storage's one evaluator in LangGraph's dialect."""
    return compile_filter(filter, numeric_ranges=True)


def matches_filter(value: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """Whether an item's ``value`` passes a LangGraph ``filter`` (compile the filter
    once with :func:`compile_lg_filter` to test many values)."""
    predicate = compile_lg_filter(filter)
    return predicate is None or predicate(value)


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
