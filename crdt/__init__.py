"""memmesh.crdt: pure delta-state CRDTs (no I/O, no clock reads, no randomness).

* :class:`Dot`, :class:`CausalContext`: event names and the sets of events a state
  has seen (version vector plus dot cloud).
* :class:`HLC`, :class:`Timestamp`: hybrid logical clock (Kulkarni et al. 2014).
* :class:`ORSet`, :class:`MVRegister`, :class:`LWWRegister`: mutators apply in place
  and return a delta of the same type; ``merge`` joins in place, :func:`join` returns
  a new state; deltas join correctly in any order, duplicated, without causal delivery.
* :func:`encode` / :func:`decode`: canonical msgpack (equal states, equal bytes),
  strictly validated on the way in.

Every error derives from :class:`MemmeshError`.
"""

from __future__ import annotations

from .causal_context import CausalContext
from .codec import decode, encode
from .dot import Dot
from .errors import (
    ClockDriftError,
    ConflictError,
    DecodeError,
    InvalidArgumentError,
    MemmeshError,
)
from .hlc import HLC, Timestamp
from .join import join
from .lwwregister import LWWRegister
from .mvregister import MVRegister
from .orset import ORSet

__all__ = [
    "HLC",
    "CausalContext",
    "ClockDriftError",
    "ConflictError",
    "DecodeError",
    "Dot",
    "InvalidArgumentError",
    "LWWRegister",
    "MVRegister",
    "MemmeshError",
    "ORSet",
    "Timestamp",
    "decode",
    "encode",
    "join",
]
