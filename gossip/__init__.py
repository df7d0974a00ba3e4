"""memmesh.gossip: replicas find each other and converge, with no server.

* :class:`Node` (trio): listens, discovers peers by mDNS or ``seeds``, runs push-pull
  anti-entropy every ``interval`` with a random peer, pushes new local writes at once
  (priority first), over TLS 1.3 links authenticated by the cluster key.
* :class:`NodeStatus`, :class:`PeerStatus`: what ``node.status()`` reports.
* :mod:`memmesh.gossip.protocol`: the sans-IO protocol core that both the node and
  ``simulations/`` drive (its docstring shows how to drive it without trio).

From asyncio or plain threads, run the node in a thread of its own:
:class:`memmesh.integrations.background.BackgroundNode`.

Setting up keys: generate one secret per cluster (``new_cluster_key().hex()``), give it
to every member (e.g. ``MEMMESH_CLUSTER_KEY``), and pass ``cluster_key=bytes.fromhex(...)``.
Every node derives the same cluster CA from it and makes its own certificate; a node
without the key cannot connect, read or write.
"""

from __future__ import annotations

from .listen import ListenError
from .node import Node
from .protocol.errors import GossipError, LocalProtocolError, RemoteProtocolError
from .security import SecurityError, cluster_fingerprint, new_cluster_key
from .status import NodeStatus, PeerStatus

__all__ = [
    "GossipError",
    "ListenError",
    "LocalProtocolError",
    "Node",
    "NodeStatus",
    "PeerStatus",
    "RemoteProtocolError",
    "SecurityError",
    "cluster_fingerprint",
    "new_cluster_key",
]
