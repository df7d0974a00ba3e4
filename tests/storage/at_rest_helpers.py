"""Byte scans for the at-rest tests: where a canary's bytes lie on disk."""

from __future__ import annotations

from pathlib import Path

__all__ = ["files_holding", "tree_digest"]


def files_holding(root: Path, needle: bytes) -> dict[str, int]:
    """Every file under ``root`` (recursively, raw bytes) holding ``needle``: name -> count."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            count = path.read_bytes().count(needle)
            if count:
                found[str(path.relative_to(root))] = count
    return found


def tree_digest(root: Path) -> dict[str, bytes]:
    """Every file's bytes under ``root`` (to prove that nothing changed)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}
