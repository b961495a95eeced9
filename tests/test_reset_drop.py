"""reset_run, drop_run and restore_run on an append-only log: rows leave the tables by what one
label commit names, nothing leaves the log, rebuilds agree, as_of still shows the past."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from joshreg import CellDataLoader, RemovedRunWarning, RunRecorder, RunRegistry, merge_stores
from joshreg.cli.app import main
from joshreg.errors import ReadOnlyRegistryError, RunNotFoundError
from joshreg.testing.registries import FakeJobConfig, dump_tables

A, B = "aaaaaaaaaaa1", "bbbbbbbbbbb2"
TABLES = ("job_configs", "session_configs", "config_parameters", "job_runs", "run_outputs", "cell_data")
SKIP = {"cell_data": frozenset({"cell_id", "geom"})}


def _csv(folder: Path, name: str, height: float) -> Path:
    path = folder / name
    path.write_text(
        "position.x,position.y,position.longitude,position.latitude,height,step,replicate\n"
        f"0,0,-116.0,34.0,{height},0,0\n1,0,-116.1,34.0,{height},0,1\n"
    )
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A with a finished execution (output, results), an unbound result load and a hung
    execution; B with one finished execution. A holds the label ``best`` and is marked bad."""
    path = tmp_path / "sweep.duckdb"
    with RunRegistry(path) as reg:
        sid = reg.create_session(FakeJobConfig(), session_id="s1")
        for h in (A, B):
            reg.register_run(sid, h, None, h, None, {"g": 1.0})
            run = reg.recorder().start_run(h, session_id=sid, run_id=f"{h}-r1")
            reg.complete_run(run, 0)
            reg.register_output(run, "csv", f"/out/{h}.csv")
            CellDataLoader(reg).load_csv(_csv(tmp_path, f"{h}.csv", 1.0), run, h)
        reg.recorder().load_csv(_csv(tmp_path, "unbound.csv", 2.0), None, A)
        reg.recorder().start_run(A, session_id=sid, run_id=f"{A}-hung")
        reg.label_run(A, "best")
        reg.mark_run(A, "bad", reason="diverged")
    return path


def _count(reg: RunRegistry, table: str, run_hash: str) -> int:
    if table == "run_outputs":
        sql = "SELECT count(*) FROM run_outputs o JOIN job_runs r USING (run_id) WHERE r.run_hash = ?"
    else:
        sql = f"SELECT count(*) FROM {table} WHERE run_hash = ?"
    return reg.query(sql, [run_hash]).fetchone()[0]


def test_reset_takes_executions_and_results_out_and_clears_the_status(db: Path) -> None:
    with RunRegistry(db) as reg:
        dry = reg.reset_run("best", dry_run=True)
        assert dry.rows == {"cell_data": 4, "run_outputs": 1, "job_runs": 2} and dry.total == 7
        assert len(reg.get_runs_for_hash(A)) == 2  # a dry run changes nothing
        at = reg.label_history()[-1].position
        summary = reg.reset_run("best", reason="redo with the new climate")
        assert summary == dry
        assert reg.get_runs_for_hash(A) == [] and _count(reg, "cell_data", A) == 0
        assert _count(reg, "run_outputs", A) == 0
        cfg = reg.get_config_by_hash(A)
        assert cfg is not None and cfg.label == "best" and cfg.status is None  # configuration stays
        assert reg.status_history(A)[-1].status is None
        assert len(reg.get_runs_for_hash(B)) == 1 and _count(reg, "cell_data", B) == 2
        with reg.as_of(at) as view:  # the log keeps everything
            assert len(view.get_runs_for_hash(A)) == 2 and _count(view, "cell_data", A) == 4
        # run again: new executions count, the old ones stay out
        run = reg.start_run(A, session_id="s1")
        reg.complete_run(run, 0)
        assert [r.run_id for r in reg.get_runs_for_hash(A)] == [run]


def test_a_late_completion_of_a_reset_run_is_recorded_left_out_and_warned(db: Path) -> None:
    with RunRegistry(db) as reg:
        reg.reset_run(A)
        reg.complete_run(f"{A}-hung", 0)  # a callback finishing late: no error ...
        with pytest.warns(RemovedRunWarning, match="finishing late"):  # ... the next read says so
            reg.register_output(f"{A}-hung", "csv", "/out/late.csv")
        RunRecorder(db).complete_run(f"{A}-hung", 1)  # a worker: no error either
        with pytest.warns(RemovedRunWarning, match="1 execution"):
            assert reg.get_runs_for_hash(A) == []
        events = reg.query("SELECT count(*) FROM events_run_completed WHERE run_id = ?", [f"{A}-hung"])
        assert events.fetchone() == (2,)
        assert reg.query("SELECT count(*) FROM run_outputs WHERE run_id = ?", [f"{A}-hung"]).fetchone() == (
            0,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # reopening projects nothing new, so no warning; an id nobody ever used is still refused
        with RunRegistry(db) as reg, pytest.raises(RunNotFoundError):
            reg.complete_run("no-such-run", 0)


def test_drop_takes_the_hash_out_frees_the_label_and_can_be_undone(db: Path) -> None:
    with RunRegistry(db) as reg:
        before = dump_tables(reg, TABLES, skip=SKIP)
        summary = reg.drop_run("best", reason="wrong template")
        assert summary.label == "best"
        assert summary.rows == {
            "cell_data": 4,
            "run_outputs": 1,
            "job_runs": 2,
            "config_parameters": 1,
            "session_configs": 1,
            "job_configs": 1,
        }
        assert reg.get_config_by_hash(A) is None and reg.list_labels() == []
        assert all(_count(reg, t, A) == 0 for t in ("job_configs", "session_configs", "cell_data"))
        assert reg.get_session("s1") is not None  # the session stays
        dropped = reg.label_history(label="best")[-1]
        assert (dropped.action, dropped.run_hash, dropped.reason) == ("dropped", A, "wrong template")
        with pytest.raises(RunNotFoundError):
            reg.label_run(A, "again")
        reg.restore_run(A)
        assert dump_tables(reg, TABLES, skip=SKIP) == {
            t: [r if t != "job_configs" else {**r, "label": None} for r in rows] for t, rows in before.items()
        }
        with pytest.raises(RunNotFoundError, match="No drop"):
            reg.restore_run(A)


def test_a_dropped_hash_can_be_registered_afresh(db: Path) -> None:
    with RunRegistry(db) as reg:
        reg.drop_run(A)
        reg.register_run("s1", A, None, "fresh content", None, {"g": 9.0})
        cfg = reg.get_config_by_hash(A)
        assert cfg is not None and cfg.config_content == "fresh content" and cfg.parameters == {"g": 9.0}
        assert reg.get_runs_for_hash(A) == []


def test_rebuild_gives_the_same_tables(db: Path) -> None:
    with RunRegistry(db) as reg:
        reg.reset_run(B)
        reg.drop_run(A)
        reg.restore_run(A)
        reg.reset_run(A)
        want = dump_tables(reg, (*TABLES, "label_history", "run_tags"), skip=SKIP)
    with RunRegistry(db, rebuild=True) as reg:
        assert dump_tables(reg, (*TABLES, "label_history", "run_tags"), skip=SKIP) == want
        assert reg.verify().ok


def test_views_refuse_them(db: Path) -> None:
    with RunRegistry(db) as reg, reg.as_of(reg.label_history()[-1].position) as view:
        for name in ("reset_run", "drop_run", "restore_run"):
            with pytest.raises(ReadOnlyRegistryError):
                getattr(view, name)(A)


def test_a_drop_merged_into_a_copy_applies_there(db: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.duckdb"
    shutil.copytree(tmp_path / "sweep.events", tmp_path / "other.events")
    with RunRegistry(db) as reg:
        reg.drop_run(A)
    with RunRegistry(other) as reg:
        reg.mark_run(B, "bad")
    merge_stores([db], other)
    merge_stores([other], db)
    for path in (db, other):
        with RunRegistry(path) as reg:
            assert reg.get_config_by_hash(A) is None and _count(reg, "cell_data", A) == 0, path
            assert reg.get_run_status(B).status == "bad"


def test_cli_reset_and_drop_ask_first(db: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    assert main(["drop", str(db), "best", "--dry-run"]) == 0
    assert "would drop aaaaaaaaaaa1" in capsys.readouterr().out
    code = main(["reset", str(db), A])  # no terminal to ask on: refused, with the way out
    assert code == 2 and "pass --yes" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    assert main(["reset", str(db), A]) == 0 and "nothing changed" in capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))
    assert main(["reset", str(db), A, "--reason", "redo"]) == 0
    assert "7 rows out of the tables" in capsys.readouterr().out
    assert main(["drop", str(db), B, "--yes", "--json"]) == 0
    assert '"label": null' in capsys.readouterr().out
    with RunRegistry(db) as reg:
        assert reg.get_config_by_hash(B) is None and reg.get_runs_for_hash(A) == []


class _Terminal:
    def __init__(self, text: str) -> None:
        self.text = text

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return self.text


@pytest.mark.slow
def test_a_worker_process_finishing_after_a_reset_does_not_crash(db: Path) -> None:
    with RunRegistry(db) as reg:
        reg.reset_run(A)
    script = (
        "import sys\nfrom joshreg import RunRecorder\n"
        "with RunRecorder(sys.argv[1]) as rec:\n    rec.complete_run(sys.argv[2], 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(db), f"{A}-hung"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    with RunRegistry(db) as reg:
        assert reg.get_runs_for_hash(A) == []
