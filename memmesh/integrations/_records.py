"""Memories, versions and events as plain JSON, one shape for every adapter that prints
or returns them (the ``memmesh`` command's ``--json``, ``export``, the MCP tools).

Times are ISO-8601 UTC strings (``2025-01-31T12:00:00.123+00:00``) with the wall
milliseconds beside them, never a Python repr; a version is named by its dot,
``"<origin>:<counter>"``, the id ``resolve`` and the MCP ``resolve_conflict`` accept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from memmesh.crdt import Dot, Timestamp
from memmesh.storage import Event, MemoryRecord, Version

SCOPE_FIELDS = ("app_id", "user_id", "agent_id", "run_id")


def iso(wall_ms: int | Timestamp | None) -> str | None:
    """Wall milliseconds (or a hybrid timestamp's) as an ISO-8601 UTC string."""
    if wall_ms is None:
        return None
    ms = wall_ms.wall_ms if isinstance(wall_ms, Timestamp) else wall_ms
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def version_id(dot: Dot) -> str:
    """The name of a version: its dot, ``"<origin>:<counter>"``."""
    return f"{dot.replica}:{dot.counter}"


def plain(value: Any) -> Any:
    """Metadata and event details (frozen mappings, tuples, bytes) as JSON values."""
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return value


def version_json(version: Version) -> dict[str, Any]:
    return {"version_id": version_id(version.dot), "text": version.text,
            "actor": version.actor, "role": version.role, "replica": version.replica,
            "timestamp": iso(version.timestamp), "timestamp_ms": version.timestamp.wall_ms,
            "confidence": version.confidence, "metadata": plain(version.metadata),
            "op": version.op, "importance": version.importance}


def record_json(record: MemoryRecord) -> dict[str, Any]:
    """A memory with every standing version (``text`` is None while conflicted)."""
    return {
        "id": record.id,
        **{name: getattr(record, name) for name in SCOPE_FIELDS},
        "text": None if record.conflicted else record.text,
        "conflicted": record.conflicted,
        "policy": record.policy,
        "tier": record.tier,
        "priority": record.priority,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "expires_at": iso(record.expires_at),
        "created_at_ms": record.created_at.wall_ms,
        "updated_at_ms": record.updated_at.wall_ms,
        "expires_at_ms": record.expires_at,
        "versions": [version_json(v) for v in record.versions],
    }


def concise_json(record: MemoryRecord) -> dict[str, Any]:
    """A memory in brief: its text (the versions' texts while conflicted), scope, flag."""
    out: dict[str, Any] = {"id": record.id,
                           **{name: getattr(record, name) for name in SCOPE_FIELDS
                              if getattr(record, name) is not None}}
    if record.conflicted:
        out["texts"] = [v.text for v in record.versions]
    else:
        out["text"] = record.text
    out["conflicted"] = record.conflicted
    return out


def event_json(event: Event) -> dict[str, Any]:
    """A history ``Event``."""
    return {"op": event.op, "actor": event.actor, "role": event.role,
            "replica": event.replica,
            "timestamp": iso(event.timestamp), "timestamp_ms": event.timestamp.wall_ms,
            "text": event.text,
            "version_id": None if event.dot is None else version_id(event.dot),
            "detail": plain(event.detail)}
