"""LangGraph's checkpointer conformance suite (PyPI ``langgraph-checkpoint-conformance``)
against ``MemmeshSaver``.

The package's own runner (``validate``) runs every capability, base and extended, on a
fresh saver per capability, twice: through ``MemmeshSaver``'s async methods, and through
its sync methods (an adapter whose async methods call the sync ones inline). Each
conformance test is one pytest outcome here, failing with the suite's traceback, and the
suite's report must be all-pass with every capability detected: a capability the saver
stopped implementing fails too, rather than being skipped.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.checkpoint.conformance.report import CapabilityReport, ProgressCallbacks
from langgraph.checkpoint.conformance.spec.test_copy_thread import ALL_COPY_THREAD_TESTS
from langgraph.checkpoint.conformance.spec.test_delete_for_runs import (
    ALL_DELETE_FOR_RUNS_TESTS,
)
from langgraph.checkpoint.conformance.spec.test_delete_thread import ALL_DELETE_THREAD_TESTS
from langgraph.checkpoint.conformance.spec.test_get_tuple import ALL_GET_TUPLE_TESTS
from langgraph.checkpoint.conformance.spec.test_list import ALL_LIST_TESTS
from langgraph.checkpoint.conformance.spec.test_prune import ALL_PRUNE_TESTS
from langgraph.checkpoint.conformance.spec.test_put import ALL_PUT_TESTS
from langgraph.checkpoint.conformance.spec.test_put_writes import ALL_PUT_WRITES_TESTS

from memmesh.integrations.langgraph_saver import MemmeshSaver
from memmesh.storage import Replica

#: Every conformance test of the installed suite, by capability.
SUITE: dict[str, list[Any]] = {
    "put": ALL_PUT_TESTS,
    "put_writes": ALL_PUT_WRITES_TESTS,
    "get_tuple": ALL_GET_TUPLE_TESTS,
    "list": ALL_LIST_TESTS,
    "delete_thread": ALL_DELETE_THREAD_TESTS,
    "delete_for_runs": ALL_DELETE_FOR_RUNS_TESTS,
    "copy_thread": ALL_COPY_THREAD_TESTS,
    "prune": ALL_PRUNE_TESTS,
}
MODES = ("async", "sync")
CASES = [(mode, capability, test.__name__)
         for mode in MODES for capability, tests in SUITE.items() for test in tests]


class SyncDriven(BaseCheckpointSaver[str]):
    """The suite drives ``a*`` methods; these call ``MemmeshSaver``'s sync ones inline."""

    def __init__(self, inner: MemmeshSaver) -> None:
        super().__init__(serde=inner.serde)
        self.inner = inner

    def get_next_version(self, current: str | None, channel: None) -> str:
        return self.inner.get_next_version(current, channel)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.inner.get_tuple(config)

    async def alist(self, config: RunnableConfig | None, *,
                    filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None, limit: int | None = None,
                    ) -> AsyncIterator[CheckpointTuple]:
        for found in self.inner.list(config, filter=filter, before=before, limit=limit):
            yield found

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint,
                   metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        return self.inner.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                          task_id: str, task_path: str = "") -> None:
        self.inner.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.inner.delete_thread(thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.inner.delete_for_runs(run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.inner.copy_thread(source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *,
                     strategy: str = "keep_latest") -> None:
        self.inner.prune(thread_ids, strategy=strategy)


@dataclass
class Run:
    """One run of the suite: its report and each test's traceback (None: passed)."""

    report: CapabilityReport
    outcomes: dict[tuple[str, str], str | None] = field(default_factory=dict)


def run_suite(mode: str, workdir: Path) -> Run:
    outcomes: dict[tuple[str, str], str | None] = {}

    def record(capability: str, test: str, passed: bool, error: str | None) -> None:
        outcomes[(capability, test)] = None if passed else (error or "failed")

    @checkpointer_test(name=f"MemmeshSaver ({mode})")
    async def factory() -> AsyncGenerator[BaseCheckpointSaver[str], None]:
        with (tempfile.TemporaryDirectory(dir=workdir) as path,
              Replica.open(Path(path) / "replica", durable=False) as replica):
            saver = MemmeshSaver(replica)
            yield saver if mode == "async" else SyncDriven(saver)

    report = asyncio.run(validate(factory, progress=ProgressCallbacks(on_test_result=record)))
    return Run(report, outcomes)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    workdir = tmp_path_factory.mktemp("conformance")
    yield {mode: run_suite(mode, workdir) for mode in MODES}


@pytest.mark.parametrize(("mode", "capability", "test"), CASES,
                         ids=[f"{m}-{c}-{t}" for m, c, t in CASES])
def test_conformance(runs: dict[str, Run], mode: str, capability: str, test: str) -> None:
    outcomes = runs[mode].outcomes
    assert (capability, test) in outcomes, f"{capability}/{test} did not run"
    error = outcomes[(capability, test)]
    if error is not None:
        pytest.fail(f"{capability}/{test}:\n{error}", pytrace=False)


@pytest.mark.parametrize("mode", MODES)
def test_the_suites_report_is_all_pass_with_every_capability_detected(
        runs: dict[str, Run], mode: str) -> None:
    report = runs[mode].report
    assert report.conformance_level() == "FULL"
    assert set(report.results) == {c.value for c in ALL_CAPABILITIES} == set(SUITE)
    for capability, result in report.results.items():
        assert result.detected, f"{capability} is not implemented"
        assert result.passed is True, result.failures
        assert result.tests_passed == len(SUITE[capability])
    assert len(runs[mode].outcomes) == sum(len(tests) for tests in SUITE.values())
