"""The examples of docs/guide.md's section "Views, filters and bulk deletes" run as
doctests against a fresh replica and index, so the guide cannot drift from the code."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

from storage_helpers import ticking

from memmesh.semantic import HashingEmbedder, SemanticIndex
from memmesh.storage import Replica

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide.md"
SECTION = "## Views, filters and bulk deletes"


def test_the_guides_views_section_runs_as_written(tmp_path: Path) -> None:
    text = GUIDE.read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    examples = "\n".join(re.findall(r"```pycon\n(.*?)```", text[start:end], re.S))
    assert examples.count(">>>") >= 15
    with Replica.open(tmp_path / "r", replica_id="r", clock=ticking()) as replica:
        index = SemanticIndex(replica, HashingEmbedder())
        test = doctest.DocTestParser().get_doctest(
            examples, {"replica": replica, "index": index}, SECTION, str(GUIDE), 0)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        runner.run(test)
        result = runner.summarize(verbose=False)
    assert result.failed == 0 and result.attempted >= 15
