"""LLMArbiter with fake LLMs: valid answers, garbage, exceptions and timeouts."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest
from semantic_helpers import conflict, version

from memmesh.semantic import (
    ArbiterOutputError,
    LastWriterWins,
    LLMArbiter,
    build_prompt,
    parse_decision,
)

CONFLICT = conflict(
    version("The release is on Friday.", actor="planner-7", role="lead", replica="r1",
            wall_ms=1_000, confidence=0.9),
    version("The release is on Monday.", actor="qa-bot", role="tester", replica="r2",
            wall_ms=2_000, confidence=0.6),
)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown so that a deliberately hung fake LLM thread can finish."""
    event = threading.Event()
    yield event
    event.set()


def test_prompt_names_agents_versions_and_the_uncertainty_rule() -> None:
    prompt = build_prompt(CONFLICT)
    assert "planner-7" in prompt and "qa-bot" in prompt and "role lead" in prompt
    assert '[1] ' in prompt and '"The release is on Monday."' in prompt
    assert "preserve both with uncertainty markers" in prompt
    assert "user_id=u1" in prompt


def test_sync_llm_pick_is_validated_and_written_by_the_arbiter() -> None:
    prompts: list[str] = []

    def llm(prompt: str) -> str:
        prompts.append(prompt)
        return json.dumps({"decision": "pick", "version": 2, "reason": "QA checked the calendar"})

    resolution = LLMArbiter(llm)(CONFLICT)
    assert resolution is not None
    assert resolution.picked == CONFLICT.versions[1]
    assert resolution.resolver == "llm-arbiter"
    assert resolution.rationale == "QA checked the calendar"
    assert len(prompts) == 1


def test_async_llm_merge_inside_a_code_fence() -> None:
    async def llm(prompt: str) -> str:
        await asyncio.sleep(0)
        answer = '{"decision": "merge", "text": "Release: Friday (lead) or Monday (QA)."}'
        return f"```json\n{answer}\n```"

    resolution = LLMArbiter(llm)(CONFLICT)
    assert resolution is not None and resolution.kind == "merged"
    assert resolution.text == "Release: Friday (lead) or Monday (QA)."


def test_keep_all_decision_keeps_both_versions() -> None:
    resolution = LLMArbiter(lambda p: '{"decision": "keep_all"}')(CONFLICT)
    assert resolution is not None and resolution.kind == "keep_all"
    assert "Friday" in resolution.text and "Monday" in resolution.text


@pytest.mark.parametrize(
    "answer",
    [
        "I think Friday is right.",
        "{not json}",
        '["pick", 1]',
        '{"decision": "pick", "version": 3}',
        '{"decision": "pick", "version": true}',
        '{"decision": "merge", "text": ""}',
        '{"decision": "merge", "text": "' + "x" * 5_000 + '"}',
        '{"decision": "delete everything"}',
    ],
)
def test_garbage_answers_go_to_the_fallback(answer: str) -> None:
    arbiter = LLMArbiter(lambda prompt: answer, fallback=LastWriterWins())
    resolution = arbiter(CONFLICT)
    assert resolution is not None
    assert resolution.picked == CONFLICT.versions[1]
    assert resolution.resolver == "llm-arbiter/fallback:last-writer-wins"
    assert arbiter.failures == 1 and isinstance(arbiter.last_error, ArbiterOutputError)


def test_non_string_answer_goes_to_the_default_keep_all_fallback() -> None:
    arbiter = LLMArbiter(lambda prompt: 42)  # type: ignore[arg-type,return-value]
    resolution = arbiter(CONFLICT)
    assert resolution is not None and resolution.kind == "keep_all"


def test_llm_exception_goes_to_the_fallback() -> None:
    def llm(prompt: str) -> str:
        raise ConnectionError("model server down")

    arbiter = LLMArbiter(llm)
    resolution = arbiter(CONFLICT)
    assert resolution is not None and resolution.kind == "keep_all"
    assert isinstance(arbiter.last_error, ConnectionError)


def test_hung_sync_llm_times_out_into_the_fallback(release: threading.Event) -> None:
    def llm(prompt: str) -> str:
        release.wait(60)
        return '{"decision": "pick", "version": 1}'

    arbiter = LLMArbiter(llm, timeout=0.2, fallback=LastWriterWins())
    resolution = arbiter(CONFLICT)
    assert resolution is not None and resolution.picked == CONFLICT.versions[1]
    assert isinstance(arbiter.last_error, TimeoutError)


def test_slow_async_llm_is_cancelled_at_the_timeout() -> None:
    cancelled = threading.Event()

    async def llm(prompt: str) -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return '{"decision": "keep_all"}'

    arbiter = LLMArbiter(llm, timeout=0.2, fallback=LastWriterWins())
    resolution = arbiter(CONFLICT)
    assert resolution is not None and resolution.resolver is not None
    assert "fallback" in resolution.resolver
    assert isinstance(arbiter.last_error, TimeoutError)
    assert cancelled.wait(10)


def test_fallback_without_opinion_leaves_the_conflict() -> None:
    arbiter = LLMArbiter(lambda prompt: "garbage", fallback=lambda c: None)
    assert arbiter(CONFLICT) is None


def test_parse_decision_accepts_a_numeric_string_version() -> None:
    resolution = parse_decision('{"decision": "pick", "version": "1"}', CONFLICT)
    assert resolution.picked == CONFLICT.versions[0]


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LLMArbiter(lambda p: "", timeout=0)
