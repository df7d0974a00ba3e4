"""Canonical msgpack codec: round trips, determinism, and strict rejection of bad input."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memmesh.crdt import (
    DecodeError,
    Dot,
    InvalidArgumentError,
    Limits,
    LWWRegister,
    MemmeshError,
    MVRegister,
    ORSet,
    Timestamp,
    decode,
    encode,
    packb,
    unpackb,
)
from memmesh.crdt._codec import (
    dump,
    dump_context,
    dump_dot,
    dump_timestamp,
    load,
    load_context,
    load_dot,
    load_timestamp,
)
from memmesh.crdt.testing import causal_contexts, dots, states, timestamps, values

KINDS = [ORSet, MVRegister, LWWRegister]
ANY_STATE = st.one_of(*(states(kind) for kind in KINDS))


def _raw(plain: object) -> bytes:
    """Bytes in the envelope format without going through the state checks."""
    return b"\x01" + msgpack.packb(plain, use_bin_type=True)


def _sample_orset() -> ORSet[str]:
    s: ORSet[str] = ORSet()
    s.add("a", "A")
    s.add("b", "B")
    return s


# -- round trips --------------------------------------------------------------------


@settings(max_examples=150)
@given(ANY_STATE)
def test_decode_inverts_encode_exactly(state: Any) -> None:
    data = encode(state)
    assert data[0] == 1
    back = decode(data)
    assert type(back) is type(state)
    assert back == state
    assert encode(back) == data


@settings(max_examples=80)
@given(ANY_STATE)
def test_states_nest_inside_other_messages_through_dump_and_load(state: Any) -> None:
    message = packb({"kind": "changes", "states": [dump(state)]})
    decoded = unpackb(message)
    assert isinstance(decoded, dict)
    assert load(decoded["states"][0]) == state


@settings(max_examples=80)
@given(dots(), timestamps(), causal_contexts())
def test_dot_timestamp_and_context_helpers_round_trip(dot: Dot, ts: Timestamp, ctx: Any) -> None:
    assert load_dot(unpackb(packb(dump_dot(dot)))) == dot
    assert load_timestamp(unpackb(packb(dump_timestamp(ts)))) == ts
    assert load_context(unpackb(packb(dump_context(ctx)))) == ctx


@settings(max_examples=100)
@given(values())
def test_packb_round_trips_plain_values(value: Any) -> None:
    assert unpackb(packb(value)) == value


def test_packb_sorts_map_keys_so_insertion_order_does_not_matter() -> None:
    assert packb({"b": 1, "a": {"y": 2, "x": 3}}) == packb({"a": {"x": 3, "y": 2}, "b": 1})


def test_packb_writes_negative_zero_as_zero_and_floats_as_64_bit() -> None:
    assert packb(-0.0) == packb(0.0) == b"\xcb" + struct.pack(">d", 0.0)


@pytest.mark.parametrize("bad", [float("nan"), {1: "x"}, {"a": object()}, 2**64, True.__class__])
def test_packb_refuses_what_is_not_plain_data(bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        packb(bad)


def test_unpackb_returns_arrays_as_tuples() -> None:
    assert unpackb(packb({"a": [1, [2, 3]]})) == {"a": (1, (2, 3))}


def test_equal_states_built_differently_encode_identically() -> None:
    a: ORSet[str] = ORSet()
    b: ORSet[str] = ORSet()
    da1, da2 = a.add("x", "A"), a.add("y", "A")
    b.merge(da2)
    b.merge(da1)
    assert a == b
    assert encode(a) == encode(b)


# -- hostile input ------------------------------------------------------------------


def assert_decodes_exactly_or_is_refused(data: bytes) -> None:
    """``data`` is refused with a DecodeError, or it decodes to a state that encodes
    back to exactly ``data`` (only canonical bytes are accepted)."""
    try:
        state = decode(data)
    except MemmeshError as exc:
        assert isinstance(exc, DecodeError)
    else:
        assert encode(state) == data


def test_decode_error_is_a_value_error_and_a_memmesh_error() -> None:
    with pytest.raises(DecodeError) as info:
        decode(b"\x02")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, MemmeshError)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_decoding_arbitrary_bytes_raises_only_decode_errors(data: bytes) -> None:
    assert_decodes_exactly_or_is_refused(data)


@settings(max_examples=300)
@given(ANY_STATE, st.data())
def test_decoding_mutated_encodings_raises_only_decode_errors(
    state: Any, data: st.DataObject
) -> None:
    original = bytearray(encode(state))
    mutation = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
    at = data.draw(st.integers(0, len(original) - 1))
    if mutation == "flip":
        original[at] ^= data.draw(st.integers(1, 255))
    elif mutation == "insert":
        original[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    elif mutation == "delete":
        del original[at : at + data.draw(st.integers(1, 4))]
    else:
        del original[at:]
    assert_decodes_exactly_or_is_refused(bytes(original))


@settings(max_examples=200)
@given(
    st.recursive(values(), lambda inner: st.tuples(inner, inner) | st.lists(inner), max_leaves=8)
)
def test_loading_arbitrary_plain_data_raises_only_decode_errors(plain: Any) -> None:
    candidates = (plain, ("ors", plain, plain, plain, plain), ("mvr", ("A",), plain, (), plain))
    for candidate in candidates:
        try:
            load(candidate)
        except MemmeshError as exc:
            assert isinstance(exc, DecodeError)


def _orset_plain(**changes: Any) -> list[Any]:
    tag, table, vv, cloud, entries = dump(_sample_orset())
    assert (table, vv, cloud, entries) == (("A", "B"), (0, 1, 1, 1), (), ("a", (0, 1), "b", (1, 1)))
    fields = {"tag": tag, "table": table, "vv": vv, "cloud": cloud, "entries": entries}
    fields.update(changes)
    return [fields[name] for name in ("tag", "table", "vv", "cloud", "entries")]


@pytest.mark.parametrize(
    ("case", "plain"),
    [
        ("unknown tag", _orset_plain(tag="xyz")),
        ("missing field", ["ors", ("A", "B"), (0, 1, 1, 1), ()]),
        ("counter zero", _orset_plain(entries=("a", (0, 0), "b", (1, 1)))),
        ("duplicate dot across elements", _orset_plain(entries=("a", (0, 1), "b", (0, 1)))),
        ("duplicate dot in element", _orset_plain(entries=("a", (0, 1, 0, 1), "b", (1, 1)))),
        ("duplicate element", _orset_plain(entries=("a", (0, 1), "a", (1, 1)))),
        ("dot beyond context", _orset_plain(entries=("a", (0, 2), "b", (1, 1)))),
        ("replica index out of range", _orset_plain(entries=("a", (0, 1), "b", (2, 1)))),
        ("bool as index", _orset_plain(entries=("a", (False, 1), "b", (1, 1)))),
        ("unused replica id", _orset_plain(table=("A", "B", "C"))),
        ("unsorted replica table", _orset_plain(table=("B", "A"))),
        ("empty replica id", _orset_plain(table=("", "B"))),
        ("empty dot list", _orset_plain(entries=("a", (0, 1), "b", ()))),
        ("float element", _orset_plain(entries=(1.5, (0, 1), "b", (1, 1)))),
        ("negative vector entry", _orset_plain(vv=(0, -1, 1, 1))),
        ("repeated vector index", _orset_plain(vv=(0, 1, 0, 2, 1, 1))),
        ("vector index out of range", _orset_plain(vv=(0, 1, 1, 1, 7, 1))),
        ("odd vector", _orset_plain(vv=(0, 1, 1))),
        ("cloud dot under the vector", _orset_plain(cloud=(0, (1, 3)))),
        ("cloud counters descending", _orset_plain(cloud=(0, (5, 3)))),
        ("empty cloud counters", _orset_plain(cloud=(0, ()))),
        ("lww value without timestamp", ["lww", None, "x"]),
        ("lww bad timestamp", ["lww", (1, -1, "A"), "x"]),
        ("mv uncovered dot", ["mvr", ("A",), (0, 1), (), (0, 2, "x")]),
        ("mv duplicate dot", ["mvr", ("A",), (0, 1), (), (0, 1, "x", 0, 1, "y")]),
        ("mv bad triple", ["mvr", ("A",), (0, 1), (), (0, 1)]),
        ("mv unplain value", ["mvr", ("A",), (0, 1), (), (0, 1, float("nan"))]),
        ("not an array", {"tag": "ors"}),
    ],
)
def test_invalid_states_are_rejected_with_decode_error(case: str, plain: Any) -> None:
    with pytest.raises(DecodeError):
        load(plain)
    with pytest.raises(DecodeError):
        decode(_raw(plain))


def test_sample_plain_form_is_valid_so_the_rejections_above_are_meaningful() -> None:
    assert load(_orset_plain()) == _sample_orset()
    assert decode(_raw(_orset_plain())) == _sample_orset()


@pytest.mark.parametrize(
    ("case", "data"),
    [
        ("empty", b""),
        ("unknown version", b"\x02" + encode(_sample_orset())[1:]),
        ("trailing bytes", encode(_sample_orset()) + b"\xc0"),
        ("ext type", b"\x01" + msgpack.packb(msgpack.ExtType(5, b"xx"))),
        ("timestamp ext", b"\x01" + msgpack.packb(msgpack.Timestamp(1, 0))),
        ("array header announcing 4 GiB", b"\x01\xdd\xff\xff\xff\xff"),
        ("map header announcing 4 GiB", b"\x01\xdf\xff\xff\xff\xff"),
        ("non-str map key", b"\x01" + msgpack.packb(["lww", None, {1: 2}])),
        ("deep nesting", b"\x01" + b"\x91" * 5_000 + b"\xc0"),
        ("nan value", _raw(["lww", (1, 0, "A"), float("nan")])),
    ],
)
def test_malformed_bytes_are_rejected_with_decode_error(case: str, data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(data)


def test_non_canonical_encodings_are_rejected() -> None:
    tag, table, vv, cloud, entries = dump(_sample_orset())
    swapped = (entries[2], entries[3], entries[0], entries[1])  # elements out of order
    with pytest.raises(DecodeError, match="canonical"):
        decode(_raw([tag, table, vv, cloud, swapped]))
    single_float = b"\x01" + msgpack.packb(["lww", (1, 0, "A"), 0.5], use_single_float=True)
    with pytest.raises(DecodeError, match="canonical"):
        decode(single_float)
    assert load(unpackb(single_float[1:])).value == 0.5  # load itself is liberal


def test_duplicate_map_keys_are_rejected() -> None:
    with pytest.raises(DecodeError, match="duplicate"):
        unpackb(b"\x82\xa1a\x01\xa1a\x02")


def test_unpackb_limits_are_explicit_and_enforced() -> None:
    small = Limits(max_buffer_size=1_000, max_str_len=4, max_array_len=3, max_depth=2)
    with pytest.raises(DecodeError):
        unpackb(packb("hello"), limits=small)
    with pytest.raises(DecodeError):
        unpackb(packb([1, 2, 3, 4]), limits=small)
    with pytest.raises(DecodeError):
        unpackb(packb([[[1]]]), limits=small)
    with pytest.raises(DecodeError):
        unpackb(b"\xc0" * 1_001, limits=small)
    assert unpackb(packb([[1]]), limits=small) == ((1,),)


def test_decode_accepts_bytearray_and_memoryview_but_not_str() -> None:
    data = encode(_sample_orset())
    assert decode(bytearray(data)) == decode(memoryview(data)) == _sample_orset()
    with pytest.raises(DecodeError):
        decode("not bytes")  # type: ignore[arg-type]


def test_encode_refuses_non_states() -> None:
    with pytest.raises(InvalidArgumentError):
        encode({"not": "a state"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("loader", "plain"),
    [
        (load_dot, ("A", 0)),
        (load_dot, ("A", 1, 2)),
        (load_dot, (1, 1)),
        (load_dot, "A:1"),
        (load_timestamp, (1, 0)),
        (load_timestamp, (-1, 0, "A")),
        (load_timestamp, (1.5, 0, "A")),
        (load_context, ({"A": 0}, {})),
        (load_context, ({"A": 2}, {"A": (2,)})),
        (load_context, ({}, {"A": (3, 3)})),
        (load_context, ({}, {"A": ()})),
        (load_context, ({b"A": 1}, {})),
        (load_context, ([("A", 1)], {})),
    ],
)
def test_helper_loaders_reject_invalid_plain_forms(loader: Any, plain: object) -> None:
    with pytest.raises(DecodeError):
        loader(plain)


def test_load_context_compacts_a_liberal_cloud() -> None:
    ctx = load_context(({"A": 1}, {"A": (2, 4)}))
    assert ctx.vv == {"A": 2}
    assert ctx.cloud == {Dot("A", 4)}
