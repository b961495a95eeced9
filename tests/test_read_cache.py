"""The point reads' read model (``registry.readmodel``): answers kept between changes of the
tables, never stale after a write of this process, of another writer or another process once
caught up, after a rebuild, a reset or raw SQL; and the same answers the tables give."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from joshreg import RunNotFoundError, RunRegistry
from joshreg.errors import ForeignDatabaseError
from joshreg.projection import queries as q
from joshreg.projection.dbfile import open_registry_file
from joshreg.registry import readmodel
from joshreg.testing.registries import FakeJobConfig


@pytest.fixture(params=["point", "bulk"])
def fill(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test twice: answers read a key at a time only, and whole tables loaded early."""
    if request.param == "point":
        monkeypatch.setattr(readmodel, "ROWS_PER_MISS", 0)
    else:
        monkeypatch.setattr(readmodel, "FIRST_COUNT_AFTER", 1)
        monkeypatch.setattr(readmodel, "ROWS_PER_MISS", 10**6)
    return request.param


@pytest.fixture
def reg(tmp_path: Path, fill: str) -> Iterator[RunRegistry]:
    r = RunRegistry(tmp_path / "sweep.duckdb", enable_spatial=False)
    yield r
    r.close()


def _setup(reg: RunRegistry, n: int = 6) -> tuple[str, list[str], list[str]]:
    sid = reg.create_session(FakeJobConfig(extra={"m": [1]}), experiment_name="exp")
    hashes, runs = [], []
    for i in range(n):
        h = f"h{i:02d}"
        reg.register_run(sid, h, "m.josh", f"c{i}", {"f": {"path": f"/d{i}", "md5": "x"}}, {"a": i, "s": "t"})
        hashes.append(h)
        for rep in range(2):
            rid = reg.start_run(h, session_id=sid, replicate=rep, metadata={"r": rep})
            reg.complete_run(rid, rep)
            runs.append(rid)
    reg.label_run(hashes[0], "best")
    return sid, hashes, runs


def _read_all(reg: RunRegistry, sid: str, hashes: list[str], runs: list[str]) -> list[object]:
    out: list[object] = [reg.get_session(sid), reg.get_session("nope")]
    for h in [*hashes, "missing"]:
        out += [reg.get_config_by_hash(h), reg.get_runs_for_hash(h)]
    out += [reg.get_run(r) for r in [*runs, "missing"]]
    out += [_latest(reg, h) for h in hashes]
    out += [reg.get_registered_parameters(h) for h in hashes]
    return out


def _latest(reg: RunRegistry, run_hash: str) -> str | None:
    try:
        return reg.resolve_run_id(run_hash)
    except RunNotFoundError:
        return None


def _from_tables(reg: RunRegistry, sid: str, hashes: list[str], runs: list[str]) -> list[object]:
    con = reg.conn
    assert con is not None
    out: list[object] = [q.get_session(con, sid), q.get_session(con, "nope")]
    for h in [*hashes, "missing"]:
        out += [q.get_config(con, h), q.get_runs_for_hash(con, h)]
    out += [q.get_run(con, r) for r in [*runs, "missing"]]
    out += [q.latest_run_id(con, h) for h in hashes]
    out += [q.registered_parameters(con, h) for h in hashes]
    return out


def test_answers_equal_what_the_tables_say(reg: RunRegistry) -> None:
    sid, hashes, runs = _setup(reg)
    first = _read_all(reg, sid, hashes, runs)
    again = _read_all(reg, sid, hashes, runs)  # answered from the model
    assert first == again == _from_tables(reg, sid, hashes, runs)
    assert reg.get_config_by_hash(hashes[1]).parameters == {"a": 1.0, "s": "t"}  # type: ignore[union-attr]
    assert reg.resolve_label("best") == hashes[0]
    assert reg.resolve_label_or_hash("best") == reg.resolve_label_or_hash(hashes[0]) == hashes[0]
    assert reg.get_file_mappings("best") == {"f": Path("/d0")}


def test_the_model_is_used_and_kept_while_nothing_changes(reg: RunRegistry, fill: str) -> None:
    sid, hashes, runs = _setup(reg)
    for _ in range(3):
        _read_all(reg, sid, hashes, runs)
    model = reg._read_model
    assert model is not None
    generation = model.generation
    kind = model._kinds["config"]
    assert kind.complete is (fill == "bulk")
    assert set(kind.answers) >= set(hashes)
    _read_all(reg, sid, hashes, runs)
    assert model.generation == generation  # an empty catch-up changes nothing


def test_own_writes_show_at_once(reg: RunRegistry) -> None:
    sid, hashes, runs = _setup(reg)
    _read_all(reg, sid, hashes, runs)
    assert reg.get_config_by_hash("new") is None
    reg.register_run(sid, "new", "m.josh", "c", None, {"a": 99})
    assert reg.get_config_by_hash("new").parameters == {"a": 99.0}  # type: ignore[union-attr]
    assert reg.get_runs_for_hash("new") == []
    with pytest.raises(RunNotFoundError):
        reg.resolve_run_id("new")
    rid = reg.start_run("new", session_id=sid)
    assert reg.get_run(rid).exit_code is None  # type: ignore[union-attr]
    assert [r.run_id for r in reg.get_runs_for_hash("new")] == [rid]
    assert reg.resolve_run_id("new") == rid
    reg.complete_run(rid, 3, "boom")
    assert (reg.get_run(rid).exit_code, reg.get_run(rid).error_message) == (3, "boom")  # type: ignore[union-attr]
    reg.label_run("new", "best", force=True)
    assert reg.resolve_label("best") == "new"
    assert reg.get_config_by_hash(hashes[0]).label is None  # type: ignore[union-attr]
    reg.update_session_status(sid, "completed")
    assert reg.get_session(sid).status == "completed"  # type: ignore[union-attr]
    reg.mark_run(hashes[1], "bad", reason="broken")
    assert reg.get_config_by_hash(hashes[1]).status == "bad"  # type: ignore[union-attr]


def test_resets_drops_and_restores_show_at_once(reg: RunRegistry) -> None:
    sid, hashes, runs = _setup(reg)
    _read_all(reg, sid, hashes, runs)
    reg.reset_run(hashes[2])
    assert reg.get_runs_for_hash(hashes[2]) == []
    assert reg.get_run(runs[4]) is None
    reg.drop_run(hashes[3])
    assert reg.get_config_by_hash(hashes[3]) is None
    reg.restore_run(hashes[3])
    assert reg.get_config_by_hash(hashes[3]) is not None
    assert _read_all(reg, sid, hashes, runs) == _from_tables(reg, sid, hashes, runs)


def test_another_writers_events_show_at_the_next_read(reg: RunRegistry, tmp_path: Path) -> None:
    sid, hashes, runs = _setup(reg)
    _read_all(reg, sid, hashes, runs)
    other = RunRegistry(":memory:", events_path=tmp_path / "sweep.events", enable_spatial=False)
    try:
        other.register_run(sid, "theirs", "m.josh", "c", None, {"a": 5})
        rid = other.start_run(hashes[0], session_id=sid)
        other.label_run("theirs", "best", force=True)
        other.flush()
    finally:
        other.close()
    assert reg.get_config_by_hash("theirs") is not None
    assert reg.resolve_label("best") == "theirs"
    assert reg.get_run(rid) is not None
    assert reg.resolve_run_id(hashes[0]) == rid
    assert rid in [r.run_id for r in reg.get_runs_for_hash(hashes[0])]


def test_another_process_writes_show_once_caught_up(reg: RunRegistry, tmp_path: Path) -> None:
    sid, hashes, runs = _setup(reg)
    _read_all(reg, sid, hashes, runs)
    code = (
        "import sys; from joshreg import RunRegistry\n"
        "r = RunRegistry(sys.argv[1], enable_spatial=False)\n"  # the file is held: a private projection
        "r.register_run(sys.argv[2], 'proc', 'm.josh', 'c', None, {'a': 7})\n"
        "r.complete_run(sys.argv[3], 42, 'late')\n"
        "r.label_run('proc', 'best', force=True)\n"
        "r.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "sweep.duckdb"), sid, runs[0]], check=True)
    assert reg.get_config_by_hash("proc").parameters == {"a": 7.0}  # type: ignore[union-attr]
    assert reg.get_run(runs[0]).exit_code == 42  # type: ignore[union-attr]
    assert reg.resolve_label("best") == "proc"


def test_answers_are_the_callers_own(reg: RunRegistry) -> None:
    sid, hashes, runs = _setup(reg)
    cfg = reg.get_config_by_hash(hashes[0])
    assert cfg is not None and cfg.file_mappings is not None
    cfg.parameters["a"] = -1
    cfg.file_mappings["f"]["path"] = "/elsewhere"
    run = reg.get_run(runs[0])
    assert run is not None and run.metadata is not None
    run.metadata["r"] = "changed"
    session = reg.get_session(sid)
    assert session is not None and session.metadata is not None
    session.metadata.clear()
    listed = reg.get_runs_for_hash(hashes[0])
    listed.clear()
    assert reg.get_config_by_hash(hashes[0]).parameters["a"] == 0  # type: ignore[union-attr]
    assert reg.get_config_by_hash(hashes[0]).file_mappings["f"]["path"] == "/d0"  # type: ignore[union-attr,index]
    assert reg.get_run(runs[0]).metadata == {"r": 0}  # type: ignore[union-attr]
    assert reg.get_session(sid).metadata  # type: ignore[union-attr]
    assert len(reg.get_runs_for_hash(hashes[0])) == 2


def test_raw_sql_and_rebuild_empty_the_model(reg: RunRegistry) -> None:
    sid, hashes, runs = _setup(reg)
    _read_all(reg, sid, hashes, runs)
    reg.query("UPDATE job_configs SET label = 'by-hand' WHERE run_hash = ?", [hashes[1]])
    assert reg.resolve_label("by-hand") == hashes[1]
    con = reg.conn
    assert con is not None
    con.execute("UPDATE job_runs SET exit_code = 9 WHERE run_id = ?", [runs[1]])
    assert reg.get_run(runs[1]).exit_code == 9  # type: ignore[union-attr]
    reg.rebuild()  # the log wins again
    assert reg.get_run(runs[1]).exit_code == 1  # type: ignore[union-attr]
    with pytest.raises(RunNotFoundError):
        reg.resolve_label("by-hand")
    assert _read_all(reg, sid, hashes, runs) == _from_tables(reg, sid, hashes, runs)


def test_a_view_answers_as_of_its_moment(reg: RunRegistry) -> None:
    _, hashes, _ = _setup(reg)
    view = reg.as_of(reg.label_history()[-1].position)
    try:
        assert view.resolve_label("best") == hashes[0]
        reg.label_run(hashes[1], "best", force=True)
        assert view.resolve_label("best") == hashes[0]
        assert view.get_config_by_hash(hashes[0]).label == "best"  # type: ignore[union-attr]
        assert reg.resolve_label("best") == hashes[1]
    finally:
        view.close()


def test_closed_registry_refuses_reads(tmp_path: Path) -> None:
    reg = RunRegistry(tmp_path / "r.duckdb", enable_spatial=False)
    sid = reg.create_session(FakeJobConfig())
    assert reg.get_session(sid) is not None
    reg.close()
    with pytest.raises(Exception, match="closed"):
        reg.get_session(sid)


# --- opening the file once -------------------------------------------------------------------


def _fingerprint(path: Path) -> tuple[str, int, list[str]]:
    return (
        hashlib.sha256(path.read_bytes()).hexdigest(),
        path.stat().st_mtime_ns,
        sorted(os.listdir(path.parent)),
    )


def test_a_joshreg_file_is_opened_once(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    RunRegistry(path, enable_spatial=False).close()
    found, con = open_registry_file(str(path), store_exists=True)
    assert found.kind == "joshreg" and con is not None
    con.close()


def test_a_foreign_file_opened_for_writing_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE job_configs (run_hash VARCHAR); CREATE TABLE job_runs (run_id VARCHAR)")
    con.close()
    before = _fingerprint(path)
    with pytest.raises(ForeignDatabaseError, match="joshpy registry"):
        RunRegistry(path)
    assert _fingerprint(path) == before  # no store beside it either


def test_a_file_with_a_wal_is_looked_at_read_only(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    RunRegistry(path, enable_spatial=False).close()
    Path(str(path) + ".wal").write_bytes(b"")
    found, con = open_registry_file(str(path), store_exists=True)
    assert (found.kind, con) == ("joshreg", None)


# --- reads skip the catch-up only when nothing is pending ------------------------------------


def test_every_kind_of_write_elsewhere_is_pending_until_caught_up(reg: RunRegistry, tmp_path: Path) -> None:
    """``sync`` skips the catch-up when ``Projector.pending()`` is False: so it must be True
    after every write a catch-up would apply, and the read after it must show the write."""
    sid, hashes, runs = _setup(reg)
    _read_all(reg, sid, hashes, runs)
    events = tmp_path / "sweep.events"
    assert not reg._projector.pending()

    def elsewhere() -> RunRegistry:
        return RunRegistry(":memory:", events_path=events, enable_spatial=False)

    with elsewhere() as other:  # another writer's event
        other.update_session_status(sid, "elsewhere")
    assert reg._projector.pending()
    assert reg.get_session(sid).status == "elsewhere"  # type: ignore[union-attr]
    assert not reg._projector.pending()

    with elsewhere() as other:  # a label commit alone
        other.label_run(hashes[2], "best", force=True)
    assert reg._projector.pending()
    assert reg.resolve_label("best") == hashes[2]

    b = tmp_path / "b.duckdb"  # a merge writes another registry's streams into this store
    with RunRegistry(b, enable_spatial=False) as rb:
        bs = rb.create_session(FakeJobConfig())
        rb.register_run(bs, "hb", "m.josh", "c", None, {"a": 1})
        rb.label_run("hb", "from-b")
    with elsewhere() as other:
        other.merge_from(b)
    assert reg._projector.pending()
    assert reg.resolve_label("from-b") == "hb"
    with RunRegistry(b, enable_spatial=False) as rb:  # a new commit in a stream already imported
        rb.label_run("hb", "from-b-again", force=True)
    with elsewhere() as other:
        other.merge_from(b)
    assert reg._projector.pending()
    assert reg.resolve_label("from-b-again") == "hb"

    with elsewhere() as other:  # compaction rewrites finished segments: the same events
        other.compact(abandoned_after=0, min_bytes=0)
    assert _read_all(reg, sid, hashes, runs) == _from_tables(reg, sid, hashes, runs)
    reg.rebuild()
    assert _read_all(reg, sid, hashes, runs) == _from_tables(reg, sid, hashes, runs)
    assert reg.resolve_label("from-b-again") == "hb"
