"""Conversations for the memory pipeline: OpenAI-style message dicts, validated and bounded.

A message is a mapping with ``role`` (system, developer, user, assistant, tool) and
``content``: a str, None (an assistant turn that only calls tools), or a list of
content parts of which the ``{"type": "text", "text": ...}`` ones are read (images and
audio are skipped). Other keys (``name``, ``tool_calls``...) are ignored. Bad input
raises :class:`~memmesh.semantic.InvalidMessagesError` before any LLM call or write.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._errors import InvalidMessagesError

__all__ = ["MAX_CONVERSATION_CHARS", "MAX_MESSAGES", "ROLES", "Message", "check_messages",
           "transcript", "user_texts"]

ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_MESSAGES = 500
MAX_CONVERSATION_CHARS = 200_000


@dataclass(frozen=True, slots=True)
class Message:
    """One checked message: its role and its text (text parts joined by newlines)."""

    role: str
    text: str


def _content_text(content: object, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, bytes | bytearray):
        texts = []
        for part in content:
            if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                raise InvalidMessagesError(f"{where}: each content part must be a dict with"
                                           " a 'type'")
            if part["type"] == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    raise InvalidMessagesError(f"{where}: a text part needs a str 'text'")
                texts.append(text)
        return "\n".join(texts)
    raise InvalidMessagesError(f"{where}: content must be a str, None or a list of parts")


def check_messages(messages: object) -> tuple[Message, ...]:
    """The conversation's messages that carry text, checked; raise
    :class:`InvalidMessagesError` for anything else than a non-empty list of at most
    ``MAX_MESSAGES`` message dicts with at most ``MAX_CONVERSATION_CHARS`` of text."""
    if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Sequence):
        raise InvalidMessagesError("messages must be a list of {'role', 'content'} dicts")
    if not messages:
        raise InvalidMessagesError("messages is empty")
    if len(messages) > MAX_MESSAGES:
        raise InvalidMessagesError(f"{len(messages)} messages; at most {MAX_MESSAGES}")
    out: list[Message] = []
    total = 0
    for number, message in enumerate(messages):
        where = f"message {number}"
        if not isinstance(message, Mapping):
            raise InvalidMessagesError(f"{where} is not a dict")
        role = message.get("role")
        if role not in ROLES:
            raise InvalidMessagesError(f"{where}: role must be one of {', '.join(ROLES)}")
        if "content" not in message:
            raise InvalidMessagesError(f"{where} has no 'content'")
        text = _content_text(message["content"], where).strip()
        total += len(text)
        if total > MAX_CONVERSATION_CHARS:
            raise InvalidMessagesError(
                f"the conversation exceeds {MAX_CONVERSATION_CHARS} characters")
        if text:
            out.append(Message(str(role), text))
    if not out:
        raise InvalidMessagesError("no message has any text")
    return tuple(out)


def transcript(messages: Sequence[Message]) -> str:
    """The conversation as prompt lines, each text quoted as a JSON string (data, not
    instructions: a message cannot close the quote and speak as the prompt)."""
    return "\n".join(f"{m.role}: {json.dumps(m.text, ensure_ascii=False)}" for m in messages)


def user_texts(messages: Sequence[Message]) -> list[str]:
    """The user's messages' texts, in order: the facts of the extraction fallback."""
    return [m.text for m in messages if m.role == "user"]
