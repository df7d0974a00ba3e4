"""Writing ``report.json`` so that the same run gives the same bytes.

The report is canonical JSON: sorted keys, two-space indent, floats rounded to six
significant decimals, no NaN. Anything that depends on the host (wall-clock durations,
events per second) goes to ``timings.json`` instead, so ``report.json`` can be compared
byte for byte between runs of the same scenario, seed and options.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def normalise(value: Any) -> Any:
    """Plain JSON data with floats rounded and tuples as lists; keys become strings."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        rounded = round(value, 6)
        return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded
    if isinstance(value, Mapping):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    raise TypeError(f"report values must be plain data, got {type(value).__name__}")


def dumps(report: Mapping[str, Any]) -> str:
    return json.dumps(normalise(report), sort_keys=True, indent=2, allow_nan=False) + "\n"


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(data), encoding="utf-8")
