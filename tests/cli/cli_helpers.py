"""Running the real ``memmesh`` entry point in a subprocess, as an operator would."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

MEMMESH = str(Path(sys.executable).with_name("memmesh"))


def memmesh(*argv: str, stdin: str | None = None, columns: int = 200,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS=str(columns), HF_HUB_OFFLINE="1")
    env.pop("MEMMESH_DATA", None)
    return subprocess.run([MEMMESH, *argv], input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=env)


def start_node(data: Path, *argv: str, timeout: float = 60) -> tuple[subprocess.Popen[bytes], int]:
    """``memmesh node --data DATA ...`` (insecure, no mDNS), once it prints READY."""
    log = open(data.with_suffix(".log"), "ab")  # noqa: SIM115
    proc = subprocess.Popen([MEMMESH, "node", "--data", str(data), "--insecure", "--no-mdns",
                             "--interval", "0.2", *argv], stdout=subprocess.PIPE, stderr=log,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert proc.stdout is not None
    line, end = b"", time.monotonic() + timeout
    while not line.endswith(b"\n"):
        assert time.monotonic() < end and proc.poll() is None, \
            data.with_suffix(".log").read_text()[-2000:]
        if select.select([proc.stdout], [], [], 0.2)[0]:
            line += os.read(proc.stdout.fileno(), 1)
    return proc, int(line.split()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.1)
