"""Structure-aware fuzzing of every decoder a peer's bytes reach, with a typed-error oracle.

    python -m memmesh.benchmarks.fuzz [--inputs N] [--seed S] [--json FILE]

A peer is untrusted input even when it holds the cluster key, so every byte it can send
must end in a result or a typed :class:`~memmesh.crdt.MemmeshError`, never in another
exception, and must not poison the replica. The fuzzer builds a corpus of valid
encodings (CRDT states, key states, sync summaries and payloads, protocol messages and
frames) from real replicas, mutates them (bit flips, splices and truncations of the
bytes; and, like structure-aware fuzzers such as libprotobuf-mutator, mutations of the
decoded msgpack tree: a field replaced by an edge value, an element dropped, duplicated
or swapped, recursively inside nested byte strings) and feeds them to:

* ``crdt``: :func:`memmesh.crdt.decode`;
* ``keystate``: the key-state decoder (``storage._keycodec``);
* ``summary``: ``Replica.sync_changes(summary)`` (the serving side parses peer summaries);
* ``apply``: ``Replica.sync_apply(payload)`` on a scratch replica, which is checked
  every so often: every stored key still reads, every set still takes a local
  ``set_add``, and a fresh replica synced from it reaches the same digest;
* ``message``: :func:`memmesh.gossip.protocol.messages.decode_message`;
* ``session``: a :class:`~memmesh.gossip.protocol.Session` past its handshake,
  fed mutated frame streams (only :class:`RemoteProtocolError` may escape).

Any other exception is a *finding*: counted, the first ones printed with the input.
Exit status 1 when there is one. The figures (inputs, inputs/s, findings per target)
go to stdout and, with ``--json``, to a file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from memmesh.crdt import (
    LWWRegister,
    MemmeshError,
    MVRegister,
    ORSet,
    Timestamp,
)
from memmesh.crdt import decode as crdt_decode
from memmesh.crdt import encode as crdt_encode
from memmesh.gossip.protocol import RemoteProtocolError, Session, SessionConfig, encode_frame
from memmesh.gossip.protocol import messages as wire
from memmesh.storage import Replica
from memmesh.storage._keycodec import decode as keystate_decode

FINGERPRINT = b"memmesh-fuzz"
PEER = "fuzz-peer"
#: Share of the inputs each target gets (apply is the slowest: an LMDB transaction each).
WEIGHTS = {"crdt": 0.15, "keystate": 0.2, "summary": 0.1, "apply": 0.15, "message": 0.2,
           "session": 0.2}
#: Edge values a structural mutation puts in place of a field.
EDGE_VALUES: tuple[Any, ...] = (
    None, True, False, 0, 1, -1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1,
    -(2**63), 0.0, -0.0, 1.5, float("nan"), float("inf"), "", "#", "\x00", "a" * 300,
    b"", b"\x00" * 40, [], {}, [[]], {"": None}, [1, 2, 3], {"a": 1, "b": [None]},
)
CHECK_EVERY = 2000  # apply inputs between two consistency checks of the scratch replica
RESET_EVERY = 20_000  # apply inputs before the scratch replica is replaced by a fresh one


# --------------------------------------------------------------------------- corpus


@dataclass
class Corpus:
    crdt: list[bytes] = field(default_factory=list)
    keystate: list[bytes] = field(default_factory=list)
    summary: list[bytes] = field(default_factory=list)
    apply: list[bytes] = field(default_factory=list)
    message: list[bytes] = field(default_factory=list)
    session: list[bytes] = field(default_factory=list)  # frame streams (after HELLO)


def _fill(replica: Replica, rng: random.Random, tag: str) -> None:
    """Memories of every shape: policies, tiers, scopes, metadata, TTL, sets, conflicts,
    resolutions, deletes and forgets."""
    ids = []
    for i in range(12):
        ids.append(replica.add(
            f"{tag} memory {i} " + "x" * rng.randrange(40), app_id="app", user_id=f"u{i % 3}",
            agent_id=None if i % 2 else "agent", actor=f"actor{i % 2}", role="lead",
            metadata={"k": i, "nested": {"list": [1, "two", None], "f": 0.5}},
            confidence=0.25 + (i % 4) / 8, policy="lww" if i % 4 == 3 else "mv",
            ttl=3600 if i % 5 == 4 else None, priority=i % 6 == 0))
    replica.update(ids[0], f"{tag} updated", actor="actor1")
    replica.delete(ids[1])
    replica.forget(ids[2])
    replica.delete(ids[3])  # an lww delete
    replica.set_add(f"{tag}-tags", "alpha", app_id="app")
    replica.set_add(f"{tag}-tags", ("tuple", 1, b"bytes"), app_id="app")
    replica.set_add("shared-tags", f"{tag}-elem", app_id="app")
    replica.set_remove(f"{tag}-tags", "alpha")


def build_corpus(root: Path, rng: random.Random) -> Corpus:
    corpus = Corpus()
    with Replica.open(root / "a", durable=False) as a, \
            Replica.open(root / "b", durable=False) as b:
        _fill(a, rng, "a")
        _fill(b, rng, "b")
        empty = Replica.open(root / "e", durable=False)
        with empty:
            nothing = empty.sync_summary()
        for src in (a, b):
            corpus.summary.append(src.sync_summary())
            corpus.apply.append(src.sync_changes(nothing))
            corpus.apply.extend(_chunks(src, nothing))
        # a conflict and its resolution, then the states of both sides
        shared = a.add("shared memory", app_id="app", user_id="u0")
        b.sync_apply(a.sync_changes(b.sync_summary()))
        a.update(shared, "a's version", actor="a")
        b.update(shared, "b's version", actor="b")
        a.sync_apply(b.sync_changes(a.sync_summary()))
        record = a.get(shared)
        if record is not None and record.conflicted:
            a.resolve(shared, "resolved", resolver="fuzz",
                      inputs=tuple(v.dot for v in record.versions))
        corpus.apply.append(a.sync_changes(nothing))
        corpus.summary.append(a.sync_summary())
        corpus.summary.append(b.sync_summary())
    for payload in corpus.apply:
        plain = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        corpus.keystate.extend(plain.get("states", ()))
    corpus.crdt.extend(_crdt_states())
    corpus.message.extend(_messages(corpus))
    corpus.session.extend(encode_frame(m, cap=1 << 22) for m in corpus.message)
    corpus.session.append(b"".join(corpus.session[:6]))
    return corpus


def _chunks(src: Replica, summary: bytes) -> list[bytes]:
    """A stream of small chunks, as a session ships them."""
    from memmesh.gossip.protocol import advance_summary

    out = []
    for _ in range(6):
        chunk = src.sync_changes(summary, max_bytes=400)
        out.append(chunk)
        nxt = advance_summary(summary, chunk)
        if nxt is None:
            break
        summary = nxt
    return out


def _crdt_states() -> list[bytes]:
    s: ORSet[Any] = ORSet()
    s.add("x", "r1")
    s.add(("t", 1), "r2")
    s.remove("x")
    m: MVRegister[Any] = MVRegister()
    m.write("one", "r1")
    other: MVRegister[Any] = MVRegister()
    other.write({"two": [2]}, "r2")
    m.merge(other)
    lww: LWWRegister[Any] = LWWRegister()
    lww.write("v", Timestamp(1_700_000_000_000, 3, "r1"))
    return [crdt_encode(x) for x in (s, m, lww, ORSet(), MVRegister(), LWWRegister())]


def hello() -> wire.Hello:
    """A valid HELLO of the current protocol version (frames up to 4 MiB)."""
    return wire.Hello(wire.PROTOCOL_VERSION, FINGERPRINT, PEER, 7400, 8, 1 << 22,
                      1_700_000_000_000)


def one_of_each_message(summary: bytes, data: bytes) -> list[wire.Message]:
    """Every message type once (SYN both ways), every field set: the seeds of the
    ``message`` target and the round-trip cases of tests/gossip/test_protocol_frames."""
    return [
        hello(), wire.Reject("busy", 1, "detail"), wire.Syn(1, summary, False),
        wire.Syn(2, summary, True), wire.Changes(1, 1, 0, data, True, 1, False),
        wire.Push(2, data, True), wire.Ack(1), wire.Ping(7), wire.Pong(7),
        wire.Bye("closing"),
    ]


def _messages(corpus: Corpus) -> list[bytes]:
    return [wire.encode_message(m)
            for m in one_of_each_message(corpus.summary[0], corpus.apply[0])]


# --------------------------------------------------------------------------- mutation


def mutate_bytes(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if op == 0 and buf:  # flip bits
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:  # replace a byte with an interesting one
            buf[rng.randrange(len(buf))] = rng.choice((0, 0x7F, 0x80, 0xC0, 0xC1, 0xFF,
                                                       0xDD, 0xDF, 0x92, 0x93))
        elif op == 2:  # insert random bytes
            i = rng.randrange(len(buf) + 1)
            buf[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 3 and buf:  # delete a range
            i = rng.randrange(len(buf))
            del buf[i:i + rng.randint(1, 16)]
        elif op == 4 and buf:  # truncate
            del buf[rng.randrange(len(buf)):]
        elif op == 5 and buf:  # duplicate a slice
            i = rng.randrange(len(buf))
            j = min(len(buf), i + rng.randint(1, 32))
            buf[j:j] = buf[i:j]
        else:  # splice with another corpus item
            other = rng.choice(corpus)
            i = rng.randrange(len(buf) + 1)
            j = rng.randrange(len(other) + 1)
            buf = buf[:i] + other[j:]
    return bytes(buf)


def _nodes(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    out: list[tuple[tuple[Any, ...], Any]] = [(path, obj)]
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            out.extend(_nodes(item, (*path, i)))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.extend(_nodes(v, (*path, k)))
    return out


def _replace(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(obj, list):
        copy = list(obj)
        copy[head] = _replace(obj[head], rest, value)
        return copy
    copy_d = dict(obj)
    copy_d[head] = _replace(obj[head], rest, value)
    return copy_d


def mutate_tree(obj: Any, rng: random.Random, depth: int = 0) -> Any:
    """One structural mutation of a decoded msgpack tree (a new tree is returned)."""
    path, node = rng.choice(_nodes(obj))
    op = rng.randrange(6)
    if isinstance(node, bytes) and depth < 2 and node and op < 3:
        try:
            inner = msgpack.unpackb(node, raw=False, strict_map_key=False)
        except Exception:  # not msgpack inside: mutate the bytes themselves
            return _replace(obj, path, mutate_bytes(node, rng, [node]))
        mutated = mutate_tree(inner, rng, depth + 1)
        return _replace(obj, path, msgpack.packb(mutated, use_bin_type=True))
    if isinstance(node, list) and node and op < 3:
        items = list(node)
        i = rng.randrange(len(items))
        choice = rng.randrange(3)
        if choice == 0:
            del items[i]
        elif choice == 1:
            items.insert(i, items[i])
        else:
            j = rng.randrange(len(items))
            items[i], items[j] = items[j], items[i]
        return _replace(obj, path, items)
    if isinstance(node, dict) and node and op < 2:
        items_d = dict(node)
        key = rng.choice(list(items_d))
        if op == 0:
            del items_d[key]
        else:
            items_d[f"{key}x" if isinstance(key, str) else "x"] = items_d[key]
        return _replace(obj, path, items_d)
    if isinstance(node, int) and not isinstance(node, bool) and op < 4:
        return _replace(obj, path, node + rng.choice((-1, 1, 2**32, -(2**32))))
    return _replace(obj, path, rng.choice(EDGE_VALUES))


def mutate(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    if rng.random() < 0.55:
        try:
            tree = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception:
            tree = None
        if tree is not None:
            try:
                return bytes(msgpack.packb(mutate_tree(tree, rng), use_bin_type=True))
            except (ValueError, OverflowError, TypeError):
                pass
    return mutate_bytes(data, rng, corpus)


# --------------------------------------------------------------------------- targets


@dataclass
class Finding:
    target: str
    error: str
    data: bytes
    trace: str


@dataclass
class Stats:
    inputs: dict[str, int] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    finding_counts: dict[str, int] = field(default_factory=dict)
    checks: int = 0


class ApplyTarget:
    """A scratch replica fed mutated payloads, checked and renewed every so often."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.generation = 0
        self.count = 0
        self.replica = self._fresh()

    def _fresh(self) -> Replica:
        self.generation += 1
        path = self.root / f"scratch-{self.generation}"
        return Replica.open(path, durable=False, replica_id=f"scratch{self.generation}")

    def __call__(self, data: bytes) -> object:
        self.count += 1
        return self.replica.sync_apply(data)

    def due_check(self) -> bool:
        return self.count % CHECK_EVERY == 0

    def check(self) -> None:
        """Every stored key reads, every set takes a local add, a fresh copy converges."""
        r = self.replica
        for record in r.list():
            r.get(record.id)
            r.history(record.id)
        summary_probe = self.root / f"probe-{self.generation}-{self.count}"
        with Replica.open(summary_probe, durable=False) as fresh:
            for _ in range(64):
                payload = r.sync_changes(fresh.sync_summary(), max_bytes=1 << 20)
                fresh.sync_apply(payload)
                if fresh.state_digest() == r.state_digest():
                    break
            else:
                raise AssertionError("a fresh replica never converged with the scratch one")
            for key in _set_keys(r):
                r.set_add(key, "fuzz-check")
        shutil.rmtree(summary_probe, ignore_errors=True)
        if self.count % RESET_EVERY == 0:
            path = r.path
            r.close()
            shutil.rmtree(path, ignore_errors=True)
            self.replica = self._fresh()


def _set_keys(replica: Replica) -> list[str]:
    """The ids of the sets a replica holds (read through its sync payload)."""
    from memmesh.crdt.keystate import KIND_SET

    with Replica.open(Path(replica.path).parent / "set-probe", durable=False) as probe:
        payload = replica.sync_changes(probe.sync_summary())
    shutil.rmtree(Path(replica.path).parent / "set-probe", ignore_errors=True)
    plain = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    keys = []
    for raw in plain.get("states", ()):
        state = keystate_decode(raw)
        if state.header.kind == KIND_SET and not state.forgotten:
            keys.append(state.header.key)
    return keys


def session_target(data: bytes) -> object:
    """A session past its handshake, fed one mutated frame stream."""
    s = Session(replica_id="fuzz-local", fingerprint=FINGERPRINT, now=0.0,
                config=SessionConfig(max_frame=1 << 22))
    s.data_to_send()
    s.receive_data(encode_frame(wire.encode_message(hello()), cap=1 << 22), 0.0)
    s.events()
    with contextlib.suppress(RemoteProtocolError):  # the typed outcome: fine
        s.receive_data(data, 0.5)
    s.events()
    s.data_to_send()
    s.handle_timeout(100.0)
    s.data_to_send()
    return s.state


def run(inputs: int, seed: int, out: Callable[[str], None] = print) -> Stats:
    rng = random.Random(seed)
    stats = Stats()
    with tempfile.TemporaryDirectory(prefix="memmesh-fuzz-") as tmp:
        root = Path(tmp)
        corpus = build_corpus(root, random.Random(seed))
        apply = ApplyTarget(root)
        serving = Replica.open(root / "serving", durable=False)
        targets: dict[str, Callable[[bytes], object]] = {
            "crdt": crdt_decode,
            "keystate": keystate_decode,
            "summary": lambda data: serving.sync_changes(data, max_bytes=1 << 16),
            "apply": apply,
            "message": wire.decode_message,
            "session": session_target,
        }
        with serving:
            _fill(serving, random.Random(seed + 1), "s")
            names = list(WEIGHTS)
            weights = [WEIGHTS[n] for n in names]
            started = time.perf_counter()
            last_report = started
            for i in range(inputs):
                name = rng.choices(names, weights)[0]
                pool: list[bytes] = getattr(corpus, name)
                data = mutate(rng.choice(pool), rng, pool)
                t0 = time.perf_counter()
                try:
                    targets[name](data)
                    stats.accepted[name] = stats.accepted.get(name, 0) + 1
                except MemmeshError:
                    pass
                except Exception as exc:  # the finding this fuzzer exists for
                    _finding(stats, name, exc, data)
                if name == "apply" and apply.due_check():
                    stats.checks += 1
                    try:
                        apply.check()
                    except Exception as exc:
                        _finding(stats, "apply-check", exc, data)
                stats.seconds[name] = stats.seconds.get(name, 0.0) + time.perf_counter() - t0
                stats.inputs[name] = stats.inputs.get(name, 0) + 1
                now = time.perf_counter()
                if now - last_report > 30:
                    last_report = now
                    out(f"[fuzz] {i + 1}/{inputs} inputs, {sum(stats.finding_counts.values())} "
                        f"findings, {(i + 1) / (now - started):.0f}/s")
        apply.replica.close()
    return stats


def _finding(stats: Stats, target: str, exc: BaseException, data: bytes) -> None:
    key = f"{target}: {type(exc).__name__}"
    stats.finding_counts[key] = stats.finding_counts.get(key, 0) + 1
    if len(stats.findings) < 20:
        stats.findings.append(Finding(target, f"{type(exc).__name__}: {exc}"[:300], data[:200],
                                      traceback.format_exc(limit=6)))


def report(stats: Stats, wall: float) -> dict[str, Any]:
    total = sum(stats.inputs.values())
    return {
        "inputs": total,
        "wall_s": round(wall, 1),
        "inputs_per_s": round(total / wall) if wall else None,
        "per_target": {
            name: {"inputs": n, "accepted": stats.accepted.get(name, 0),
                   "per_s": round(n / stats.seconds[name]) if stats.seconds.get(name) else None}
            for name, n in sorted(stats.inputs.items())
        },
        "consistency_checks": stats.checks,
        "findings": sum(stats.finding_counts.values()),
        "finding_kinds": dict(sorted(stats.finding_counts.items())),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m memmesh.benchmarks.fuzz",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--inputs", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, metavar="FILE")
    args = p.parse_args(argv)
    started = time.perf_counter()
    stats = run(args.inputs, args.seed, out=lambda line: print(line, file=sys.stderr,
                                                                 flush=True))
    result = report(stats, time.perf_counter() - started)
    result["seed"] = args.seed
    print(json.dumps(result, indent=2))
    for f in stats.findings:
        print(f"\n--- {f.target}: {f.error}\ninput: {f.data.hex()}\n{f.trace}", file=sys.stderr)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if stats.finding_counts else 0


if __name__ == "__main__":
    raise SystemExit(main())
