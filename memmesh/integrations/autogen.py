"""``MemmeshMemory``: an AutoGen ``Memory`` on a memmesh replica (extra ``autogen``).

AutoGen agents (``AssistantAgent(memory=[...])``) call ``update_context`` before each
model call; like autogen-ext's ChromaDB memory, ``MemmeshMemory`` searches by the
context's last message and adds one ``SystemMessage`` listing the relevant memories.
Each ``add`` is one memmesh memory in the memory's scope (``app_id``, ``user_id``,
``agent_id``, ``run_id``; written exactly there), durable before ``add`` returns and
replicated by the replica's gossip node. ``query`` reads through the scope's view
(``replica.view``: the app-wide, user, agent and run tiers that apply, as in Mem0's
tiered scopes and Letta's shared blocks), so an agent-scoped memory also finds its
user's and app's facts, most specific tier first on equal score; ``reads="exact"``
keeps to the exact scope. ``query`` ranks with a ``SemanticIndex``; each result carries
its memory ``id``, ``score`` (the cosine similarity) and ``scope_tier`` in its metadata,
and a memory holding concurrent versions (a memmesh conflict) lists the others under
``conflict``. ``clear`` is a replicated delete of exactly this scope's memories (never
the wider tiers it reads). The component config (replica path, scope, reads, k,
threshold, embedder) serialises as AutoGen's own memories do. Content rules:
:mod:`._autogen_content`; docs/autogen.md.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Annotated, Any, Literal, Self, TypeAlias, TypeVar

from autogen_core import CancellationToken, Component
from autogen_core.memory import Memory, MemoryContent, MemoryQueryResult, UpdateContextResult
from autogen_core.model_context import ChatCompletionContext
from autogen_core.models import SystemMessage
from pydantic import BaseModel, Field

from memmesh.crdt import InvalidArgumentError, MemmeshError
from memmesh.semantic import (
    Embedder,
    HashingEmbedder,
    Hit,
    SemanticIndex,
    SentenceTransformerEmbedder,
)
from memmesh.storage import MemoryRecord, Replica, ScopedView

from ._autogen_content import (
    UnsupportedContentError,
    context_text,
    decode,
    encode,
    message_text,
    query_text,
)

__all__ = [
    "ComponentConfigError",
    "HashingEmbedderConfig",
    "MemmeshMemory",
    "MemmeshMemoryConfig",
    "MemoryClosedError",
    "SentenceTransformerEmbedderConfig",
    "UnsupportedContentError",
]

T = TypeVar("T")
Reads: TypeAlias = Literal["view", "exact"]
SCOPE_FIELDS = ("app_id", "user_id", "agent_id", "run_id")


class MemoryClosedError(MemmeshError):  # type: ignore[misc, unused-ignore]
    """The :class:`MemmeshMemory` was closed; load or build a new one."""


class ComponentConfigError(MemmeshError, ValueError):  # type: ignore[misc, unused-ignore]
    """The memory cannot be described by a :class:`MemmeshMemoryConfig` (a custom
    embedder has no config form)."""


class SentenceTransformerEmbedderConfig(BaseModel):
    """The bundled all-MiniLM-L6-v2 model (offline), or the model at ``model_path``."""

    kind: Literal["sentence_transformer"] = "sentence_transformer"
    model_path: str | None = None


class HashingEmbedderConfig(BaseModel):
    """The deterministic word-hashing embedder (tests, examples; no model)."""

    kind: Literal["hashing"] = "hashing"
    dimension: int = Field(default=256, ge=8)


EmbedderConfig = Annotated[SentenceTransformerEmbedderConfig | HashingEmbedderConfig,
                           Field(discriminator="kind")]


class MemmeshMemoryConfig(BaseModel):
    """What ``dump_component`` writes and ``load_component`` reads: the replica's
    directory, the scope, the search settings and the embedder. No secrets: the gossip
    node (cluster key, seeds) is run beside the memory, not configured by it."""

    path: str = Field(description="directory of the memmesh replica")
    name: str | None = None
    app_id: str | None = "autogen"
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    tier: Literal["shared", "private"] | None = Field(
        default=None, description="None: storage's default (run-scoped memories private)")
    actor: str | None = Field(default=None, description="writer recorded on each add; "
                              "None: the agent_id")
    reads: Reads = Field(default="view", description="view: query the scope's view (app,"
                         " user, agent, run tiers); exact: the exact scope only")
    k: int = Field(default=3, ge=1, description="results per query")
    score_threshold: float | None = Field(default=None,
                                          description="minimum cosine similarity")
    embedder: EmbedderConfig = Field(default_factory=SentenceTransformerEmbedderConfig)


EmbedderChoice: TypeAlias = Embedder | SentenceTransformerEmbedderConfig | HashingEmbedderConfig
#: ``SentenceTransformerEmbedder.name`` of the bundled model (``model_path=None``).
_BUNDLED_MODEL = "st:all-MiniLM-L6-v2"


def _embedder_of(choice: EmbedderChoice | None) -> Embedder | None:
    """An embedder from a config (built here: the model loads on first use), or as is."""
    if isinstance(choice, HashingEmbedderConfig):
        return HashingEmbedder(choice.dimension)
    if isinstance(choice, SentenceTransformerEmbedderConfig):
        return SentenceTransformerEmbedder(choice.model_path)
    return choice


def _config_of(choice: EmbedderChoice | None
               ) -> SentenceTransformerEmbedderConfig | HashingEmbedderConfig:
    if choice is None:
        return SentenceTransformerEmbedderConfig()
    if isinstance(choice, SentenceTransformerEmbedderConfig | HashingEmbedderConfig):
        return choice
    if type(choice) is HashingEmbedder:
        return HashingEmbedderConfig(dimension=choice.dimension)
    if type(choice) is SentenceTransformerEmbedder:
        name = choice.name
        return SentenceTransformerEmbedderConfig(
            model_path=None if name == _BUNDLED_MODEL else name.removeprefix("st:"))
    raise ComponentConfigError(
        f"a {type(choice).__name__} embedder has no component config: give the memory a"
        " HashingEmbedder, a SentenceTransformerEmbedder or their config, or do not dump it")


class MemmeshMemory(Memory, Component[MemmeshMemoryConfig]):
    """An AutoGen memory whose contents live in a memmesh replica.

    ``replica`` is an open :class:`memmesh.storage.Replica`; ``index`` a
    :class:`memmesh.semantic.SemanticIndex` over it, or None to build one on the first
    query with ``embedder`` (an ``Embedder``, or a ``HashingEmbedderConfig`` /
    ``SentenceTransformerEmbedderConfig`` built then; default: the bundled model). The
    scope fields say where :meth:`add` writes and what :meth:`clear` deletes, exactly (a
    field left None: memories without it). ``reads="view"`` (default) makes
    :meth:`query` and :meth:`update_context` read the scope's view, the memories of every
    tier that applies to it (app-wide, user, agent, run; never another user's, agent's
    or run's); ``reads="exact"`` reads the exact scope only. A memory whose four scope
    fields are all None has no view and reads exactly. ``k`` and ``score_threshold``
    (minimum cosine) are the query defaults; ``query(..., k=, score_threshold=)``
    overrides them per call. ``actor`` is recorded as the writer (default:
    ``agent_id``). ``own_replica=True`` makes :meth:`close` close the replica (as a
    memory loaded from its config does).
    """

    component_type = "memory"
    component_provider_override = "memmesh.integrations.autogen.MemmeshMemory"
    component_config_schema = MemmeshMemoryConfig

    def __init__(self, replica: Replica, *, index: SemanticIndex | None = None,
                 embedder: EmbedderChoice | None = None, name: str | None = None,
                 app_id: str | None = "autogen", user_id: str | None = None,
                 agent_id: str | None = None, run_id: str | None = None,
                 tier: Literal["shared", "private"] | None = None, actor: str | None = None,
                 k: int = 3, score_threshold: float | None = None,
                 reads: Reads = "view", own_replica: bool = False) -> None:
        if index is not None and embedder is not None:
            raise InvalidArgumentError("pass index or embedder, not both")
        if index is not None and index.replica is not replica:
            raise InvalidArgumentError("index must be a SemanticIndex over replica")
        self._scope: dict[str, str | None] = {
            "app_id": app_id, "user_id": user_id, "agent_id": agent_id, "run_id": run_id}
        for field, value in (*self._scope.items(), ("actor", actor), ("name", name)):
            if value is not None and (type(value) is not str or not value):
                raise InvalidArgumentError(f"{field} must be a non-empty str or None")
        if tier not in (None, "shared", "private"):
            raise InvalidArgumentError('tier must be "shared", "private" or None')
        if reads not in ("view", "exact"):
            raise InvalidArgumentError('reads must be "view" or "exact"')
        self.k = self._check_k(k)
        self.score_threshold = self._check_threshold(score_threshold)
        self.replica = replica
        self._index = index
        self._embedder = embedder
        self._name = name or "memmesh_memory"
        self._tier = tier
        self._reads: Reads = reads
        self._view: ScopedView | None = (
            replica.view(**self._scope)
            if reads == "view" and any(v is not None for v in self._scope.values())
            else None)
        self._actor = actor if actor is not None else agent_id
        self._own_replica = own_replica
        self._closed = False
        self._index_lock = threading.Lock()

    @property
    def name(self) -> str:
        """This memory's identifier (``"memmesh_memory"`` unless named)."""
        return self._name

    @property
    def scope(self) -> dict[str, str | None]:
        """The memmesh scope of this memory's contents."""
        return dict(self._scope)

    @property
    def reads(self) -> Reads:
        """``"view"``: queries read the scope's view; ``"exact"``: the exact scope."""
        return self._reads

    # -- arguments --------------------------------------------------------------------

    @staticmethod
    def _check_k(k: object) -> int:
        if type(k) is not int or k < 1:
            raise InvalidArgumentError("k must be a positive int")
        return k

    @staticmethod
    def _check_threshold(threshold: object) -> float | None:
        if threshold is None:
            return None
        if type(threshold) not in (int, float) or not -1.0 <= float(threshold) <= 1.0:  # type: ignore[arg-type]
            raise InvalidArgumentError("score_threshold must be a cosine in [-1, 1] or None")
        return float(threshold)  # type: ignore[arg-type]

    # -- running blocking work off the loop ---------------------------------------------

    async def _run(self, fn: Callable[[], T], token: CancellationToken | None) -> T:
        """``fn()`` in a worker thread (LMDB fsyncs and embeddings never stall the loop);
        a cancelled ``token`` cancels it if it has not started yet, else abandons it."""
        if self._closed:
            raise MemoryClosedError(f"memory {self._name!r} is closed")
        future = asyncio.ensure_future(asyncio.to_thread(fn))
        if token is not None:
            token.link_future(future)
        return await future

    def _search_index(self) -> SemanticIndex:
        with self._index_lock:  # two first queries in two worker threads build one
            if self._index is None:
                self._index = SemanticIndex(self.replica, _embedder_of(self._embedder))
            return self._index

    # -- the Memory protocol -----------------------------------------------------------

    async def add(self, content: MemoryContent,
                  cancellation_token: CancellationToken | None = None) -> None:
        """Store ``content`` as one memory in this memory's scope. Text, markdown and
        JSON (a dict) are accepted; anything else raises ``UnsupportedContentError``
        and writes nothing."""
        text, metadata = encode(content)

        def write() -> None:
            self.replica.add(text, metadata=metadata, actor=self._actor, tier=self._tier,
                             **self._scope)

        await self._run(write, cancellation_token)

    async def query(self, query: str | MemoryContent = "",
                    cancellation_token: CancellationToken | None = None,
                    **kwargs: Any) -> MemoryQueryResult:
        """The memories most relevant to ``query`` (a str, or a ``MemoryContent`` read
        as :meth:`add` stores it) in this memory's view (or exact scope, see ``reads``),
        best first, the most specific tier first on equal score; at most ``k`` (keyword,
        default the memory's), each with cosine >= ``score_threshold``."""
        k = self._check_k(kwargs.pop("k", self.k))
        threshold = self._check_threshold(kwargs.pop("score_threshold", self.score_threshold))
        if kwargs:
            raise InvalidArgumentError(
                f"unknown query option(s) {sorted(kwargs)}; use k, score_threshold")
        text = query_text(query)

        def search() -> list[MemoryContent]:
            index = self._search_index()
            hits = (index.search(text, k, view=self._view) if self._view is not None
                    else index.search(text, k, **self._scope))
            return [self._content(hit) for hit in hits
                    if threshold is None or hit.similarity >= threshold]

        return MemoryQueryResult(results=await self._run(search, cancellation_token))

    async def update_context(self, model_context: ChatCompletionContext
                             ) -> UpdateContextResult:
        """Search by the context's last message and add one ``SystemMessage`` listing
        the memories found (none is added when nothing is found)."""
        messages = await model_context.get_messages()
        if not messages:
            return UpdateContextResult(memories=MemoryQueryResult(results=[]))
        found = await self.query(message_text(messages[-1]))
        if found.results:
            await model_context.add_message(SystemMessage(content=context_text(found.results)))
        return UpdateContextResult(memories=found)

    async def clear(self) -> None:
        """Delete every memory of this scope (exactly: never a neighbouring user's,
        agent's or run's, nor the user- or app-level memories a view reads). A delete
        is replicated, and an observed remove: a memory added or updated concurrently on
        another replica survives (add-wins)."""

        def delete_all() -> None:
            with self.replica.batch():
                for record in self.replica.list(**self._scope):
                    self.replica.delete(record.id)

        await self._run(delete_all, None)

    async def close(self) -> None:
        """Stop using the replica; close it if this memory owns it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._own_replica:
            await asyncio.to_thread(self.replica.close)

    # -- results ---------------------------------------------------------------------

    @staticmethod
    def _content(hit: Hit) -> MemoryContent:
        record: MemoryRecord = hit.record
        content, mime, metadata = decode(hit.version.text, hit.version.metadata)
        metadata.update(id=record.id, score=hit.similarity, scope_tier=record.scope_tier)
        others = [v for v in record.versions if v.dot != hit.version.dot]
        if others:
            metadata["conflict"] = [
                {"content": decode(v.text, v.metadata)[0], "actor": v.actor,
                 "replica": v.replica} for v in others]
        return MemoryContent(content=content, mime_type=mime, metadata=metadata)

    # -- component config --------------------------------------------------------------

    def _to_config(self) -> MemmeshMemoryConfig:
        embedder: Any = (self._embedder if self._index is None
                         else self._index.embedder.embedder)
        embedder_config = _config_of(embedder)
        return MemmeshMemoryConfig(
            path=self.replica.path, name=self._name, tier=self._tier, actor=self._actor,
            reads=self._reads, k=self.k, score_threshold=self.score_threshold,
            embedder=embedder_config, **self._scope)

    @classmethod
    def _from_config(cls, config: MemmeshMemoryConfig) -> Self:
        """Open the replica at ``config.path`` (owned: :meth:`close` closes it)."""
        replica = Replica.open(config.path)
        try:
            return cls(replica, embedder=config.embedder, name=config.name,
                       app_id=config.app_id, user_id=config.user_id,
                       agent_id=config.agent_id, run_id=config.run_id, tier=config.tier,
                       actor=config.actor, reads=config.reads, k=config.k,
                       score_threshold=config.score_threshold, own_replica=True)
        except BaseException:
            replica.close()
            raise
