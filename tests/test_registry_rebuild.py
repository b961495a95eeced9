"""The DuckDB file is a cache of the log: rebuilds are identical; raw access and exports."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from joshreg import RegistryClosedError, RunRecorder, RunRegistry


def _fill(reg: RunRegistry, config: Any) -> dict[str, str]:
    """A small but complete history: pooling, params of both types, runs, outputs, labels."""
    a = reg.create_session(config, experiment_name="alpha", session_id="sess-a")
    b = reg.create_session(config, experiment_name="beta")
    reg.update_session_status(a, "running")
    mappings = {"soil": {"path": "/d/soil.tif", "hash": "abc"}}
    reg.register_run(a, "h1", "m.josh", "x = 1", mappings, {"x": 1, "kind": "oak", "flag": True})
    reg.register_run(a, "h2", "m.josh", "x = 2", None, {"x": 2, "extra": None}, josh_content="j")
    reg.register_run(b, "h1", "m.josh", "x = 1", mappings, {"x": 1})
    reg.register_run(b, "h3", "m.josh", "x = 3", None, None)
    r1 = reg.start_run("h1", session_id=a, output_path="/o/1", metadata={"replicates": 2})
    reg.complete_run(r1, 0)
    r2 = reg.start_run("h2", session_id=a)
    reg.complete_run(r2, 1, "it's broken")
    reg.complete_run(r2, 0)
    reg.start_run("h3", session_id=b, replicate=1)
    reg.register_output(r1, "export.patch", "/o/1/patch.csv", file_size=10, row_count=3)
    reg.label_run("h1", "baseline")
    reg.label_run("h2", "baseline", on_collision="timestamp")
    reg.label_run("h3", "baseline", force=True)
    reg.label_run("h2", "other")
    return {"a": a, "b": b, "r1": r1}


def _snapshot(reg: RunRegistry) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every table and view (checkpoint included): columns and sorted rows, so two registries
    can be compared whole."""
    tables = [
        r[0]
        for r in reg.query(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY table_name"
        ).fetchall()
    ]
    out = {}
    for t in tables:
        cur = reg.query(f'SELECT * FROM "{t}"')
        cols = [d[0] for d in cur.description]
        out[t] = (cols, sorted(cur.fetchall(), key=repr))
    return out


def _reopened_snapshot(db_path: Any, **kwargs: Any) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """The tables as a fresh open sees them: after close, which seals the writer's segment."""
    with RunRegistry(db_path, **kwargs) as reg:
        return _snapshot(reg)


def test_deleting_the_database_rebuilds_every_table_identically(db_path, config):
    with RunRegistry(db_path) as reg:
        _fill(reg, config)
    before = _reopened_snapshot(db_path)
    assert before["job_configs"][1] and before["label_history"][1]
    db_path.unlink()
    with RunRegistry(db_path) as reg:
        assert _snapshot(reg) == before


def test_reopening_keeps_every_table(db_path, config):
    with RunRegistry(db_path) as reg:
        _fill(reg, config)
    before = _reopened_snapshot(db_path)
    with RunRegistry(db_path) as reg:
        assert _snapshot(reg) == before


def test_rebuild_method_gives_identical_tables(dir_registry, config):
    _fill(dir_registry, config)
    before = _snapshot(dir_registry)
    dir_registry.rebuild()
    assert _snapshot(dir_registry) == before


@pytest.mark.slow  # other processes
def test_worker_writing_across_a_cache_rebuild_reports_no_log_damage(db_path, config):
    with RunRegistry(db_path) as reg:
        sid = reg.create_session(config)
        reg.register_run(sid, "h1", "m.josh", "c", None, None)
    with RunRecorder(db_path, session_id=sid) as worker:
        worker.start_run("h1")
        db_path.unlink()
        with RunRegistry(db_path) as reg:
            worker.start_run("h1")
            assert len(reg.get_runs_for_hash("h1")) == 2
            assert reg.query("SELECT * FROM log_problems").fetchall() == []


def test_rebuilt_registry_keeps_working(db_path, config):
    with RunRegistry(db_path) as reg:
        ids = _fill(reg, config)
    db_path.unlink()
    with RunRegistry(db_path) as reg:
        reg.register_run(ids["a"], "h4", "m.josh", "x = 4", None, {"x": 4})
        reg.label_run("h4", "baseline", force=True)
        assert reg.resolve_label("baseline") == "h4"
        assert reg.get_session_summary(ids["a"]).total_jobs == 3


def test_memory_registries_are_independent(config):
    with RunRegistry(":memory:") as one, RunRegistry(":memory:") as two:
        one.create_session(config, session_id="only-in-one")
        assert one.get_session("only-in-one") is not None
        assert two.get_session("only-in-one") is None


def test_events_path_places_the_log_elsewhere(tmp_path, config):
    db = tmp_path / "db" / "sweep.duckdb"
    events = tmp_path / "shared fs" / "sweep log"
    with RunRegistry(db, events_path=events) as reg:
        _fill(reg, config)
    before = _reopened_snapshot(db, events_path=events)
    assert any(events.rglob("*.jsonl"))
    assert not db.with_suffix(".events").exists()
    db.unlink()
    with RunRegistry(db, events_path=events) as reg:
        assert _snapshot(reg) == before


def test_recorder_from_the_registry_is_visible_to_reads(dir_registry, config):
    sid = dir_registry.create_session(config)
    dir_registry.register_run(sid, "h1", "m.josh", "c", None, None)
    rec = dir_registry.recorder(session_id=sid)
    rid = rec.start_run("h1")
    rec.complete_run(rid, 0)
    assert dir_registry.get_run(rid).exit_code == 0


def test_recorder_opened_by_path_is_visible_to_reads(dir_registry, db_path, config):
    sid = dir_registry.create_session(config)
    dir_registry.register_run(sid, "h1", "m.josh", "c", None, None)
    with RunRecorder(db_path, session_id=sid) as rec:
        rid = rec.start_run("h1", output_path="/w")
        rec.register_output(rid, "log", "/w/log.txt")
        rec.complete_run(rid, 3, "failed")
    run = dir_registry.get_run(rid)
    assert (run.exit_code, run.error_message, run.output_path) == (3, "failed", "/w")
    assert dir_registry.get_session_summary(sid).runs_failed == 1


def test_recorder_events_survive_a_rebuild(dir_registry, db_path, config):
    sid = dir_registry.create_session(config)
    dir_registry.register_run(sid, "h1", "m.josh", "c", None, None)
    with RunRecorder(db_path, session_id=sid) as rec:
        rid = rec.start_run("h1")
    dir_registry.rebuild()
    assert [r.run_id for r in dir_registry.get_runs_for_hash("h1")] == [rid]


# --- lifecycle ------------------------------------------------------------------------------------


def test_close_is_idempotent_and_later_calls_fail_clearly(db_path):
    reg = RunRegistry(db_path)
    reg.close()
    reg.close()
    assert reg.conn is None
    with pytest.raises(RegistryClosedError, match="closed"):
        reg.get_session("x")


def test_context_manager_closes_and_keeps_the_data(db_path, config):
    with RunRegistry(db_path) as reg:
        reg.create_session(config, session_id="kept")
    assert reg.conn is None
    with RunRegistry(db_path) as again:
        assert again.get_session("kept") is not None


def test_repr_shows_path_and_spatial_flag(db_path):
    with RunRegistry(db_path, enable_spatial=False) as reg:
        assert repr(reg) == f"RunRegistry(db_path={db_path!r}, enable_spatial=False)"


# --- schema ---------------------------------------------------------------------------------------

UPSTREAM_COLUMNS = {
    "sweep_sessions": "session_id experiment_name created_at template_path template_hash simulation "
    "total_jobs total_replicates status metadata",
    # upstream's HEAD added the four status columns at the end (a probe-and-ALTER migration)
    "job_configs": "run_hash session_id josh_path josh_content config_content file_mappings label created_at "
    "status superseded_by status_reason status_updated_at",
    "session_configs": "session_id run_hash created_at",
    "job_runs": "run_id run_hash session_id replicate started_at completed_at exit_code output_path "
    "error_message metadata",
    "run_outputs": "output_id run_id output_type file_path file_size row_count created_at",
}
KEYS = {
    "sweep_sessions": "session_id",
    "job_configs": "run_hash",
    "session_configs": "session_id, run_hash",
    "config_parameters": "run_hash",
    "job_runs": "run_id",
    "run_outputs": "output_id",
}


def test_public_tables_keep_upstream_columns(registry):
    for table, cols in UPSTREAM_COLUMNS.items():
        got = [r[0] for r in registry.query(f"DESCRIBE {table}").fetchall()]
        assert got == cols.split(), table


def test_public_tables_hold_one_row_per_key(registry, config):
    _fill(registry, config)
    for table, key in KEYS.items():
        rows, keys = registry.query(f"SELECT count(*), count(DISTINCT ({key})) FROM {table}").fetchone()
        assert rows == keys > 0, table


# --- raw access ---------------------------------------------------------------------------------


def test_query_result_survives_later_calls(registry, config):
    registry.create_session(config, session_id="s1")
    cur = registry.query("SELECT session_id FROM sweep_sessions")
    registry.create_session(config, session_id="s2")
    registry.list_sessions()
    registry.query("SELECT 42").fetchall()
    assert cur.fetchall() == [("s1",)]


def test_query_binds_parameters(registry, config):
    registry.create_session(config, session_id="it's")
    cur = registry.query("SELECT count(*) FROM sweep_sessions WHERE session_id = ?", ["it's"])
    assert cur.fetchone() == (1,)


def _small(reg: RunRegistry, config: Any) -> None:
    sid = reg.create_session(config, session_id="s1")
    for h in ("h1", "h2"):
        reg.register_run(sid, h, "m.josh", f"config {h}", None, {"x": 1})
        reg.start_run(h, session_id=sid)


@pytest.mark.parametrize("name", ["with space", "it's", 'say "hi"'])
def test_to_csv_writes_a_table_to_an_awkward_path(registry, config, tmp_path, name):
    _small(registry, config)
    path = tmp_path / name / f"{name}.csv"
    path.parent.mkdir()
    registry.to_csv(path, table="job_configs")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["run_hash"] for r in rows) == ["h1", "h2"]
    assert rows[0]["config_content"].startswith("config ")


def test_to_parquet_writes_any_table(registry, config, tmp_path):
    _small(registry, config)
    for table in ("job_configs", "sweep_sessions", "session_configs", "config_parameters", "job_runs"):
        path = tmp_path / f"it's {table}.parquet"
        registry.to_parquet(str(path), table=table)
        expected = registry.query(f"SELECT * FROM {table}").to_arrow_table()
        assert pq.read_table(path).to_pylist() == expected.to_pylist(), table


def test_export_overwrites_an_existing_file(registry, config, tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("stale\n")
    registry.create_session(config, session_id="fresh")
    registry.to_csv(path, table="sweep_sessions")
    assert "stale" not in path.read_text()
    assert "fresh" in path.read_text()


@pytest.mark.parametrize("export", ["to_csv", "to_parquet"])
def test_export_of_unknown_table_raises_value_error(registry, tmp_path, export):
    with pytest.raises(ValueError, match="no_such_table"):
        getattr(registry, export)(tmp_path / "x", table="no_such_table")
    assert not os.path.exists(Path(tmp_path / "x"))
