"""``python -m memmesh``: the ``memmesh`` command, for when its script is not on PATH."""

from __future__ import annotations

import sys

from memmesh._cli import main

sys.exit(main())
