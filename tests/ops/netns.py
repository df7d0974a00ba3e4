"""Two "machines" on one host: network namespaces joined by a veth pair, and the README's
two-machine recipe read from the README itself, so the test runs what users are told.

``ip netns add`` needs root (CI runs as root); where it is unavailable the fixtures skip
with the reason.  Names carry the pid and random digits, so parallel runs never collide,
and everything is removed by the fixture's finaliser, also when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
RECIPE_MARK = "<!-- two-machine recipe"
#: The addresses the README's recipe uses for machines A and B.
README_ADDRESSES = {"A": "10.0.0.7", "B": "10.0.0.8"}
BIN = Path(sys.executable).parent


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``cond`` until it holds; fail after ``timeout`` seconds (a bound, not a sleep)."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60,
                          check=check)


@dataclass
class Host:
    """One namespace: its name, addresses and working directory."""

    name: str
    ns: str
    ipv4: str
    ipv6: str
    cwd: Path
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("MEMMESH_CLUSTER_KEY", "MEMMESH_DATA")}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        return env

    def argv(self, command: Sequence[str]) -> list[str]:
        """``command`` run inside this namespace (``memmesh`` is the venv's)."""
        program = command[0]
        if program == "memmesh":
            program = str(BIN / "memmesh")
        return ["ip", "netns", "exec", self.ns, program, *command[1:]]

    def run(self, command: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(command), capture_output=True, text=True,
                              timeout=120, cwd=self.cwd, env=self.env())

    def start(self, command: Sequence[str], log: str) -> subprocess.Popen[str]:
        """Start a long-running command (a node) here, its stderr into ``cwd/log``."""
        with open(self.cwd / log, "a") as errf:
            proc = subprocess.Popen(self.argv(command), stdout=subprocess.PIPE, stderr=errf,
                                    text=True, cwd=self.cwd, env=self.env())
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def unavailable() -> str | None:
    """Why network namespaces cannot be used here (None: they can)."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "ip netns needs root (CI runs as root)"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    return None


@contextlib.contextmanager
def two_hosts(tmp_path: Path) -> Iterator[tuple[Host, Host]]:
    """Namespaces A and B joined by a veth pair: 10.x.0.1/.2 and fdxx::1/::2."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    tag = f"{os.getpid() % 100000}{secrets.token_hex(2)}"
    net = secrets.randbelow(250) + 1
    hosts = tuple(
        Host(name=n, ns=f"mmt{tag}{n.lower()}", ipv4=f"10.{net}.0.{i}",
             ipv6=f"fd00:{tag[-4:]}::{i}", cwd=tmp_path / n)
        for i, n in ((1, "A"), (2, "B")))
    a, b = hosts
    for h in hosts:
        h.cwd.mkdir()
    made: list[str] = []
    try:
        for h in hosts:
            proc = _run("ip", "netns", "add", h.ns, check=False)
            if proc.returncode != 0:
                pytest.skip(f"ip netns add failed: {proc.stderr.strip()}")
            made.append(h.ns)
        veth = (f"mv{tag}a", f"mv{tag}b")
        _run("ip", "link", "add", veth[0], "type", "veth", "peer", "name", veth[1])
        for h, dev in zip(hosts, veth, strict=True):
            _run("ip", "link", "set", dev, "netns", h.ns)
            _run("ip", "-n", h.ns, "addr", "add", f"{h.ipv4}/24", "dev", dev)
            _run("ip", "-n", h.ns, "addr", "add", f"{h.ipv6}/64", "dev", dev, "nodad")
            _run("ip", "-n", h.ns, "link", "set", dev, "up")
            _run("ip", "-n", h.ns, "link", "set", "lo", "up")
        yield a, b
    finally:
        for h in hosts:
            h.stop_all()
        for ns in made:
            _run("ip", "netns", "del", ns, check=False)


@dataclass(frozen=True)
class Step:
    """One command of the README recipe and the machine it runs on."""

    machine: str
    argv: tuple[str, ...]
    stdout_to: str | None = None


def readme_recipe() -> list[Step]:
    """The commands of the README's two-machine recipe, in order."""
    text = README.read_text()
    if RECIPE_MARK not in text:
        raise AssertionError("README.md lost its two-machine recipe marker")
    block = text.split(RECIPE_MARK, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    steps = []
    machine = "A"
    for line in block.splitlines():
        stripped = line.strip()
        if stripped.startswith("# on "):
            machine = stripped[5]
            continue
        argv = shlex.split(stripped, comments=True)
        if not argv:
            continue
        out = None
        if ">" in argv:
            at = argv.index(">")
            argv, out = argv[:at], argv[at + 1]
        steps.append(Step(machine, tuple(argv), out))
    return steps


def for_hosts(argv: Sequence[str], addresses: dict[str, str]) -> list[str]:
    """``argv`` with the README's example addresses replaced by the namespaces'."""
    out = []
    for token in argv:
        for machine, readme_ip in README_ADDRESSES.items():
            if token.startswith(readme_ip + ":"):
                host = addresses[machine]
                token = (f"[{host}]" if ":" in host else host) + token[len(readme_ip):]
        out.append(token)
    return out
