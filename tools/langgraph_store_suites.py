"""Run LangGraph's own store test suites against ``MemmeshStore`` (issue 14 acceptance).

Usage: ``python tools/langgraph_store_suites.py LANGGRAPH_CHECKOUT OUT_DIR [FILE_KEY ...]``
(with memmesh's virtualenv python; ``FILE_KEY`` e.g. ``sqlite/test_store.py``; a bare git
mirror can be unpacked first: ``git -C MIRROR archive HEAD libs | tar -x -C CHECKOUT``).

Copies LangGraph's store test files (checkpoint, checkpoint-sqlite and checkpoint-postgres
suites) from a langgraph checkout into ``OUT_DIR``, changing only how the store is built:

* import lines that name a backend (``InMemoryStore``, ``SqliteStore``, ``PostgresStore``,
  their async twins, psycopg, backend-internal helpers) import from a generated ``lgshim``
  module instead, whose store classes construct a ``MemmeshStore`` on a fresh replica;
* the postgres files' fixtures that create databases (``store``, ``_create_vector_store``)
  are redefined at the end of the copy to build the store through ``lgshim``;
* backend-internal tests (SQL connections, migrations, query text, psycopg pool internals)
  are marked skipped by name, and counted.

Then runs each file with pytest (``anyio_mode = auto`` runs the async tests; no
pytest-asyncio needed) and prints passed/failed/skipped per file. LangGraph's test code
is never copied into memmesh: this script only reads it from the checkout you give.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

# the key used on the command line and in the report -> (suite, path in the checkout)
FILES = {
    "checkpoint/test_store.py": ("checkpoint", "libs/checkpoint/tests/test_store.py"),
    "sqlite/test_store.py": ("sqlite", "libs/checkpoint-sqlite/tests/test_store.py"),
    "sqlite/test_async_store.py": ("sqlite", "libs/checkpoint-sqlite/tests/test_async_store.py"),
    "postgres/test_store.py": ("postgres", "libs/checkpoint-postgres/tests/test_store.py"),
    "postgres/test_async_store.py": ("postgres",
                                     "libs/checkpoint-postgres/tests/test_async_store.py"),
}
HELPERS = {
    "checkpoint": ["libs/checkpoint/tests/embed_test_utils.py"],
    "sqlite": [],
    "postgres": ["libs/checkpoint-postgres/tests/embed_test_utils.py"],
}

#: Tests that exercise a SQL backend's internals rather than the BaseStore contract.
BACKEND_INTERNAL = {
    "sqlite/test_store.py": {
        "test_vector_store_initialization": "inspects sqlite_master through store.conn",
        "test_nonnull_migrations": "SqliteStore.MIGRATIONS",
        "test_escape_glob_literal": "SQLite GLOB escaping helper",
        "test_namespace_match_pattern": "SQLite namespace regex helper",
        "test_list_namespaces_prefix_uses_indexable_condition": "SQL query text",
    },
    "postgres/test_store.py": {
        "test_nonnull_migrations": "PostgresStore.MIGRATIONS",
        "test_escape_like_literal": "Postgres LIKE escaping helper",
        "test_namespace_match_pattern": "Postgres namespace regex helper",
        "test_omit_expired_filters_read_paths": "backdates expires_at with SQL (store._cursor)",
        "test_omit_expired_disabled_preserves_expired_rows":
            "backdates expires_at with SQL (store._cursor)",
        "test_omit_expired_refresh_ttl_only_refreshes_live_rows":
            "backdates expires_at with SQL (store._cursor)",
        "test_omit_expired_search_pagination": "backdates expires_at with SQL (store._cursor)",
    },
    "postgres/test_async_store.py": {
        "test_abatch_uses_single_pool_checkout": "psycopg pool checkouts (_ainternal)",
        "test_omit_expired_filters_read_paths": "backdates expires_at with SQL (store._cursor)",
        "test_omit_expired_disabled_preserves_expired_rows":
            "backdates expires_at with SQL (store._cursor)",
        "test_omit_expired_refresh_ttl_only_refreshes_live_rows":
            "backdates expires_at with SQL (store._cursor)",
        "test_omit_expired_search_pagination": "backdates expires_at with SQL (store._cursor)",
    },
}

IMPORT_REWRITES = [
    (r"^from langgraph\.store\.(memory|sqlite|sqlite\.base|postgres|postgres\.base) import",
     "from lgshim import"),
    (r"^from psycopg import", "from lgshim import"),
    (r"^from langgraph\.checkpoint\.postgres import _ainternal", "from lgshim import _ainternal"),
]

SHIM = '''"""Backends for LangGraph's store tests, every one a MemmeshStore on a fresh replica."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from langgraph.store.base import IndexConfig

from memmesh.integrations.langgraph import MemmeshStore
from memmesh.storage import Replica

OPEN: list[tuple[Replica, str]] = []


def fresh_replica() -> Replica:
    path = tempfile.mkdtemp(prefix="lgsuite-")
    replica = Replica.open(path, durable=False)
    OPEN.append((replica, path))
    return replica


def close_all() -> None:
    while OPEN:
        replica, path = OPEN.pop()
        replica.close()
        shutil.rmtree(path, ignore_errors=True)


def _store(cls: type, index: Any = None, ttl: Any = None) -> Any:
    return cls(fresh_replica(), index=index, ttl_config=ttl)


class InMemoryStore(MemmeshStore):
    def __init__(self, *, index: Any = None, ttl: Any = None) -> None:
        super().__init__(fresh_replica(), index=index, ttl_config=ttl)


class SqliteStore(MemmeshStore):
    @classmethod
    @contextmanager
    def from_conn_string(cls, conn_string: str, *, index: Any = None, ttl: Any = None,
                         **_: Any) -> Iterator[Any]:
        yield _store(cls, index, ttl)

    def setup(self) -> None:
        pass


PostgresStore = SqliteStore


class AsyncSqliteStore(MemmeshStore):
    @classmethod
    @asynccontextmanager
    async def from_conn_string(cls, conn_string: str, *, index: Any = None, ttl: Any = None,
                               **_: Any) -> AsyncIterator[Any]:
        yield _store(cls, index, ttl)

    async def setup(self) -> None:
        pass


AsyncPostgresStore = AsyncSqliteStore
SqliteIndexConfig = IndexConfig


class _Internal:
    """Stands for a SQL backend's internals (the tests that use it are skipped)."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("backend-internal")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("backend-internal")


NS_MATCH_FUNCTION = "_langgraph_namespace_match"
BaseSqliteStore = _escape_glob_literal = _namespace_match_pattern = _Internal()
_escape_like_literal = _ainternal = Connection = AsyncConnection = _Internal()
'''

CONFTEST = '''"""Generated: async tests run by anyio, replicas closed, backend internals skipped."""

from __future__ import annotations

import pytest
import lgshim
from pytest_mock import mocker  # noqa: F401  (pytest-mock's fixture, or the shim's)

SKIP = {skip!r}
{extra}

@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _close_replicas():
    yield
    lgshim.close_all()


def pytest_collection_modifyitems(config, items):
    for item in items:
        key = item.path.parent.parent.name + "/" + item.path.name
        reason = SKIP.get(key, {{}}).get(item.originalname)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason="backend-internal: " + reason))
'''

POSTGRES_CONFTEST_EXTRA = '''
from tests.embed_test_utils import CharacterEmbeddings

DEFAULT_URI = "memmesh://fresh-replica"
VECTOR_TYPES = ["vector", "halfvec"]


@pytest.fixture
def fake_embeddings() -> CharacterEmbeddings:
    return CharacterEmbeddings(dims=500)
'''

POSTGRES_SYNC_FIXTURES = '''

# -- memmesh: how the store is built (replaces the database-creating fixtures) --------
@pytest.fixture(scope="function", params=["default", "pipe", "pool"])
def store(request):
    ttl_config = {"default_ttl": TTL_MINUTES, "refresh_on_read": True,
                  "sweep_interval_minutes": TTL_MINUTES / 2}
    with PostgresStore.from_conn_string(DEFAULT_URI, ttl=ttl_config) as store:
        yield store


@contextmanager
def _create_vector_store(vector_type, distance_type, fake_embeddings, text_fields=None,
                         enable_ttl=True):
    index_config = {"dims": fake_embeddings.dims, "embed": fake_embeddings,
                    "ann_index_config": {"vector_type": vector_type},
                    "distance_type": distance_type, "fields": text_fields}
    with PostgresStore.from_conn_string(
            DEFAULT_URI, index=index_config,
            ttl={"default_ttl": 2, "refresh_on_read": True} if enable_ttl else None) as store:
        yield store
'''

POSTGRES_ASYNC_FIXTURES = '''

# -- memmesh: how the store is built (replaces the database-creating fixtures) --------
@pytest.fixture(scope="function", params=["default", "pipe", "pool"])
async def store(request):
    ttl_config = {"default_ttl": TTL_MINUTES, "refresh_on_read": True,
                  "sweep_interval_minutes": TTL_MINUTES / 2}
    async with AsyncPostgresStore.from_conn_string(DEFAULT_URI, ttl=ttl_config) as store:
        yield store


@asynccontextmanager
async def _create_vector_store(vector_type, distance_type, fake_embeddings,
                               text_fields=None, enable_ttl=True):
    index_config = {"dims": fake_embeddings.dims, "embed": fake_embeddings,
                    "ann_index_config": {"vector_type": vector_type},
                    "distance_type": distance_type, "fields": text_fields}
    async with AsyncPostgresStore.from_conn_string(
            DEFAULT_URI, index=index_config,
            ttl={"default_ttl": 2, "refresh_on_read": True} if enable_ttl else None) as store:
        yield store
'''

APPEND = {
    "postgres/test_store.py": POSTGRES_SYNC_FIXTURES,
    "postgres/test_async_store.py": POSTGRES_ASYNC_FIXTURES,
}

PYTEST_MOCK = '''"""Enough of pytest-mock (stub, spy) for LangGraph's store tests."""

from unittest import mock

import pytest


class MockerFixture:
    def __init__(self):
        self._patches = []

    def stub(self, name=None):
        return mock.MagicMock(name=name)

    def spy(self, obj, name):
        original = getattr(obj, name)
        spy = mock.MagicMock(side_effect=lambda *a, **k: original(*a, **k))
        patcher = mock.patch.object(obj, name, new=lambda *a, **k: spy(*a, **k))
        patcher.start()
        self._patches.append(patcher)
        return spy

    def stopall(self):
        for patcher in self._patches:
            patcher.stop()


@pytest.fixture
def mocker():
    m = MockerFixture()
    yield m
    m.stopall()
'''

PYTEST_INI = """[pytest]
anyio_mode = auto
pythonpath = . ..
addopts = -p no:cacheprovider -p no:trio
"""


def source(checkout: Path, rel: str) -> str:
    return (checkout / rel).read_text()


def adapt(text: str) -> str:
    for pattern, replacement in IMPORT_REWRITES:
        text = re.sub(pattern, replacement, text, flags=re.M)
    return text


def write(checkout: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "lgshim.py").write_text(SHIM)
    try:
        import pytest_mock  # noqa: F401
    except ImportError:  # the checkpoint suite's two mocker tests need only this much
        (out / "pytest_mock.py").write_text(PYTEST_MOCK)
    for suite in {s for s, _ in FILES.values()}:
        tests = out / suite / "tests"
        tests.mkdir(parents=True, exist_ok=True)
        (tests / "__init__.py").write_text("")
        (out / suite / "pytest.ini").write_text(PYTEST_INI)
        for rel in HELPERS[suite]:
            (tests / Path(rel).name).write_text(source(checkout, rel))
        skip = {k: v for k, v in BACKEND_INTERNAL.items() if k.startswith(suite + "/")}
        extra = POSTGRES_CONFTEST_EXTRA if suite == "postgres" else ""
        (tests / "conftest.py").write_text(CONFTEST.format(skip=skip, extra=extra))
    for key, (suite, rel) in FILES.items():
        text = adapt(source(checkout, rel)) + APPEND.get(key, "")
        (out / suite / "tests" / Path(rel).name).write_text(text)


def run(out: Path, keys: list[str]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for key in keys:
        suite, name = key.split("/")
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-rfs", "--tb=line", f"tests/{name}"],
            cwd=out / suite, capture_output=True, text=True, check=False)
        (out / f"{suite}-{name}.log").write_text(proc.stdout + proc.stderr)
        tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
        found = dict.fromkeys(("passed", "failed", "skipped", "error"), 0)
        for number, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", tail):
            found[word.rstrip("s") if word.startswith("error") else word] += int(number)
        counts[key] = found
        print(f"{key:32} {found['passed']:4} passed {found['failed']:4} failed "
              f"{found['skipped']:4} skipped {found['error']:3} errors", flush=True)
    return counts


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    checkout, out = Path(argv[0]), Path(argv[1])
    keys = argv[2:] or list(FILES)
    write(checkout, out)
    counts = run(out, keys)
    total = {w: sum(c[w] for c in counts.values()) for w in ("passed", "failed", "skipped",
                                                              "error")}
    print(f"{'total':32} {total['passed']:4} passed {total['failed']:4} failed "
          f"{total['skipped']:4} skipped {total['error']:3} errors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
