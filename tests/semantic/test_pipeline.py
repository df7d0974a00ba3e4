"""The memory pipeline with scripted LLMs: the happy path (ADD, UPDATE, DELETE, NOOP with
the model's reasons in history), retries of malformed answers, the deterministic
fallback, bad input, overridable prompts, and the LLM calls a turn costs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pipeline_helpers import ScriptedLLM, decisions, facts, shown_facts, shown_memories
from replica_helpers import Clock, sync_pair

from memmesh.crdt import InvalidArgumentError
from memmesh.semantic import (
    DECISION_PROMPT,
    HashingEmbedder,
    InvalidMessagesError,
    MemoryPipeline,
    SemanticIndex,
    add_messages,
)

ALICE = {"user_id": "alice"}


def pipeline(replica: Any, clock: Clock, llm: Any, **options: Any) -> MemoryPipeline:
    index = SemanticIndex(replica, HashingEmbedder(), clock=clock)
    return MemoryPipeline(replica, index, llm, **options)


def said(*texts: str) -> list[dict[str, str]]:
    """A conversation: the user says each text, the assistant acknowledges."""
    out = []
    for text in texts:
        out += [{"role": "user", "content": text}, {"role": "assistant", "content": "Noted."}]
    return out


def decide(choose: Callable[[dict[str, int], dict[str, int]], list[dict[str, Any]]]
           ) -> Callable[[str], str]:
    """A decision answer computed from the prompt's numbered memories and facts."""
    return lambda prompt: decisions(*choose(shown_memories(prompt), shown_facts(prompt)))


def test_happy_path_adds_updates_deletes_and_noops_with_reasons_in_history(
        open_replica: Callable[..., Any], clock: Clock) -> None:
    replica = open_replica("a")
    paris = replica.add("alice lives in Paris", **ALICE)
    dog = replica.add("alice has a dog named Rex", **ALICE)
    tea = replica.add("alice likes green tea", **ALICE)

    def choose(memories: dict[str, int], new: dict[str, int]) -> list[dict[str, Any]]:
        return [
            {"fact": new["alice lives in Berlin"], "event": "UPDATE",
             "id": memories["alice lives in Paris"], "text": "alice lives in Berlin",
             "reason": "she moved"},
            {"fact": new["alice no longer has a dog"], "event": "DELETE",
             "id": memories["alice has a dog named Rex"], "reason": "contradicted"},
            {"fact": new["alice likes green tea"], "event": "NOOP",
             "id": memories["alice likes green tea"], "reason": "already known"},
            {"fact": new["alice plays chess"], "event": "ADD", "reason": "new"},
        ]

    llm = ScriptedLLM(facts("alice lives in Berlin", "alice no longer has a dog",
                            "alice likes green tea", "alice plays chess"), decide(choose))
    result = pipeline(replica, clock, llm).add_messages(
        said("I moved to Berlin last month", "Rex died, sadly", "Tea? Green, always",
             "I play chess on Sundays"), **ALICE)

    assert [(d.decision, d.fallback) for d in result] == [
        ("UPDATE", False), ("DELETE", False), ("NOOP", False), ("ADD", False)]
    assert [d.memory_id for d in result][:3] == [paris, dog, tea]
    assert result.llm_calls == 2 and llm.overrun == 0 and not result.errors
    assert replica.get(paris).text == "alice lives in Berlin"
    assert replica.get(dog) is None
    chess = result[3].memory_id
    assert chess is not None and replica.get(chess).text == "alice plays chess"
    assert replica.get(chess).user_id == "alice"
    events = {
        paris: ("UPDATE", "alice lives in Berlin", "she moved"),
        dog: ("DELETE", "alice no longer has a dog", "contradicted"),
        tea: ("NOOP", "alice likes green tea", "already known"),
        chess: ("ADD", "alice plays chess", "new"),
    }
    for memory_id, (op, fact, reason) in events.items():
        last = replica.history(memory_id)[-1]
        assert (last.op, last.actor) == (op, "memory-pipeline")
        assert last.detail == {"fact": fact, "reason": reason, "pipeline": "llm"}


def test_the_conversation_and_memories_reach_the_prompts_as_quoted_data(
        open_replica: Callable[..., Any], clock: Clock) -> None:
    replica = open_replica("a")
    replica.add('alice said "hi"', **ALICE)
    llm = ScriptedLLM(facts("alice greets"), decisions({"fact": 0, "event": "ADD"}))
    pipeline(replica, clock, llm).add_messages(
        [{"role": "system", "content": "be brief"},
         {"role": "user", "content": [{"type": "text", "text": 'say "x"\nnow'},
                                      {"type": "image_url", "image_url": {"url": "u"}}]},
         {"role": "assistant", "content": None, "tool_calls": []}], **ALICE)
    assert 'system: "be brief"\nuser: "say \\"x\\"\\nnow"\n' in llm.prompts[0]
    assert shown_memories(llm.prompts[1]) == {'alice said "hi"': 0}
    assert shown_facts(llm.prompts[1]) == {"alice greets": 0}


def test_a_malformed_answer_is_retried_with_the_error_and_then_followed(
        open_replica: Callable[..., Any], clock: Clock) -> None:
    replica = open_replica("a")
    tea = replica.add("alice likes green tea", **ALICE)
    llm = ScriptedLLM("Sure! Here are the facts: alice likes tea",
                      facts("alice likes green tea"),
                      '```json\n{"decisions": [{"fact": 0, "event": "NOOP", "id": 0,}]}\n```',
                      '{"decisions": {"fact": 0}}',
                      '```json\n{"decisions": [{"fact": 0, "event": "noop", "id": "0",'
                      ' "reason": "known"}]}\n```')
    result = pipeline(replica, clock, llm, retries=2).add_messages(said("tea!"), **ALICE)
    assert [(d.decision, d.memory_id, d.fallback) for d in result] == [("NOOP", tea, False)]
    assert result.llm_calls == 5 and llm.overrun == 0
    assert len(result.errors) == 3 and all("malformed" in e for e in result.errors)
    assert "Your previous answer was refused: no JSON object" in llm.prompts[1]
    assert "'decisions' must be a list" in llm.prompts[4]


def test_a_model_that_stays_malformed_gets_the_deterministic_fallback(
        open_replica: Callable[..., Any], clock: Clock) -> None:
    replica = open_replica("a")
    tea = replica.add("I like green tea", **ALICE)
    llm = ScriptedLLM(*["I cannot answer in JSON"] * 4)
    result = pipeline(replica, clock, llm, retries=1).add_messages(
        said("I like green tea", "I play chess on Sundays"), **ALICE)
    assert result.facts_fallback and result.llm_calls == 4 and llm.overrun == 0
    assert [(d.fact, d.decision, d.fallback) for d in result] == [
        ("I like green tea", "NOOP", True), ("I play chess on Sundays", "ADD", True)]
    assert result[0].memory_id == tea
    noop = replica.history(tea)[-1]
    assert noop.op == "NOOP" and noop.detail["pipeline"] == "fallback"
    assert "near-duplicate" in noop.detail["reason"]
    added = replica.history(result[1].memory_id)[-1]
    assert added.detail["fact"] == "I play chess on Sundays"
    assert added.detail["pipeline"] == "fallback"


def test_the_fallback_decides_facts_the_model_left_out(
        open_replica: Callable[..., Any], clock: Clock) -> None:
    replica = open_replica("a")
    replica.add("alice likes green tea", **ALICE)
    llm = ScriptedLLM(facts("alice plays chess", "alice likes green tea"),
                      decisions({"fact": 0, "event": "ADD", "reason": "new"}))
    result = pipeline(replica, clock, llm).add_messages(said("chess, tea"), **ALICE)
    assert [(d.decision, d.fallback) for d in result] == [("ADD", False), ("NOOP", True)]
    assert "left it out" in result[1].reason


def test_a_turn_costs_one_call_without_facts_or_similar_memories(
        open_replica: Callable[..., Any], clock: Clock) -> None:
    replica = open_replica("a")
    llm = ScriptedLLM(facts(), facts("alice plays chess"))
    memory = pipeline(replica, clock, llm)
    assert memory.add_messages(said("hello"), **ALICE).decisions == ()
    first = memory.add_messages(said("I play chess"), **ALICE)
    assert [(d.decision, d.fallback) for d in first] == [("ADD", False)]
    assert first.llm_calls == 1 and llm.overrun == 0
    assert replica.history(first[0].memory_id)[-1].detail["pipeline"] == "rule"
    assert (memory.llm_calls, memory.turns) == (2, 2)


def test_a_noop_without_a_memory_writes_nothing(
        open_replica: Callable[..., Any], clock: Clock) -> None:
    replica = open_replica("a")
    tea = replica.add("alice likes green tea", **ALICE)
    llm = ScriptedLLM(facts("it is raining"),
                      decisions({"fact": 0, "event": "NOOP", "reason": "small talk"}))
    result = pipeline(replica, clock, llm).add_messages(said("rain again"), **ALICE)
    assert [(d.decision, d.memory_id) for d in result] == [("NOOP", None)]
    assert [e.op for e in replica.history(tea)] == ["ADD"]
    assert len(replica.list()) == 1


@pytest.mark.parametrize("messages", [
    "hello", [], {"role": "user", "content": "hi"}, [{"role": "user"}],
    [{"role": "wizard", "content": "hi"}], [{"role": "user", "content": 42}],
    [{"role": "user", "content": [{"type": "text", "text": 3}]}],
    [{"role": "user", "content": [{"text": "no type"}]}], ["user: hi"],
    [{"role": "user", "content": "   "}], [{"role": "user", "content": "x"}] * 501,
    [{"role": "user", "content": "x" * 200_001}],
])
def test_bad_messages_are_refused_before_any_call_or_write(
        open_replica: Callable[..., Any], clock: Clock, messages: Any) -> None:
    replica = open_replica("a")
    llm = ScriptedLLM()
    with pytest.raises(InvalidMessagesError):
        pipeline(replica, clock, llm).add_messages(messages, **ALICE)
    assert llm.prompts == [] and replica.list() == []


def test_a_turn_needs_a_scope(open_replica: Callable[..., Any], clock: Clock) -> None:
    llm = ScriptedLLM()
    with pytest.raises(InvalidArgumentError, match="at least one"):
        pipeline(open_replica("a"), clock, llm).add_messages(said("hi"))
    assert llm.prompts == []


@pytest.mark.parametrize("metadata", [["kind", "x"], {"kind": object()}, {1: "x"}])
def test_bad_metadata_is_refused_before_any_call_or_write(
        open_replica: Callable[..., Any], clock: Clock, metadata: Any) -> None:
    replica = open_replica("a")
    llm = ScriptedLLM(facts("alice plays chess"))
    with pytest.raises(InvalidArgumentError):
        pipeline(replica, clock, llm).add_messages(said("chess"), metadata=metadata,
                                                   **ALICE)
    assert llm.prompts == [] and replica.list() == []


@pytest.mark.parametrize("options", [
    {"decision_prompt": "no fields"}, {"extraction_prompt": "{conversation} {extra}"},
    {"extraction_prompt": "{unclosed"}, {"timeout": 0}, {"retries": -1}, {"similar": 0},
    {"duplicate_threshold": 2.0}, {"max_facts": True}, {"actor": ""}, {"actor": 7},
])
def test_bad_pipeline_options_are_refused(open_replica: Callable[..., Any], clock: Clock,
                                          options: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        pipeline(open_replica("a"), clock, ScriptedLLM(), **options)


def test_the_index_must_read_the_pipelines_replica(
        open_replica: Callable[..., Any], clock: Clock) -> None:
    index = SemanticIndex(open_replica("b"), HashingEmbedder(), clock=clock)
    with pytest.raises(InvalidArgumentError):
        MemoryPipeline(open_replica("a"), index, ScriptedLLM())


def test_prompts_are_overridable(open_replica: Callable[..., Any], clock: Clock) -> None:
    replica = open_replica("a")
    replica.add("alice likes green tea", **ALICE)
    llm = ScriptedLLM(facts("alice likes tea"), decisions({"fact": 0, "event": "ADD"}))
    index = SemanticIndex(replica, HashingEmbedder(), clock=clock)
    add_messages(replica, index, said("tea"), llm=llm, user_id="alice",
                 extraction_prompt="EXTRACT {conversation} as {{\"facts\": []}}",
                 decision_prompt="OURS " + DECISION_PROMPT)
    assert llm.prompts[0] == 'EXTRACT user: "tea"\nassistant: "Noted." as {"facts": []}'
    assert llm.prompts[1].startswith("OURS You manage the memory")


def test_another_replica_sees_the_pipelines_decisions_after_sync(
        open_replica: Callable[..., Any], clock: Clock) -> None:
    """Each decision's fact and reason ride on its timeline event, so a peer's history
    shows them (NOOP included), not only the writer's."""
    a, b = open_replica("a"), open_replica("b")
    paris = a.add("alice lives in Paris", **ALICE)
    dog = a.add("alice has a dog", **ALICE)
    tea = a.add("alice likes tea", **ALICE)
    sync_pair(a, b)

    def choose(memories: dict[str, int], new: dict[str, int]) -> list[dict[str, Any]]:
        return [{"fact": 0, "event": "UPDATE", "id": memories["alice lives in Paris"],
                 "text": "alice lives in Berlin", "reason": "moved"},
                {"fact": 1, "event": "DELETE", "id": memories["alice has a dog"],
                 "reason": "contradicted"},
                {"fact": 2, "event": "ADD", "reason": "new"},
                {"fact": 3, "event": "NOOP", "id": memories["alice likes tea"],
                 "reason": "known"}]

    llm = ScriptedLLM(facts("alice lives in Berlin", "alice has no dog", "alice plays chess",
                            "alice likes tea"),
                      decide(choose))
    result = pipeline(a, clock, llm).add_messages(
        said("moved; no dog; chess; tea"), **ALICE)
    sync_pair(a, b)
    assert b.state_digest() == a.state_digest()
    assert b.get(paris).text == "alice lives in Berlin" and b.get(dog) is None
    chess = result[2].memory_id
    for memory_id, ops in ((paris, ["ADD", "UPDATE"]), (dog, ["ADD", "DELETE"]),
                           (chess, ["ADD"]), (tea, ["ADD", "NOOP"])):
        assert [e.op for e in b.history(memory_id)] == ops
    update = b.history(paris)[-1]
    assert (update.actor, update.text) == ("memory-pipeline", "alice lives in Berlin")
    assert b.history(chess)[0].actor == "memory-pipeline"
    for memory_id, fact, reason in ((paris, "alice lives in Berlin", "moved"),
                                    (dog, "alice has no dog", "contradicted"),
                                    (chess, "alice plays chess", "new"),
                                    (tea, "alice likes tea", "known")):
        event = b.history(memory_id)[-1]
        assert event.actor == "memory-pipeline"
        assert dict(event.detail) == {"fact": fact, "reason": reason, "pipeline": "llm"}
        assert b.history(memory_id) == a.history(memory_id)
