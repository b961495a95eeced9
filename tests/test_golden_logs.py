"""Every golden log in events/ replays, from scratch, to the tables recorded when it was made."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from joshreg import RunRegistry

EVENTS = Path(__file__).resolve().parents[1] / "events"
GOLDEN = sorted(p for p in EVENTS.glob("golden-*") if p.is_dir())


def _make_golden() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_golden", EVENTS / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_golden", module)
    spec.loader.exec_module(module)
    return module


snapshot = _make_golden().snapshot


def test_there_is_a_golden_log() -> None:
    assert GOLDEN, f"no events/golden-*/ directory in {EVENTS}"


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda p: p.name)
def test_golden_log_replays_to_the_expected_tables(golden: Path, tmp_path: Path) -> None:
    expected = json.loads((EVENTS / f"{golden.name}.expected.json").read_text(encoding="utf-8"))
    store = tmp_path / "golden.events"
    shutil.copytree(golden, store)
    with RunRegistry(tmp_path / "golden.duckdb", events_path=store) as reg:
        assert reg.conn is not None
        got = snapshot(reg.conn, tuple(expected.get("exact_times", ())))
    assert got.keys() == expected.keys()
    for table in expected:
        assert got[table] == expected[table], table
    assert got["log_problems"] == []


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda p: p.name)
def test_golden_log_replays_identically_after_rebuild(golden: Path, tmp_path: Path) -> None:
    store = tmp_path / "golden.events"
    shutil.copytree(golden, store)
    with RunRegistry(":memory:", events_path=store) as reg:
        assert reg.conn is not None
        first = snapshot(reg.conn)
        reg.rebuild()
        assert snapshot(reg.conn) == first
