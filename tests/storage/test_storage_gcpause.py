"""The collector pause of a bulk ``sync_apply`` never reaches other threads."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from memmesh.storage import Replica
from memmesh.storage import _sync as sync_module
from memmesh.storage._gcpause import gc_paused


@contextmanager
def another_thread() -> Iterator[None]:
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        yield
    finally:
        release.set()
        other.join()


def test_the_collector_keeps_running_while_another_thread_exists() -> None:
    with another_thread(), gc_paused():
        assert gc.isenabled()
    assert gc.isenabled()


def test_sync_apply_in_a_threaded_host_leaves_the_collector_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    read_changes = sync_module.read_changes

    def probe(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())  # read inside sync_apply's pause, if any
        return read_changes(*args, **kwargs)

    monkeypatch.setattr(sync_module, "read_changes", probe)
    with Replica.open(tmp_path / "a") as a, Replica.open(tmp_path / "b") as b:
        for i in range(20):
            a.add(f"memory {i}")
        payload = a.sync_changes(b.sync_summary())
        with another_thread():
            assert b.sync_apply(payload).applied == 20
    assert seen == [True] and gc.isenabled()
