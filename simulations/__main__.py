"""``python -m memmesh.simulations SCENARIO ...`` (same as ``memmesh simulate``)."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
