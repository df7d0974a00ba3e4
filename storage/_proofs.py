"""Write proofs: what a signed write signs, the Merkle chunks its signature covers, and
the proof bytes that travel beside a key state.

A proof speaks for one dot of one key. Its *leaf* hashes the key's header (every field,
``keystate.header_order``), the dot (origin, counter), what the dot did (``op``:
an event op of the timeline, or :data:`OP_SET_ADD` / :data:`OP_SET_REMOVE`), its wall
time and a *content digest* of what it wrote: for a memory event or version ``(op,
actor, role, wall_ms, logical, version or None)`` (the same for a version in the body
and for its event in the timeline, so either proves the dot; an event's ``ctx`` and
``detail`` are not signed), for a set add or remove the element. Leaves minted in one
write transaction are signed together: chunks of up to :data:`CHUNK` leaves form a
Merkle tree (Merkle 1987; padded to a power of two) whose root is signed once, and each
dot's proof carries the root's signature and its sibling path, so a receiver verifies a
root once and hashes a path per dot (Certificate Transparency's audit paths, RFC 6962,
with the node and leaf hashes domain-separated). The proof carries op, wall time and
content digest, so a dot whose content is gone (a superseded, compacted event, a set
remove, a forget) can still be checked. Layout: docs/internals.md, "Signed writes".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from hashlib import blake2b
from typing import Any, NamedTuple

from memmesh.crdt import DecodeError, pack_canonical, packb, unpackb
from memmesh.crdt.keystate import KIND_SET, Header, KeyState, VersionData, header_order

from .wire import MAX_CRED_LEN, MAX_CREDS, MAX_PROOF_LEN, MAX_PROOFS

__all__ = [
    "CHUNK",
    "CRED_ID_LEN",
    "DIGEST_LEN",
    "MAX_CREDS",
    "MAX_CRED_LEN",
    "MAX_PATH",
    "MAX_PROOFS",
    "MAX_PROOF_LEN",
    "OP_SET_ADD",
    "OP_SET_REMOVE",
    "SIG_LEN",
    "Proof",
    "build_tree",
    "climb",
    "event_content",
    "header_digest",
    "leaf_hash",
    "needed",
    "pack_proof",
    "pack_row",
    "parse_proof",
    "root_message",
    "set_content",
    "unpack_row",
]

#: Leaves signed under one root (the benchmark's choice: larger chunks save signatures,
#: cost a longer path per dot; ``benchmarks/bench_storage.py``).
CHUNK = 64
DIGEST_LEN = 16
CRED_ID_LEN = 16
SIG_LEN = 64
#: Longest sibling path a proof may carry (trees of up to 256 leaves).
MAX_PATH = 8
_FIXED = CRED_ID_LEN + SIG_LEN + 1 + 8 + DIGEST_LEN + 1
assert MAX_PROOF_LEN == _FIXED + MAX_PATH * DIGEST_LEN  # the wire's bound is this layout's
#: Ops beyond the timeline's (``keystate.EVENT_OPS``: 0..5) for set events.
OP_SET_ADD, OP_SET_REMOVE = 6, 7

_ZERO = bytes(DIGEST_LEN)
_P_HEADER, _P_CONTENT = b"mm-header-v1", b"mm-content-v1"
_P_LEAF, _P_NODE, _P_ROOT = b"mm-leaf-v1", b"mm-node-v1", b"mm-root-v1"


def _h(data: bytes, person: bytes) -> bytes:
    return blake2b(data, digest_size=DIGEST_LEN, person=person).digest()


def header_digest(header: Header) -> bytes:
    """The digest of every field of a key's header (the bytes its join orders by)."""
    return _h(header_order(header), _P_HEADER)


def event_content(op: int, actor: str | None, role: str | None, wall_ms: int, logical: int,
                  version: VersionData | None) -> bytes:
    """The content digest of a memory event (a version's: its own op, actor, role and
    time, and the version itself)."""
    return _h(pack_canonical((op, actor, role, wall_ms, logical, version)), _P_CONTENT)


def set_content(element: Any) -> bytes:
    """The content digest of a set add or remove of ``element``."""
    return _h(packb(element), _P_CONTENT)


def leaf_hash(hdigest: bytes, origin: str, counter: int, op: int, wall_ms: int,
              content: bytes) -> bytes:
    """The Merkle leaf of one dot (see module doc)."""
    return _h(b"".join((hdigest, origin.encode(), b"\x00", counter.to_bytes(8, "big"),
                        bytes((op,)), wall_ms.to_bytes(8, "big"), content)), _P_LEAF)


def _node(left: bytes, right: bytes) -> bytes:
    return _h(left + right, _P_NODE)


def root_message(credential_id: bytes, root: bytes) -> bytes:
    """What a chunk's signature signs: the root, bound to the signing credential."""
    return _h(credential_id + root, _P_ROOT)


def build_tree(leaves: Sequence[bytes]) -> tuple[bytes, list[tuple[bytes, ...]]]:
    """The root of ``leaves`` (1 to 256 of them, padded with zero leaves to a power of
    two) and each leaf's sibling path, bottom up."""
    if not 0 < len(leaves) <= 1 << MAX_PATH:
        raise ValueError("a chunk holds 1 to 256 leaves")
    width = 1
    while width < len(leaves):
        width *= 2
    level = list(leaves) + [_ZERO] * (width - len(leaves))
    paths: list[list[bytes]] = [[] for _ in leaves]
    span = 1  # leaves under each node of this level
    while len(level) > 1:
        for i in range(len(leaves)):
            paths[i].append(level[(i // span) ^ 1])
        level = [_node(level[j], level[j + 1]) for j in range(0, len(level), 2)]
        span *= 2
    return level[0], [tuple(p) for p in paths]


def climb(leaf: bytes, index: int, path: Sequence[bytes], known: set[bytes]
          ) -> tuple[list[bytes], bool]:
    """Hash ``leaf`` up its path: the nodes from the leaf to the root, and False; or the
    nodes up to the first one in ``known`` (nodes already proven to lie under a verified
    root of the same credential), and True."""
    node = leaf
    nodes = [node]
    for sibling in path:
        if node in known:
            return nodes, True
        node = _node(sibling, node) if index & 1 else _node(node, sibling)
        nodes.append(node)
        index >>= 1
    return nodes, node in known


class Proof(NamedTuple):
    """One dot's proof, parsed: who signed (credential id), the chunk root's signature,
    what the dot did (op, wall time, content digest) and where its leaf sits."""

    credential_id: bytes
    signature: bytes
    op: int
    wall_ms: int
    content: bytes
    leaf: int
    path: tuple[bytes, ...]


def pack_proof(proof: Proof) -> bytes:
    """``cred id (16) | signature (64) | op (1) | wall_ms (8) | content (16) | index (1)
    | path (16 each, at most 8)``."""
    return b"".join((proof.credential_id, proof.signature, bytes((proof.op,)),
                     proof.wall_ms.to_bytes(8, "big"), proof.content, bytes((proof.leaf,)),
                     *proof.path))


def parse_proof(data: bytes) -> Proof:
    """A proof from its bytes; :class:`DecodeError` if malformed."""
    size = len(data)
    if type(data) is not bytes or not _FIXED <= size <= MAX_PROOF_LEN \
            or (size - _FIXED) % DIGEST_LEN:
        raise DecodeError("invalid proof: wrong length")
    depth = (size - _FIXED) // DIGEST_LEN
    op, index = data[80], data[_FIXED - 1]
    if op > OP_SET_REMOVE or index >> depth:
        raise DecodeError("invalid proof: op or leaf index out of range")
    return Proof(data[:16], data[16:80], op, int.from_bytes(data[81:89], "big"),
                 data[89:105], index,
                 tuple(data[i:i + DIGEST_LEN] for i in range(_FIXED, size, DIGEST_LEN)))


# ----------------------------------------------------------------- which dots, what


def needed(state: KeyState) -> set[tuple[str, int]]:
    """The dots whose proofs a replica keeps for ``state``: those of the body, of the
    timeline's events, and each origin's frontier dot ``(origin, ctx[origin])``."""
    out = set(state.ctx.items())
    if state.header.kind == KIND_SET:
        for dots in state.body.values():
            out.update((d.replica, d.counter) for d in dots)
    else:
        out.update((d.replica, d.counter) for d in state.body)
    out.update((d.replica, d.counter) for d in state.events)
    return out


# ------------------------------------------------------------------- stored rows


def pack_row(proofs: Mapping[tuple[str, int], bytes]) -> bytes:
    """A key's proof row: its proofs by dot, sorted."""
    row: bytes = pack_canonical(tuple((o, c, p) for (o, c), p in sorted(proofs.items())))
    return row


def unpack_row(raw: bytes | None) -> dict[tuple[str, int], bytes]:
    if not raw:
        return {}
    rows: Any = unpackb(raw)
    return {(o, c): p for o, c, p in rows}
