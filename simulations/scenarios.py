"""The named scenarios (``memmesh simulate SCENARIO``), each a documented function."""

from __future__ import annotations

from .byzantine import byzantine
from .churn import churn
from .fleet import fleet
from .join import join
from .partition_heal import partition_heal
from .restore import restore
from .retire import retire
from .runner import ScenarioFn
from .skew import skew
from .spread import spread
from .zylos import zylos

SCENARIOS: dict[str, ScenarioFn] = {
    "spread": spread,
    "zylos": zylos,
    "partition-heal": partition_heal,
    "churn": churn,
    "fleet": fleet,
    "join": join,
    "restore": restore,
    "retire": retire,
    "skew": skew,
    "byzantine": byzantine,
}

__all__ = ["SCENARIOS", "byzantine", "churn", "fleet", "join", "partition_heal", "restore",
           "retire", "skew", "spread", "zylos"]
