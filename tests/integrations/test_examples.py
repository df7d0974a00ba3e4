"""The integration examples run as documented (with the word-hashing embedder, so no
model is loaded) and print what they claim."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--hashing"],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_asyncio_agent_example() -> None:
    out = run_example("asyncio_agent.py")
    assert "B sees A's memory after" in out
    assert "A sees B's correction: Alice switched to light mode" in out
    assert "UPDATE  by agent-b" in out


def test_langgraph_two_agents_example() -> None:
    out = run_example("langgraph_two_agents.py")
    assert "[assistant] I remember: Alice prefers dark mode in every editor" in out
    assert "[profiler] read the assistant's note" in out
