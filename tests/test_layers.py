"""Imports go downhill: every joshreg module imports only from modules on lower rungs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "joshreg"

# The ladder from DESIGN/style: a module may import only from rungs below its own.
LADDER: dict[str, float] = {
    # the packages' own __init__ files say what lives there and hold no code
    "log": 0,
    "projection": 0,
    "results": 0,
    "provenance": 0,
    "operations": 0,
    "errors": 0,
    "log.clock": 0,
    "projection.sqltext": 0,
    "log.names": 0,
    "provenance.git": 0,
    "provenance.sweep": 0.4,
    "provenance.jobs": 0.5,
    "models": 0.75,
    "log.events": 1,
    "provenance.debug": 1,
    "log.codec": 2,
    "log.store": 2,
    "log.store.base": 2,
    "log.store.local": 2,
    "log.store.memory": 2,
    "log.store.compacted": 2,
    "log.store.credentials": 1,
    "log.store.s3options": 2,
    "log.store.objects": 2,
    "log.store.chunks": 2,
    "log.store.uploads": 2,
    "log.store.parts": 2,
    "log.schemas": 2,
    "projection.tables": 2,
    "projection.handover": 1,  # parsed result tables a batch load hands to its own catch-up
    "projection.extensions": 1.5,
    "projection.spatial": 2,
    "projection.httpfs": 2.2,
    "projection.snapshot": 2,
    "projection.dbfile": 2.5,
    "results.locations": 2.5,
    "results.josh_csv": 3,
    "results.read_ahead": 3,  # parses the next exports while josh_csv records one
    "log.writer": 3,
    "log.reader": 3,
    "log.labels": 3,
    "log.labelplan": 3.2,
    "log.labelstreams": 3.5,
    "log.snapshot_store": 3.6,
    "registry.recorder": 4,
    "projection.replay": 3.8,
    "projection.refresh": 3.8,
    "projection.cells": 3.8,
    "projection.removals": 3.7,
    "projection.projector": 4,
    "projection.tracked": 4.1,
    "projection.queries": 4,
    "projection.orphans": 4,
    "results.discovery": 4,
    "provenance.sources": 4,
    "provenance.bottle": 4,
    "operations.compaction": 4,
    "operations.verify_report": 4.3,
    "operations.verify_log": 4.4,
    "operations.verify_claims": 4.45,
    "operations.verify_tables": 4.4,
    "operations.verify": 4.5,
    "operations.merge": 4.5,
    "operations.watch": 4.5,
    "operations.joshpy_source": 4.3,
    "operations.joshpy_results": 4.4,
    "operations.joshpy_curation": 4.4,
    "operations.joshpy_import": 4.5,
    "operations.publish": 4.6,
    "projection.timetravel": 4.5,
    "closing": 0,
    "registry.listings": 4.2,
    "registry.readmodel": 4.3,
    "registry.text": 4.15,
    "registry.reads": 4.6,
    "registry.status": 4.6,
    "registry.tags": 4.6,
    "registry.designs": 4.6,
    "registry.consistency": 4.6,
    "registry.outputs": 4.6,
    "projection.consistency": 4.1,
    "projection.tag_queries": 4,
    "registry.labelling": 4.8,
    "projection.status_queries": 4,
    "registry.inspecting": 4.6,
    "registry.discovering": 4.6,
    "registry.reader": 4.7,
    "registry.writes": 4.8,
    "registry.maintenance": 4.8,
    "registry.publishing": 4.8,
    "registry.registry": 5,
    "registry.view": 5,
    "registry": 5.5,
    "provenance.callback": 6,
    "results.cell_data": 5.2,
    "results.diagnostics": 6,
    "cli.output": 5.5,
    "cli.commands": 5.5,
    "cli.inspect": 6,
    "cli.curating": 6,
    "cli.sources": 6,
    "cli.upkeep": 6,
    "cli.watching": 6,
    "cli.app": 6.5,
    "results.plots": 7,
    "results.simulation_diagnostics": 7.5,
    "cli": 7,
    # the paths joshpy users import from, re-exporting the modules above
    "cell_data": 8,
    "jobs": 8,
    "diagnostics": 8,
    "bottle": 8,
    "debug": 8,
    "plots": 8,
    "demo": 8,
    "testing": 9,
    "testing.store_contract": 9,
    "testing.registries": 9,
    "testing.servers": 9,
    "testing.proxy": 9,
    "testing.credentials": 9,
    "testing.demo_s3": 9,
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
    # Imports for type annotations only never run: they do not make a dependency.
    for block in ast.walk(tree):
        if isinstance(block, ast.If) and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            block.body = []
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
            module = node.module.removeprefix("joshreg").strip(".")
            folder = SRC.joinpath(*module.split(".")) if module else SRC
            for a in node.names:  # ``from joshreg.pkg import mod`` depends on the module, not the package
                sub = folder / f"{a.name}.py"
                found.add(f"{module}.{a.name}".strip(".") if sub.exists() else module)
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
    assert from_package.__module__ == "joshreg.registry.registry"


@pytest.mark.parametrize(
    ("path", "names"),
    [
        (
            "joshreg",
            ["RunRegistry", "RunRecorder", "CellDataLoader", "DiagnosticQueries", "JobConfig", "unbottle"],
        ),
        (
            "joshreg.registry",
            ["RunRegistry", "RegistryView", "RunRecorder", "ConfigInfo", "RunInfo", "SessionInfo"],
        ),
        (
            "joshreg.cell_data",
            ["CellDataLoader", "DiagnosticQueries", "DuplicateLoadWarning", "SparsityWarning"],
        ),
        (
            "joshreg.jobs",
            ["JobConfig", "JobExpander", "SweepConfig", "ConfigSweepParameter", "compute_run_hash"],
        ),
        ("joshreg.diagnostics", ["DiagnosticQueries"]),
        ("joshreg.bottle", ["unbottle", "BottleSpec"]),
        ("joshreg.debug", ["DebugMessageStore", "load_debug_file"]),
        ("joshreg.plots", ["plot_timeseries", "plot_comparison", "plot_spatial"]),
    ],
)
def test_the_import_paths_users_write_keep_working(path: str, names: list[str]) -> None:
    import importlib

    module = importlib.import_module(path)
    for name in names:
        assert getattr(module, name) is not None, f"{path}.{name}"
        assert name in module.__all__, f"{name} is not in {path}.__all__"


def test_every_name_joshreg_exports_loads() -> None:
    import joshreg

    for name in joshreg.__all__:
        assert getattr(joshreg, name) is not None, name


def test_import_joshreg_loads_no_duckdb_arrow_or_pandas() -> None:
    import subprocess
    import sys

    heavy = "('duckdb', 'pyarrow', 'pandas', 'numpy')"
    code = f"import sys, joshreg; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _defined_names(tree: ast.AST) -> set[str]:
    """Every name a module defines or assigns: functions, classes, attributes (``self._x = ...``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_no_module_reaches_into_another_modules_private_names(path: Path) -> None:
    """``thing._name`` is only written where ``_name`` is defined: on ``self``/``cls``, or on an
    object of a class of the same module. Imports of private names from other modules count too."""
    tree = ast.parse(path.read_text())
    own = _defined_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                continue
            if node.attr not in own:
                found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("joshreg"):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name.startswith("_")]
    assert not found, f"{_module_name(path)} uses private names of other modules: {found}"


def test_cli_listings_load_no_arrow_pandas_or_plotting(tmp_path: Path) -> None:
    """``joshreg sessions`` and friends answer in well under a second: on a registry whose tables
    are up to date they need DuckDB only (catching up a log tail reads it through Arrow)."""
    import subprocess
    import sys

    from joshreg import RunRegistry
    from joshreg.testing.registries import FakeJobConfig

    db = tmp_path / "reg.duckdb"
    with RunRegistry(db) as r:
        s = r.create_session(FakeJobConfig(), experiment_name="e")
        r.register_run(s, "abc123def456", None, "x = 1", None, {"a": 1})
        r.label_run("abc123def456", "base")
        r.complete_run(r.start_run("abc123def456", session_id=s), exit_code=0)
    RunRegistry(db).close()  # catches the tables up with the log's tail
    heavy = ("pyarrow", "pandas", "numpy", "matplotlib", "jinja2")
    commands = [["sessions", str(db)], ["runs", str(db)], ["labels", str(db)], ["info", str(db), "base"]]
    code = (
        "import sys; from joshreg.cli.app import main\n"
        f"for command in {commands!r}:\n"
        "    assert main(command) == 0, command\n"
        f"    print(command[0], sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.split("\n")[-5:] == ["sessions []", "runs []", "labels []", "info []", ""], done.stderr


# msgspec Structs are the log's records; anything else a call hands back is a dataclass. Every
# error and warning a caller can meet lives in joshreg.errors, under JoshregError/JoshregWarning.
STRUCTS_OUTSIDE_THE_LOG = {
    "joshreg.provenance.debug.DebugMessage": "millions are parsed per debug file",
}


def test_results_are_dataclasses_and_structs_are_log_records() -> None:
    from joshreg import errors

    for obj in vars(errors).values():
        if isinstance(obj, type) and obj.__module__ == "joshreg.errors" and obj is not errors.JoshregWarning:
            if issubclass(obj, Warning):
                assert issubclass(obj, errors.JoshregWarning), obj
            elif issubclass(obj, Exception):
                assert issubclass(obj, errors.JoshregError), obj

    import importlib
    import typing

    import msgspec

    wrong = []
    for path in MODULES:
        name = "joshreg" if _module_name(path) == "__init__" else "joshreg." + _module_name(path)
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if not isinstance(obj, type) or obj.__module__ != module.__name__:
                continue
            where = f"{obj.__module__}.{attr}"
            # (a private exception is control flow, never seen by a caller)
            public = not attr.startswith("_")
            if issubclass(obj, (Exception, Warning)) and module.__name__ != "joshreg.errors" and public:
                wrong.append(f"{where} is an error or warning outside joshreg.errors")
            if typing.is_typeddict(obj) or (issubclass(obj, tuple) and hasattr(obj, "_fields")):
                wrong.append(f"{where} is a TypedDict or NamedTuple; make it a dataclass")
            outside = not obj.__module__.startswith("joshreg.log.") and not attr.startswith("_")
            if issubclass(obj, msgspec.Struct) and outside and where not in STRUCTS_OUTSIDE_THE_LOG:
                wrong.append(f"{where} is a msgspec Struct outside the log; make it a dataclass")
    assert not wrong, "\n".join(wrong)


def test_registry_writes_become_events_only_through_the_recorder() -> None:
    """DESIGN's one path: a validated call becomes one event through ``RunRecorder.record``.
    (The importer appends through its own writer in bulk; it is an operation, not a call.)"""
    callers = []
    for path in MODULES:
        name = _module_name(path)
        if name.startswith(("registry.", "results.", "provenance.")) and name != "registry.recorder":
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and node.attr in ("append", "append_many"):
                    owner = ast.unparse(node.value)
                    if owner.endswith(("writer", "_writer")):
                        callers.append(f"{name}: {owner}.{node.attr}")
    assert not callers, f"events appended outside RunRecorder.record: {callers}"
