"""CrewAI adapter tests: skipped where crewai is not installed (the main venv: crewai
pins ``mcp<2`` and ``pydantic<2.13``), run in ``.venv-crewai`` by ``make test-crewai``.

crewai's first-run trace collection waits 5 s on every ``Memory.remember`` outside its
own test mode, and its telemetry phones home: both are switched off before the import.
"""

from __future__ import annotations

import os

import pytest

for _name, _value in (("CREWAI_TESTING", "true"), ("CREWAI_TRACING_ENABLED", "false"),
                      ("CREWAI_DISABLE_TELEMETRY", "true"), ("OTEL_SDK_DISABLED", "true")):
    os.environ.setdefault(_name, _value)

# "crewai.memory", not "crewai": this folder, on sys.path's tests/integrations, is itself
# an importable namespace package named crewai where the real one is absent
pytest.importorskip("crewai.memory")
