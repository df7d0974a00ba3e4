"""Calling a user's LLM: any sync or async ``(prompt) -> str`` callable, with a timeout.

One home for what :class:`~memmesh.semantic.LLMArbiter` and the memory pipeline
(:mod:`._pipeline`) both need: each call runs in a daemon worker thread (an async
callable on its own event loop there), so it works from plain threads and from trio or
asyncio via ``to_thread``, and a hung sync callable is abandoned after ``timeout``
seconds; and the one JSON object of an answer, found inside Markdown fences or chatter.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import threading
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["LLM", "call_llm", "extract_json"]

LLM = Callable[[str], str] | Callable[[str], Awaitable[str]]

_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


def extract_json(answer: str, error: type[Exception]) -> dict[str, Any]:
    """The JSON object of ``answer`` (from its first ``{`` to its last ``}``, fences
    stripped); raise ``error`` when there is none or it does not parse."""
    text = _FENCE.sub("", answer.strip())
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise error("no JSON object in the answer")
    try:
        value = json.loads(text[start : end + 1])
    except ValueError as exc:
        raise error(f"answer is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise error("answer is not a JSON object")
    return value


def call_llm(llm: LLM, prompt: str, timeout: float, *, name: str = "memmesh-llm") -> object:
    """``llm(prompt)`` in a daemon thread named ``name`` (awaited there if it is async);
    its answer, unchecked. Raise :class:`TimeoutError` after ``timeout`` seconds, or
    what the callable raised."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            result: Any = llm(prompt)
            if inspect.isawaitable(result):
                awaitable = result

                async def bounded() -> Any:
                    return await asyncio.wait_for(awaitable, timeout)

                result = asyncio.run(bounded())
            outcome["value"] = result
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name=name, daemon=True).start()
    if not done.wait(timeout):
        raise TimeoutError(f"the LLM did not answer within {timeout} s")
    if "error" in outcome:
        error = outcome["error"]
        if isinstance(error, asyncio.TimeoutError):
            raise TimeoutError(f"the LLM did not answer within {timeout} s") from error
        raise error
    return outcome["value"]
