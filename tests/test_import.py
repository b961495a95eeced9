"""Importing joshpy registries: the same rows in joshreg's tables, built from events, repeatable."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

from joshpy_shapes import JoshpyRegistry, small_sweep
from joshreg import CellDataLoader, Requirement, RunRegistry, TargetDesign
from joshreg.cli.app import main
from joshreg.errors import ColumnConflictError, ForeignDatabaseError, InvalidArgumentError
from joshreg.projection.tables import UPSTREAM_TABLES
from joshreg.testing.registries import FakeJobConfig, dump_tables

UPSTREAM = tuple(t for t in UPSTREAM_TABLES if t != "cell_data")
# What an import changes on purpose (the README's list): totals filled in, cell_id renumbered.
SKIPPED = {
    "sweep_sessions": frozenset({"total_jobs", "total_replicates"}),
    "cell_data": frozenset({"cell_id", "geom"}),
}


# Columns of joshpy's HEAD: compared on their own (test_head_statuses_tags_and_designs_are_imported),
# since a seed-version source has none.
LATER = frozenset({"status", "superseded_by", "status_reason", "status_updated_at"})


def tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[dict[str, Any]]]:
    skip = {**SKIPPED, "job_configs": LATER}
    return dump_tables(con, (*UPSTREAM, "cell_data"), skip=skip)


def old_tables(path: Path) -> dict[str, list[dict[str, Any]]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return tables(con)


def files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(params=["seed", "seed-without-keys", "head"])
def old(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    (tmp_path / "old").mkdir()
    return small_sweep(
        tmp_path / "old" / "old.duckdb",
        keys=request.param != "seed-without-keys",
        head=request.param == "head",
    )


def test_an_import_gives_the_same_tables_and_leaves_the_source_alone(old: Path, tmp_path: Path) -> None:
    before = files(old.parent)
    expected = old_tables(old)
    with RunRegistry(tmp_path / "new.duckdb") as reg:
        report = reg.import_joshpy(old, source_timezone="UTC")
        assert reg.conn is not None
        got = tables(reg.conn)
        sessions = reg.query("SELECT total_jobs, total_replicates FROM sweep_sessions ORDER BY 1").fetchall()
    assert files(old.parent) == before
    assert got == expected
    assert sessions == [(2, 4), (2, 4)]  # totals filled in: 2 configurations × 2 replicates
    head = {k: report.added.pop(k) for k in ("statuses", "tags", "designs") if k in report.added}
    with duckdb.connect(str(old), read_only=True) as con:
        is_head = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'run_tags'").fetchone()
    assert head == ({"statuses": 1, "tags": 1, "designs": 1} if is_head == (1,) else {})
    assert report.added == {
        "sessions": 2,
        "session_statuses": 2,
        "configurations": 3,
        "session_links": 1,
        "runs": 5,
        "completions": 3,
        "outputs": 3,
        "labels": 2,
        "result_files": 3,
        "result_rows": 13,
    }
    assert report.conflicts == []
    assert any("total_jobs" in d for d in report.differences)
    assert any("cell_id is renumbered" in d for d in report.differences)


def test_deleting_the_file_rebuilds_the_same_tables_from_the_log(old: Path, tmp_path: Path) -> None:
    with RunRegistry(tmp_path / "new.duckdb") as reg:
        reg.import_joshpy(old, source_timezone="UTC")
        assert reg.conn is not None
        first = tables(reg.conn)
    (tmp_path / "new.duckdb").unlink()
    with RunRegistry(tmp_path / "new.duckdb") as reg:
        assert reg.conn is not None
        assert tables(reg.conn) == first
        assert reg.verify().ok


def test_head_statuses_tags_and_designs_are_imported(tmp_path: Path) -> None:
    old = small_sweep(tmp_path / "old.duckdb", head=True)
    with duckdb.connect(str(old)) as con:
        con.execute("CREATE TABLE field_notes (note VARCHAR)")
        con.execute("INSERT INTO field_notes VALUES ('dry year')")
        con.execute("ALTER TABLE job_runs ADD COLUMN node VARCHAR")
        con.execute("UPDATE job_runs SET node = 'n01'")
        (marked_at,) = con.execute(
            "SELECT status_updated_at FROM job_configs WHERE run_hash = 'bbbbbbbbbbbb'"
        ).fetchone()
    with RunRegistry(tmp_path / "new.duckdb") as reg:
        report = reg.import_joshpy(old, source_timezone="UTC")
        notes = "\n".join(report.not_imported)
        assert "table field_notes (1 rows): not a joshpy table" in notes
        assert "column job_runs.node (5 values): not a joshpy column" in notes
        assert "job_configs.status" not in notes and "run_tags" not in notes and "target_" not in notes
        status = reg.get_run_status("bbbbbbbbbbbb")
        assert (status.status, status.reason) == ("bad", "wrong climate file")
        assert status.updated_at == marked_at  # the source's time, not the import's
        assert reg.get_attributes("aaaaaaaaaaaa") == {"site": "north"}
        assert reg.list_designs() == [TargetDesign("coverage", [Requirement({"site": "north"}, 2)])]
        again = reg.import_joshpy(old, source_timezone="UTC")
        assert again.added == {} and again.already_present["statuses"] == 1
        assert again.already_present["tags"] == 1 and again.already_present["designs"] == 1


def test_original_times_are_data_and_the_clocks_say_when_the_import_ran(tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    with JoshpyRegistry(old) as jp:
        jp.con.execute("SET TimeZone = 'America/Los_Angeles'")  # joshpy ran in California
        sid = jp.create_session({}, "la")
        jp.con.execute("UPDATE sweep_sessions SET created_at = TIMESTAMP '2026-01-15 09:30:00'")
    with RunRegistry(tmp_path / "new.duckdb") as reg:
        start = datetime.now(UTC).replace(tzinfo=None)
        report = reg.import_joshpy(old, source_timezone="America/Los_Angeles")
        (created,) = reg.query("SELECT created_at FROM sweep_sessions").fetchone()
        (recorded,) = reg.query(
            "SELECT recorded_at FROM event_log WHERE type = 'session.created' AND session_id = ?", [sid]
        ).fetchone()
    local = datetime(2026, 1, 15, 9, 30, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert created == local.astimezone(UTC).replace(tzinfo=None) == datetime(2026, 1, 15, 17, 30)
    assert recorded >= start.replace(microsecond=0)
    assert report.source_timezone == "America/Los_Angeles"
    assert "naive local times of America/Los_Angeles" in report.differences[0]
    with RunRegistry(tmp_path / "new.duckdb") as reg:
        (event,) = reg.query("SELECT source_timezone, counts FROM events_registry_imported").fetchall()
    assert event[0] == "America/Los_Angeles" and json.loads(event[1])["sessions"] == 1


def test_an_unknown_time_zone_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    old = small_sweep(tmp_path / "old.duckdb")
    with RunRegistry(tmp_path / "new.duckdb") as reg:
        with pytest.raises(InvalidArgumentError, match="unknown time zone 'Mars/Olympus'"):
            reg.import_joshpy(old, source_timezone="Mars/Olympus")
        assert reg.list_sessions() == []


def test_importing_again_adds_nothing(old: Path, tmp_path: Path) -> None:
    with RunRegistry(tmp_path / "new.duckdb") as reg:
        reg.import_joshpy(old)
        log = files(tmp_path / "new.events" / "log")
        again = reg.import_joshpy(old)
        assert again.added == {}
        assert again.already_present["runs"] == 5 and again.already_present["result_rows"] == 13
        reg.flush()
    assert {k: v for k, v in files(tmp_path / "new.events" / "log").items() if k in log} == log


def test_a_source_that_grew_adds_only_its_new_rows(tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    with JoshpyRegistry(old) as jp:
        sid = jp.create_session({"replicates": 1}, "live")
        jp.register_run(sid, "aaaaaaaaaaaa", "m.josh", "x = 1", None, {"x": 1})
        rid = jp.start_run("aaaaaaaaaaaa", sid)
        rows = [{"step": s, "replicate": 0, "height": 1.0 * s} for s in range(3)]
        jp.load_rows(rid, "aaaaaaaaaaaa", rows, {"height": "DOUBLE"})
    with RunRegistry(tmp_path / "new.duckdb") as reg:
        reg.import_joshpy(old)
    with JoshpyRegistry(old) as jp:  # joshpy goes on with the sweep
        jp.complete_run(rid, 0)
        jp.load_rows(rid, "aaaaaaaaaaaa", [{"step": 3, "replicate": 0, "height": 3.0}], {"height": "DOUBLE"})
        jp.register_run(sid, "bbbbbbbbbbbb", "m.josh", "x = 2", None, {"x": 2})
        jp.label_run("bbbbbbbbbbbb", "next")
        jp.update_session_status(sid, "completed")
    with RunRegistry(tmp_path / "new.duckdb") as reg:
        report = reg.import_joshpy(old)
        assert report.added == {
            "session_statuses": 1,
            "configurations": 1,
            "completions": 1,
            "labels": 1,
            "result_files": 1,
            "result_rows": 1,
        }
        assert reg.conn is not None
        assert tables(reg.conn) == old_tables(old)


def test_several_experiments_import_into_one_registry(tmp_path: Path) -> None:
    first, second = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    for path, name in ((first, "first"), (second, "second")):
        with JoshpyRegistry(path) as jp:
            sid = jp.create_session({}, name)
            jp.register_run(sid, "aaaaaaaaaaaa", "m.josh", "shared = 1", None, {"x": 1})  # the same config
            jp.register_run(sid, f"{name[0] * 12}", "m.josh", f"own = {name}", None, {"x": 2})
    with RunRegistry(tmp_path / "new.duckdb") as reg:
        reg.import_joshpy(first)
        report = reg.import_joshpy(second)
        assert report.conflicts == []
        assert report.already_present == {"configurations": 1}
        assert sorted(s.experiment_name for s in reg.list_sessions()) == ["first", "second"]
        assert {
            c.run_hash
            for c in reg.get_configs_for_session(reg.list_sessions(experiment_name="second")[0].session_id)
        } == {"aaaaaaaaaaaa", "ssssssssssss"}


def test_a_hash_or_session_held_with_other_content_is_a_conflict_and_kept(tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    with JoshpyRegistry(old) as jp:
        sid = jp.create_session({}, "theirs", session_id="shared-session")
        jp.register_run(sid, "aaaaaaaaaaaa", "m.josh", "maxGrowth = 1", None, {"x": 1})
        other = jp.create_session({}, "other")
        jp.register_run(other, "bbbbbbbbbbbb", "m.josh", "theirs", None, {"x": 2})
        jp.start_run("bbbbbbbbbbbb", other)
        jp.label_run("bbbbbbbbbbbb", "best")

    with RunRegistry(tmp_path / "new.duckdb") as reg:
        mine = reg.create_session(
            FakeJobConfig(extra={"mine": True}), experiment_name="mine", session_id="shared-session"
        )
        reg.register_run(mine, "bbbbbbbbbbbb", "m.josh", "mine", None, {"x": 2})
        report = reg.import_joshpy(old)
        assert any(
            "session shared-session is in the registry with other content" in c for c in report.conflicts
        )
        assert any(
            "run hash bbbbbbbbbbbb is in the registry with other content" in c for c in report.conflicts
        )
        assert any("label 'best'" in c for c in report.conflicts)
        assert reg.get_session("shared-session").experiment_name == "mine"
        assert reg.get_config_by_hash("bbbbbbbbbbbb").config_content == "mine"
        assert reg.get_runs_for_hash("bbbbbbbbbbbb") == []
        assert reg.get_config_by_hash("aaaaaaaaaaaa") is None  # it belonged to the conflicting session
        assert reg.list_labels() == []


def test_duplicate_labels_go_to_the_most_recently_registered_holder(tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    with JoshpyRegistry(old) as jp:
        sid = jp.create_session({}, "dupes")
        jp.register_run(sid, "bbbbbbbbbbbb", "m.josh", "older", None, {})
        jp.register_run(sid, "aaaaaaaaaaaa", "m.josh", "newer", None, {})
        jp.con.execute(
            "UPDATE job_configs SET created_at = TIMESTAMP '2026-01-01' WHERE run_hash = 'bbbbbbbbbbbb'"
        )
        jp.con.execute("UPDATE job_configs SET label = 'best'")  # joshpy has no unique constraint
    with RunRegistry(tmp_path / "new.duckdb") as reg:
        report = reg.import_joshpy(old)
        assert reg.list_labels() == [("best", "aaaaaaaaaaaa")]
        (change,) = reg.label_history()
        assert (change.action, change.reason) == ("assigned", "imported")
    assert any(
        "label 'best' was held by 2 runs" in d and "most recently registered, aaaaaaaaaaaa" in d
        for d in report.differences
    )


def test_orphan_rows_are_kept_and_flagged_by_verify(tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    with JoshpyRegistry(old, keys=False) as jp:
        sid = jp.create_session({}, "orphans")
        jp.register_run(sid, "aaaaaaaaaaaa", "m.josh", "x", None, {})
        lost = jp.start_run("ffffffffffff", sid)  # a hash nobody registered
        jp.load_rows("no-such-run", "eeeeeeeeeeee", [{"step": 0, "replicate": 0, "v": 1.0}], {"v": "DOUBLE"})
    with RunRegistry(tmp_path / "new.duckdb") as reg:
        reg.import_joshpy(old)
        assert reg.get_run(lost) is not None
        assert reg.query("SELECT count(*) FROM cell_data WHERE run_hash = 'eeeeeeeeeeee'").fetchone() == (1,)
        report = reg.verify()
    assert report.ok
    orphans = [w for w in report.warnings if w.kind == "orphan"]
    assert len(orphans) == 3
    assert all(w.file and w.file.startswith("log/") and w.line for w in orphans)
    text = "\n".join(str(w) for w in orphans)
    assert f"run.started of run {lost} names run hash ffffffffffff" in text
    assert "results.loaded names run hash eeeeeeeeeeee" in text and "names run no-such-run" in text


def test_a_parquet_export_imports_like_the_file(tmp_path: Path) -> None:
    old = small_sweep(tmp_path / "old.duckdb")
    with duckdb.connect(str(old), read_only=True) as con:
        con.execute(f"EXPORT DATABASE '{tmp_path / 'export'}' (FORMAT parquet)")
        (tmp_path / "pushed").mkdir()  # push_to_s3's layout: one <table>.parquet each
        for t in (*UPSTREAM, "cell_data"):
            con.execute(f"COPY {t} TO '{tmp_path / 'pushed' / t}.parquet' (FORMAT parquet)")
    expected = old_tables(old)
    for folder in ("export", "pushed"):
        with RunRegistry(tmp_path / f"{folder}.duckdb") as reg:
            report = reg.import_joshpy(tmp_path / folder, source_timezone="UTC")
            assert report.source_kind == "parquet"
            assert reg.conn is not None
            assert tables(reg.conn) == expected, folder


def test_new_parameter_or_variable_types_that_clash_are_refused_before_writing(tmp_path: Path) -> None:
    old = small_sweep(tmp_path / "old.duckdb")  # maxGrowth is DOUBLE there

    with RunRegistry(tmp_path / "new.duckdb") as reg:
        sid = reg.create_session(FakeJobConfig())
        reg.register_run(sid, "dddddddddddd", "m.josh", "x", None, {"maxGrowth": "fast"})
        with pytest.raises(ColumnConflictError, match="maxGrowth' exists as VARCHAR but new data has DOUBLE"):
            reg.import_joshpy(old)
        assert len(reg.list_sessions()) == 1


def test_sources_that_are_not_joshpy_registries_are_refused(tmp_path: Path) -> None:
    with RunRegistry(tmp_path / "mine.duckdb") as reg:
        with pytest.raises(
            InvalidArgumentError,
            match="already a joshreg registry; combine joshreg registries with joshreg merge",
        ):
            RunRegistry(tmp_path / "target.duckdb").import_joshpy(tmp_path / "mine.duckdb")
        with pytest.raises(InvalidArgumentError, match="is a joshreg event store"):
            reg.import_joshpy(tmp_path / "mine.events")
        other = tmp_path / "other.duckdb"
        with duckdb.connect(str(other)) as con:
            con.execute("CREATE TABLE x (a INT)")
        with pytest.raises(ForeignDatabaseError, match="is not a joshpy registry"):
            reg.import_joshpy(other)


def test_a_source_with_a_pending_wal_imports_and_keeps_its_wal(tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    jp = JoshpyRegistry(live / "old.duckdb")
    jp.con.execute("CHECKPOINT")
    jp.con.execute("SET wal_autocheckpoint = '1GB'")
    jp.create_session({}, "in the wal")
    (tmp_path / "copy").mkdir()
    for name in ("old.duckdb", "old.duckdb.wal"):
        shutil.copy(live / name, tmp_path / "copy" / name)
    jp.close()
    before = files(tmp_path / "copy")
    with RunRegistry(tmp_path / "new.duckdb") as reg:
        reg.import_joshpy(tmp_path / "copy" / "old.duckdb")
        assert [s.experiment_name for s in reg.list_sessions()] == ["in the wal"]
    assert files(tmp_path / "copy") == before


def test_the_command_imports_prints_a_summary_and_a_dry_run_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = small_sweep(tmp_path / "old.duckdb")
    code = main(["import", str(old), "--into", str(tmp_path / "dry.duckdb"), "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith(f"would import from {old} (duckdb): 2 sessions")
    assert not (tmp_path / "dry.duckdb").exists() and not (tmp_path / "dry.events").exists()
    code = main(["import", str(old), "--into", str(tmp_path / "new.duckdb")])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "3 result files, 13 result rows" in out
    assert "new.duckdb now holds 2 sessions, 3 configurations, 5 executions and 13 result rows" in out
    code = main(["import", str(old), "--into", str(tmp_path / "new.duckdb"), "--json"])
    record = json.loads(capsys.readouterr().out)
    assert code == 0 and record["added"] == {} and record["already_present"]["sessions"] == 2
    code = main(["import", str(old), "--into", str(old)])
    assert code == 2 and "is the source itself" in capsys.readouterr().err


def test_imported_results_behave_like_loaded_ones(tmp_path: Path) -> None:
    old = small_sweep(tmp_path / "old.duckdb")
    with RunRegistry(tmp_path / "new.duckdb") as reg:
        reg.import_joshpy(old)
        assert reg.list_variable_columns() == ["avg.height", "note", "treeCount"]
        assert reg.get_replicate_count("aaaaaaaaaaaa") == 2  # two executions of replicates 0 and 1
        csv = tmp_path / "more.csv"
        csv.write_text("step,replicate,avg.height,treeCount\n9,0,2.5,3\n")
        run = reg.get_runs_for_hash("cccccccccccc")[0].run_id
        assert CellDataLoader(reg).load_csv(csv, run, "cccccccccccc") == 1
        assert reg.query("SELECT count(*) FROM cell_data").fetchone() == (14,)


def test_event_ids_are_uuid5_of_the_source_keys() -> None:
    import uuid

    from joshreg.operations.joshpy_source import _NAMESPACE, event_id

    for parts in (("start", "run-1"), ("results", None, "abc", "patch", 42), ("session", "s1")):
        assert event_id(*parts) == str(uuid.uuid5(_NAMESPACE, "\x1f".join(str(p) for p in parts)))
