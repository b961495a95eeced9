"""The clause that keeps results of runs that do not count out of results queries: it names
the configurations left out (none, a short list, or the join past a limit), as of now."""

from __future__ import annotations

from pathlib import Path

import pytest

from joshreg import CellDataLoader, RunRegistry
from joshreg.registry import discovering

GOOD, BAD, ORPHAN = "aaaaaaaaaaa1", "bbbbbbbbbbb2", "fffffffffff9"


def load(reg: RunRegistry, session: str, folder: Path) -> None:
    for h in (GOOD, BAD):
        reg.register_run(session, h, None, h, None, {"maxGrowth": 1.0})
        run = reg.start_run(h, session_id=session)
        csv = folder / f"{h}.csv"
        csv.write_text("step,replicate,height\n" + "".join(f"{s},0,{s}\n" for s in range(3)))
        CellDataLoader(reg).load_csv(csv, run, h)


def test_with_every_loaded_run_current_nothing_is_added(
    registry: RunRegistry, session: str, tmp_path: Path
) -> None:
    load(registry, session, tmp_path)
    assert registry.results_clause("cd") == ("", [])
    assert registry.get_data_summary().cell_data_rows == 6


def test_runs_that_do_not_count_are_named(registry: RunRegistry, session: str, tmp_path: Path) -> None:
    load(registry, session, tmp_path)
    registry.recorder().load_csv(tmp_path / f"{GOOD}.csv", None, ORPHAN)  # never registered
    registry.mark_run(BAD, "bad")
    sql, params = registry.results_clause("cd")
    assert sql == f" AND (cd.run_hash NOT IN ('{BAD}', '{ORPHAN}'))" and params == []
    assert registry.get_data_summary().cell_data_rows == 3
    registry.mark_run(BAD, "active")
    assert registry.get_data_summary().cell_data_rows == 6
    with registry.all_runs():
        assert registry.get_data_summary().cell_data_rows == 9


def test_past_the_limit_the_clause_joins_with_the_current_runs(
    registry: RunRegistry, session: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discovering, "MAX_LISTED_HASHES", 0)
    load(registry, session, tmp_path)
    registry.mark_run(BAD, "bad")
    assert "IN (SELECT run_hash FROM job_configs" in registry.results_clause("cd")[0]
    assert registry.get_data_summary().cell_data_rows == 3


def test_another_writers_mark_is_seen(db_path: Path, config, tmp_path: Path) -> None:
    with RunRegistry(db_path) as reg:
        load(reg, reg.create_session(config), tmp_path)
        assert reg.get_data_summary().cell_data_rows == 6
        with RunRegistry(db_path) as other:
            other.mark_run(BAD, "bad")
        assert reg.get_data_summary().cell_data_rows == 3
