"""Simulation-results benchmarks of joshreg (issue 3 goals), in one run.

Run from the repository root (``just bench`` runs it after ``bench_core.py``)::

    python benchmarks/bench_results.py            # full scale, about 1 minute
    python benchmarks/bench_results.py --quick    # small-scale smoke run, under 30 s
    python benchmarks/bench_results.py --only load_single --profile 25
    python benchmarks/bench_results.py --scale    # 50 million rows (500 CSVs), not in `just bench`
    python benchmarks/bench_results.py --scale --scale-files 20   # the same, 20 files

Prints a table (figure, goal, baseline, ratio, PASS/MISS) and writes ``bench-output/results.json``
(rows as ``benchmarks/bench_row.schema.json`` describes).

Two baselines measure DuckDB alone on the same files (issue 16): ``load_batch_read_csv`` sets
``load_batch``'s figure beside one ``read_csv`` of all its CSVs into a table shaped like
``cell_data`` (explicit types, run ids by file name, ``ST_Point`` geometry, committed to a file
database), goal at most 1.5x; ``rebuild_cells_parquet`` sets ``rebuild_cells``'s figure beside one
``read_parquet`` of the same result files into the same table, goal at most 2x.
``load_batch_recorder`` is the workers' path (``RunRecorder.load_csv`` per file, then one
``sync``) against the same ``read_csv`` baseline.

``--scale`` runs only the scale rows: 500 CSVs of 100,000 rows (1,000 cells x 100 steps, five
variables and positions, geometry on; ``--scale-files`` or ``JOSHREG_BENCH_SCALE_FILES`` for
fewer) loaded with ``load_csv_batch`` + ``sync`` against one ``read_csv`` of them into DuckDB with
geometry, each side in its own process with DuckDB's ``memory_limit`` at ``--memory-limit``
(default 2GiB on both connections; ``none`` keeps DuckDB's default, 80% of RAM, which is what
joshreg ships) and its peak resident size measured; then ``get_timeseries``,
``get_parameter_comparison`` and an unfiltered ``get_data_summary`` over the current runs (a
tenth of the configurations marked bad).

The upstream-style baseline loads the same Josh CSV the upstream way, on a held DuckDB connection: upstream's
``cell_data`` (``cell_id_seq``, its six ART indexes, ``geom``) and one ``INSERT ... SELECT FROM
read_csv_auto(path)`` per file, computing ``geom`` in the same statement (upstream runs a separate
UPDATE; this baseline is the cheaper one-read form). joshreg's figure includes ``registry.sync()``,
so its rows are visible in ``cell_data`` when the clock stops. ``ratio`` is joshreg/baseline for
the load rows (PASS when <= the goal) and the headroom goal/figure for the time goals (PASS when
>= 1). Quick mode shrinks every workload, so its PASS/MISS is only a smoke signal. ``--only``
ignores names that belong to ``bench_core.py``, so ``just bench`` can pass arguments to both.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from bench_core import (
    Result,
    bench_args,
    chosen,
    loadavg,
    machine,
    print_table,
    profile_call,
    run_step,
    write_report,
)

from joshreg import CellDataLoader, RunRecorder, RunRegistry
from joshreg.log.names import default_events_path
from joshreg.projection.spatial import load_spatial
from joshreg.results.diagnostics import DiagnosticQueries

NAMES = (
    "load_single",
    "load_batch",
    "load_batch_read_csv",
    "load_batch_recorder",
    "rebuild_cells",
    "rebuild_cells_parquet",
    "get_timeseries",
    "get_comparison",
)
SCALE_NAMES = ("scale_load_50m", "scale_timeseries", "scale_comparison", "scale_summary")
VARIABLES = ("avg.height", "treeCount", "biomass", "cover.fraction", "seedBank", "status")
PARAM = "maxGrowth"


@dataclass
class Scale:
    """Workload sizes; ``quick`` shrinks them for a smoke run."""

    steps: int = 100  # rows per file = steps * cells
    cells: int = 400
    batch: int = 30
    rebuild_files: int = 25  # 25 x 40,000 = 1,000,000 rows
    hashes: int = 5  # the rebuild files are hashes x replicates
    repeats: int = 5
    query_repeats: int = 5


QUICK = Scale(steps=20, cells=200, batch=5, rebuild_files=10, hashes=5, repeats=2, query_repeats=3)


# --- fixtures -----------------------------------------------------------------------------------


def write_csv(path: Path, sc: Scale, seed: int, replicate: int, text: bool = True) -> int:
    """A Josh patch export: position columns, 6 variables (5 numeric, 1 text; without ``text``
    the 5 numeric ones), step, replicate.

    Column order and names follow Josh's exporter; values vary with ``seed`` so every file has
    its own content hash.
    """
    rng = np.random.default_rng(seed)
    n = sc.steps * sc.cells
    side = int(np.ceil(np.sqrt(sc.cells)))
    cell = np.tile(np.arange(sc.cells), sc.steps)
    x = (cell % side).astype(np.float64)
    y = (cell // side).astype(np.float64)
    step = np.repeat(np.arange(sc.steps), sc.cells)
    height = rng.gamma(2.0, 1.5, n) + step * 0.01
    table = pa.table(
        {
            "position.x": x,
            "position.y": y,
            "position.longitude": -116.0 + x * 0.01,
            "position.latitude": 34.0 + y * 0.01,
            "avg.height": np.round(height, 4),
            "treeCount": rng.integers(0, 50, n).astype(np.float64),
            "biomass": np.round(height * rng.uniform(5, 15, n), 3),
            "cover.fraction": np.round(rng.uniform(0, 1, n), 4),
            "seedBank": np.round(rng.exponential(100.0, n), 2),
            "status": pa.array(np.where(rng.uniform(0, 1, n) < 0.9, "alive", "dead")),
            "step": step.astype(np.int64),
            "replicate": np.full(n, replicate, dtype=np.int64),
        }
    )
    if not text:
        table = table.drop_columns(["status"])
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="none"))
    return n


class _Config:
    simulation = "Main"
    template_path = "sweep.jshc.j2"

    def to_dict(self) -> dict[str, Any]:
        return {"simulation": "Main", "replicates": 1, "sweep": {PARAM: [1.0, 2.0]}}


def _registry_with_runs(db: Path, n_runs: int, hashes: int = 1) -> tuple[RunRegistry, list[tuple[str, str]]]:
    """A file registry with ``n_runs`` started runs over ``hashes`` configurations, synced.

    Returns ``(run_id, run_hash)`` pairs; run ``i`` uses hash ``i % hashes``.
    """
    reg = RunRegistry(db, enable_spatial=True)
    sid = reg.create_session(_Config(), experiment_name="bench")
    hs = [f"{k:012x}" for k in range(hashes)]
    for k, h in enumerate(hs):
        reg.register_run(sid, h, "sim.josh", f"maxGrowth = {k}", None, {PARAM: 0.5 + k})
    runs = [
        (reg.start_run(hs[i % hashes], session_id=sid, replicate=i // hashes), hs[i % hashes])
        for i in range(n_runs)
    ]
    reg.sync()
    return reg, runs


# --- baseline: upstream's cell_data on a held connection ------------------------------------------

UPSTREAM_CELL_DDL = """
CREATE SEQUENCE IF NOT EXISTS cell_id_seq START 1;
CREATE TABLE IF NOT EXISTS cell_data (
    cell_id BIGINT PRIMARY KEY DEFAULT nextval('cell_id_seq'),
    run_id VARCHAR, run_hash VARCHAR(12), step INTEGER NOT NULL, replicate INTEGER NOT NULL,
    position_x DOUBLE, position_y DOUBLE, longitude DOUBLE, latitude DOUBLE, entity_type VARCHAR,
    geom GEOMETRY);
CREATE INDEX IF NOT EXISTS idx_cell_run ON cell_data(run_id);
CREATE INDEX IF NOT EXISTS idx_cell_run_hash ON cell_data(run_hash);
CREATE INDEX IF NOT EXISTS idx_cell_step ON cell_data(step);
CREATE INDEX IF NOT EXISTS idx_cell_replicate ON cell_data(replicate);
CREATE INDEX IF NOT EXISTS idx_cell_spatial ON cell_data(longitude, latitude);
CREATE INDEX IF NOT EXISTS idx_cell_step_replicate ON cell_data(step, replicate);
"""


class Baseline:
    """Upstream's load, minus its extra reads: one ``INSERT ... SELECT FROM read_csv_auto``.

    ``run_id`` has no foreign key here (upstream's references ``job_runs``; the check would only
    add lookups to the baseline). Variable columns are added on first sight, as upstream does.
    """

    def __init__(self, db: Path) -> None:
        self.con = duckdb.connect(str(db))
        load_spatial(self.con)
        self.con.execute(UPSTREAM_CELL_DDL)
        self.columns: set[str] = set()

    def load(self, path: Path, run_id: str, run_hash: str) -> None:
        con = self.con
        for name in VARIABLES:
            if name not in self.columns:
                kind = "VARCHAR" if name == "status" else "DOUBLE"
                con.execute(f'ALTER TABLE cell_data ADD COLUMN IF NOT EXISTS "{name}" {kind}')
                self.columns.add(name)
        cols = ", ".join(f'"{v}"' for v in VARIABLES)
        con.execute(
            "INSERT INTO cell_data (run_id, run_hash, step, replicate, position_x, position_y, "
            f"longitude, latitude, entity_type, geom, {cols}) "
            'SELECT ?, ?, step, replicate, "position.x", "position.y", "position.longitude", '
            '"position.latitude", \'patch\', ST_Point("position.longitude", "position.latitude"), '
            f"{cols} FROM read_csv_auto(?)",
            [run_id, run_hash, str(path)],
        )

    def count(self) -> int:
        row = self.con.execute("SELECT count(*) FROM cell_data").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.con.close()


# --- baselines: DuckDB alone reading the same files once ----------------------------------------

CELL_DDL = """
CREATE SEQUENCE IF NOT EXISTS cell_id_seq START 1;
CREATE TABLE IF NOT EXISTS cell_data (
    cell_id BIGINT DEFAULT nextval('cell_id_seq'),
    run_id VARCHAR, run_hash VARCHAR(12), step INTEGER NOT NULL, replicate INTEGER NOT NULL,
    position_x DOUBLE, position_y DOUBLE, longitude DOUBLE, latitude DOUBLE, entity_type VARCHAR,
    geom GEOMETRY);
"""  # joshreg's cell_data (projection/tables.py), without its variable columns


def _kind(variable: str) -> str:
    return "VARCHAR" if variable == "status" else "DOUBLE"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _single_read(
    db: Path,
    source: str,
    items: list[tuple[str, str, str]],
    variables: tuple[str, ...],
    memory_limit: str | None = None,
) -> float:
    """Seconds of one ``INSERT INTO cell_data SELECT ... FROM <source>`` of every file in
    ``items`` (``(file, run_id, run_hash)``; run ids joined by file name) into a fresh file
    database: typed columns, ``ST_Point`` geometry where both coordinates are finite, committed.
    ``source`` is a DuckDB table function over ``{files}`` (``read_csv``, ``read_parquet``) whose
    rows carry ``filename`` and the export's columns named as in ``cell_data``."""
    con = duckdb.connect(str(db))
    if memory_limit and memory_limit != "none":
        con.execute(f"SET memory_limit = {_quote(memory_limit)}")
    load_spatial(con)  # the extension's load is not the baseline's work
    con.execute(CELL_DDL)
    for v in variables:
        con.execute(f'ALTER TABLE cell_data ADD COLUMN "{v}" {_kind(v)}')
    con.register(
        "_runs",
        pa.table(
            {
                "filename": [f for f, _, _ in items],
                "run_id": [r for _, r, _ in items],
                "run_hash": [h for _, _, h in items],
            }
        ),
    )
    files = "[" + ", ".join(_quote(f) for f, _, _ in items) + "]"
    cols = "".join(f', c."{v}"' for v in variables)
    names = "".join(f', "{v}"' for v in variables)
    t0 = time.perf_counter()
    con.execute(
        "INSERT INTO cell_data (run_id, run_hash, step, replicate, position_x, position_y, longitude, "
        f"latitude, entity_type, geom{names}) "
        "SELECT r.run_id, r.run_hash, c.step, c.replicate, c.position_x, c.position_y, c.longitude, "
        "c.latitude, 'patch', CASE WHEN isfinite(c.longitude) AND isfinite(c.latitude) "
        f"THEN ST_Point(c.longitude, c.latitude) END{cols} "
        f"FROM ({source.replace('{files}', files)}) c JOIN _runs r USING (filename)"
    )
    seconds = time.perf_counter() - t0
    con.close()
    return seconds


def read_csv_source(variables: tuple[str, ...]) -> str:
    """``read_csv`` of Josh exports with their types given (no sniffing), positions renamed."""
    types = {
        "position.x": "DOUBLE",
        "position.y": "DOUBLE",
        "position.longitude": "DOUBLE",
        "position.latitude": "DOUBLE",
        **{v: _kind(v) for v in variables},
        "step": "INTEGER",
        "replicate": "INTEGER",
    }
    columns = "{" + ", ".join(f"{_quote(k)}: {_quote(t)}" for k, t in types.items()) + "}"
    renamed = ", ".join(
        f'"position.{a}" AS {b}'
        for a, b in (
            ("x", "position_x"),
            ("y", "position_y"),
            ("longitude", "longitude"),
            ("latitude", "latitude"),
        )
    )
    return (
        'SELECT * EXCLUDE ("position.x", "position.y", "position.longitude", "position.latitude"), '
        f"{renamed} FROM read_csv({{files}}, header = true, auto_detect = false, nullstr = '', "
        f"columns = {columns}, filename = true)"
    )


PARQUET_SOURCE = "SELECT * FROM read_parquet({files}, filename = true)"


# --- helpers ------------------------------------------------------------------------------------


def _count(reg: RunRegistry) -> int:
    row = reg.query("SELECT count(*) FROM cell_data").fetchone()
    return int(row[0]) if row else 0


# --- 1. loading, single and batch ----------------------------------------------------------------


def bench_load_single(sc: Scale, base: Path, files: list[Path], profile: int) -> Result:
    """The second file into a registry holding one (``load_csv`` + ``sync``) vs one baseline INSERT.

    Both sides hold an open connection with the variable columns in place, as the issue's
    held-connection baseline does. The first file's load is timed too (``extra``): on joshreg it
    includes the once-per-connection ``LOAD`` of the spatial extension, which the registry does
    lazily (the baseline loads it in setup) and the variable columns' creation (both sides).
    """
    ours, theirs, cold, cold_base = [], [], [], []
    rows = sc.steps * sc.cells
    for r in range(sc.repeats):
        d = base / f"single{r}"
        d.mkdir()
        first, second = files[(2 * r) % len(files)], files[(2 * r + 1) % len(files)]
        reg, runs = _registry_with_runs(d / "reg.duckdb", 2)
        loader = CellDataLoader(reg)
        t0 = time.perf_counter()
        loader.load_csv(first, *runs[0])
        reg.sync()
        cold.append(time.perf_counter() - t0)

        def ours_fn(
            reg: RunRegistry = reg, loader: CellDataLoader = loader, path: Path = second, run: Any = runs[1]
        ) -> None:
            loader.load_csv(path, *run)
            reg.sync()

        t0 = time.perf_counter()
        profile_call("load_csv + sync", ours_fn, profile) if profile and r == 0 else ours_fn()
        ours.append(time.perf_counter() - t0)
        assert _count(reg) == 2 * rows
        reg.close()
        b = Baseline(d / "upstream.duckdb")
        t0 = time.perf_counter()
        b.load(first, *runs[0])
        cold_base.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b.load(second, *runs[1])
        theirs.append(time.perf_counter() - t0)
        assert b.count() == 2 * rows
        b.close()
        shutil.rmtree(d)
    return Result(
        "load_single",
        f"1 CSV of {rows:,} rows x 12 columns, load_csv + sync into a registry holding one (s)",
        statistics.median(ours),
        "s",
        1.5,
        False,
        relative=True,
        baseline=statistics.median(theirs),
        runs=ours,
        baseline_runs=theirs,
        extra={
            "first_load_seconds": [round(x, 4) for x in cold],
            "first_load_baseline_seconds": [round(x, 4) for x in cold_base],
        },
    )


def bench_load_batch(sc: Scale, base: Path, files: list[Path], only: set[str], profile: int) -> list[Result]:
    """``sc.batch`` files: ``load_csv_batch`` + ``sync`` vs that many upstream-style INSERTs
    (``load_batch``) and vs one ``read_csv`` of them all (``load_batch_read_csv``); the workers'
    path, a recorder's ``load_csv`` per file and one ``sync``, vs the same (``load_batch_recorder``)."""
    d = base / "batch"
    d.mkdir()
    rows = sc.steps * sc.cells * sc.batch
    out: list[Result] = []
    start = loadavg()
    turns = 3 if sc.repeats > 2 else 1  # joshreg's load and the single read, alternating
    reads: list[float] = []
    loads: list[float] = []
    for k in range(turns if only & {"load_batch", "load_batch_read_csv"} else 0):
        reg, runs = _registry_with_runs(d / f"reg{k}.duckdb", sc.batch)
        items = [(files[i % len(files)], rid, h) for i, (rid, h) in enumerate(runs)]
        loader = CellDataLoader(reg)

        def ours_fn(reg: RunRegistry = reg, loader: CellDataLoader = loader, items: Any = items) -> None:
            loader.load_csv_batch(items)
            reg.sync()

        t0 = time.perf_counter()
        profile_call("load_csv_batch + sync", ours_fn, profile) if profile and k == 0 else ours_fn()
        loads.append(time.perf_counter() - t0)
        assert _count(reg) == rows
        reg.close()
        if "load_batch_read_csv" in only or "load_batch_recorder" in only:
            single = [(str(p), rid, h) for p, rid, h in items]
            reads.append(
                _single_read(d / f"read_csv{k}.duckdb", read_csv_source(VARIABLES), single, VARIABLES)
            )
    ours = statistics.median(loads) if loads else 0.0
    if not loads:  # only the recorder row: its baseline's files and run ids
        reg, runs = _registry_with_runs(d / "ids.duckdb", sc.batch)
        reg.close()
        items = [(files[i % len(files)], rid, h) for i, (rid, h) in enumerate(runs)]
    if "load_batch" in only:
        b = Baseline(d / "upstream.duckdb")
        t0 = time.perf_counter()
        for path, rid, h in items:
            b.load(path, rid, h)
        theirs = time.perf_counter() - t0
        assert b.count() == rows
        b.close()
        out.append(
            Result(
                "load_batch",
                f"{sc.batch} CSVs, {rows:,} rows: load_csv_batch + sync (s)",
                ours,
                "s",
                1.2,
                False,
                relative=True,
                baseline=theirs,
                runs=loads,
                baseline_runs=[theirs],
                loadavg_start=start,
            )
        )
    if only & {"load_batch_read_csv", "load_batch_recorder"}:
        single = [(str(p), rid, h) for p, rid, h in items]
        for k in range(len(reads), 3):
            reads.append(
                _single_read(d / f"read_csv{k}.duckdb", read_csv_source(VARIABLES), single, VARIABLES)
            )
        if "load_batch_read_csv" in only:
            out.append(
                Result(
                    "load_batch_read_csv",
                    f"{sc.batch} CSVs, {rows:,} rows: load_csv_batch + sync vs one DuckDB read_csv of them "
                    "into cell_data with geometry (s)",
                    ours,
                    "s",
                    1.5,
                    False,
                    relative=True,
                    baseline=statistics.median(reads),
                    runs=loads,
                    baseline_runs=reads,
                    loadavg_start=start,
                )
            )
        if "load_batch_recorder" in only:
            start = loadavg()
            reg, runs = _registry_with_runs(d / "workers.duckdb", sc.batch)
            t0 = time.perf_counter()
            with RunRecorder(d / "workers.duckdb") as rec:
                for i, (rid, h) in enumerate(runs):
                    rec.load_csv(files[i % len(files)], rid, h)
            reg.sync()
            recorded = time.perf_counter() - t0
            assert _count(reg) == rows
            reg.close()
            out.append(
                Result(
                    "load_batch_recorder",
                    f"{sc.batch} CSVs, {rows:,} rows: RunRecorder.load_csv each, then one sync, vs one "
                    "DuckDB read_csv of them into cell_data with geometry (s)",
                    recorded,
                    "s",
                    1.5,
                    False,
                    relative=True,
                    baseline=statistics.median(reads),
                    runs=[recorded],
                    baseline_runs=reads,
                    loadavg_start=start,
                )
            )
    shutil.rmtree(d)
    return out


# --- 2-3. rebuild and diagnostics on a big cell_data -----------------------------------------------


def build_big(sc: Scale, base: Path, files: list[Path]) -> tuple[Path, list[str], float]:
    """A registry of ``rebuild_files`` loads (hashes x replicates); return db, hashes, seconds."""
    d = base / "big"
    d.mkdir()
    db = d / "reg.duckdb"
    reg, runs = _registry_with_runs(db, sc.rebuild_files, sc.hashes)
    t0 = time.perf_counter()
    loader = CellDataLoader(reg)
    loader.load_csv_batch([(files[i % len(files)], rid, h) for i, (rid, h) in enumerate(runs)])
    reg.sync()
    t = time.perf_counter() - t0
    hashes = sorted({h for _, h in runs})
    reg.close()
    return db, hashes, t


def bench_rebuild(sc: Scale, db: Path, load_seconds: float, only: set[str], profile: int) -> list[Result]:
    """Delete the DuckDB file and time the reopen that rebuilds it from the log
    (``rebuild_cells``); beside it, DuckDB alone reading the same result files into the same
    table (``rebuild_cells_parquet``)."""
    for suffix in ("", ".wal"):
        p = Path(str(db) + suffix)
        if p.exists():
            p.unlink()
    rows = sc.rebuild_files * sc.steps * sc.cells
    start = loadavg()

    def reopen() -> RunRegistry:
        return RunRegistry(db, enable_spatial=True)

    t0 = time.perf_counter()
    reg = profile_call("rebuild on open", reopen, profile) if profile else reopen()
    t = time.perf_counter() - t0
    n = _count(reg)
    assert n == rows, (n, rows)
    store = Path(default_events_path(db))
    blobs = [
        (str(store / blob), rid, h)
        for blob, rid, h in reg.query("SELECT blob, run_id, run_hash FROM events_results_loaded").fetchall()
    ]
    reg.close()
    out = []
    if "rebuild_cells" in only:
        out.append(
            Result(
                "rebuild_cells",
                f"reopen after deleting the .duckdb: rebuild of {rows:,} cell_data rows (s)",
                t,
                "s",
                3.0,
                False,
                runs=[t],
                extra={"rows": rows, "fixture_load_seconds": round(load_seconds, 2)},
                loadavg_start=start,
            )
        )
    if "rebuild_cells_parquet" in only:
        reads = [
            _single_read(db.with_name(f"parquet{k}.duckdb"), PARQUET_SOURCE, blobs, VARIABLES)
            for k in range(3)
        ]
        out.append(
            Result(
                "rebuild_cells_parquet",
                f"rebuild of {rows:,} cell_data rows vs one DuckDB read_parquet of the same "
                f"{len(blobs)} result files into cell_data with geometry (s)",
                t,
                "s",
                2.0,
                False,
                relative=True,
                baseline=statistics.median(reads),
                runs=[t],
                baseline_runs=reads,
                extra={"rows": rows},
                loadavg_start=start,
            )
        )
    return out


def _diagnostics(reg: RunRegistry) -> Any | None:
    """``DiagnosticQueries(reg)`` if the module exists yet, else None."""
    try:
        from joshreg.results.diagnostics import DiagnosticQueries  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return DiagnosticQueries(reg)


def bench_queries(sc: Scale, db: Path, hashes: list[str], only: set[str], profile: int) -> list[Result]:
    """Median of ``query_repeats`` calls of each query on the synced big registry."""
    rows = sc.rebuild_files * sc.steps * sc.cells
    reg = RunRegistry(db, enable_spatial=True)
    reg.sync()
    dq = _diagnostics(reg)
    calls: dict[str, Callable[[], Any]] = {
        "get_timeseries": lambda: dq.get_timeseries("avg.height", run_hash=hashes[0]),
        "get_comparison": lambda: dq.get_comparison("avg.height", group_by=PARAM),
    }
    out = []
    for name, call in calls.items():
        if name not in only:
            continue
        what = f"DiagnosticQueries.{name} over {rows:,} rows (s, median of {sc.query_repeats})"
        if dq is None or not callable(getattr(dq, name, None)):
            print(f"  {name}: DiagnosticQueries has no {name}; left out")
            continue
        call()  # warm-up: first-call planning and caches
        times = []
        for r in range(sc.query_repeats):
            t0 = time.perf_counter()
            df = profile_call(name, call, profile) if profile and r == 0 else call()
            times.append(time.perf_counter() - t0)
        out.append(
            Result(
                name,
                what,
                statistics.median(times),
                "s",
                0.2,
                False,
                runs=times,
                extra={"result_rows": len(df)},
            )
        )
    reg.close()
    return out


# --- scale: 50 million rows, each side in its own process ------------------------------------------

SCALE_VARIABLES = tuple(v for v in VARIABLES if v != "status")  # five numeric variables
SCALE = Scale(steps=100, cells=1000)  # 100,000 rows a file
SCALE_REPLICATES = 10  # files per configuration; a tenth of the configurations marked bad


def _scale_hashes(n_files: int) -> int:
    """Configurations of a scale run: ``SCALE_REPLICATES`` files each, at least two (one current)."""
    return max(2, n_files // SCALE_REPLICATES)


@dataclass
class ScaleSizes:
    """The --scale workload, as the report states it."""

    files: int
    rows_per_file: int = SCALE.steps * SCALE.cells
    cells: int = SCALE.cells
    steps: int = SCALE.steps
    variables: int = len(SCALE_VARIABLES)
    memory_limit: str = "2GiB"


def _child(side: str, folder: Path, n_files: int, memory_limit: str) -> dict[str, Any]:
    """One side of the scale row, run in a fresh process (``--scale-child``) so its peak
    resident size is its own: ``ours`` loads the files with ``load_csv_batch`` + ``sync`` and
    times the three reads; ``base`` is one ``read_csv`` of them into DuckDB with geometry."""
    files = sorted((folder / "csv").glob("*.csv"))[:n_files]
    hashes = _scale_hashes(n_files)
    got: dict[str, Any] = {}
    if side == "base":
        items = [(str(f), f"run-{i}", f"{i % hashes:012x}") for i, f in enumerate(files)]
        got["seconds"] = _single_read(
            folder / "base.duckdb", read_csv_source(SCALE_VARIABLES), items, SCALE_VARIABLES, memory_limit
        )
    else:
        reg, runs = _registry_with_runs(folder / "reg.duckdb", n_files, hashes)
        con = reg.conn
        assert con is not None
        if memory_limit != "none":  # "none": DuckDB's default, as joshreg leaves it
            con.execute(f"SET memory_limit = {_quote(memory_limit)}")
        got["duckdb_memory_limit"] = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        t0 = time.perf_counter()
        CellDataLoader(reg).load_csv_batch([(f, rid, h) for f, (rid, h) in zip(files, runs, strict=True)])
        reg.sync()
        got["seconds"] = time.perf_counter() - t0
        got["rows"] = _count(reg)
        for k in range(0, hashes, 10):
            reg.mark_run(f"{k:012x}", "bad")
        reg.sync()
        dq = DiagnosticQueries(reg)
        probe = f"{min(1, hashes - 1):012x}"  # a current configuration (0 is marked bad)
        calls: dict[str, Callable[[], Any]] = {
            "scale_timeseries": lambda: dq.get_timeseries("avg.height", run_hash=probe),
            "scale_comparison": lambda: dq.get_parameter_comparison("avg.height", PARAM),
            "scale_summary": lambda: reg.get_data_summary(),
        }
        for name, call in calls.items():
            call()  # warm-up
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                call()
                times.append(time.perf_counter() - t0)
            got[name] = times
        reg.close()
    got["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    got["memory_limit"] = memory_limit
    return got


def _run_child(side: str, folder: Path, n_files: int, memory_limit: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--scale-child", side, str(folder), str(n_files), memory_limit]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_scale(base: Path, n_files: int, memory_limit: str) -> list[Result]:
    """The scale rows: ``n_files`` CSVs of 100,000 rows loaded by joshreg and by one DuckDB
    read, then the three reads on joshreg's registry; each side's peak resident size."""
    csvs = base / "csv"
    csvs.mkdir()
    t = time.perf_counter()
    hashes = _scale_hashes(n_files)
    for i in range(n_files):  # file i is run i: configuration i % hashes, replicate i // hashes
        write_csv(csvs / f"patch_{i:04d}.csv", SCALE, seed=i, replicate=i // hashes, text=False)
    size = sum(f.stat().st_size for f in csvs.glob("*.csv"))
    print(f"  [{time.perf_counter() - t:6.1f} s] wrote {n_files} CSVs, {size / 1e9:.2f} GB", flush=True)
    rows = n_files * SCALE.steps * SCALE.cells
    start = loadavg()
    t = time.perf_counter()
    base_got = _run_child("base", base, n_files, memory_limit)
    (base / "base.duckdb").unlink()
    print(f"  [{time.perf_counter() - t:6.1f} s] baseline read_csv: {_fmt(base_got['seconds'])}", flush=True)
    t = time.perf_counter()
    ours = _run_child("ours", base, n_files, memory_limit)
    print(f"  [{time.perf_counter() - t:6.1f} s] joshreg load + reads: {_fmt(ours['seconds'])}", flush=True)
    assert ours["rows"] == rows, (ours["rows"], rows)
    gib = 1 << 30
    memory = {
        "memory_limit": memory_limit,
        "duckdb_memory_limit": ours.get("duckdb_memory_limit"),
        "max_rss_gib": round(ours["max_rss_bytes"] / gib, 2),
        "baseline_max_rss_gib": round(base_got["max_rss_bytes"] / gib, 2),
        "max_rss_goal_gib": 4,
        "max_rss_passed": max(ours["max_rss_bytes"], base_got["max_rss_bytes"]) <= 4 * gib,
    }
    out = [
        Result(
            "scale_load_50m",
            f"{n_files} CSVs of 100,000 rows ({rows:,} cell_data rows, 5 variables, geometry): "
            "load_csv_batch + sync vs one DuckDB read_csv of them with geometry (s)",
            ours["seconds"],
            "s",
            1.5,
            False,
            relative=True,
            baseline=base_got["seconds"],
            runs=[ours["seconds"]],
            baseline_runs=[base_got["seconds"]],
            extra={"rows": rows, "csv_bytes": size, **memory},
            loadavg_start=start,
        )
    ]
    for name, what in (
        ("scale_timeseries", "get_timeseries of one configuration"),
        ("scale_comparison", "get_parameter_comparison"),
        ("scale_summary", "get_data_summary, unfiltered"),
    ):
        out.append(
            Result(
                name,
                f"{what} over the current runs of {rows:,} rows (s, median of 3)",
                statistics.median(ours[name]),
                "s",
                1.0,
                False,
                runs=ours[name],
                extra={"rows": rows},
            )
        )
    return out


# --- report ---------------------------------------------------------------------------------------


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v * 1000:,.1f} ms" if v < 1 else f"{v:,.2f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_args(ap, "bench-output/results.json (results-scale.json with --scale)")
    ap.add_argument(
        "--scale-files",
        type=int,
        default=int(os.environ.get("JOSHREG_BENCH_SCALE_FILES", "500")),
        metavar="N",
        help="CSVs of 100,000 rows for --scale (default 500, or JOSHREG_BENCH_SCALE_FILES)",
    )
    ap.add_argument(
        "--memory-limit",
        default="2GiB",
        help="DuckDB memory_limit on both sides of --scale (default 2GiB; 'none' leaves DuckDB's default, "
        "80%% of RAM, which is what joshreg does)",
    )
    ap.add_argument("--scale-child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.scale_child:
        side, folder, n, limit = args.scale_child
        print(json.dumps(_child(side, Path(folder), int(n), limit)))
        return 0
    sc = QUICK if args.quick else Scale()
    only = chosen(args, "bench_results", NAMES, SCALE_NAMES)
    if not only:
        return 0
    info = machine()
    mode = ("quick-scale" if args.quick else "scale") if args.scale else ("quick" if args.quick else "full")
    print(
        f"joshreg results benchmarks ({mode}): nproc={info['nproc']} "
        f"python={info['python']} duckdb={info['duckdb']} {info['platform']}\n"
    )
    results: list[Result] = []
    t_all = time.perf_counter()
    n_files = 0
    with tempfile.TemporaryDirectory(prefix="joshreg-bench-results-", dir=args.tmp) as tmp:
        base = Path(tmp)
        warm = duckdb.connect()
        load_spatial(warm)  # the extension's shared library, once per process, before any clock
        warm.close()
        if only & set(SCALE_NAMES):
            n_files = SCALE_REPLICATES if args.quick else max(SCALE_REPLICATES, args.scale_files)
            run_step(results, "scale", lambda: bench_scale(base, n_files, args.memory_limit))
            results[:] = [r for r in results if r.name in only]
        if only & set(NAMES):
            csvs = base / "csv"
            csvs.mkdir()
            count = max(sc.batch, sc.rebuild_files, 2 * sc.repeats)
            files = [csvs / f"patch_{i:03d}.csv" for i in range(count)]
            t = time.perf_counter()
            for i, f in enumerate(files):
                write_csv(f, sc, seed=i, replicate=i // sc.hashes)
            size = files[0].stat().st_size
            print(
                f"  [{time.perf_counter() - t:6.1f} s] wrote {count} CSVs of {size / 1e6:.1f} MB each",
                flush=True,
            )
            if "load_single" in only:
                run_step(results, "load_single", lambda: bench_load_single(sc, base, files, args.profile))
            if only & {"load_batch", "load_batch_read_csv", "load_batch_recorder"}:
                run_step(results, "load_batch", lambda: bench_load_batch(sc, base, files, only, args.profile))
            if only & {"rebuild_cells", "rebuild_cells_parquet", "get_timeseries", "get_comparison"}:
                t = time.perf_counter()
                db, hashes, load_s = build_big(sc, base, files)
                took = time.perf_counter() - t
                print(f"  [{took:6.1f} s] big registry: {sc.rebuild_files} loads", flush=True)
                if only & {"rebuild_cells", "rebuild_cells_parquet"}:
                    run_step(
                        results, "rebuild_cells", lambda: bench_rebuild(sc, db, load_s, only, args.profile)
                    )
                if only & {"get_timeseries", "get_comparison"}:
                    run_step(results, "queries", lambda: bench_queries(sc, db, hashes, only, args.profile))
    total = time.perf_counter() - t_all
    print(f"\ntotal {total:.1f} s; load average at start {info['loadavg_at_start']}, at end {loadavg()}\n")
    print_table(results)
    default = "bench-output/results-scale.json" if args.scale else "bench-output/results.json"
    sizes = ScaleSizes(n_files, memory_limit=args.memory_limit) if args.scale else sc
    write_report(Path(args.out or default), args.quick, info, sizes, total, results, scale=args.scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
