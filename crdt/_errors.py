"""The one home of memmesh's exception types.

Every error raised on purpose by any memmesh layer derives from :class:`MemmeshError`,
so callers can catch library failures with a single ``except`` clause and never confuse
them with bugs (``KeyError``, ``AttributeError``...).  The subclasses that describe bad
input also derive from :class:`ValueError`, as Python code conventionally expects.
"""

from __future__ import annotations

__all__ = [
    "ClockDriftError",
    "ConflictError",
    "DecodeError",
    "InvalidArgumentError",
    "MemmeshError",
]


class MemmeshError(Exception):
    """Base class of every error memmesh raises on purpose."""


class DecodeError(MemmeshError, ValueError):
    """Bytes or plain data that are not a valid encoding of what was expected.

    Raised for malformed msgpack, exceeded size limits, wrong types, counters below 1,
    duplicate dots, dots not covered by their causal context, non-canonical encodings...
    Decoding never raises anything else and never changes any state.
    """


class InvalidArgumentError(MemmeshError, ValueError):
    """A local caller passed an argument of the wrong type or out of range."""


class ClockDriftError(MemmeshError):
    """A remote hybrid timestamp is further ahead of the local wall clock than allowed."""


class ConflictError(MemmeshError):
    """A single value was asked of a memory that holds several concurrent versions.

    Raised by the storage layer; defined here so that all errors share one module.
    """
