"""What a new user tripped over: results for things that do not exist, label dates, and the
small things the command line said wrong or twice."""

from __future__ import annotations

import io
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import joshreg.cli.output as cli_module
from joshreg import CellDataLoader, RunRecorder, RunRegistry
from joshreg.cli.app import main
from joshreg.cli.output import ProgressLines
from joshreg.errors import RunNotFoundError
from joshreg.testing.registries import FakeJobConfig


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def sweep(tmp_path: Path) -> dict[str, Any]:
    db = tmp_path / "sweep.duckdb"
    with RunRegistry(db) as reg:
        sid = reg.create_session(FakeJobConfig(), experiment_name="new user")
        reg.register_run(sid, "aaaaaaaaaaaa", "m.josh", "x = 1", None, {"x": 1})
        reg.register_run(sid, "bbbbbbbbbbbb", "m.josh", "x = 2", None, {"x": 2})
        run = reg.start_run("aaaaaaaaaaaa", session_id=sid)
    csv = tmp_path / "out.csv"
    csv.write_text("step,replicate,height\n0,0,1.5\n1,0,2.5\n")
    return {"db": db, "sid": sid, "run": run, "csv": csv}


def test_results_for_an_unknown_run_or_hash_are_refused(sweep: dict[str, Any]) -> None:
    with RunRegistry(sweep["db"]) as reg:
        loader = CellDataLoader(reg)
        with pytest.raises(RunNotFoundError, match="No run found with hash 'cccccccccccc'"):
            loader.load_csv(sweep["csv"], sweep["run"], "cccccccccccc")
        with pytest.raises(RunNotFoundError, match="No run execution found for run_id 'nope'"):
            loader.load_csv(sweep["csv"], "nope", "aaaaaaaaaaaa")
        with pytest.raises(
            ValueError, match="is an execution of run hash 'aaaaaaaaaaaa', not 'bbbbbbbbbbbb'"
        ):
            loader.load_csv(sweep["csv"], sweep["run"], "bbbbbbbbbbbb")
        assert reg.query("SELECT count(*) FROM events_results_loaded").fetchone() == (0,)
        assert loader.load_csv(sweep["csv"], sweep["run"], "aaaaaaaaaaaa") == 2


def test_a_worker_run_of_an_unknown_hash_is_marked_and_verified(
    sweep: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with RunRecorder(sweep["db"], session_id=sweep["sid"]) as worker:
        typo = worker.start_run("aaaaaaaaaaab")  # a typo in the hash: the worker cannot check
    code, out, _ = run_cli(capsys, "runs", sweep["db"])
    assert code == 0
    (line,) = [ln for ln in out.splitlines() if typo in ln]
    assert "aaaaaaaaaaab (not registered)" in line
    assert "not registered" not in next(ln for ln in out.splitlines() if sweep["run"] in ln)
    code, out, _ = run_cli(capsys, "runs", sweep["db"], "--json")
    rows = {r["run_id"]: r for r in map(json.loads, out.splitlines())}
    assert rows[typo]["registered"] is False and rows[sweep["run"]]["registered"] is True
    with RunRegistry(sweep["db"]) as reg:
        report = reg.verify()
    (orphan,) = [w for w in report.warnings if w.kind == "orphan"]
    assert f"run.started of run {typo} names run hash aaaaaaaaaaab" in orphan.message
    assert orphan.file and orphan.file.startswith("log/") and orphan.line


def test_labels_show_when_they_were_set_and_when_the_run_was_registered(
    sweep: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with RunRegistry(sweep["db"]) as reg:
        registered = reg.get_config_by_hash("aaaaaaaaaaaa").created_at
        time.sleep(1.1)  # the label comes a second later than the registration
        reg.label_run("aaaaaaaaaaaa", "baseline")
        (change,) = reg.label_history()
    code, out, _ = run_cli(capsys, "labels", sweep["db"])
    header, row = out.splitlines()
    assert header.split() == ["LABEL", "RUN_HASH", "LABELLED", "REGISTERED"]
    assert f"{change.at:%Y-%m-%d %H:%M:%S}" in row and f"{registered:%Y-%m-%d %H:%M:%S}" in row
    assert row.index(f"{change.at:%Y-%m-%d %H:%M:%S}") < row.index(f"{registered:%Y-%m-%d %H:%M:%S}")
    code, out, _ = run_cli(capsys, "labels", sweep["db"], "--json")
    assert code == 0
    record = json.loads(out)
    assert datetime.fromisoformat(record["labelled_at"].rstrip("Z")) == change.at
    assert datetime.fromisoformat(record["created_at"].rstrip("Z")) == registered


def test_progress_lines_wait_a_second_and_never_repeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module, "PROGRESS_AFTER_S", 0.0)
    monkeypatch.setattr(cli_module, "PROGRESS_EVERY_S", 0.0)
    err = io.StringIO()
    say = ProgressLines(err)
    for line in ["verifying segments: 1 of 2", "verifying segments: 1 of 2", "verifying segments: 2 of 2"]:
        say(line)
    say("verifying segments: 2 of 2")
    assert err.getvalue().splitlines() == [
        "joshreg: verifying segments: 1 of 2",
        "joshreg: verifying segments: 2 of 2",
    ]
    monkeypatch.setattr(cli_module, "PROGRESS_AFTER_S", 60.0)
    quiet = io.StringIO()
    ProgressLines(quiet)("rebuilding: 1 of 2 MB")
    assert quiet.getvalue() == ""


def test_an_unknown_log_type_lists_the_known_ones(
    sweep: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "log", sweep["db"], "--type", "run.finished")
    assert code == 2
    assert "unknown event type 'run.finished'; the types are: " in err
    assert "run.completed" in err and "label.assigned" in err and "registry.imported" in err
    code, out, _ = run_cli(capsys, "log", sweep["db"], "--type", "run")  # a prefix still works
    assert code == 0 and "run.started" in out


def test_the_log_shows_what_results_were_loaded(
    sweep: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with RunRegistry(sweep["db"]) as reg:
        CellDataLoader(reg).load_csv(sweep["csv"], sweep["run"], "aaaaaaaaaaaa")
    code, out, _ = run_cli(capsys, "log", sweep["db"], "--type", "results.loaded")
    assert code == 0
    assert f"run_id={sweep['run']}" in out and "run_hash=aaaaaaaaaaaa" in out
    assert f"source_path={sweep['csv']}" in out and "row_count=2" in out


def test_info_as_of_before_a_run_existed_says_so(
    sweep: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with RunRegistry(sweep["db"]) as reg:
        before = reg.get_session(sweep["sid"]).created_at
        first = reg.get_config_by_hash("aaaaaaaaaaaa").created_at
        time.sleep(0.01)
        reg.register_run(sweep["sid"], "cccccccccccc", "m.josh", "x = 3", None, {"x": 3})
        reg.label_run("aaaaaaaaaaaa", "baseline")
        late = reg.get_config_by_hash("cccccccccccc").created_at
    when = first.isoformat()
    code, _, err = run_cli(capsys, "info", sweep["db"], "cccccccccccc", "--as-of", when)
    assert code == 2
    assert (
        "run 'cccccccccccc' did not exist yet as of" in err
        and f"registered at {late:%Y-%m-%d %H:%M:%S}" in err
    )
    code, _, err = run_cli(capsys, "info", sweep["db"], "baseline", "--as-of", when)
    assert code == 2 and "label 'baseline' named no run yet as of" in err and "info aaaaaaaaaaaa" in err
    code, _, err = run_cli(capsys, "info", sweep["db"], "dddddddddddd", "--as-of", before.isoformat())
    assert code == 2 and "No run found for 'dddddddddddd', neither as of" in err
