"""Run the ``pycon`` examples of one section of docs/guide.md as doctests, so the guide
cannot drift from the code."""

from __future__ import annotations

import doctest
import re
from pathlib import Path
from typing import Any

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.md"


def run_guide_section(section: str, globs: dict[str, Any], *, at_least: int) -> None:
    """Run every example of the guide's ``section`` (a ``## `` heading) with ``globs``;
    fail on any failed example or if fewer than ``at_least`` ran."""
    text = GUIDE.read_text()
    start = text.index(section)
    end = text.index("\n## ", start + len(section))
    examples = "\n".join(re.findall(r"```pycon\n(.*?)```", text[start:end], re.S))
    assert examples.count(">>>") >= at_least
    test = doctest.DocTestParser().get_doctest(examples, globs, section, str(GUIDE), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0 and result.attempted >= at_least
