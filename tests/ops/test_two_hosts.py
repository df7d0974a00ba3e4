"""Two machines for real: one ``memmesh node`` in each of two network namespaces joined
by a veth pair, started exactly as the README's two-machine recipe says, converging in
both directions (IPv4 and IPv6), and mDNS finding the peer across the link.

Skips with the reason where namespaces are unavailable (not root, no ``ip``, ``ip netns
add`` refused); CI runs as root, so ``.ci/run`` runs it.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns import Host, Step, for_hosts, readme_recipe, two_hosts, wait_until

pytestmark = pytest.mark.slow

BOUND = 120.0  # seconds: a generous bound on each condition, never a sleep


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[tuple[Host, Host]]:
    with two_hosts(tmp_path) as pair:
        yield pair


def _ready(proc: subprocess.Popen[str], host: Host, log: str) -> str:
    """Wait for the node's ``READY <port> <replica id>`` line; its replica id."""
    assert proc.stdout is not None
    end = time.monotonic() + BOUND
    line = ""
    while not line.endswith("\n"):
        if time.monotonic() > end or proc.poll() is not None:
            raise AssertionError(f"node on {host.name} did not start: "
                                 f"{(host.cwd / log).read_text()[-2000:]}")
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line += os.read(proc.stdout.fileno(), 1).decode()
    assert line.startswith("READY "), line
    return line.split()[2]


def _keygen(steps: list[Step], by_name: dict[str, Host]) -> None:
    """The recipe's ``memmesh keygen > cluster.key`` on its machine, then the copy."""
    (keygen,) = [s for s in steps if s.argv[:2] == ("memmesh", "keygen")]
    assert keygen.stdout_to is not None
    host = by_name[keygen.machine]
    proc = host.run(keygen.argv)
    assert proc.returncode == 0, proc.stderr
    (host.cwd / keygen.stdout_to).write_text(proc.stdout)
    for other in by_name.values():
        if other is not host:
            shutil.copy(host.cwd / keygen.stdout_to, other.cwd / keygen.stdout_to)


def _start_readme_nodes(a: Host, b: Host, addresses: dict[str, str]) -> list[Step]:
    steps = readme_recipe()
    by_name = {"A": a, "B": b}
    _keygen(steps, by_name)
    nodes = [s for s in steps if s.argv[:2] == ("memmesh", "node")]
    assert sorted(s.machine for s in nodes) == ["A", "B"], "one node per machine"
    procs = [(by_name[s.machine].start(for_hosts(s.argv, addresses), "node.log"),
              by_name[s.machine]) for s in nodes]
    for proc, host in procs:
        _ready(proc, host, "node.log")
    return steps


def _with_text(step: Step, text: str) -> list[str]:
    """The recipe's ``memmesh add`` with our own text in place of its example."""
    return [text if " " in token else token for token in step.argv]


def _converges_both_ways(a: Host, b: Host, steps: list[Step]) -> None:
    (add,) = [s for s in steps if s.argv[:2] == ("memmesh", "add")]
    (listing,) = [s for s in steps if s.argv[:2] == ("memmesh", "list")]
    assert (add.machine, listing.machine) == ("A", "B")
    for writer, reader in ((a, b), (b, a)):
        text = f"written on {writer.name} for {reader.name}"
        done = writer.run(_with_text(add, text))
        assert done.returncode == 0, done.stderr
        wait_until(lambda r=reader, t=text: t in r.run(listing.argv).stdout, BOUND,
                   f"{reader.name} to list what {writer.name} wrote")


def test_the_readme_recipe_converges_across_two_network_namespaces(
        hosts: tuple[Host, Host]) -> None:
    a, b = hosts
    steps = _start_readme_nodes(a, b, {"A": a.ipv4, "B": b.ipv4})
    _converges_both_ways(a, b, steps)
    # `memmesh status` on each machine names the other as a connected seed
    for host, other in ((a, b), (b, a)):
        done = host.run(["memmesh", "status", "--data", "memmesh-data", "--json"])
        (seed,) = json.loads(done.stdout)["seeds"]
        assert seed["address"] == [other.ipv4, 7400] and seed["state"] == "connected"
    # each node said where it listens and why: its seed is on the other machine
    for host, other in ((a, b), (b, a)):
        line = (host.cwd / "node.log").read_text()
        assert (f"listening on [::]:7400 (every interface, since seed {other.ipv4}:7400 "
                f"is off this machine)") in line


def test_the_readme_recipe_converges_over_ipv6(hosts: tuple[Host, Host]) -> None:
    a, b = hosts
    steps = _start_readme_nodes(a, b, {"A": a.ipv6, "B": b.ipv6})
    _converges_both_ways(a, b, steps)
    assert f"seed [{b.ipv6}]:7400 is off this machine" in (a.cwd / "node.log").read_text()


_PROBE = textwrap.dedent("""
    import socket, sys, time
    from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, Zeroconf
    role, addr, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    zc = Zeroconf(interfaces=[addr], ip_version=IPVersion.V4Only)
    kind = "_mmprobe._tcp.local."
    if role == "announce":
        zc.register_service(ServiceInfo(kind, f"probe.{kind}", port=9,
                                        addresses=[socket.inet_aton(addr)],
                                        server="probe.local."))
        time.sleep(seconds)
    else:
        found = []
        ServiceBrowser(zc, kind, handlers=[lambda **kw: found.append(kw["name"])])
        end = time.monotonic() + seconds
        while not found and time.monotonic() < end:
            time.sleep(0.05)
        print("found" if found else "none")
    zc.close()
""")


def _multicast_works(a: Host, b: Host) -> bool:
    """Whether zeroconf's multicast passes the veth pair (announce on A, browse on B)."""
    announce = subprocess.Popen(a.argv([sys.executable, "-c", _PROBE, "announce", a.ipv4,
                                        "20"]), env=a.env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        browse = b.run([sys.executable, "-c", _PROBE, "browse", b.ipv4, "15"])
        return browse.stdout.strip() == "found"
    finally:
        announce.terminate()
        announce.wait(20)


def test_mdns_finds_the_peer_across_the_veth_pair(hosts: tuple[Host, Host]) -> None:
    a, b = hosts
    if not _multicast_works(a, b):
        pytest.skip("zeroconf multicast does not cross this veth pair")
    key = a.run(["memmesh", "keygen"]).stdout
    for host in (a, b):
        (host.cwd / "cluster.key").write_text(key)
        # the README's one-LAN variant: every interface, no seeds, mDNS finds the peer
        proc = host.start(["memmesh", "node", "--data", "memmesh-data", "--key-file",
                           "cluster.key", "--host", "0.0.0.0"], "node.log")
        _ready(proc, host, "node.log")
    assert "seeds: none; mDNS on" in (a.cwd / "node.log").read_text()
    done = a.run(["memmesh", "add", "--data", "memmesh-data", "found by mDNS"])
    assert done.returncode == 0, done.stderr
    wait_until(lambda: "found by mDNS" in b.run(
        ["memmesh", "list", "--data", "memmesh-data"]).stdout, BOUND,
        "B to list what A wrote, with mDNS as the only way to find A")


def test_two_machines_on_member_credentials_sync_what_their_grants_allow(
        hosts: tuple[Host, Host]) -> None:
    """docs/credentials.md across a veth pair: the authority on A issues both members,
    each machine gets only its own file, the nodes sync signed writes over TLS on
    credentials, and B receives only what its read grant covers."""
    a, b = hosts
    assert a.run(["memmesh", "authority", "init", "--out", "issuer.key"]).returncode == 0
    for rid, read, host in (("alice-a", "all", a), ("bob-b", "users=bob", b)):
        done = a.run(["memmesh", "authority", "issue", "--authority", "issuer.key",
                      "--replica-id", rid, "--read", read, "--write", "all", "--out",
                      f"{rid}.cred"])
        assert done.returncode == 0, done.stderr
        if host is not a:
            shutil.copy(a.cwd / f"{rid}.cred", host.cwd / f"{rid}.cred")
            (a.cwd / f"{rid}.cred").unlink()
    member = {a.name: ["--data", "memmesh-data", "--credential", "alice-a.cred"],
              b.name: ["--data", "memmesh-data", "--credential", "bob-b.cred"]}
    for host, other in ((a, b), (b, a)):
        proc = host.start(["memmesh", "node", *member[host.name], "--port", "7400",
                           "--seed", f"{other.ipv4}:7400"], "node.log")
        _ready(proc, host, "node.log")
    for text, user in (("for bob across machines", "bob"), ("CANARY of alice", "alice")):
        done = a.run(["memmesh", "add", *member[a.name], "--user-id", user, text])
        assert done.returncode == 0, done.stderr
    wait_until(lambda: "for bob across machines" in b.run(
        ["memmesh", "list", *member[b.name]]).stdout, BOUND, "B to list bob's memory")
    assert "CANARY" not in b.run(["memmesh", "list", *member[b.name]]).stdout
    assert "on credentials of" in (a.cwd / "node.log").read_text()
    assert not any(b"CANARY" in p.read_bytes() for p in (a.cwd / "memmesh-data").rglob("*")
                   if p.is_file())  # encrypted at rest under alice-a's key
