"""Imports go downhill: every joshreg module imports only from modules on lower rungs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "joshreg"

# The ladder from DESIGN/style: a module may import only from rungs below its own.
LADDER: dict[str, float] = {
    "errors": 0,
    "clock": 0,
    "git": 0,
    "jobs": 0.5,
    "models": 0.75,
    "events": 1,
    "debug": 1,
    "codec": 2,
    "store": 2,
    "store.base": 2,
    "store.local": 2,
    "store.memory": 2,
    "store.compacted": 2,
    "tables": 2,
    "schemas": 2,
    "spatial": 2,
    "snapshot": 2,
    "dbfile": 2.5,
    "josh_csv": 3,
    "writer": 3,
    "reader": 3,
    "labels": 3,
    "labelstreams": 3.5,
    "recorder": 4,
    "projector": 4,
    "compaction": 4,
    "queries": 4,
    "orphans": 4,
    "discovery": 4,
    "sources": 4,
    "bottle": 4,
    "verify": 4.5,
    "joshpy_import": 4.5,
    "merge": 4.5,
    "watch": 4.5,
    "timetravel": 4.5,
    "registry": 5,
    "callback": 6,
    "cell_data": 6,
    "cli": 6,
    "diagnostics": 6,
    "plots": 7,
    "demo": 8,
    "__init__": 8,
    "__main__": 8,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, name: str) -> set[str]:
    tree = ast.parse(path.read_text())
    package = name.rsplit(".", 1)[0] if "." in name or path.name == "__init__.py" else ""
    if path.name == "__init__.py" and "." in name:
        package = name
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".") if package else []
            base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            target = ".".join([*base, node.module] if node.module else base)
            if node.module is None:
                found.update(".".join([*base, a.name]).strip(".") for a in node.names)
            else:
                found.add(target.strip("."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("joshreg"):
            found.add(node.module.removeprefix("joshreg").strip("."))
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("joshreg").strip(".") for a in node.names if a.name.startswith("joshreg")
            )
    return {f for f in found if f}


MODULES = sorted(p for p in SRC.rglob("*.py"))


def test_every_module_is_on_the_ladder() -> None:
    missing = [_module_name(p) for p in MODULES if _module_name(p) not in LADDER]
    assert not missing, f"add these modules to LADDER in tests/test_layers.py: {missing}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_imports_go_downhill(path: Path) -> None:
    name = _module_name(path)
    level = LADDER[name]
    for target in _imports(path, name):
        target_level = LADDER.get(target, LADDER.get(target.split(".")[0]))
        assert target_level is not None, f"{name} imports unknown joshreg module {target}"
        same_package = target.split(".")[0] == name.split(".")[0]
        assert target_level < level or (same_package and target_level == level), (
            f"{name} (rung {level}) imports {target} (rung {target_level}); imports must go downhill"
        )


def test_registry_is_importable_from_the_package_and_its_module() -> None:
    from joshreg import RunRegistry as from_package
    from joshreg.registry import RunRegistry as from_module

    assert from_package is from_module
    assert from_package.__module__ == "joshreg.registry"
