"""Search served by a running node over a unix socket in its data directory, so
``memmesh search`` answers in milliseconds instead of loading the model each time.

The node keeps a :class:`memmesh.semantic.SemanticIndex` per embedder (built, and the
model loaded, at the first request), current from the replica's change journal; the CLI
sends one JSON line and reads one back, and loads the model itself when no node listens
(the language-server pattern: one warm process, many short clients). The socket is
``DATA/search.sock``, mode 0600: whoever may read the LMDB files may search them, nobody
else. Requests are bounded (64 KiB, k <= 100) and validated like any other input.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio

from memmesh.crdt import MemmeshError
from memmesh.integrations._records import record_json
from memmesh.storage import MemoryRecord

log = logging.getLogger("memmesh.search")

SOCKET = "search.sock"
MAX_REQUEST = 64 * 1024
MAX_K = 100
EMBEDDERS = ("model", "hashing")
#: a unix socket path must fit sun_path (108 bytes on Linux, 104 on macOS)
MAX_SOCKET_PATH = 100


class SearchRequestError(MemmeshError):  # type: ignore[misc, unused-ignore]
    """A search request that is not valid: a bad k, threshold, filter or embedder."""


def make_index(replica: Any, embedder: str) -> Any:
    from memmesh.semantic import HashingEmbedder, SemanticIndex

    if embedder not in EMBEDDERS:
        raise SearchRequestError(f"embedder must be one of {EMBEDDERS}")
    return SemanticIndex(replica, HashingEmbedder() if embedder == "hashing" else None)


def _matches(record: MemoryRecord, where: Mapping[str, str]) -> bool:
    return all(str(record.metadata.get(k)) == v and k in record.metadata
               for k, v in where.items())


def search(index: Any, query: str, k: int, *, threshold: float = 0.0,
           where: Mapping[str, str] | None = None,
           scope: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The ``k`` best hits as JSON: only similarity above 0 and at least ``threshold``,
    only memories whose metadata holds every ``where`` pair. Fetches more candidates
    until ``k`` such hits are found or the scope is exhausted, so filtered-out hits
    never take a place in the k."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise SearchRequestError(f"k must be an int in 1..{MAX_K}")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) \
            or not -1.0 <= threshold <= 1.0:
        raise SearchRequestError("threshold is a cosine similarity, in [-1, 1]")
    where = dict(where or {})
    fetch = k * 4
    while True:
        hits = index.search(query, k=fetch, **dict(scope or {}))
        kept = [h for h in hits if h.similarity > 0 and h.similarity >= threshold
                and _matches(h.record, where)]
        if len(kept) >= k or len(hits) < fetch:
            return [{"score": h.score, "similarity": h.similarity, "text": h.text,
                     "record": record_json(h.record)} for h in kept[:k]]
        fetch *= 4


def _request(raw: bytes) -> dict[str, Any]:
    try:
        req = json.loads(raw)
    except ValueError as exc:
        raise SearchRequestError(f"not JSON: {exc}") from None
    if not isinstance(req, dict) or not isinstance(req.get("query"), str):
        raise SearchRequestError("a request is an object with a string query")
    for name in ("where", "scope"):
        value = req.get(name) or {}
        if not isinstance(value, dict) or not all(
                isinstance(a, str) and isinstance(b, str) for a, b in value.items()):
            raise SearchRequestError(f"{name} maps strings to strings")
    return req


async def serve_search(replica: Any, data: Path) -> None:
    """Answer searches on ``data/search.sock`` until cancelled (then remove it)."""
    path = data / SOCKET
    if len(os.fsencode(path.resolve())) > MAX_SOCKET_PATH:
        log.warning("data directory path too long for a unix socket: no search socket "
                    "(memmesh search will load the model itself)")
        return
    path.unlink(missing_ok=True)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(str(path))
    os.chmod(path, 0o600)
    sock.listen(16)
    indexes: dict[str, Any] = {}
    limiter = trio.CapacityLimiter(1)

    def answer(raw: bytes) -> dict[str, Any]:
        try:
            req = _request(raw)
            name = req.get("embedder", "model")
            if name not in indexes:
                indexes[name] = make_index(replica, name)
            return {"hits": search(indexes[name], req["query"], req.get("k", 10),
                                   threshold=req.get("threshold", 0.0),
                                   where=req.get("where"), scope=req.get("scope"))}
        except MemmeshError as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            raw = b""
            with trio.move_on_after(30):
                while not raw.endswith(b"\n") and len(raw) <= MAX_REQUEST:
                    chunk = await stream.receive_some(MAX_REQUEST)
                    if not chunk:
                        break
                    raw += chunk
            if not raw.endswith(b"\n") or len(raw) > MAX_REQUEST:
                return
            reply = await trio.to_thread.run_sync(answer, raw, limiter=limiter)
            with contextlib.suppress(trio.BrokenResourceError):
                await stream.send_all(json.dumps(reply).encode() + b"\n")

    try:
        await trio.serve_listeners(handle, [trio.SocketListener(sock)])
    finally:
        path.unlink(missing_ok=True)


def ask_node(data: Path, request: Mapping[str, Any], timeout: float = 120.0
             ) -> list[dict[str, Any]] | None:
    """The hits from the node serving ``data``; None when none listens there."""
    path = data / SOCKET
    if not path.exists():
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        try:
            client.connect(str(path))
        except OSError:  # a socket left by a node that died: no node
            return None
        client.sendall(json.dumps(dict(request)).encode() + b"\n")
        raw = b""
        while not raw.endswith(b"\n"):
            chunk = client.recv(1 << 20)
            if not chunk:
                return None
            raw += chunk
    reply = json.loads(raw)
    if "error" in reply:
        raise SearchRequestError(reply["error"])
    hits: list[dict[str, Any]] = reply["hits"]
    return hits
