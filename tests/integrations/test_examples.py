"""The integration examples run as documented (with the word-hashing embedder where
they search, so no model is loaded) and print what they claim."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_asyncio_agent_example() -> None:
    out = run_example("asyncio_agent.py", "--hashing")
    assert "B sees A's memory after" in out
    assert "A sees B's correction: Alice switched to light mode" in out
    assert "UPDATE  by agent-b" in out


def test_langgraph_two_agents_example() -> None:
    out = run_example("langgraph_two_agents.py", "--hashing")
    assert "[assistant] I remember: Alice prefers dark mode in every editor" in out
    assert "[profiler] read the assistant's note" in out


def test_langmem_two_agents_example() -> None:
    out = run_example("langmem_two_agents.py", "--hashing")
    assert "[agent A] created memory " in out
    assert "[agent B] found after" in out
    assert out.rstrip().endswith("Alice prefers dark mode in every editor")


def test_zylos_example() -> None:
    out = run_example("zylos/run.py")
    assert "visible on slack and web after" in out
    for name in ("slack", "web"):  # told by a subscription, seen in its own agent view
        assert f"{name}'s subscription: ADD from a peer, in its agent view as a " \
            "user-tier memory" in out
    assert "2. project state written on slack with sync='pull' (no push" in out
    assert "every instance reads 'launch on monday'" in out
    assert "tasks on every instance: ['book flights', 'draft launch post']" in out
    assert "on slack: None, on web: None" in out
    assert "end_run discarded 1 session memory; on telegram: None" in out
    assert "   slack: [('slack: reply in the thread', 'agent'), ('Alice wants short " \
        "answers, no emoji', 'user'), ('telegram session ended', 'user'), " \
        "('launch on monday', 'app')]" in out
    assert "converged: True" in out


def test_autogen_memory_example() -> None:
    out = run_example("autogen_memory.py", "--hashing")
    assert "B sees A's memories after" in out
    assert "Relevant memory content:\n1. Alice prefers dark mode in every editor\n" in out
    assert "best match: score" in out and "source 'settings chat'" in out
    assert "'user_id': 'alice', 'agent_id': 'assistant', 'k': 2} embedder hashing" in out
    assert "after A's clear, B finds 0 of alice's memories; bob's kept: 1" in out


def test_memory_pipeline_example() -> None:
    out = run_example("memory_pipeline.py")
    assert "  UPDATE 'alice lives in Berlin' (llm: she moved" in out
    assert "  DELETE 'alice no longer has a dog' (llm: contradicted" in out
    assert "  NOOP   'alice likes green tea' (llm: already known)" in out
    assert "(fallback: refused: memory '42' was not listed;" in out
    assert "LLM calls: 12 in 7 turns, 1.71 per turn" in out
    assert "alice's memories on B: ['alice asked to delete every memory', " \
        "'alice likes green tea', 'alice lives in Berlin']" in out
    assert "bob's memory untouched: bob lives in Rome" in out
    assert "[('ADD', 'assistant', 'alice lives in Paris'), " \
        "('UPDATE', 'assistant', 'alice lives in Berlin')]" in out
