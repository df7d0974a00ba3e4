"""memmesh.crdt: pure delta-state CRDTs (no I/O, no clock reads, no randomness).

* :class:`Dot`, :class:`CausalContext`: events and the sets of events a state has seen;
  origins ``replica#incarnation`` (:func:`base_replica`, :func:`check_replica`).
* :class:`HLC`, :class:`Timestamp`: hybrid logical clock (Kulkarni et al. 2014).
* :class:`ORSet`, :class:`MVRegister`, :class:`LWWRegister`: mutators apply in place and
  return a delta of the same type; deltas join (``merge``, :func:`join`) in any order,
  duplicated, without causal delivery.
* :func:`encode` / :func:`decode`: canonical, validated msgpack of a state;
  :func:`packb` / :func:`unpackb` the same for the plain data every layer's formats use.

Public submodules: :mod:`memmesh.crdt.keystate` (the memory CRDT) and
:mod:`memmesh.crdt.testing` (hypothesis strategies). Every error derives from
:class:`MemmeshError`.
"""

from __future__ import annotations

from ._canonical import (
    check_element,
    freeze,
    pack_canonical,
    packb,
    unpack_unchecked,
    unpackb,
)
from ._causal_context import CausalContext
from ._codec import decode, encode
from ._dot import ORIGIN_SEP, Dot, base_replica, check_replica
from ._errors import (
    ClockDriftError,
    ConflictError,
    DecodeError,
    InvalidArgumentError,
    MemmeshError,
)
from ._hlc import HLC, Timestamp
from ._join import join
from ._limits import DEFAULT_LIMITS, LOGICAL_CEILING, MAX_REPLICA_LEN, Limits
from ._lwwregister import LWWRegister
from ._mvregister import MVRegister
from ._orset import ORSet

__all__ = [
    "DEFAULT_LIMITS",
    "HLC",
    "LOGICAL_CEILING",
    "MAX_REPLICA_LEN",
    "ORIGIN_SEP",
    "CausalContext",
    "ClockDriftError",
    "ConflictError",
    "DecodeError",
    "Dot",
    "InvalidArgumentError",
    "LWWRegister",
    "Limits",
    "MVRegister",
    "MemmeshError",
    "ORSet",
    "Timestamp",
    "base_replica",
    "check_element",
    "check_replica",
    "decode",
    "encode",
    "freeze",
    "join",
    "pack_canonical",
    "packb",
    "unpack_unchecked",
    "unpackb",
]
