"""Scenario ``skew``: one member's clock a year ahead (broken NTP), later fixed.

Issue 11, case 8. The member starts with its wall clock a year ahead and writes at once,
before it can know (those writes are acknowledged, stamped a year ahead). Nobody fences
the member: *it* finds out from the wall times its peers' HELLOs carry (more than the
drift bound behind it, for a majority of them) and fences its own writes
(``WritesFencedError``, counted), while it goes on syncing and relaying the others'
memories. Its peers refuse its future-stamped keys one by one (``clock-ahead``) and
take everything else it sends. At round ``FIX_AT`` its clock is fixed and it restarts
(the replica restarts its hybrid clock from the wall clock); its new writes reach
everyone. The writes it made while ahead stay with it until real time reaches their
stamps (docs/faulty-members.md, "Clocks"): they are *quarantined* here, left out of the
digests compared and expected on their writer only. Everyone writes throughout.
"""

from __future__ import annotations

from typing import Any

from memmesh.storage import WritesFencedError

from .runner import RunContext, converged_report

YEAR_MS = 365 * 24 * 3600 * 1000
AHEAD_WRITES = 3  # writes the member makes at once, before it can know
FIX_AT = 8  # rounds until its clock is fixed and it restarts
WRITE_ROUNDS = 8  # rounds of writes after the fix


def skew(ctx: RunContext) -> dict[str, Any]:
    """N members, one of them a year ahead until round ``FIX_AT``."""
    opts = ctx.options
    n = max(3, opts.nodes)
    cluster = ctx.cluster(resolve=True)
    names = cluster.add_nodes(n, start=False)
    cluster.progress_total_us = (FIX_AT + WRITE_ROUNDS + 20) * cluster.interval_us
    work, faults = cluster.workload_rng, cluster.fault_rng
    member = names[faults.randrange(n)]
    node = cluster.nodes[member]
    node.clock.skew_ms += YEAR_MS
    for name in names:
        cluster.nodes[name].start()
    scope = {"app_id": "fleet", "user_id": "ops"}
    memories: list[str] = []
    counter = [0]
    fenced = [0]
    ahead = [True]

    def write(writer: str) -> None:
        counter[0] += 1
        text = f"w{counter[0]} by {writer}"
        if writer != member or not ahead[0]:
            cluster.write_any(writer, memories, text, work, **scope)
            return
        try:  # the member ahead: new memories only (so they are its own to quarantine)
            memory_id = cluster.add(writer, text, **scope)
        except WritesFencedError:
            fenced[0] += 1
            return
        cluster.quarantined[memory_id] = {w.dot for w in
                                          cluster.writelog.memories[memory_id].writes}

    def phase(rounds: int) -> None:
        start = cluster.loop.now_us
        for _ in range(opts.writes):
            writer = names[work.randrange(n)]
            cluster.loop.call_at(start + work.randrange(rounds * cluster.interval_us),
                                 lambda w=writer: write(w))

    for _ in range(AHEAD_WRITES):
        write(member)  # at once, before any HELLO
    phase(FIX_AT)
    fenced_round = None
    for r in range(1, FIX_AT + 1):
        cluster.run_for(1)
        if fenced_round is None and node.replica.write_fence is not None:
            fenced_round = r
    relayed_while_ahead = cluster.relayed[member]
    cluster.crash(member)  # NTP fixed; the process restarts
    node.clock.skew_ms -= YEAR_MS
    ahead[0] = False
    cluster.restart(member)
    phase(WRITE_ROUNDS)
    cluster.run_for(WRITE_ROUNDS)
    report = converged_report(cluster, n, opts.max_rounds)
    report["skew"] = {
        "member": member,
        "ahead_ms": YEAR_MS,
        "writes_before_it_knew": len(cluster.quarantined),
        "fenced_at_round": fenced_round,
        "writes_refused_by_its_fence": fenced[0],
        "fence_events": dict(cluster.metrics.counters.get("fenced", {})),
        "its_states_refused_by_peers": dict(sorted(cluster.refused_from.get(member,
                                                                             {}).items())),
        "others_memories_it_relayed_while_ahead": relayed_while_ahead,
        "fixed_at_round": 1 + FIX_AT,
    }
    cluster.close()
    return report
