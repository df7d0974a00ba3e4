"""Helpers for the multi-process tests: node processes, condition waits, a TCP proxy."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

KEY = bytes(range(32))
KEY_HEX = KEY.hex()


def wait_until(cond: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll ``cond`` until it holds; fail after ``timeout`` seconds (a bound, not a sleep)."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class NodeProc:
    """``python -m memmesh.integrations.node`` in a child process."""

    def __init__(self, path: Path, *, seeds: Sequence[tuple[str, int]] = (), mdns: bool = False,
                 port: int = 0, interval: float = 0.3, key_hex: str | None = KEY_HEX,
                 insecure: bool = False, log: Path | None = None) -> None:
        self.path = path
        self.seeds = list(seeds)
        self.mdns = mdns
        self.port = port
        self.interval = interval
        self.key_hex = key_hex
        self.insecure = insecure
        self.log = log or path.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.replica_id = ""

    def start(self, timeout: float = 60.0) -> NodeProc:
        cmd = [sys.executable, "-m", "memmesh.integrations.node", "--data", str(self.path),
               "--port", str(self.port), "--interval", str(self.interval)]
        for host, port in self.seeds:
            cmd += ["--seed", f"{host}:{port}"]
        if self.insecure:
            cmd.append("--insecure")
        if not self.mdns:
            cmd.append("--no-mdns")
        env = {k: v for k, v in os.environ.items() if k != "MEMMESH_CLUSTER_KEY"}
        if self.key_hex:
            env["MEMMESH_CLUSTER_KEY"] = self.key_hex
        with open(self.log, "ab") as errf:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, env=env)
        assert self.proc.stdout is not None
        end = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            if time.monotonic() > end or self.proc.poll() is not None:
                raise AssertionError(f"node did not start; log: {self.log.read_text()[-2000:]}")
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line += os.read(self.proc.stdout.fileno(), 1)
        _, port, rid = line.decode().split()
        self.port, self.replica_id = int(port), rid
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class TcpProxy:
    """A TCP forwarder that can cut (partition) and restore (heal) a path, and record."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.partitioned = False
        self.recorded: list[bytearray] = []  # client -> server bytes of every connection
        self.recorded_back: list[bytearray] = []  # server -> client bytes
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def partition(self) -> None:
        with self._lock:
            self.partitioned = True
            for c in self._conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
            self._conns.clear()

    def heal(self) -> None:
        with self._lock:
            self.partitioned = False

    def close(self) -> None:
        self._closed = True
        self.partition()
        self.sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                if self.partitioned:
                    client.close()
                    continue
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    client.close()
                    continue
                self._conns += [client, upstream]
                record, back = bytearray(), bytearray()
                self.recorded.append(record)
                self.recorded_back.append(back)
            threading.Thread(target=self._pipe, args=(client, upstream, record),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, back),
                             daemon=True).start()

    def wire(self) -> bytes:
        """Every byte that crossed the proxy, both directions."""
        return b"".join(bytes(r) for r in self.recorded + self.recorded_back)

    def _pipe(self, src: socket.socket, dst: socket.socket, record: bytearray) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                record += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
