"""A smoke run of the fuzzer (issue 11, deliverable 9): 5,000 structure-aware mutations
across every decoder a peer's bytes reach and the session end in a result or a typed
error.  The full run of a million inputs is ``python -m memmesh.benchmarks.fuzz``."""

from __future__ import annotations

import pytest

from memmesh.benchmarks import fuzz

pytestmark = pytest.mark.slow


def test_five_thousand_fuzzed_inputs_end_in_results_or_typed_errors() -> None:
    stats = fuzz.run(inputs=5000, seed=11, out=lambda line: None)
    assert sum(stats.inputs.values()) == 5000
    assert set(stats.inputs) == set(fuzz.WEIGHTS)  # every target was fed
    assert sum(stats.accepted.values()) < 5000  # the mutations reached the error paths
    assert not stats.finding_counts, [f"{f.target}: {f.error}" for f in stats.findings]
