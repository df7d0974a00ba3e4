"""Scripted fake LLMs for the memory pipeline's tests: answers given in advance (strings,
or functions of the prompt), every prompt kept, and the numbered memories and facts of a
decision prompt read back so a script can name memories by their text."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Answer = str | Callable[[str], str]

_LINE = re.compile(r'^\[(\d+)\] (".*")$')


class ScriptedLLM:
    """Answers each call with the next scripted answer; an exhausted script is recorded
    in ``overrun`` (tests assert it stays 0: the pipeline must not ask more than said)."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []
        self.overrun = 0

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if not self.answers:
            self.overrun += 1
            return '{"facts": [], "decisions": []}'
        answer = self.answers.pop(0)
        return answer(prompt) if callable(answer) else answer


def facts(*texts: str) -> str:
    return json.dumps({"facts": list(texts)})


def decisions(*items: dict[str, Any]) -> str:
    return json.dumps({"decisions": list(items)})


def _block(prompt: str, start: str, end: str | None) -> dict[str, int]:
    section = prompt.split(start, 1)[1]
    if end is not None:
        section = section.split(end, 1)[0]
    out: dict[str, int] = {}
    for line in section.splitlines():
        match = _LINE.match(line)
        if match:
            out[json.loads(match.group(2))] = int(match.group(1))
    return out


def shown_memories(prompt: str) -> dict[str, int]:
    """The memories of a decision prompt: text -> number."""
    return _block(prompt, "Existing memories, by number", "New facts, by number")


def shown_facts(prompt: str) -> dict[str, int]:
    """The facts of a decision prompt: text -> number."""
    return _block(prompt, "New facts, by number", "For each fact")
