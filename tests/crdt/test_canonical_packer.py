"""``pack_canonical`` reuses one msgpack packer (issue 17, hot paths): a failed pack
leaves nothing behind, and a pack while it is busy (another thread, a finalizer) builds
its own, with the same bytes."""

from __future__ import annotations

import threading

import msgpack
import pytest

from memmesh.crdt import InvalidArgumentError, pack_canonical
from memmesh.crdt import _canonical as canonical

PLAIN = (1, "text", (None, True, 2.5, b"b"), {"a": 1, "b": ("x",)})


def test_a_failed_pack_leaves_nothing_in_the_next_one() -> None:
    with pytest.raises(InvalidArgumentError):
        pack_canonical((1, "partial", object()))
    assert pack_canonical(PLAIN) == msgpack.packb(PLAIN, use_bin_type=True)


def test_a_pack_while_the_shared_packer_is_busy_gives_the_same_bytes() -> None:
    with canonical._PACKER_LOCK:
        assert pack_canonical(PLAIN) == msgpack.packb(PLAIN, use_bin_type=True)
    assert pack_canonical(PLAIN) == msgpack.packb(PLAIN, use_bin_type=True)


def test_threads_packing_at_once_each_get_their_own_bytes() -> None:
    results: dict[int, list[bytes]] = {}

    def work(i: int) -> None:
        results[i] = [pack_canonical((i, "t" * (i * 50), j)) for j in range(2000)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, packed in results.items():
        assert packed == [msgpack.packb((i, "t" * (i * 50), j)) for j in range(2000)]
