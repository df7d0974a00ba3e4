"""Framing and message codec: caps enforced before buffering, strict validation."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memmesh.benchmarks.fuzz import one_of_each_message
from memmesh.crdt import MemmeshError, packb
from memmesh.gossip.protocol import (
    FrameDecoder,
    LocalProtocolError,
    RemoteProtocolError,
    encode_frame,
)
from memmesh.gossip.protocol.messages import PROTOCOL_VERSION, decode_message, encode_message


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=8), st.integers(1, 50))
@settings(max_examples=60)
def test_frames_round_trip_whatever_the_read_sizes(bodies: list[bytes], cut: int) -> None:
    stream = b"".join(encode_frame(b, cap=1000) for b in bodies)
    dec = FrameDecoder(1000)
    got: list[bytes] = []
    for i in range(0, len(stream), cut):
        got.extend(dec.feed(stream[i : i + cut]))
    assert got == bodies
    assert dec.buffered == 0


def test_absurd_length_prefix_is_rejected_from_the_header_alone() -> None:
    dec = FrameDecoder(1024)
    with pytest.raises(RemoteProtocolError) as info:
        dec.feed(b"\xff\xff\xff\xff")  # announces 4 GiB; no body sent at all
    assert info.value.reason == "frame-size"
    assert dec.buffered == 0
    with pytest.raises(RemoteProtocolError):
        dec.feed(b"more")


def test_zero_length_frame_is_malformed() -> None:
    with pytest.raises(RemoteProtocolError):
        FrameDecoder(10).feed(b"\x00\x00\x00\x00")


def test_encoding_a_frame_above_the_cap_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        encode_frame(b"x" * 11, cap=10)


ALL = one_of_each_message(b"summary", b"data")


@pytest.mark.parametrize("msg", ALL, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(msg: object) -> None:
    assert decode_message(encode_message(msg)) == msg  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body",
    [
        b"\xc1",  # never-used msgpack byte
        packb({"t": "SYN"}),  # a map, not an array
        packb([]),
        packb([42, 1]),  # unknown code
        packb([6]),  # ACK without its field
        packb([6, -1]),  # negative frame number
        packb([6, 1, 2]),  # extra field
        packb([3, 1, "not bytes", False]),
        packb([2, "no-such-reason", 0, ""]),
        packb([1, PROTOCOL_VERSION, b"fp", "", 0, 8, 1024, 0]),  # empty replica id
        packb([1, PROTOCOL_VERSION, b"fp", "r", 70000, 8, 1024, 0]),  # port out of range
        packb([1, PROTOCOL_VERSION, b"fp", "r", 1, 8, 1024]),  # no wall clock field
        packb([4, 1, 1, 0, b"", 1, 1, False]),  # int where a bool belongs
    ],
)
def test_malformed_bodies_raise_remote_protocol_error(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_message(body)
    assert isinstance(info.value, MemmeshError)


@given(st.binary(max_size=200))
@settings(max_examples=200)
def test_garbage_never_escapes_as_anything_but_remote_protocol_error(body: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        decode_message(body)
