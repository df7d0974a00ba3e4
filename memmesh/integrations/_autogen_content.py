"""AutoGen ``MemoryContent`` to and from a memmesh memory version, and the text the
model sees.

A memory's text is what the semantic index embeds, so only content with a meaningful
text is accepted: ``text/plain`` and ``text/markdown`` as the string itself,
``application/json`` (a dict, as in autogen-ext's ChromaDB memory) as canonical JSON
(sorted keys). Images and bytes have no text to search by and are refused with
:class:`UnsupportedContentError` before anything is written. The MIME type and the
caller's metadata travel in the version's metadata under :data:`MARK`, so they
replicate with the text and read back unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from autogen_core.memory import MemoryContent, MemoryMimeType
from autogen_core.models import LLMMessage

from memmesh.crdt import MemmeshError
from memmesh.integrations._records import plain

__all__ = [
    "MARK",
    "UnsupportedContentError",
    "context_text",
    "decode",
    "encode",
    "message_text",
    "query_text",
]

#: The key of a version's metadata that holds the AutoGen MIME type and metadata.
MARK = "autogen"
_TEXTUAL = (MemoryMimeType.TEXT, MemoryMimeType.MARKDOWN)


class UnsupportedContentError(MemmeshError, ValueError):  # type: ignore[misc, unused-ignore]
    """A ``MemoryContent`` that a memmesh memory cannot hold or search by: an image,
    bytes, an unknown MIME type, or a content that does not match its MIME type."""


def _mime(mime_type: MemoryMimeType | str) -> MemoryMimeType:
    if isinstance(mime_type, MemoryMimeType):
        mime = mime_type
    else:
        try:
            mime = MemoryMimeType(mime_type)
        except ValueError:
            raise UnsupportedContentError(
                f"unknown MIME type {mime_type!r}: use text/plain, text/markdown or"
                " application/json") from None
    if mime not in (*_TEXTUAL, MemoryMimeType.JSON):
        raise UnsupportedContentError(
            f"{mime.value} content has no text to embed and search by: store text/plain,"
            " text/markdown or application/json (a description of the image or file)")
    return mime


def _text(content: MemoryContent) -> tuple[str, MemoryMimeType]:
    mime = _mime(content.mime_type)
    value = content.content
    if mime is MemoryMimeType.JSON:
        if not isinstance(value, dict):
            raise UnsupportedContentError("application/json content must be a dict")
        try:
            return json.dumps(value, sort_keys=True, ensure_ascii=False), mime
        except (TypeError, ValueError) as exc:
            raise UnsupportedContentError(f"JSON content is not serialisable: {exc}") from None
    if not isinstance(value, str):
        raise UnsupportedContentError(
            f"{mime.value} content must be a str, not {type(value).__name__}")
    return value, mime


def encode(content: MemoryContent) -> tuple[str, dict[str, Any]]:
    """The text and the memmesh metadata of ``content``; raises
    :class:`UnsupportedContentError` for content that cannot be stored."""
    if not isinstance(content, MemoryContent):
        raise UnsupportedContentError(
            f"expected a MemoryContent, not {type(content).__name__}")
    text, mime = _text(content)
    return text, {MARK: {"mime_type": mime.value, "metadata": dict(content.metadata or {})}}


def query_text(query: str | MemoryContent) -> str:
    """The text to search by: a str as is, a ``MemoryContent`` encoded as by :func:`add`."""
    if isinstance(query, str):
        return query
    if isinstance(query, MemoryContent):
        return _text(query)[0]
    raise UnsupportedContentError(
        f"query must be a str or a MemoryContent, not {type(query).__name__}")



def decode(text: str, metadata: Mapping[str, Any]) -> tuple[Any, MemoryMimeType,
                                                             dict[str, Any]]:
    """The content, MIME type and caller's metadata of a stored version. A version
    written by another tool (no :data:`MARK`) reads as text/plain with its own metadata;
    a marked JSON text that does not parse (written by hand) reads as text/plain."""
    mark = metadata.get(MARK)
    if not isinstance(mark, Mapping):
        return text, MemoryMimeType.TEXT, plain(metadata)
    meta = plain(mark.get("metadata") or {})
    mime_value = mark.get("mime_type")
    if mime_value == MemoryMimeType.JSON.value:
        try:
            return json.loads(text), MemoryMimeType.JSON, meta
        except ValueError:
            return text, MemoryMimeType.TEXT, meta
    if mime_value == MemoryMimeType.MARKDOWN.value:
        return text, MemoryMimeType.MARKDOWN, meta
    return text, MemoryMimeType.TEXT, meta


def _shown(content: Any) -> str:
    if isinstance(content, dict):
        return json.dumps(content, sort_keys=True, ensure_ascii=False)
    return str(content)


def context_text(results: Sequence[MemoryContent]) -> str:
    """The system message listing ``results``, numbered as autogen-ext's memories do.
    A memory with concurrent versions (``metadata["conflict"]``) shows every version,
    so the model sees the disagreement instead of one side picked silently."""
    lines = []
    for i, memory in enumerate(results, 1):
        line = f"{i}. {_shown(memory.content)}"
        others = (memory.metadata or {}).get("conflict") or []
        if others:
            shown = "; ".join(
                f"{_shown(o['content'])} (by {o.get('actor') or o.get('replica')})"
                for o in others)
            line += f" [unresolved conflict; concurrent version(s): {shown}]"
        lines.append(line)
    return "\nRelevant memory content:\n" + "\n".join(lines) + "\n"


def message_text(message: LLMMessage) -> str:
    """The text of a model-context message to search memories by: its str content, or
    the str parts of a multimodal content, else the message rendered as a str."""
    content = message.content
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part for part in content if isinstance(part, str)]
        if parts:
            return "\n".join(parts)
    return str(content)
