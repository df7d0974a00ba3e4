"""One row of the head-to-head report: a memmesh figure, its baseline, ratio and target.

Every figure is published as ``value`` (memmesh) next to ``baseline`` (a peer or a
physical limit measured in the same run, on the same machine, in the same unit) and
``ratio = value / baseline``, so the number that travels between machines is the ratio.
A target bounds either the ratio or the value itself (``sync_apply`` >= 100k/s, RSS
<= 300 MB); ``met`` is None where the issue sets no target.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

FIELDS = ("name", "value", "unit", "baseline", "ratio", "target", "met")


@dataclass(frozen=True)
class Target:
    """``on`` ("ratio" or "value") must be ``op`` ("<=" or ">=") ``limit``."""

    on: Literal["ratio", "value"]
    op: Literal["<=", ">="]
    limit: float
    note: str = ""

    def met(self, value: float, ratio: float | None) -> bool | None:
        x = ratio if self.on == "ratio" else value
        if x is None or math.isnan(x):
            return None
        return x <= self.limit if self.op == "<=" else x >= self.limit

    def text(self, unit: str) -> str:
        limit = _num(self.limit)
        shown = f"{limit}x" if self.on == "ratio" else f"{limit} {unit}"
        return f"{'≤' if self.op == '<=' else '≥'} {shown}" + (f" ({self.note})" if self.note
                                                              else "")


@dataclass(frozen=True)
class Row:
    """A figure: ``name`` says what memmesh did and what the baseline is."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    target: Target | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value, self.ratio)

    def as_json(self) -> dict[str, Any]:
        """The JSON row; a non-finite number (a division by a zero time) becomes null."""
        return {"name": self.name, "value": _finite(self.value), "unit": self.unit,
                "baseline": _finite(self.baseline), "ratio": _finite(self.ratio),
                "target": None if self.target is None else self.target.text(self.unit),
                "met": self.met}


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _num(x: float | None) -> str:
    """A figure for people: three significant digits, thousands separated."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def markdown(rows: Sequence[Row]) -> str:
    """The report as a markdown table (figure, memmesh, baseline, ratio, target, met)."""
    lines = ["| figure | memmesh | baseline | ratio | target | met |",
             "|---|---:|---:|---:|---|:---:|"]
    for r in rows:
        met = {True: "yes", False: "**no**", None: ""}[r.met]
        baseline = "–" if r.baseline is None else f"{_num(r.baseline)} {r.unit}"
        ratio = "–" if r.ratio is None else f"{r.ratio:.3g}x"
        target = "" if r.target is None else r.target.text(r.unit)
        lines.append(f"| {r.name} | {_num(r.value)} {r.unit} | {baseline} | {ratio} "
                     f"| {target} | {met} |")
    return "\n".join(lines) + "\n"


def write_json(rows: Sequence[Row], path: Path) -> None:
    path.write_text(json.dumps([r.as_json() for r in rows], indent=2) + "\n")
