"""``--resolver NAME[,NAME...]``: the built-in resolvers of :mod:`memmesh.semantic` by
name, chained in the order given, so a fleet run from the command line (``memmesh
node``, ``memmesh resolve``) settles its own conflicts. ``--roles`` ranks the roles for
role priority; ``--llm-command`` is the arbiter's model: a shell command that reads the
prompt on stdin and answers on stdout.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
from collections.abc import Callable

from memmesh.merge import Resolver

from ._options import OperatorError

#: accepted names -> canonical name
NAMES = {
    "near-duplicate": "near-duplicate",
    "role-priority": "role-priority", "roles": "role-priority",
    "highest-confidence": "highest-confidence", "confidence": "highest-confidence",
    "last-writer-wins": "last-writer-wins", "lww": "last-writer-wins",
    "llm": "llm-arbiter", "llm-arbiter": "llm-arbiter",
    "keep-all": "keep-all",
}
LLM_TIMEOUT_S = 60.0


class ResolverOptionError(OperatorError):
    """A ``--resolver`` spec that names no resolver, or lacks what one needs."""


def add_resolver_options(p: argparse.ArgumentParser, *, with_resolver: bool = True) -> None:
    """``--resolver`` (unless the caller declares its own), ``--roles``, ``--llm-command``."""
    if with_resolver:
        p.add_argument("--resolver", default=None, metavar="NAME[,NAME...]",
                       help="resolve conflicts with these resolvers, first opinion wins: "
                            "near-duplicate, role-priority (needs --roles), confidence, "
                            "lww, llm (needs --llm-command), keep-all")
    p.add_argument("--roles", default=None, metavar="ROLE,ROLE...",
                   help="role priority, highest first (e.g. lead,worker)")
    p.add_argument("--llm-command", default=None, metavar="CMD",
                   help="the arbiter's model: a command reading the prompt on stdin and "
                        "writing its answer on stdout")


def command_llm(command: str, timeout: float = LLM_TIMEOUT_S) -> Callable[[str], str]:
    """``llm(prompt) -> answer`` running ``command`` (no shell) with the prompt on stdin."""
    argv = shlex.split(command)

    def llm(prompt: str) -> str:
        done = subprocess.run(argv, input=prompt, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} exited {done.returncode}: {done.stderr[-200:]}")
        return done.stdout

    return llm


def build_resolver(args: argparse.Namespace) -> Resolver | None:
    """The resolver ``--resolver`` names (None when it is not given)."""
    if not getattr(args, "resolver", None):
        return None
    from memmesh.semantic import (
        HighestConfidence,
        KeepAll,
        LastWriterWins,
        LLMArbiter,
        NearDuplicate,
        RolePriority,
        chain,
    )

    resolvers: list[Resolver] = []
    for raw in args.resolver.split(","):
        name = NAMES.get(raw.strip().lower())
        if name is None:
            raise ResolverOptionError(
                f"unknown resolver {raw.strip()!r}; choose from near-duplicate, "
                "role-priority, confidence, lww, llm, keep-all")
        if name == "role-priority":
            if not args.roles:
                raise ResolverOptionError(
                    "--resolver role-priority needs --roles, highest first "
                    "(e.g. --roles lead,worker)")
            resolvers.append(RolePriority([r.strip() for r in args.roles.split(",")]))
        elif name == "llm-arbiter":
            if not args.llm_command:
                raise ResolverOptionError(
                    "--resolver llm needs --llm-command CMD (reads the prompt on stdin, "
                    "answers on stdout)")
            resolvers.append(LLMArbiter(command_llm(args.llm_command), timeout=LLM_TIMEOUT_S))
        else:
            resolvers.append({"near-duplicate": NearDuplicate, "keep-all": KeepAll,
                              "highest-confidence": HighestConfidence,
                              "last-writer-wins": LastWriterWins}[name]())
    return resolvers[0] if len(resolvers) == 1 else chain(*resolvers)
