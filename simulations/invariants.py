"""End-of-run invariants: what must hold whatever the faults were.

They are judged over the honest members (``Cluster.byzantine`` ones lie on purpose):

* ``converged``: every member is up and members with the same ACL scope hold equal
  ``state_digest``s (and, when the run resolves conflicts, none is left standing);
* ``no_acknowledged_write_lost``: every acknowledged write (an ``add``, ``update`` or
  ``resolve`` that returned) is held, as a standing version or in the causal context
  of a version that superseded it, by every member allowed to see it (a quarantined
  write, stamped far in the future, by its writer);
* ``no_private_leak``: a private memory exists on its creator only;
* ``no_out_of_acl_memory``: a node holds no memory outside its ACL scope except its
  own writes.

Where a scope class has converged, one member's state stands for all (equal digests
mean equal states), which keeps the check cheap at a thousand nodes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the check itself is imported by tests without a simulated cluster
    from .cluster import Cluster
    from .node import SimNode


def _allows(node: SimNode, app_id: str | None, user_id: str | None) -> bool:
    return node.scope is None or bool(node.scope.allows(app_id, user_id))


def holds(replica: Any, memory_id: str, dots: Iterable[Any]) -> bool:
    """Whether ``replica`` holds every write (dot) in ``dots`` of ``memory_id``: as a
    standing version, or seen in the causal context of an event that superseded it."""
    record = replica.get(memory_id)
    if record is None:
        return False
    standing = {v.dot for v in record.versions}
    missing = [d for d in dots if d not in standing]
    if not missing:
        return True
    events = replica.history(memory_id)
    return all(any(e.context.contains(d) for e in events) for d in missing)


def check(cluster: Cluster) -> tuple[dict[str, bool], dict[str, int]]:
    """``(invariants: name -> bool, violations: name -> count)``."""
    from .cluster import scope_key

    members = [cluster.nodes[m] for m in cluster.honest()]
    up = [n for n in members if n.up]
    converged = cluster.converged_now()

    # one representative per converged class; every member otherwise
    digests: dict[str, set[str]] = {}
    for node in up:
        digests.setdefault(scope_key(node.scope), set()).add(cluster.digest(node))
    chosen: dict[str, SimNode] = {}
    checked: list[SimNode] = []
    for node in up:
        key = scope_key(node.scope)
        if len(digests[key]) == 1:
            if key not in chosen:
                chosen[key] = node
                checked.append(node)
        else:
            checked.append(node)

    lost = 0
    for info in cluster.writelog.memories.values():
        dots = [w.dot for w in info.writes if w.node not in cluster.byzantine]
        if not dots:  # a byzantine member's (or one it made up): no honest write in it
            continue
        if info.tier == "private":
            holders = [n for n in up if n.node_id == info.creator]
        else:
            holders = [n for n in checked if _allows(n, info.app_id, info.user_id)]
            creator = cluster.nodes.get(info.creator)
            if creator is not None and creator.up and creator not in holders and \
                    creator.node_id in cluster.members:
                holders.append(creator)
        quarantined = cluster.quarantined.get(info.memory_id, set())
        for node in holders:
            expected = [w.dot for w in info.writes
                        if w.node not in cluster.byzantine
                        and (w.node == node.node_id or w.dot not in quarantined)]
            if expected and not holds(node.replica, info.memory_id, expected):
                lost += 1

    private = 0
    acl = 0
    memories = cluster.writelog.memories
    for node in up:
        for record in node.replica.list():
            info = memories.get(record.id)
            own = info is not None and info.creator == node.node_id
            if own:
                continue
            if info is None or info.tier == "private" or record.tier == "private":
                private += 1
            elif not _allows(node, record.app_id, record.user_id):
                acl += 1

    violations = {
        "converged": 0 if converged else 1,
        "no_acknowledged_write_lost": lost,
        "no_private_leak": private,
        "no_out_of_acl_memory": acl,
    }
    return {name: count == 0 for name, count in violations.items()}, violations
