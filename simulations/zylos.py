"""Scenario ``zylos``: three agent instances sharing three classes of memory.

The pattern of the seed project (three instances of one agent on different machines):

* ``prefs``: user preferences, last-writer-wins (``policy="lww"``), flagged priority
  and pushed on every open link the moment they are written;
* ``project``: project state, multi-value (``policy="mv"``), written with
  ``sync="pull"``, *not* pushed: peers only get it by pulling in the anti-entropy rounds
  (the mode is stored with each write; the writer's later updates keep it, an instance
  that got the memory from a peer is told ``sync="pull"`` again by the workload);
  concurrent edits stand side by side until the elected arbiter
  (``memmesh.merge.Election``) resolves them;
* ``session``: session state, private (``tier="private"``), never leaves its instance.

Writes and reads arrive at random instants; the report's ``staleness_ms`` per class is
the point: pushed preferences are fresh within a network round trip, pulled project
state lags by about a gossip round, private session state is always fresh locally.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .engine import US_PER_MS
from .runner import RunContext, converged_report

INSTANCES = 3
CLASSES = ("prefs", "project", "session")


def zylos(ctx: RunContext) -> dict[str, Any]:
    """Three instances, ``writes`` random writes per class over ``2 * writes / 3`` rounds."""
    opts = ctx.options
    cluster = ctx.cluster(resolve=True)
    names = cluster.add_nodes(INSTANCES)
    rng = cluster.workload_rng
    app = {"app_id": "zylos", "user_id": "owner"}
    duration_rounds = max(10, 2 * opts.writes // 3)
    cluster.progress_total_us = (duration_rounds + 8) * cluster.interval_us

    prefs = [cluster.add(names[0], f"prefs-init-{k}", klass="prefs", policy="lww",
                         priority=True, **app) for k in range(2)]
    project = [cluster.add(names[k % INSTANCES], f"project-init-{k}", klass="project",
                           sync="pull", **app) for k in range(3)]
    session = {
        name: cluster.add(name, f"session-init-{name}", klass="session", tier="private",
                          run_id=f"run-{name}", **app)
        for name in names
    }
    cluster.run_for(3)

    start = cluster.loop.now_us
    span = duration_rounds * cluster.interval_us
    counter = [0]

    def write(klass: str, node: str, memory_id: str) -> None:
        counter[0] += 1
        text = f"{klass}-{counter[0]}"
        # prefs are priority (pushed); an instance that got a project memory from a
        # peer remembers no mode for it, so the workload names it on every update
        cluster.update(node, memory_id, text, sync="pull" if klass == "project" else None)

    def read(klass: str, node: str, memory_id: str) -> None:
        cluster.read(node, memory_id)

    def schedule(klass: str, action: Callable[[str, str, str], None]) -> None:
        """One write or read of ``klass`` at a random instant by a random instance."""
        at = start + rng.randrange(span)
        node = names[rng.randrange(INSTANCES)]
        if klass == "prefs":
            target = prefs[rng.randrange(len(prefs))]
        elif klass == "project":
            target = project[rng.randrange(len(project))]
        else:
            target = session[node]
        cluster.loop.call_at(at, lambda: action(klass, node, target))

    for klass in CLASSES:
        for _ in range(opts.writes):
            schedule(klass, write)
        for _ in range(4 * opts.writes):
            schedule(klass, read)

    cluster.loop.run(start + span)
    report = converged_report(cluster, INSTANCES, opts.max_rounds)
    report["zylos"] = {
        "classes": {
            "prefs": "lww, priority, pushed",
            "project": "mv, pulled, arbiter-resolved",
            "session": "private",
        },
        "workload_rounds": duration_rounds,
        "workload_ms": span / US_PER_MS,
    }
    cluster.close()
    return report
