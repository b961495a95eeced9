"""The ``joshreg`` command line: each command's output against what the library says."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from joshreg import RunRegistry
from joshreg.cli.app import build_parser, main
from joshreg.registry.text import format_duration, format_table
from joshreg.testing.registries import FakeJobConfig


@pytest.fixture(scope="module")
def built_sweep(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A closed file registry: 3 configs, runs ok / failed / still running, labels that moved."""
    db = tmp_path_factory.mktemp("built") / "sweep.duckdb"
    with RunRegistry(db) as reg:
        sid = reg.create_session(FakeJobConfig(replicates=2), experiment_name="cli_exp")
        hashes = ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"]
        for i, h in enumerate(hashes):
            reg.register_run(sid, h, "m.josh", f"cfg {i}", None, {"maxGrowth": 10.0 * (i + 1)})
        ok = reg.start_run(hashes[0], session_id=sid)
        reg.complete_run(ok, 0)
        bad = reg.start_run(hashes[1], session_id=sid)
        reg.complete_run(bad, 3, "boom at step 7")
        pending = reg.start_run(hashes[2], session_id=sid)
        reg.update_session_status(sid, "running")
        reg.label_run(hashes[0], "baseline")
        reg.label_run(hashes[1], "baseline", on_collision="timestamp")
        reg.label_run(hashes[2], "candidate")
    return {"db": db, "sid": sid, "hashes": hashes, "ok": ok, "bad": bad, "pending": pending}


@pytest.fixture
def sweep(built_sweep: dict, tmp_path: Path) -> dict:
    """A private copy of the built registry (file and log), so a test may damage it."""
    src = built_sweep["db"].parent
    shutil.copy(src / "sweep.duckdb", tmp_path / "sweep.duckdb")
    shutil.copytree(src / "sweep.events", tmp_path / "sweep.events")
    return {**built_sweep, "db": tmp_path / "sweep.duckdb"}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def line_with(text: str, needle: str) -> str:
    lines = [ln for ln in text.splitlines() if needle in ln]
    assert len(lines) == 1, f"expected one line with {needle!r} in:\n{text}"
    return lines[0]


# --- sessions and runs --------------------------------------------------------------------------


def test_sessions_table_shows_counts_from_the_summary(sweep, capsys):
    code, out, _ = run_cli(capsys, "sessions", sweep["db"])
    assert code == 0
    with RunRegistry(sweep["db"]) as reg:
        s = reg.get_session_summary(sweep["sid"])
    row = line_with(out, sweep["sid"])
    counts = f"{s.runs_succeeded}/{s.runs_failed}/{s.runs_pending}"
    assert counts == "1/1/1"
    assert row.split()[1:5] == ["cli_exp", "running", str(s.total_jobs), counts]
    assert out.splitlines()[0].split()[:3] == ["SESSION", "EXPERIMENT", "STATUS"]


def test_sessions_json_matches_the_library(sweep, capsys):
    code, out, _ = run_cli(capsys, "sessions", sweep["db"], "--json")
    assert code == 0
    rows = [json.loads(ln) for ln in out.splitlines()]
    with RunRegistry(sweep["db"]) as reg:
        s = reg.get_session_summary(sweep["sid"])
    assert [r["session_id"] for r in rows] == [sweep["sid"]]
    assert (rows[0]["total_jobs"], rows[0]["runs_failed"]) == (s.total_jobs, s.runs_failed)


def test_runs_lists_every_execution_with_exit_code_and_error(sweep, capsys):
    code, out, _ = run_cli(capsys, "runs", sweep["db"])
    assert code == 0
    assert line_with(out, sweep["bad"]).split()[6] == "3"
    assert "boom at step 7" in line_with(out, sweep["bad"])
    assert "running" in line_with(out, sweep["pending"])
    assert len(out.splitlines()) == 1 + 3


def test_runs_hash_filter_accepts_a_label(sweep, capsys):
    with RunRegistry(sweep["db"]) as reg:
        holder = reg.resolve_label("baseline")
        expected = {r.run_id for r in reg.get_runs_for_hash(holder)}
    code, out, _ = run_cli(capsys, "runs", sweep["db"], "--hash", "baseline", "--json")
    assert code == 0
    assert {json.loads(ln)["run_id"] for ln in out.splitlines()} == expected


def test_runs_unknown_session_is_a_one_line_error(sweep, capsys):
    code, out, err = run_cli(capsys, "runs", sweep["db"], "--session", "no-such-session")
    assert code == 2
    assert out == ""
    assert err.startswith("joshreg: error: ") and "no-such-session" in err
    assert len(err.splitlines()) == 1


def test_runs_unknown_hash_is_an_error(sweep, capsys):
    code, _, err = run_cli(capsys, "runs", sweep["db"], "--hash", "ffffffffffff")
    assert code == 2
    assert "ffffffffffff" in err


# --- labels -------------------------------------------------------------------------------------


def test_labels_table_pairs_each_label_with_its_holder(sweep, capsys):
    code, out, _ = run_cli(capsys, "labels", sweep["db"])
    assert code == 0
    with RunRegistry(sweep["db"]) as reg:
        labels = reg.list_labels()
    assert len(labels) == 3  # baseline, its archive, candidate
    for label, run_hash in labels:
        assert line_with(out, label + " ").split()[:2] == [label, run_hash]


def test_labels_history_shows_every_change_and_the_archive_name(sweep, capsys):
    code, out, _ = run_cli(capsys, "labels", sweep["db"], "--history")
    assert code == 0
    with RunRegistry(sweep["db"]) as reg:
        history = reg.label_history()
    archived = [c for c in history if c.action == "archived"]
    assert len(archived) == 1
    assert len(out.splitlines()) == 1 + len(history)
    assert archived[0].archived_as in line_with(out, "archived")


def test_labels_history_json_for_one_label(sweep, capsys):
    code, out, _ = run_cli(capsys, "labels", sweep["db"], "--history", "--label", "candidate", "--json")
    assert code == 0
    rows = [json.loads(ln) for ln in out.splitlines()]
    assert [(r["action"], r["run_hash"]) for r in rows] == [("assigned", sweep["hashes"][2])]


# --- log ----------------------------------------------------------------------------------------


def test_log_has_one_line_per_event_and_label_change_in_clock_order(sweep, capsys):
    code, out, _ = run_cli(capsys, "log", sweep["db"], "--json")
    assert code == 0
    rows = [json.loads(ln) for ln in out.splitlines()]
    with RunRegistry(sweep["db"]) as reg:
        n_events = reg.query("SELECT count(*) FROM event_log").fetchone()[0]
        n_labels = len(reg.label_history())
    assert len(rows) == n_events + n_labels
    assert [r["hlc"] for r in rows] == sorted(r["hlc"] for r in rows)
    code, text, _ = run_cli(capsys, "log", sweep["db"])
    assert len(text.splitlines()) == len(rows)


def test_log_type_filter_takes_a_type_or_prefix(sweep, capsys):
    _, out, _ = run_cli(capsys, "log", sweep["db"], "--type", "run.started", "--json")
    assert sorted(json.loads(ln)["run_id"] for ln in out.splitlines()) == sorted(
        [sweep["ok"], sweep["bad"], sweep["pending"]]
    )
    _, out, _ = run_cli(capsys, "log", sweep["db"], "--type", "label", "--json")
    types = [json.loads(ln)["type"] for ln in out.splitlines()]
    assert types and all(t.startswith("label.") for t in types)
    assert "label.archived" in types


def test_log_run_filter_with_a_hash_includes_its_completions(sweep, capsys):
    _, out, _ = run_cli(capsys, "log", sweep["db"], "--run", sweep["hashes"][1])
    assert "run.registered" in out and "run.started" in out
    assert "boom at step 7" in line_with(out, "run.completed")
    assert all(sweep["hashes"][1] in ln or sweep["bad"] in ln for ln in out.splitlines())


def test_log_session_label_and_limit_filters(sweep, capsys):
    _, out, _ = run_cli(capsys, "log", sweep["db"], "--session", sweep["sid"], "--type", "session")
    assert [ln.split()[3] for ln in out.splitlines()] == ["session.created", "session.status_changed"]
    _, out, _ = run_cli(capsys, "log", sweep["db"], "--label", "candidate")
    assert "label.assigned" in line_with(out, "candidate")
    _, everything, _ = run_cli(capsys, "log", sweep["db"])
    _, last_two, _ = run_cli(capsys, "log", sweep["db"], "--limit", "2")
    assert last_two.splitlines() == everything.splitlines()[-2:]


# --- rebuild and the registry file --------------------------------------------------------------


def test_rebuild_reports_what_it_replayed(sweep, capsys):
    code, out, _ = run_cli(capsys, "rebuild", sweep["db"])
    assert code == 0
    with RunRegistry(sweep["db"]) as reg:
        n_events = reg.query("SELECT count(*) FROM event_log").fetchone()[0]
        n_commits = reg.query("SELECT count(DISTINCT version) FROM label_history").fetchone()[0]
    assert out.startswith(f"rebuilt {n_events} events, {n_commits} label commits in ")


def test_rebuild_exits_1_and_names_a_damaged_line(sweep, capsys):
    segment = next((sweep["db"].parent / "sweep.events" / "log").glob("*.jsonl"))
    lines = segment.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"cfg 1"', b'"cfg X"')  # edited by hand: checksum no longer fits
    segment.write_bytes(b"".join(lines))
    code, out, err = run_cli(capsys, "rebuild", sweep["db"])
    assert code == 1
    assert out.startswith("rebuilt ")
    assert "joshreg: problem:" in err and ":3" in err


def test_deleted_registry_file_is_rebuilt_from_the_log(sweep, capsys):
    sweep["db"].unlink()
    code, out, _ = run_cli(capsys, "labels", sweep["db"], "--json")
    assert code == 0
    assert {json.loads(ln)["label"] for ln in out.splitlines()} >= {"baseline", "candidate"}


def test_missing_registry_is_an_error_and_creates_nothing(tmp_path, capsys):
    code, _, err = run_cli(capsys, "sessions", tmp_path / "nope.duckdb")
    assert code == 2
    assert "no registry" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # other processes
def test_commands_read_a_registry_held_by_another_process(sweep, capsys):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from joshreg import RunRegistry; r = RunRegistry(sys.argv[1]); "
            "print('ready', flush=True); sys.stdin.readline(); r.close()",
            str(sweep["db"]),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        code, out, err = run_cli(capsys, "sessions", sweep["db"], "--json")
        assert code == 0, err
        assert [json.loads(ln)["session_id"] for ln in out.splitlines()] == [sweep["sid"]]
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0


# --- help and formatting ------------------------------------------------------------------------


def test_every_command_has_help_with_an_example(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"rebuild", "log", "labels", "sessions", "runs", "info", "diff", "export"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        if name == "unbottle":  # works on an archive, without a registry
            assert "ARCHIVE" in out and "REGISTRY" not in out
        elif name in ("merge", "import"):  # registries named as SOURCE... and --into TARGET
            assert "SOURCE" in out and "--into TARGET" in out
        else:
            assert "REGISTRY" in out and "--events-path" in out
        assert f"joshreg {name} " in out.split("example")[1]


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["runs"])
    assert exc.value.code == 2
    assert "REGISTRY" in capsys.readouterr().err


def test_installed_console_script_prints_help():
    script = Path(sys.executable).parent / "joshreg"
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in ("rebuild", "log", "labels", "sessions", "runs"):
        assert name in proc.stdout


def test_format_duration_and_table():
    t = datetime(2026, 1, 1, 12, 0, 0)
    assert format_duration(t, t + timedelta(seconds=0.25)) == "0.25s"
    assert format_duration(t, t + timedelta(seconds=187)) == "3m07s"
    assert format_duration(t, t + timedelta(hours=2, seconds=5)) == "2h00m05s"
    assert format_duration(t, None) == "-"
    table = format_table(("A", "LONGER"), [("xyz", None), ("q", 1.5)])
    assert table.splitlines() == ["A    LONGER", "xyz  -", "q    1.5"]
    assert format_table(("A",), []) == "(none)"
