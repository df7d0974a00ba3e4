"""memmesh.gossip: replicas find each other and converge, with no server.

:class:`Node` (trio) listens, discovers peers by mDNS or ``seeds``, runs push-pull
anti-entropy every ``interval`` with a random peer and pushes new local writes at once,
over TLS 1.3 links authenticated by the cluster key; ``node.status()`` returns a
:class:`NodeStatus`. The sans-IO protocol core it drives is :mod:`memmesh.gossip.protocol`;
from asyncio or threads, run the node with
:class:`memmesh.integrations.background.BackgroundNode`. Keys: generate one secret per
cluster (``new_cluster_key().hex()``), give it to every member (e.g.
``MEMMESH_CLUSTER_KEY``) and pass ``cluster_key=bytes.fromhex(...)``; a node without
it cannot connect, read or write.
"""

from __future__ import annotations

from ._listen import ListenError, check_port
from ._node import Node
from ._peers import AddressError, format_address, parse_address, parse_addresses
from ._security import ClusterCredentials, SecurityError, cluster_fingerprint, new_cluster_key
from ._status import NodeStatus, PeerStatus

__all__ = [
    "AddressError",
    "ClusterCredentials",
    "ListenError",
    "Node",
    "NodeStatus",
    "PeerStatus",
    "SecurityError",
    "check_port",
    "cluster_fingerprint",
    "format_address",
    "new_cluster_key",
    "parse_address",
    "parse_addresses",
]
