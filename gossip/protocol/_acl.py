"""The access list: which scope of the replica each peer may receive.

A scope is whatever the replica's ``sync_changes(peer=...)`` accepts (storage's
``PeerScope``; None: every shareable key).  The policy sets a link's scope from its
authenticated peer id, before anything is served, by calling the access list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["AccessList"]


@dataclass(frozen=True, slots=True)
class AccessList:
    """``scopes[peer id]``, else ``default`` (None: all shareable data)."""

    scopes: Mapping[str, object] = field(default_factory=dict)
    default: object = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "scopes", MappingProxyType(dict(self.scopes)))

    def __call__(self, peer_id: str) -> object:
        return self.scopes.get(peer_id, self.default)
