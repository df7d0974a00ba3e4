"""``python -m memmesh.benchmarks [--quick] [--json FILE] [--out DIR]``: as ``memmesh bench``."""

from __future__ import annotations

from memmesh.benchmarks.run import main

raise SystemExit(main())
