"""A crew's memories shared between two OS processes through gossip: the documented
example (examples/crewai_shared_memory.py) runs a researcher process and a writer
process, each with its own replica directory and node, linked by seed address on
127.0.0.1; each recalls what the other remembered once gossip delivered it (both wait
on that condition, bounded at 60 s)."""

from __future__ import annotations

from test_examples import run_example


def test_two_processes_recall_each_others_crew_memories_through_gossip() -> None:
    out = run_example("crewai_shared_memory.py")
    assert "recalled after" in out
    assert "'the client wants the final report in french' in /crew/launch/client" in out
    assert ("researcher recalled the writer's note: "
            "'the draft report was sent to the client in french'") in out
    assert "the crew's scopes: ['/crew/launch/agent', '/crew/launch/client']" in out
