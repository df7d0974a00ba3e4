"""Benchmark of memmesh.crdt: merges per second and encoded bytes per element.

Run: ``python benchmarks/bench_crdt.py`` (``--quick`` for a smaller run, ``--json FILE``
to also write the figures).  Every type is measured against msgpack's raw pack of the
same values in the same run, so the ratios say what the CRDT metadata costs:

* ``merges/s``: joins per second, for deltas merged into a populated state (what a
  replica does per received write) and for full states of that size (anti-entropy);
* ``B/elem``: encoded bytes per element (``len(encode(state)) / n``) next to
  ``len(msgpack.packb(values)) / n``, and their ratio;
* ``encode us/elem``: canonical encoding time per element next to msgpack's plain pack
  of the values, and their ratio.

Timings are best-of-``repeat`` wall-clock measurements on a shared machine: compare
ratios from one run, not absolute numbers across machines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import msgpack

from memmesh.crdt import HLC, LWWRegister, MVRegister, ORSet, decode, encode, join

REPLICAS = (
    "3f2a9c0e5b7d4e1fa6c8b2d0e4f6a8c1",
    "9b1d7e3c5a2f4b6d8e0c1a3f5b7d9e2c",
    "c4e6a8b0d2f4e6a8c0b2d4f6a8c0e2b4",
)


@dataclass
class Row:
    kind: str
    scenario: str
    n: int
    merges_per_s: float
    bytes_per_elem: float
    raw_bytes_per_elem: float
    encode_us_per_elem: float
    raw_pack_us_per_elem: float
    decode_us_per_elem: float

    @property
    def size_ratio(self) -> float:
        return self.bytes_per_elem / self.raw_bytes_per_elem

    @property
    def time_ratio(self) -> float:
        return self.encode_us_per_elem / self.raw_pack_us_per_elem


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """Best wall-clock seconds of ``repeat`` calls."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def memory_text(i: int) -> str:
    return f"user prefers dark mode in editor #{i:05d}"


def raw_pack(values: list[Any]) -> bytes:
    return msgpack.packb(values, use_bin_type=True)  # type: ignore[no-any-return]


def codec_figures(
    states: list[Any], values: list[Any], n: int, repeat: int
) -> tuple[float, float, float, float, float]:
    """(bytes/elem, raw bytes/elem, encode us/elem, raw pack us/elem, decode us/elem)."""
    encoded = [encode(s) for s in states]
    size = sum(len(b) for b in encoded)
    raw = raw_pack(values)
    t_encode = best_of(repeat, lambda: [encode(s) for s in states])
    t_raw = best_of(repeat, lambda: raw_pack(values))
    t_decode = best_of(repeat, lambda: [decode(b) for b in encoded])
    us = 1e6 / n
    return size / n, len(raw) / n, t_encode * us, t_raw * us, t_decode * us


def bench_orset(n: int, repeat: int) -> list[Row]:
    values = [memory_text(i) for i in range(n)]
    full: ORSet[str] = ORSet()
    deltas = []
    for i, v in enumerate(values):
        deltas.append(full.add(v, REPLICAS[i % 3]))
    rows = []
    figures = codec_figures([full], values, n, repeat)

    # Deltas of a fresh batch of adds merged into a populated replica (received writes).
    batch = max(1, n // 10)
    incoming: ORSet[str] = full.copy()
    fresh = [incoming.add(f"new {i}", REPLICAS[1]) for i in range(batch)]

    def merge_deltas() -> None:
        target = full.copy()
        for d in fresh:
            target.merge(d)

    copy_time = best_of(repeat, full.copy)
    t = max(best_of(repeat, merge_deltas) - copy_time, 1e-9)
    rows.append(Row("ORSet", f"delta into {n}", n, batch / t, *figures))

    # Full-state join of two replicas that diverged by concurrent adds and removes.
    other = full.copy()
    for i in range(0, n, 7):
        other.remove(values[i])
        other.add(f"other {i}", REPLICAS[2])
    t = best_of(repeat, lambda: join(full, other))
    rows.append(Row("ORSet", f"full state {n}", n, 1 / t, *figures))
    return rows


def bench_mvregister(n: int, repeat: int) -> list[Row]:
    values = [memory_text(i) for i in range(n)]
    registers = []
    for v in values:
        r: MVRegister[str] = MVRegister()
        r.write(v, REPLICAS[0])
        registers.append(r)
    figures = codec_figures(registers, values, n, repeat)
    rows = []

    # Per key: a register receives the delta of a concurrent write (a conflict).
    concurrent = []
    for _ in registers:
        other: MVRegister[str] = MVRegister()
        concurrent.append(other.write("concurrent edit", REPLICAS[1]))

    def merge_concurrent() -> None:
        for r, d in zip(registers, concurrent, strict=True):
            r.copy().merge(d)

    copy_time = best_of(repeat, lambda: [r.copy() for r in registers])
    t = max(best_of(repeat, merge_concurrent) - copy_time, 1e-9)
    rows.append(Row("MVRegister", "delta per key", n, n / t, *figures))

    # Two concurrent values kept side by side: what a conflicted key costs.
    conflicted = []
    conflict_values = []
    for r, d in zip(registers, concurrent, strict=True):
        c = r.copy()
        c.merge(d)
        conflicted.append(c)
        conflict_values.append(list(c.value))
    figures2 = codec_figures(conflicted, conflict_values, n, repeat)
    pairs = list(zip(registers, conflicted, strict=True))
    t = max(best_of(repeat, lambda: [join(a, b) for a, b in pairs]), 1e-9)
    rows.append(Row("MVRegister", "2 concurrent, full", n, n / t, *figures2))
    return rows


def bench_lwwregister(n: int, repeat: int) -> list[Row]:
    values = [memory_text(i) for i in range(n)]
    clocks = [HLC(r) for r in REPLICAS]
    registers = []
    later = []
    for i, v in enumerate(values):
        r: LWWRegister[str] = LWWRegister()
        r.write(v, clocks[i % 3].now(1_700_000_000_000 + i))
        registers.append(r)
        later.append(LWWRegister(clocks[(i + 1) % 3].now(1_700_000_000_500 + i), v + "!"))
    figures = codec_figures(registers, values, n, repeat)
    copy_time = best_of(repeat, lambda: [r.copy() for r in registers])

    def merge_all() -> None:
        for r, d in zip(registers, later, strict=True):
            r.copy().merge(d)

    t = max(best_of(repeat, merge_all) - copy_time, 1e-9)
    return [Row("LWWRegister", "delta per key", n, n / t, *figures)]


def print_table(rows: list[Row], out: Any = sys.stdout) -> None:
    header = (
        f"{'type':<12} {'scenario':<20} {'merges/s':>11} {'B/elem':>8} {'msgpack':>8} "
        f"{'size x':>7} {'enc us':>8} {'pack us':>8} {'time x':>7} {'dec us':>8}"
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    for r in rows:
        print(
            f"{r.kind:<12} {r.scenario:<20} {r.merges_per_s:>11,.0f} {r.bytes_per_elem:>8.1f} "
            f"{r.raw_bytes_per_elem:>8.1f} {r.size_ratio:>7.2f} {r.encode_us_per_elem:>8.2f} "
            f"{r.raw_pack_us_per_elem:>8.3f} {r.time_ratio:>7.1f} {r.decode_us_per_elem:>8.2f}",
            file=out,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer repeats")
    parser.add_argument("-n", type=int, default=None, help="elements per state")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    n = args.n or (500 if args.quick else 5_000)
    repeat = 3 if args.quick else 5
    rows = bench_orset(n, repeat) + bench_mvregister(n, repeat) + bench_lwwregister(n, repeat)
    print(f"memmesh.crdt benchmark: n={n}, best of {repeat}, python {sys.version.split()[0]}")
    print("values: ~45-character memory texts; replica ids: 32 hex characters")
    print_table(rows)
    print(
        "\nsize x = encoded bytes / msgpack bytes of the same values;"
        " time x = encode time / msgpack pack time"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            payload = [
                asdict(r) | {"size_ratio": r.size_ratio, "time_ratio": r.time_ratio} for r in rows
            ]
            json.dump({"n": n, "repeat": repeat, "rows": payload}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
