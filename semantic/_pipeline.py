"""The LLM memory pipeline: a conversation in, ADD/UPDATE/DELETE/NOOP per fact out.

Mem0's core loop (Chhikara et al., "Mem0: Building Production-Ready AI Agents with
Scalable Long-Term Memory", 2025) over a replica: one LLM call extracts candidate facts
from the conversation, each fact retrieves its similar memories through the agent's
``ScopedView`` (so only what that agent sees is ever shown or touched), and one batched
LLM call decides every fact against the memories, shown under integer aliases. Each
decision is an ordinary write recorded in history with ``detail={"fact", "reason",
"pipeline"}``. Malformed answers are retried (``retries``); a timeout or an error of the
model, or answers that stay malformed, hand the rest of the turn to a deterministic
fallback: the user's messages as facts, and per fact ADD unless a memory in the view is
a near-duplicate (cosine >= ``duplicate_threshold``), then NOOP. So a turn costs two LLM
calls (one when nothing is extracted or no similar memory exists), at most
``2 * (retries + 1)``, and waits at most one ``timeout`` for a dead model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from memmesh.crdt import InvalidArgumentError, freeze
from memmesh.storage import UnknownMemoryError

from ._errors import PipelineOutputError
from ._index import Hit, SemanticIndex
from ._llm_call import LLM, call_llm
from ._messages import Message, check_messages, transcript, user_texts
from ._pipeline_prompts import (
    DECISION_PROMPT,
    EXTRACTION_PROMPT,
    MAX_FACT_CHARS,
    RETRY_PROMPT,
    Proposal,
    check_template,
    decision_prompt,
    extraction_prompt,
    parse_decisions,
    parse_facts,
)

__all__ = ["FactDecision", "MemoryPipeline", "PipelineReplica", "PipelineResult",
           "add_messages"]

DUPLICATE_THRESHOLD = 0.95


class _View(Protocol):
    def get(self, memory_id: str) -> Any | None: ...


class PipelineReplica(Protocol):
    """What the pipeline uses of a replica (``memmesh.storage.Replica`` has it all)."""

    def view(self, *, app_id: str | None = ..., user_id: str | None = ...,
             agent_id: str | None = ..., run_id: str | None = ...) -> Any: ...

    def add(self, text: str, *, actor: str | None = ..., **options: Any) -> str: ...

    def update(self, memory_id: str, text: str, *, actor: str | None = ...,
               detail: Mapping[str, Any] | None = ...) -> None: ...

    def delete(self, memory_id: str, *, actor: str | None = ...,
               detail: Mapping[str, Any] | None = ...) -> bool: ...

    def record_noop(self, memory_id: str, *, actor: str | None = ...,
                    detail: Mapping[str, Any] | None = ...) -> object: ...


@dataclass(frozen=True, slots=True)
class FactDecision:
    """What the pipeline did with one fact.

    ``decision`` is ADD, UPDATE, DELETE or NOOP; ``memory_id`` the memory written (None
    for a NOOP that names no memory); ``text`` what an ADD or UPDATE stored; ``reason``
    the model's reason (or the fallback's); ``decided_by`` "llm" (the model),
    "fallback" (the model failed or was refused) or "rule" (no similar memory in the
    view: ADD without asking), as in the history event's ``detail["pipeline"]``.
    """

    fact: str
    decision: str
    memory_id: str | None
    reason: str
    decided_by: str
    text: str | None = None

    @property
    def fallback(self) -> bool:
        """True when the deterministic fallback decided instead of the model."""
        return self.decided_by == "fallback"


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """One turn's outcome: a :class:`FactDecision` per fact (iterate the result), the
    LLM calls made (retries included), whether the facts came from the fallback, and
    the model's failures in order."""

    decisions: tuple[FactDecision, ...]
    llm_calls: int
    facts_fallback: bool = False
    errors: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[FactDecision]:
        return iter(self.decisions)

    def __len__(self) -> int:
        return len(self.decisions)

    def __getitem__(self, index: int) -> FactDecision:
        return self.decisions[index]


@dataclass
class _Turn:
    """One turn's LLM bookkeeping: calls made, failures, and whether the model is down
    (timed out or raised: not asked again this turn)."""

    calls: int = 0
    down: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Similar:
    """A fact's neighbours in the view: (memory id, cosine), highest cosine first."""

    hits: tuple[tuple[str, float], ...]


class MemoryPipeline:
    """Turn conversations into memory decisions with ``llm`` (sync or async
    ``prompt -> str``), writing to ``replica`` and retrieving through ``index``.

    ``actor`` names the writer on every event; ``timeout`` bounds each call in seconds;
    ``retries`` is how many times a malformed answer is asked again; ``similar`` the
    memories retrieved per fact (``max_memories`` shown in all); ``duplicate_threshold``
    the fallback's near-duplicate cosine; ``max_facts`` and ``max_answer_chars`` bound
    what the model may return. ``extraction_prompt`` (field ``{conversation}``) and
    ``decision_prompt`` (``{memories}``, ``{facts}``) replace the default prompts.
    ``llm_calls`` and ``turns`` count over the pipeline's life.
    """

    def __init__(
        self,
        replica: PipelineReplica,
        index: SemanticIndex,
        llm: LLM,
        *,
        actor: str | None = "memory-pipeline",
        timeout: float = 30.0,
        retries: int = 2,
        similar: int = 5,
        max_memories: int = 30,
        duplicate_threshold: float = DUPLICATE_THRESHOLD,
        max_facts: int = 20,
        max_answer_chars: int = 32_768,
        extraction_prompt: str = EXTRACTION_PROMPT,
        decision_prompt: str = DECISION_PROMPT,
    ) -> None:
        if id(index.replica) != id(replica):
            raise InvalidArgumentError("the index must search the pipeline's replica")
        if actor is not None and (not isinstance(actor, str) or not 0 < len(actor) <= 256
                                  or "\x00" in actor):
            raise InvalidArgumentError("actor must be None or a str of 1 to 256 characters")
        if not callable(llm):
            raise InvalidArgumentError("llm must be a callable (prompt) -> str")
        for name, value, low in (("retries", retries, 0), ("similar", similar, 1),
                                 ("max_memories", max_memories, 1),
                                 ("max_facts", max_facts, 1),
                                 ("max_answer_chars", max_answer_chars, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidArgumentError(f"{name} must be an int >= {low}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) \
                or not timeout > 0:
            raise InvalidArgumentError("timeout must be a number of seconds > 0")
        if isinstance(duplicate_threshold, bool) \
                or not isinstance(duplicate_threshold, int | float) \
                or not -1.0 <= duplicate_threshold <= 1.0:
            raise InvalidArgumentError("duplicate_threshold must be a cosine in [-1, 1]")
        self.replica = replica
        self.index = index
        self.llm = llm
        self.actor = actor
        self.timeout = float(timeout)
        self.retries = retries
        self.similar = similar
        self.max_memories = max_memories
        self.duplicate_threshold = float(duplicate_threshold)
        self.max_facts = max_facts
        self.max_answer_chars = max_answer_chars
        self.extraction_prompt = check_template(extraction_prompt, {"conversation"},
                                                "extraction_prompt")
        self.decision_prompt = check_template(decision_prompt, {"memories", "facts"},
                                              "decision_prompt")
        self.llm_calls = 0
        self.turns = 0

    # -- the turn ------------------------------------------------------------------------

    def add_messages(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        app_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> PipelineResult:
        """Extract facts from ``messages`` and decide each against the memories of the
        view of this scope; ADDs are written in exactly this scope (with ``metadata``).
        Bad messages raise :class:`~memmesh.semantic.InvalidMessagesError`, a scope
        without a field or bad metadata :class:`~memmesh.crdt.InvalidArgumentError`,
        before any call."""
        conversation = check_messages(messages)
        if metadata is not None:  # checked before any call, so a bad one writes nothing
            if not isinstance(metadata, Mapping):
                raise InvalidArgumentError("metadata must be a mapping of plain data")
            freeze(dict(metadata))
        scope = {"app_id": app_id, "user_id": user_id, "agent_id": agent_id,
                 "run_id": run_id}
        view = self.replica.view(**scope)
        turn = _Turn()
        try:
            facts, facts_fallback = self._extract(turn, conversation)
            decisions = self._decide_all(turn, view, facts, scope, metadata)
        finally:
            self.llm_calls += turn.calls
            self.turns += 1
        return PipelineResult(tuple(decisions), turn.calls, facts_fallback, tuple(turn.errors))

    def _ask(self, turn: _Turn, prompt: str, parse: Any) -> Any | None:
        """Ask the model until ``parse`` accepts its answer, at most ``retries + 1``
        times; None when it never does or the model is down (the fallback decides)."""
        attempt = prompt
        for _ in range(self.retries + 1):
            if turn.down:
                return None
            turn.calls += 1
            try:
                answer = call_llm(self.llm, attempt, self.timeout, name="memmesh-llm-pipeline")
            except Exception as exc:  # a model that fails or hangs is not asked again
                turn.down = True
                turn.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                return None
            try:
                return parse(answer)
            except PipelineOutputError as exc:
                turn.errors.append(f"malformed answer: {exc}"[:300])
                attempt = prompt + RETRY_PROMPT.format(error=str(exc)[:300])
        return None

    def _extract(self, turn: _Turn, conversation: Sequence[Message]) -> tuple[list[str], bool]:
        prompt = extraction_prompt(self.extraction_prompt, transcript(conversation))
        facts = self._ask(turn, prompt, lambda answer: parse_facts(
            answer, max_facts=self.max_facts, max_chars=self.max_answer_chars))
        if facts is not None:
            return list(facts), False
        fallback: list[str] = []
        for text in user_texts(conversation):
            fact = text[:MAX_FACT_CHARS]
            if fact not in fallback:
                fallback.append(fact)
        return fallback[: self.max_facts], True

    def _decide_all(self, turn: _Turn, view: Any, facts: list[str], scope: dict[str, Any],
                    metadata: Mapping[str, Any] | None) -> list[FactDecision]:
        if not facts:
            return []
        similar, memories, texts = self._retrieve(view, facts)
        proposals: dict[int, Proposal] | None = {}
        if memories:
            prompt = decision_prompt(self.decision_prompt, texts, facts)
            proposals = self._ask(turn, prompt, lambda answer: parse_decisions(
                answer, facts=len(facts), memories=len(memories),
                max_chars=self.max_answer_chars))
        writer = _Writer(self, view, scope, metadata)
        out = []
        for number, fact in enumerate(facts):
            if not memories:
                how = "fallback" if turn.down else "rule"
                out.append(writer.add(fact, "no similar memory in the view", how))
                continue
            if proposals is None:
                why = "the model failed" + (f" ({turn.errors[-1]})" if turn.errors else "")
                out.append(writer.fallback(fact, similar[number], why))
                continue
            proposal = proposals.get(number)
            if proposal is None:
                out.append(writer.fallback(fact, similar[number], "the model left it out"))
            elif proposal.refused is not None:
                out.append(writer.fallback(fact, similar[number],
                                           f"refused: {proposal.refused}"))
            else:
                target = None if proposal.alias is None else memories[proposal.alias]
                out.append(writer.follow(fact, proposal, target, similar[number]))
        return out

    def _retrieve(self, view: Any, facts: list[str]
                  ) -> tuple[list[_Similar], list[str], list[str]]:
        """Per fact its similar memories in the view; the distinct memories shown to the
        model (ids by alias) and their texts, in order of first retrieval."""
        similar: list[_Similar] = []
        memories: list[str] = []
        texts: list[str] = []
        for fact in facts:
            hits: list[Hit] = self.index.search(fact, self.similar, view=view)
            by_cosine = sorted(hits, key=lambda hit: -hit.similarity)
            similar.append(_Similar(tuple((hit.id, hit.similarity) for hit in by_cosine)))
            for hit in hits:
                if hit.id not in memories and len(memories) < self.max_memories:
                    memories.append(hit.id)
                    texts.append(hit.text)
        return similar, memories, texts


class _Writer:
    """Applies one turn's decisions: each checked against the view right before its
    write, each recorded with its fact and reason."""

    def __init__(self, pipeline: MemoryPipeline, view: _View, scope: dict[str, Any],
                 metadata: Mapping[str, Any] | None) -> None:
        self.replica = pipeline.replica
        self.actor = pipeline.actor
        self.threshold = pipeline.duplicate_threshold
        self.view = view
        self.scope = scope
        self.metadata = metadata

    @staticmethod
    def _detail(fact: str, reason: str, how: str) -> dict[str, str]:
        return {"fact": fact, "reason": reason, "pipeline": how}

    def add(self, fact: str, reason: str, how: str) -> FactDecision:
        memory_id = self.replica.add(fact, actor=self.actor, metadata=self.metadata,
                                     detail=self._detail(fact, reason, how), **self.scope)
        return FactDecision(fact, "ADD", memory_id, reason, how, fact)

    def fallback(self, fact: str, similar: _Similar, why: str) -> FactDecision:
        """ADD, unless a memory still in the view is a near-duplicate: NOOP on it."""
        for memory_id, cosine in similar.hits:
            if cosine < self.threshold:
                break
            if self.view.get(memory_id) is None:
                continue
            reason = f"{why}; fallback: near-duplicate of a memory (cosine {cosine:.3f})"
            self.replica.record_noop(memory_id, actor=self.actor,
                                     detail=self._detail(fact, reason, "fallback"))
            return FactDecision(fact, "NOOP", memory_id, reason, "fallback")
        best = f"best cosine {similar.hits[0][1]:.3f}" if similar.hits else "none similar"
        return self.add(fact, f"{why}; fallback: no near-duplicate ({best})", "fallback")

    def follow(self, fact: str, proposal: Proposal, target: str | None,
               similar: _Similar) -> FactDecision:
        """The model's decision, if its memory is still in the view; else the fallback."""
        event, reason = proposal.event, proposal.reason
        if event == "ADD":
            return self.add(fact, reason, "llm")
        if event == "NOOP" and target is None:
            return FactDecision(fact, "NOOP", None, reason, "llm")
        assert target is not None  # parse_decisions refuses UPDATE/DELETE without one
        if self.view.get(target) is None:
            return self.fallback(fact, similar, "refused: the memory left the view")
        detail = self._detail(fact, reason, "llm")
        try:
            if event == "UPDATE":
                text = proposal.text or fact
                self.replica.update(target, text, actor=self.actor, detail=detail)
                return FactDecision(fact, "UPDATE", target, reason, "llm", text)
            if event == "DELETE":
                if not self.replica.delete(target, actor=self.actor, detail=detail):
                    raise UnknownMemoryError(target)
                return FactDecision(fact, "DELETE", target, reason, "llm")
            self.replica.record_noop(target, actor=self.actor, detail=detail)
            return FactDecision(fact, "NOOP", target, reason, "llm")
        except UnknownMemoryError:  # gone since the check (another writer)
            return self.fallback(fact, similar, "refused: the memory is gone")


def add_messages(
    replica: PipelineReplica,
    index: SemanticIndex,
    messages: Sequence[Mapping[str, Any]],
    *,
    llm: LLM,
    app_id: str | None = None,
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    **options: Any,
) -> PipelineResult:
    """One turn of :class:`MemoryPipeline` (``options`` are its keyword arguments)."""
    pipeline = MemoryPipeline(replica, index, llm, **options)
    return pipeline.add_messages(messages, app_id=app_id, user_id=user_id,
                                 agent_id=agent_id, run_id=run_id, metadata=metadata)
