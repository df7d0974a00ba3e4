"""The import rule of docs/architecture.md, checked over every library module.

Each layer imports only from itself and from the layers it is allowed to see; a module
whose import breaks the rule fails this test with the module, the import and the rule.
``KNOWN`` lists the imports the tree still breaks while it is being reshaped (issue 12);
it only ever shrinks, and an entry that no longer occurs fails the test too. A module
named ``_x`` is private to its package: no library module outside that package imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: folder -> the layer its modules belong to (``memmesh.<layer>``)
FOLDERS = {
    "crdt": "crdt",
    "trust": "trust",
    "storage": "storage",
    "merge": "merge",
    "gossip/protocol": "gossip.protocol",
    "gossip": "gossip",
    "semantic": "semantic",
    "memmesh/integrations": "integrations",
    "memmesh": "cli",
}

#: layer -> the layers it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "crdt": set(),
    "trust": {"crdt"},
    "storage": {"crdt", "trust"},
    "merge": {"crdt", "trust", "storage"},
    "gossip.protocol": {"crdt", "trust", "storage.wire"},
    "gossip": {"crdt", "trust", "storage", "merge", "gossip.protocol"},
    "semantic": {"crdt", "trust", "storage", "merge"},
    "integrations": {"crdt", "trust", "storage", "merge", "gossip.protocol", "gossip",
                     "semantic"},
    "cli": {"crdt", "trust", "storage", "merge", "gossip.protocol", "gossip", "semantic",
            "integrations", "simulations", "benchmarks", "cli"},
}

#: (module, imported) pairs still breaking the rule while issue 12 moves code
KNOWN: set[tuple[str, str]] = set()


def _layer_of_folder(path: Path) -> str | None:
    rel = path.relative_to(ROOT).parent.as_posix()
    best = None
    for folder, layer in FOLDERS.items():
        if (rel == folder or rel.startswith(folder + "/")) and (
                best is None or len(folder) > len(best[0])):
            best = (folder, layer)
    return None if best is None else best[1]


def _target_layer(module: str) -> str | None:
    """The layer of an absolute ``memmesh...`` import (None: not memmesh's)."""
    parts = module.split(".")
    if parts[0] != "memmesh":
        return None
    rest = parts[1:]
    if not rest:
        return "cli"
    if rest[:2] == ["gossip", "protocol"]:
        return "gossip.protocol"
    if rest[:2] == ["storage", "wire"]:
        return "storage.wire"
    if rest[0] in {"crdt", "trust", "storage", "merge", "gossip", "semantic", "integrations",
                   "simulations", "benchmarks"}:
        return rest[0]
    return "cli"


def _sees(layer: str, target: str) -> bool:
    if target == layer or (target == "storage.wire" and layer == "storage"):
        return True
    allowed = ALLOWED[layer]
    return target in allowed or (target == "storage.wire" and "storage" in allowed)


def _package(path: Path) -> list[str]:
    """The dotted package of a module file, as installed (``storage/x.py``:
    ``memmesh.storage``)."""
    parts = list(path.relative_to(ROOT).parent.parts)
    return parts if parts[0] == "memmesh" else ["memmesh", *parts]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolved against the module's package
                base = _package(path)[:len(_package(path)) - node.level + 1]
                module = ".".join([*base, *([module] if module else [])])
            if module in {"memmesh", "memmesh.storage"}:  # a submodule, or a name
                found.extend(f"{module}.{a.name}" for a in node.names)
            else:
                found.append(module)
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
    return found


def _violations() -> set[tuple[str, str]]:
    bad: set[tuple[str, str]] = set()
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            layer = _layer_of_folder(path)
            assert layer is not None
            module = path.relative_to(ROOT).with_suffix("").as_posix()
            for imported in _imports(path):
                target = _target_layer(imported)
                if target is not None and not _sees(layer, target):
                    bad.add((module, imported))
    return bad


def test_every_library_import_follows_the_layer_rule() -> None:
    bad = _violations() - KNOWN
    lines = []
    for module, imported in sorted(bad):
        layer = _layer_of_folder(ROOT / (module + ".py")) or "cli"
        lines.append(f"{module} imports {imported}: layer {layer} may import only "
                     f"{sorted(ALLOWED[layer])} (docs/architecture.md)")
    assert not bad, "\n".join(lines)


def test_the_list_of_known_breaks_only_shrinks() -> None:
    gone = KNOWN - _violations()
    assert not gone, f"fixed, remove from KNOWN: {sorted(gone)}"


def _private_imports(path: Path) -> list[str]:
    """Every ``memmesh`` module or name this file imports whose dotted path has a
    private (``_name``) part, relative imports resolved."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = _package(path)[:len(_package(path)) - node.level + 1]
                module = ".".join([*base, *([module] if module else [])])
            found.extend(f"{module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
    return [name for name in found if name.startswith("memmesh.") and any(
        part.startswith("_") and not part.startswith("__") for part in name.split("."))]


def test_private_modules_are_imported_only_by_their_package_or_one_above_it() -> None:
    """``memmesh.gossip.protocol._session`` is for ``memmesh.gossip.protocol`` (and, as
    trio's own ``__init__`` imports ``trio._core._run``, for a package above it); every
    other library module and every example uses the public name. ``simulations/`` and
    ``benchmarks/`` are harnesses, like the tests: they may reach into internals (the
    byzantine member's forgeries decode key states, the fuzzer feeds the key codec)."""
    bad = []
    for folder in [*FOLDERS, "examples"]:
        for path in (ROOT / folder).rglob("*.py"):
            package = ".".join(_package(path))
            for name in _private_imports(path):
                parts = name.split(".")
                owner = ".".join(parts[:next(i for i, part in enumerate(parts)
                                             if part.startswith("_"))])
                if owner != package and not owner.startswith(package + "."):
                    bad.append(f"{path.relative_to(ROOT)} imports {name}, private to "
                               f"{owner}: import its public name from {owner}")
    assert not bad, "\n".join(sorted(bad))
