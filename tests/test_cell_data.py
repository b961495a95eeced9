"""Loading Josh CSV exports into cell_data through the event log."""

from __future__ import annotations

import multiprocessing as mp
import warnings
from pathlib import Path

import pytest

from joshreg import CellDataLoader, DuplicateLoadWarning, RunRecorder, RunRegistry
from joshreg.results.cell_data import CellDataLoader as FromModule

EXPORT = (
    "position.x,position.y,position.longitude,position.latitude,avg.height,treeCount,status,step,replicate\n"
    "0,0,-116.0,34.0,1.5,10,alive,0,0\n"
    "1,0,-116.1,34.1,,12,,1,0\n"
    "0,1,-116.0,34.2,2.5,14,dead,1,1\n"
)


def csv_file(folder: Path, text: str = EXPORT, name: str = "out_0.csv") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def run(reg: RunRegistry, config: object, run_hash: str = "h1") -> tuple[str, str]:
    sid = reg.create_session(config)
    reg.register_run(sid, run_hash, "m.josh", "c", None, {"maxGrowth": 5})
    return sid, reg.start_run(run_hash, session_id=sid)


def table(reg: RunRegistry) -> list[tuple[object, ...]]:
    return reg.query("SELECT * EXCLUDE (geom) FROM cell_data ORDER BY cell_id").fetchall()


def test_a_load_fills_cell_data_with_upstream_columns(dir_registry, config, tmp_path: Path) -> None:
    _, rid = run(dir_registry, config)
    assert CellDataLoader(dir_registry).load_csv(csv_file(tmp_path), rid, "h1") == 3
    cols = [r[0] for r in dir_registry.query("DESCRIBE cell_data").fetchall()]
    assert cols == [
        "cell_id", "run_id", "run_hash", "step", "replicate", "position_x", "position_y",
        "longitude", "latitude", "entity_type", "geom", "avg.height", "treeCount", "status",
    ]  # fmt: skip
    rows = dir_registry.query(
        'SELECT cell_id, run_id, step, replicate, longitude, "avg.height", treeCount, status, '
        "entity_type, ST_AsText(geom) FROM cell_data ORDER BY cell_id"
    ).fetchall()
    assert rows[0] == (1, rid, 0, 0, -116.0, 1.5, 10.0, "alive", "patch", "POINT (-116 34)")
    assert rows[1][5:8] == (None, 12.0, None)
    types = dict(dir_registry.query("SELECT column_name, column_type FROM (DESCRIBE cell_data)").fetchall())
    assert (types["avg.height"], types["status"], types["step"]) == ("DOUBLE", "VARCHAR", "INTEGER")


def test_loading_the_same_content_again_adds_nothing_and_says_so(registry, config, tmp_path: Path) -> None:
    _, rid = run(registry, config)
    loader = CellDataLoader(registry)
    loader.load_csv(csv_file(tmp_path), rid, "h1")
    copy = csv_file(tmp_path, name="copy of out_0.csv")
    with pytest.warns(DuplicateLoadWarning, match="already loaded"):
        assert loader.load_csv(copy, rid, "h1") == 0
    assert registry.query("SELECT count(*) FROM cell_data").fetchone() == (3,)
    assert loader.load_csv(copy, rid, "h1", entity_type="agent") == 3
    rid2 = registry.start_run("h1", session_id=registry.list_sessions()[0].session_id)
    assert loader.load_csv(copy, rid2, "h1") == 3
    assert registry.query("SELECT count(*) FROM cell_data").fetchone() == (9,)


def test_a_type_conflict_is_refused_and_leaves_the_registry_as_it_was(
    registry, config, tmp_path: Path
) -> None:
    _, rid = run(registry, config)
    loader = CellDataLoader(registry)
    loader.load_csv(csv_file(tmp_path), rid, "h1")
    before = (table(registry), registry.query("SELECT count(*) FROM event_log").fetchone())
    bad = csv_file(tmp_path, "step,replicate,treeCount,newVar\n0,0,many,1\n", "bad.csv")
    with pytest.raises(
        ValueError,
        match=r"Column 'treeCount' exists as DOUBLE but new data has VARCHAR \(.*bad\.csv, line 2: 'many'\)",
    ):
        loader.load_csv(bad, rid, "h1")
    assert (table(registry), registry.query("SELECT count(*) FROM event_log").fetchone()) == before
    assert "newVar" not in [r[0] for r in registry.query("DESCRIBE cell_data").fetchall()]


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("step,x\n0,1\n", ValueError, "missing replicate. Columns found: step, x"),
        ("step,replicate,x\n0,0,1\n1,0,2,3\n", ValueError, "line 3"),
        ("step,replicate,Longitude\n0,0,1\n", ValueError, "clashes with the core"),
        ("step,replicate,a,A\n0,0,1,2\n", ValueError, "differ only by case"),
    ],
)
def test_bad_exports_are_refused_before_anything_is_stored(
    registry, config, tmp_path: Path, text: str, error: type[Exception], match: str
) -> None:
    _, rid = run(registry, config)
    events = registry.query("SELECT count(*) FROM event_log").fetchone()
    with pytest.raises(error, match=match):
        CellDataLoader(registry).load_csv(csv_file(tmp_path, text), rid, "h1")
    assert registry.query("SELECT count(*) FROM event_log").fetchone() == events
    assert registry.query("SELECT count(*) FROM cell_data").fetchone() == (0,)


def test_a_missing_file_is_file_not_found(registry, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="CSV not found"):
        CellDataLoader(registry).load_csv(tmp_path / "nope.csv", None, "h1")


def test_the_loader_needs_a_registry() -> None:
    assert FromModule is CellDataLoader
    with pytest.raises(TypeError, match="needs a RunRegistry"):
        CellDataLoader("josh_runs.duckdb")  # type: ignore[arg-type]


def test_a_rebuild_without_the_csv_gives_the_same_cell_data(db_path: Path, config, tmp_path: Path) -> None:
    with RunRegistry(db_path) as reg:
        _, rid = run(reg, config)
        path = csv_file(tmp_path, name="it's a run 1.csv")
        CellDataLoader(reg).load_csv(path, rid, "h1")
        before = table(reg)
    path.unlink()
    db_path.unlink()
    with RunRegistry(db_path) as reg:
        assert table(reg) == before


def test_load_csv_batch_sums_rows_and_reports_progress(registry, config, tmp_path: Path) -> None:
    _, rid = run(registry, config)
    files = [csv_file(tmp_path, f"step,replicate,x\n0,{i},1\n1,{i},2\n", f"r{i}.csv") for i in range(3)]
    seen: list[tuple[int, int]] = []
    total = CellDataLoader(registry).load_csv_batch(
        [(f, rid, "h1") for f in files], progress=lambda d, t: seen.append((d, t))
    )
    assert total == 6 and seen == [(1, 3), (2, 3), (3, 3)]
    assert registry.query("SELECT count(DISTINCT replicate) FROM cell_data").fetchone() == (3,)


def test_without_spatial_geom_stays_empty(tmp_path: Path, config) -> None:
    with RunRegistry(tmp_path / "flat.duckdb", enable_spatial=False) as reg:
        _, rid = run(reg, config)
        CellDataLoader(reg).load_csv(csv_file(tmp_path), rid, "h1")
        assert reg.query("SELECT count(geom), count(*) FROM cell_data").fetchone() == (0, 3)


def _worker_loads(db_path: str, csv: str, rid: str) -> None:
    with RunRecorder(db_path) as rec:
        rec.load_csv(csv, rid, "h1")


def test_a_worker_loads_results_without_opening_duckdb(db_path: Path, config, tmp_path: Path) -> None:
    with RunRegistry(db_path) as reg:
        _, rid = run(reg, config)
        proc = mp.get_context("spawn").Process(
            target=_worker_loads, args=(str(db_path), str(csv_file(tmp_path)), rid)
        )
        proc.start()
        proc.join(60)
        assert proc.exitcode == 0
        assert reg.query("SELECT count(*), min(run_id) FROM cell_data").fetchone() == (3, rid)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.warns(DuplicateLoadWarning):
                assert CellDataLoader(reg).load_csv(csv_file(tmp_path), rid, "h1") == 0


def test_a_load_leaves_duckdbs_threads_setting_as_it_was(registry, config, tmp_path: Path) -> None:
    """Small inserts run on one thread (faster); the connection's own setting comes back."""
    con = registry.conn
    con.execute("SET threads = 3")
    _, rid = run(registry, config)
    CellDataLoader(registry).load_csv(csv_file(tmp_path), rid, "h1")
    assert con.execute("SELECT current_setting('threads')").fetchone() == (3,)
    assert registry.query("SELECT count(*) FROM cell_data").fetchone() == (3,)
