"""The operator's view through the real ``memmesh`` entry point, in subprocesses:
logging flags, ``memmesh status [--json]`` with peers and seeds, and one-line errors."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from memmesh._cli import build_parser

pytestmark = pytest.mark.slow

MEMMESH = str(Path(sys.executable).parent / "memmesh")
BOUND = 60.0  # seconds: a bound on each condition, never a sleep


def wait_until(cond: Callable[[], object], what: str, timeout: float = BOUND) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("MEMMESH_CLUSTER_KEY", "MEMMESH_DATA", "MEMMESH_DEBUG")}


def memmesh(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MEMMESH, *argv], capture_output=True, text=True, timeout=120,
                          env=env(), cwd=cwd)


class NodeProcess:
    """``memmesh node ...`` as users start it, its stderr in a file."""

    def __init__(self, tmp: Path, name: str, *argv: str) -> None:
        self.log = tmp / f"{name}.log"
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen([MEMMESH, "node", *argv], stdout=subprocess.PIPE,
                                         stderr=err, text=True, env=env())

    def ready(self) -> tuple[int, str]:
        """Wait for ``READY <port> <replica id>``."""
        assert self.proc.stdout is not None
        line = ""
        end = time.monotonic() + BOUND
        while not line.endswith("\n"):
            if time.monotonic() > end or self.proc.poll() is not None:
                raise AssertionError(f"node did not start: {self.log.read_text()[-2000:]}")
            if select.select([self.proc.stdout], [], [], 0.2)[0]:
                line += os.read(self.proc.stdout.fileno(), 1).decode()
        _, port, rid = line.split()
        return int(port), rid

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(30)


@pytest.fixture
def nodes() -> Iterator[list[NodeProcess]]:
    started: list[NodeProcess] = []
    yield started
    for node in started:
        if node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait(30)


def start(nodes: list[NodeProcess], tmp: Path, name: str, *argv: str) -> NodeProcess:
    node = NodeProcess(tmp, name, *argv)
    nodes.append(node)
    return node


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "cluster.key"
    path.write_text(memmesh("keygen").stdout)
    return path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def status_json(data: Path) -> dict[str, Any]:
    done = memmesh("status", "--data", str(data), "--json")
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def one_line(done: subprocess.CompletedProcess[str], rc: int) -> str:
    """The single stderr line of a command that failed with ``rc``."""
    assert done.returncode == rc, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


# ---------------------------------------------------------------- logging and status


def test_every_command_takes_v_and_log_level_before_or_after_its_name() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():  # type: ignore[union-attr]
        flags = {s for a in command._actions for s in a.option_strings}
        assert {"-v", "--log-level"} <= flags, name
    assert parser.parse_args(["-vv", "keygen"]).verbose == 2
    assert parser.parse_args(["keygen", "-v"]).verbose == 1
    assert parser.parse_args(["keygen", "--log-level", "debug"]).log_level == "DEBUG"


def test_status_json_shows_each_seed_and_v_logs_peers_and_unreachable_seeds(
        tmp_path: Path, key_file: Path, nodes: list[NodeProcess]) -> None:
    a = start(nodes, tmp_path, "a", "--data", str(tmp_path / "a"), "--key-file",
              str(key_file), "--no-mdns")
    port_a, rid_a = a.ready()
    dead = closed_port()
    b = start(nodes, tmp_path, "b", "-v", "--data", str(tmp_path / "b"), "--key-file",
              str(key_file), "--no-mdns", "--seed", f"127.0.0.1:{port_a}",
              "--seed", f"127.0.0.1:{dead}")
    b.ready()

    def seeds() -> dict[int, dict[str, Any]]:
        status = status_json(tmp_path / "b")
        return {s["address"][1]: s for s in status.get("seeds", [])}

    wait_until(lambda: seeds().get(port_a, {}).get("lag") == 0
               and seeds().get(dead, {}).get("failures"), "b's status naming both seeds")
    status = status_json(tmp_path / "b")
    assert status["running"] is True and status["pid"] == b.proc.pid
    assert [p["replica_id"] for p in status["peers"]] == [rid_a]
    live, gone = seeds()[port_a], seeds()[dead]
    assert (live["state"], live["peer_id"]) == ("connected", rid_a)
    assert (gone["state"], gone["last_error"]) == ("unreachable", "Connection refused")
    text = memmesh("status", "--data", str(tmp_path / "b")).stdout
    assert f"127.0.0.1:{dead}" in text and "unreachable" in text
    assert "last error" in text and "Connection refused" in text
    log = b.log.read_text()
    assert f"INFO memmesh.gossip: peer {rid_a}: connected" in log
    assert f"WARNING memmesh.gossip: seed 127.0.0.1:{dead}: unreachable" in log


# ---------------------------------------------------------------- one-line errors


@pytest.mark.parametrize("command", ["node", "mcp"])
def test_a_port_beyond_65535_is_refused_not_wrapped(tmp_path: Path, key_file: Path,
                                                     command: str) -> None:
    done = memmesh(command, "--data", str(tmp_path / "d"), "--key-file", str(key_file),
                   "--port", "99999")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"memmesh {command}: error: argument --port: 99999 is not a TCP port: want "
        f"0..65535 (0 picks a free port)")
    assert not (tmp_path / "d").exists()


def test_a_second_node_on_one_data_directory_is_refused_naming_the_first_ones_pid(
        tmp_path: Path, key_file: Path, nodes: list[NodeProcess]) -> None:
    data = tmp_path / "d"
    first = start(nodes, tmp_path, "first", "--data", str(data), "--key-file", str(key_file),
                  "--no-mdns")
    first.ready()
    done = memmesh("node", "--data", str(data), "--key-file", str(key_file), "--no-mdns")
    assert one_line(done, 2) == (
        f"memmesh: another memmesh node (pid {first.proc.pid}) is running on {data}: stop "
        f"it first, or give this node another --data")
    assert first.proc.poll() is None  # the first one is untouched
    assert status_json(data)["pid"] == first.proc.pid


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_status_never_reports_a_dead_node_as_running(
        tmp_path: Path, key_file: Path, nodes: list[NodeProcess], sig: int) -> None:
    data = tmp_path / "d"
    node = start(nodes, tmp_path, "n", "--data", str(data), "--key-file", str(key_file),
                 "--no-mdns")
    node.ready()
    wait_until(lambda: memmesh("status", "--data", str(data)).returncode == 0,
               "the node's first status snapshot")
    node.stop(sig)
    done = memmesh("status", "--data", str(data))
    assert one_line(done, 1) == (f"memmesh: no node is running on {data}: start one with "
                                 f"`memmesh node --data {data} --key-file cluster.key`")
    assert status_json(data)["running"] is False
    if sig == signal.SIGTERM:
        assert not (data / "node-status.json").exists()


def test_a_port_in_use_is_one_line_and_a_non_zero_exit(tmp_path: Path,
                                                       key_file: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = memmesh("node", "--data", str(tmp_path / "d"), "--key-file", str(key_file),
                       "--no-mdns", "--port", str(port))
    assert one_line(done, 2) == (
        f"memmesh: cannot listen on 127.0.0.1:{port}: port {port} is in use (another "
        f"memmesh node, or another program, holds it): stop it or choose another port "
        f"(--port; 0 picks a free one)")


@pytest.mark.parametrize("command", ["node", "mcp"])
def test_a_key_file_that_cannot_be_read_is_one_line(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "nowhere" / "cluster.key"
    done = memmesh(command, "--data", str(tmp_path / "d"), "--key-file", str(missing))
    assert one_line(done, 2) == (
        f"memmesh: cannot read the cluster key file {missing}: No such file or directory; "
        f"create it once with `memmesh keygen > {missing}` and copy it to every member")
    done = memmesh(command, "--data", str(tmp_path / "d"), "--key-file", str(tmp_path))
    assert one_line(done, 2).startswith(
        f"memmesh: cannot read the cluster key file {tmp_path}: Is a directory;")
    (tmp_path / "bad.key").write_text("not hex at all")
    done = memmesh(command, "--data", str(tmp_path / "d"), "--key-file",
                   str(tmp_path / "bad.key"))
    assert one_line(done, 2) == (f"memmesh: the cluster key in the key file "
                                 f"{tmp_path / 'bad.key'} is not hex: make one with "
                                 f"`memmesh keygen`")


def test_mcp_beside_a_running_node_serves_without_a_second_node_and_says_so(
        tmp_path: Path, key_file: Path, nodes: list[NodeProcess]) -> None:
    pytest.importorskip("mcp.server.mcpserver")
    data = tmp_path / "d"
    node = start(nodes, tmp_path, "n", "--data", str(data), "--key-file", str(key_file),
                 "--no-mdns")
    node.ready()
    # stdin at EOF: the MCP client is gone at once, so the server ends after starting
    done = subprocess.run([MEMMESH, "mcp", "--data", str(data), "--key-file", str(key_file),
                           "--no-mdns", "--embedder", "hashing"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120, env=env())
    assert done.returncode == 0, done.stderr
    assert one_line(done, 0) == (
        f"memmesh mcp: a memmesh node (pid {node.proc.pid}) already runs on {data}: serving "
        f"without a node of its own (that node replicates this server's writes)")
    assert status_json(data)["pid"] == node.proc.pid  # the node's status is its own


def test_status_of_a_directory_held_without_a_status_file_says_so(tmp_path: Path) -> None:
    from memmesh.integrations._runlock import RunLock

    data = tmp_path / "d"
    data.mkdir()
    with RunLock(data):  # as a starting node, or an MCP server's node, holds it
        done = memmesh("status", "--data", str(data))
        as_json = status_json(data)
    assert done.returncode == 0 and done.stdout.strip() == (
        f"node running on {data}, pid {os.getpid()}; no status file: it is starting, or it "
        f"is the node of a memmesh mcp server (which writes none)")
    assert as_json["running"] is True and as_json["pid"] == os.getpid()
    assert memmesh("status", "--data", str(data)).returncode == 1  # released: none runs


# ---------------------------------------------------------------- delivery modes


def test_a_node_started_with_sync_default_pull_leaves_plain_writes_to_pulls_and_pushes_the_rest(
        tmp_path: Path, key_file: Path, nodes: list[NodeProcess]) -> None:
    # anti-entropy every hour: after the first exchange only pushes move writes
    a = start(nodes, tmp_path, "a", "--data", str(tmp_path / "a"), "--key-file",
              str(key_file), "--no-mdns", "--interval", "3600", "--sync-default", "pull")
    port_a, rid_a = a.ready()
    b = start(nodes, tmp_path, "b", "--data", str(tmp_path / "b"), "--key-file",
              str(key_file), "--no-mdns", "--interval", "3600", "--seed",
              f"127.0.0.1:{port_a}")
    b.ready()
    wait_until(lambda: [p["replica_id"] for p in status_json(tmp_path / "b")["peers"]]
               == [rid_a], "b connected to a")

    def first_exchange_done(name: str) -> bool:
        peers = status_json(tmp_path / name)["peers"]
        return bool(peers) and all(p.get("last_sync") is not None for p in peers)

    # both first pulls must be over (at start each is a bulk pull, one after the
    # other): a write made during one of them would ride along with it
    wait_until(lambda: first_exchange_done("a") and first_exchange_done("b"),
               "the first exchange done both ways")

    def b_texts() -> list[str]:
        done = memmesh("list", "--data", str(tmp_path / "b"), "--user-id", "u", "--json")
        return sorted(m["text"] for m in json.loads(done.stdout))

    pushes = status_json(tmp_path / "a")["pushes"]
    assert memmesh("add", "--data", str(tmp_path / "a"), "--user-id", "u",
                   "plain write").returncode == 0
    wait_until(lambda: status_json(tmp_path / "a").get("writes", {}).get("pull") == 1,
               "a's node counting the plain write as pull-mode")
    assert status_json(tmp_path / "a")["pushes"] == pushes  # not the trigger of a push
    assert b_texts() == []
    assert memmesh("add", "--data", str(tmp_path / "a"), "--user-id", "u", "--sync", "push",
                   "pushed write").returncode == 0
    # the push carries every write of a's that b lacks: the plain one rides along
    wait_until(lambda: b_texts() == ["plain write", "pushed write"], "b receiving the push")
    # (the status file is a snapshot written every second: wait for the next one)
    wait_until(lambda: status_json(tmp_path / "a").get("writes", {}).get("push") == 1,
               "a's node counting the pushed write")
    status = status_json(tmp_path / "a")
    assert status["writes"] == {"pull": 1, "push": 1} and status["pushes"] > pushes
