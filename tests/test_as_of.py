"""Time travel: ``registry.as_of(when)`` shows exactly what the registry showed then, read-only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joshreg import (
    CellDataLoader,
    DiagnosticQueries,
    JoshregError,
    LabelChange,
    ReadOnlyRegistryError,
    RegistryClosedError,
    RegistryView,
    RunRegistry,
)
from joshreg.cli.app import main
from joshreg.log.clock import hlc_to_datetime
from joshreg.projection.tables import PUBLIC_TABLES
from joshreg.projection.timetravel import parse_when, to_position
from joshreg.registry.listings import log_entries
from joshreg.registry.reader import RegistryReader
from joshreg.registry.view import WRITE_NAMES
from joshreg.testing.registries import FakeJobConfig

PUBLIC = (*PUBLIC_TABLES, "event_log")

EXPORT = (
    "position.x,position.y,position.longitude,position.latitude,avg.height,treeCount,step,replicate\n"
    "0,0,-116.0,34.0,1.5,10,0,0\n"
    "1,0,-116.1,34.1,,12,1,0\n"
    "0,1,-116.0,34.2,2.5,14,1,1\n"
)
EXPORT_2 = EXPORT + "1,1,-116.2,34.3,3.5,16,2,1\n"


def snapshot(reg: RunRegistry) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every public table as (columns, sorted rows): what a registry shows, order aside."""
    out = {}
    for t in PUBLIC:
        cur = reg.query(
            f"SELECT * REPLACE (geom::VARCHAR AS geom) FROM {t}" if t == "cell_data" else f"SELECT * FROM {t}"
        )
        cols = [d[0] for d in cur.description]
        out[t] = (cols, sorted(cur.fetchall(), key=repr))
    return out


def head(reg: RunRegistry) -> int:
    """The newest log position the registry has seen."""
    row = reg.query(
        "SELECT max(hlc) FROM (SELECT hlc FROM event_log UNION ALL SELECT hlc FROM label_history)"
    ).fetchone()
    return int(row[0])


@dataclass
class Step:
    name: str
    position: int
    tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]]
    labels: list[tuple[str, str]]
    cells: int


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A closed file registry built step by step, with the tables and position after each step."""
    folder = tmp_path_factory.mktemp("as_of")
    db = folder / "sweep.duckdb"
    steps: list[Step] = []
    with RunRegistry(db) as reg:

        def step(name: str, position: int | None = None) -> None:
            pos = head(reg) if position is None else position
            labels = reg.list_labels()
            cells = reg.query("SELECT count(*) FROM cell_data").fetchone()[0]
            steps.append(Step(name, pos, snapshot(reg), labels, cells))

        sid = reg.create_session(FakeJobConfig(replicates=2), experiment_name="first")
        step("session", log_entries(reg)[-1].hlc)
        reg.register_run(sid, "aaaaaaaaaaaa", "m.josh", "cfg a", None, {"maxGrowth": 1.0})
        reg.register_run(sid, "bbbbbbbbbbbb", "m.josh", "cfg b", None, {"maxGrowth": 2.0})
        step("registered")
        r1 = reg.start_run("aaaaaaaaaaaa", session_id=sid, replicate=0)
        step("started")
        reg.complete_run(r1, 0)
        reg.update_session_status(sid, "running")
        step("completed")
        reg.label_run("aaaaaaaaaaaa", "baseline")
        step("labelled", reg.label_history()[-1].position)
        (folder / "a.csv").write_text(EXPORT)
        CellDataLoader(reg).load_csv(folder / "a.csv", r1, "aaaaaaaaaaaa")
        step("loaded")
        r2 = reg.start_run("bbbbbbbbbbbb", session_id=sid)
        reg.complete_run(r2, 3, "boom")
        reg.register_output(r2, "export.patch", folder / "b.csv", 10, 4)
        step("failed")
        reg.label_run("bbbbbbbbbbbb", "baseline", force=True)
        step("forced", reg.label_history()[-1].position)
        reg.label_run("aaaaaaaaaaaa", "baseline", on_collision="timestamp")
        step("archived", reg.label_history()[-1].position)
        s2 = reg.create_session(FakeJobConfig(replicates=2), experiment_name="second")
        reg.register_run(s2, "cccccccccccc", "m.josh", "cfg c", None, {"maxGrowth": 3.0, "scenario": "dry"})
        reg.update_session_status(sid, "completed")
        step("second session")
        r3 = reg.start_run("cccccccccccc", session_id=s2)
        (folder / "c.csv").write_text(EXPORT_2)
        CellDataLoader(reg).load_csv(folder / "c.csv", r3, "cccccccccccc")
        step("loaded again")
    return {"db": db, "steps": steps, "sid": sid, "folder": folder}


@pytest.fixture
def live(history: dict[str, Any]) -> Iterator[RunRegistry]:
    reg = RunRegistry(history["db"])
    yield reg
    reg.close()


# --- the tables as they were ----------------------------------------------------------------------


def test_every_position_shows_exactly_the_tables_of_then(history, live):
    steps: list[Step] = history["steps"]
    assert len({s.position for s in steps}) == len(steps)
    for s in steps:
        with live.as_of(s.position) as old:
            assert isinstance(old, RegistryView)
            assert snapshot(old) == s.tables, s.name
            assert old.list_labels() == s.labels, s.name
            assert old.query("SELECT count(*) FROM cell_data").fetchone()[0] == s.cells, s.name
    assert snapshot(live) == steps[-1].tables


def test_a_datetime_and_its_position_give_the_same_view(history, live):
    for s in history["steps"]:
        when = hlc_to_datetime(s.position)
        assert to_position(when) >= s.position
        with live.as_of(when) as by_time:  # test_every_position... checks the position form
            assert snapshot(by_time) == s.tables, s.name
        aware = when.replace(tzinfo=UTC).astimezone(datetime.now().astimezone().tzinfo)
        assert to_position(aware) == to_position(when)


def test_a_time_before_the_first_event_shows_empty_tables(live):
    with live.as_of(datetime(2000, 1, 1)) as old:
        assert all(not rows for _, rows in snapshot(old).values())
        assert old.list_sessions() == [] and old.list_labels() == []
        assert old.get_data_summary().sessions == 0
    with live.as_of(0) as old:
        assert old.query("SELECT count(*) FROM event_log").fetchone()[0] == 0


def test_labels_resolve_to_the_holder_of_then_with_the_history_up_to_then(history, live):
    by_name = {s.name: s for s in history["steps"]}
    with live.as_of(by_name["labelled"].position) as old:
        assert old.resolve_label("baseline") == "aaaaaaaaaaaa"
        assert [c.action for c in old.label_history()] == ["assigned"]
        assert old.get_config_by_hash("aaaaaaaaaaaa").label == "baseline"
    with live.as_of(by_name["forced"].position) as old:
        assert old.resolve_label("baseline") == "bbbbbbbbbbbb"
        assert old.get_config_by_hash("aaaaaaaaaaaa").label is None
    with live.as_of(by_name["forced"].position - 1) as old:  # just before the forced move
        assert old.resolve_label("baseline") == "aaaaaaaaaaaa"
    with live.as_of(by_name["registered"].position) as old:
        with pytest.raises(KeyError, match="baseline"):
            old.resolve_label("baseline")
        assert old.label_history() == []
    assert live.resolve_label("baseline") == "aaaaaaaaaaaa"  # archived, then taken back
    history_now = live.label_history()
    assert [c.position for c in history_now] == sorted(c.position for c in history_now)
    for change in history_now:  # each entry's position shows the registry just after its commit
        with live.as_of(change.position) as old:
            then = old.label_history()
        assert then == [c for c in history_now if c.version <= change.version]


def test_results_sessions_runs_and_outputs_as_of_then(history, live):
    by_name = {s.name: s for s in history["steps"]}
    sid = history["sid"]
    with live.as_of(by_name["started"].position) as old:
        summary = old.get_session_summary(sid)
        assert (summary.runs_pending, summary.runs_succeeded) == (1, 0)
        assert old.get_session(sid).status == "pending"
        assert old.list_variable_columns() == []
    with live.as_of(by_name["loaded"].position) as old:
        assert old.get_replicate_count("aaaaaaaaaaaa") == 2
        assert old.list_variable_columns() == ["avg.height", "treeCount"]
        series = DiagnosticQueries(old).get_timeseries("treeCount", run_hash="aaaaaaaaaaaa")
        assert list(series["step"]) == [0, 1]
        assert old.get_runs_for_hash("bbbbbbbbbbbb") == []
    with live.as_of(by_name["failed"].position) as old:
        assert old.get_runs_for_hash("bbbbbbbbbbbb")[-1].exit_code == 3
        assert old.list_config_columns() == ["maxGrowth"]
        assert [s.experiment_name for s in old.list_sessions()] == ["first"]
    assert live.list_config_columns() == ["maxGrowth", "scenario"]
    assert live.query("SELECT count(*) FROM cell_data").fetchone()[0] == 7


def test_exports_from_a_view_write_the_old_table(history, live, tmp_path: Path):
    with live.as_of(history["steps"][1].position) as old:
        old.to_csv(tmp_path / "configs.csv", "job_configs")
        old.to_parquet(tmp_path / "runs.parquet", "job_runs")
        assert old.diff_configs("aaaaaaaaaaaa", "bbbbbbbbbbbb").count("cfg") == 2
    lines = (tmp_path / "configs.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("run_hash")


# --- read-only --------------------------------------------------------------------------------------


WRITES = {
    "create_session": (FakeJobConfig(replicates=2),),
    "update_session_status": ("x", "done"),
    "register_run": ("x", "dddddddddddd", None, "c", None, {}),
    "start_run": ("aaaaaaaaaaaa",),
    "complete_run": ("x", 0),
    "register_output": ("x", "t", "p"),
    "label_run": ("aaaaaaaaaaaa", "new"),
    "rebuild": (),
    "verify": (),
    "recorder": (),
}


def test_every_write_is_refused_with_a_clear_error(history, live):
    before = head(live)
    with live.as_of(history["steps"][2].position) as old:
        for name, args in WRITES.items():
            kwargs = {"session_id": "x"} if name == "start_run" else {}
            with pytest.raises(ReadOnlyRegistryError) as exc:
                getattr(old, name)(*args, **kwargs)
            assert isinstance(exc.value, JoshregError) and isinstance(exc.value, PermissionError)
            message = str(exc.value)
            assert name in message and "read-only view as of log position" in message
            assert "live registry" in message
        csv = history["folder"] / "a.csv"
        with pytest.raises(ReadOnlyRegistryError, match="as of"):
            CellDataLoader(old).load_csv(csv, None, "aaaaaaaaaaaa")
        snap = snapshot(old)
    assert head(live) == before  # nothing reached the log
    assert snap == history["steps"][2].tables


def test_every_write_of_the_live_registry_is_refused_by_a_view():
    """A view shares the readers' methods; every other public method of the live registry (a
    write, or an operation on the whole registry) must be named in ``WRITE_NAMES`` and refused."""
    reads = {n for n in dir(RegistryReader) if not n.startswith("_")}
    live_only = {
        n for n in dir(RunRegistry) if not n.startswith("_") and callable(getattr(RunRegistry, n))
    } - reads
    assert live_only <= set(WRITE_NAMES), (
        f"add to WRITE_NAMES in joshreg/registry/view.py: {live_only - set(WRITE_NAMES)}"
    )
    for name in WRITE_NAMES:
        assert (getattr(RegistryView, name).__doc__ or "").startswith("Refused"), name
    assert set(WRITES) <= set(WRITE_NAMES)
    for name in reads:
        assert not (getattr(RegistryView, name).__doc__ or "").startswith("Refused"), name


def test_a_view_is_a_snapshot_and_closes_alone(history, live):
    old = live.as_of(history["steps"][0].position)
    live.register_run(history["sid"], "eeeeeeeeeeee", None, "cfg e", None, {"maxGrowth": 9.0})
    assert old.get_config_by_hash("eeeeeeeeeeee") is None
    assert live.get_config_by_hash("eeeeeeeeeeee") is not None
    assert "RegistryView" in repr(old) and "log position" in repr(old)
    with old:
        pass
    with pytest.raises(RegistryClosedError):
        old.list_sessions()
    assert live.get_session(history["sid"]) is not None


def test_a_view_of_a_view_never_sees_past_its_position(history, live):
    steps = history["steps"]
    with live.as_of(steps[3].position) as old:
        with old.as_of(steps[-1].position) as same:
            assert same.position == old.position
            assert snapshot(same) == steps[3].tables
        with old.as_of(steps[1].position) as older:
            assert snapshot(older) == steps[1].tables


def test_bad_moments_are_refused():
    for bad in (-1, True, 1.5, "yesterday"):
        with pytest.raises(ValueError):
            to_position(bad)  # type: ignore[arg-type]
    assert parse_when("2026-07-29T18:00") == datetime(2026, 7, 29, 18, 0)
    assert parse_when("@123") == 123 == parse_when("123")
    assert to_position(datetime(1970, 1, 1, 0, 0, 1)) == 1_000_000_999
    aware = datetime(2026, 7, 29, 20, 0, tzinfo=datetime.fromisoformat("2026-01-01T00:00+02:00").tzinfo)
    assert to_position(aware) == to_position(datetime(2026, 7, 29, 18, 0))


def test_label_changes_still_build_positionally():
    change = LabelChange(1, datetime(2026, 1, 1), "me@host", "assigned", "l", "aaaaaaaaaaaa")
    assert change.position == 0


def test_label_commit_clocks_grow_with_their_version(live):
    rows = live.query("SELECT version, hlc FROM label_history ORDER BY version, idx").fetchall()
    assert [h for _, h in rows] == sorted(h for _, h in rows)
    by_version = dict(rows)
    assert len(set(by_version.values())) == len(by_version)  # distinct per commit: a prefix per position


# --- the command line ---------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_labels_sessions_runs_and_log_as_of(history, capsys):
    db = history["db"]
    by_name = {s.name: s for s in history["steps"]}
    forced = by_name["forced"].position
    code, out, _ = run_cli(capsys, "labels", db, "--as-of", forced, "--json")
    assert code == 0
    assert [(r["label"], r["run_hash"]) for r in map(json.loads, out.splitlines())] == [
        ("baseline", "bbbbbbbbbbbb")
    ]
    _, out, _ = run_cli(capsys, "labels", db, "--history", "--json")
    changes = [json.loads(ln) for ln in out.splitlines()]
    assert forced in [c["position"] for c in changes]
    _, out, _ = run_cli(capsys, "labels", db, "--history", "--as-of", f"@{forced}")
    assert "POSITION" in out.splitlines()[0] and str(forced) in out and "archived" not in out

    moment = hlc_to_datetime(by_name["failed"].position)
    _, out, _ = run_cli(capsys, "sessions", db, "--as-of", moment.isoformat(), "--json")
    assert [r["experiment_name"] for r in map(json.loads, out.splitlines())] == ["first"]
    _, out, _ = run_cli(capsys, "sessions", db, "--json")
    assert len(out.splitlines()) == 2
    _, out, _ = run_cli(capsys, "sessions", db, "--as-of", "2000-01-01T00:00")
    assert len(out.splitlines()) == 1  # the header only

    _, out, _ = run_cli(capsys, "runs", db, "--as-of", by_name["started"].position, "--json")
    assert [r["exit_code"] for r in map(json.loads, out.splitlines())] == [None]

    _, out, _ = run_cli(capsys, "log", db, "--as-of", by_name["completed"].position, "--json")
    rows = [json.loads(ln) for ln in out.splitlines()]
    assert rows[-1]["position"] == by_name["completed"].position
    assert all(r["position"] == r["hlc"] <= by_name["completed"].position for r in rows)
    _, text, _ = run_cli(capsys, "log", db)
    positions = [int(ln.rsplit("@", 1)[1]) for ln in text.splitlines()]
    assert positions == sorted(positions) and by_name["labelled"].position in positions
    _, out, _ = run_cli(capsys, "info", db, "baseline", "--as-of", by_name["labelled"].position)
    assert "aaaaaaaaaaaa" in out.splitlines()[0]


def test_cli_diff_and_export_as_of(history, capsys, tmp_path: Path):
    by_name = {s.name: s for s in history["steps"]}
    db, registered = history["db"], by_name["registered"].position
    code, out, _ = run_cli(capsys, "diff", db, "aaaaaaaaaaaa", "bbbbbbbbbbbb", "--as-of", registered)
    assert code == 1 and "-cfg a" in out and "+cfg b" in out
    code, _, err = run_cli(capsys, "export", db, "cccccccccccc", "-o", tmp_path, "--as-of", registered)
    assert code == 2 and "No run found" in err  # registered later
    code, out, _ = run_cli(
        capsys, "export", db, "baseline", "-o", tmp_path, "--as-of", by_name["forced"].position
    )
    assert code == 0 and "cfg b" in Path(out.strip()).read_text()


def test_cli_refuses_a_bad_as_of(history, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sessions", str(history["db"]), "--as-of", "last tuesday"])
    assert exc.value.code == 2
    assert "2026-07-29T18:00" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["verify", str(history["db"]), "--as-of", "1"])  # not a read-only view command


# --- random histories -----------------------------------------------------------------------------

HASHES = ["h0", "h1", "h2"]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("session"), st.sampled_from(["a", "b"])),
        st.tuples(st.just("register"), st.sampled_from(HASHES), st.sampled_from([1.0, "x", 2])),
        st.tuples(st.just("start"), st.sampled_from(HASHES)),
        st.tuples(st.just("complete"), st.integers(0, 5), st.integers(0, 2)),
        st.tuples(
            st.just("label"), st.sampled_from(HASHES), st.sampled_from(["l1", "l2"]), st.integers(0, 2)
        ),
        st.tuples(st.just("status"), st.sampled_from(["running", "done"])),
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@pytest.mark.slow  # a Hypothesis suite
@given(ops)
def test_random_histories_replay_to_each_recorded_position(history_ops: list[tuple[Any, ...]]):
    recorded: list[tuple[int, dict[str, Any]]] = []
    with RunRegistry(":memory:", enable_spatial=False) as reg:
        sessions: list[str] = []
        runs: list[str] = []
        for op in history_ops:
            try:
                if op[0] == "session":
                    sessions.append(reg.create_session(FakeJobConfig(replicates=2), experiment_name=op[1]))
                elif op[0] == "register" and sessions:
                    param = "a" if isinstance(op[2], float) else ("b" if isinstance(op[2], str) else "c")
                    reg.register_run(sessions[-1], op[1], None, f"cfg {op[1]}", None, {param: op[2]})
                elif op[0] == "start" and sessions:
                    runs.append(reg.start_run(op[1], session_id=sessions[0]))
                elif op[0] == "complete" and runs:
                    reg.complete_run(runs[op[1] % len(runs)], op[2])
                elif op[0] == "label":
                    kwargs = [{}, {"force": True}, {"on_collision": "timestamp"}][op[3]]
                    reg.label_run(op[1], op[2], **kwargs)
                elif op[0] == "status" and sessions:
                    reg.update_session_status(sessions[-1], op[1])
            except (KeyError, ValueError):
                pass  # unknown hash, label held, column type clash: nothing recorded
            if reg.query("SELECT count(*) FROM event_log").fetchone()[0]:
                recorded.append((head(reg), snapshot(reg)))
        for position, tables in recorded:
            with reg.as_of(position) as old:
                assert snapshot(old) == tables


def test_a_time_after_the_last_event_shows_everything(live):
    with live.as_of(datetime.now(UTC) + timedelta(days=1)) as now:
        assert snapshot(now) == snapshot(live)
