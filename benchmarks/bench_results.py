"""Simulation-results benchmarks of joshreg (issue 3 goals), in one run.

Run from the repository root (``just bench`` runs it after ``bench_core.py``)::

    python benchmarks/bench_results.py            # full scale, about 1 minute
    python benchmarks/bench_results.py --quick    # small-scale smoke run, under 30 s
    python benchmarks/bench_results.py --only load_single --profile 25

Prints a table (figure, goal, baseline, ratio, PASS/MISS) and writes ``bench-output/results.json``.
The baseline loads the same Josh CSV the upstream way, on a held DuckDB connection: upstream's
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
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from bench_core import machine, profile_call

from joshreg import CellDataLoader, RunRegistry
from joshreg.projection.spatial import load_spatial

NAMES = ("load_single", "load_batch", "rebuild_cells", "get_timeseries", "get_comparison")
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


@dataclass
class Result:
    """One row of the table; ``baseline`` rows compare times, the others meet a time goal."""

    name: str
    what: str
    value: float | None
    unit: str
    goal: float
    baseline: float | None = None
    runs: list[float] = field(default_factory=list)
    baseline_runs: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.value is None:
            return None
        if self.baseline is not None:
            return self.value / self.baseline
        return self.goal / self.value if self.value else float("inf")

    @property
    def passed(self) -> bool | None:
        r = self.ratio
        if r is None:
            return None
        return r <= self.goal if self.baseline is not None else r >= 1.0


# --- fixtures -----------------------------------------------------------------------------------


def write_csv(path: Path, sc: Scale, seed: int, replicate: int) -> int:
    """A Josh patch export: position columns, 6 variables (5 numeric, 1 text), step, replicate.

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
        baseline=statistics.median(theirs),
        runs=ours,
        baseline_runs=theirs,
        extra={
            "first_load_seconds": [round(x, 4) for x in cold],
            "first_load_baseline_seconds": [round(x, 4) for x in cold_base],
        },
    )


def bench_load_batch(sc: Scale, base: Path, files: list[Path], profile: int) -> Result:
    """``sc.batch`` files: ``load_csv_batch`` + ``sync`` vs that many baseline INSERTs."""
    d = base / "batch"
    d.mkdir()
    rows = sc.steps * sc.cells * sc.batch
    reg, runs = _registry_with_runs(d / "reg.duckdb", sc.batch)
    items = [(files[i % len(files)], rid, h) for i, (rid, h) in enumerate(runs)]
    loader = CellDataLoader(reg)

    def ours_fn() -> None:
        loader.load_csv_batch(items)
        reg.sync()

    t0 = time.perf_counter()
    profile_call("load_csv_batch + sync", ours_fn, profile) if profile else ours_fn()
    ours = time.perf_counter() - t0
    assert _count(reg) == rows
    reg.close()
    b = Baseline(d / "upstream.duckdb")
    t0 = time.perf_counter()
    for path, rid, h in items:
        b.load(path, rid, h)
    theirs = time.perf_counter() - t0
    assert b.count() == rows
    b.close()
    shutil.rmtree(d)
    return Result(
        "load_batch",
        f"{sc.batch} CSVs, {rows:,} rows: load_csv_batch + sync (s)",
        ours,
        "s",
        1.2,
        baseline=theirs,
        runs=[ours],
        baseline_runs=[theirs],
    )


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


def bench_rebuild(sc: Scale, db: Path, load_seconds: float, profile: int) -> Result:
    """Delete the DuckDB file and time the reopen that rebuilds it from the log."""
    for suffix in ("", ".wal"):
        p = Path(str(db) + suffix)
        if p.exists():
            p.unlink()
    rows = sc.rebuild_files * sc.steps * sc.cells

    def reopen() -> RunRegistry:
        return RunRegistry(db, enable_spatial=True)

    t0 = time.perf_counter()
    reg = profile_call("rebuild on open", reopen, profile) if profile else reopen()
    t = time.perf_counter() - t0
    n = _count(reg)
    assert n == rows, (n, rows)
    reg.close()
    return Result(
        "rebuild_cells",
        f"reopen after deleting the .duckdb: rebuild of {rows:,} cell_data rows (s)",
        t,
        "s",
        3.0,
        runs=[t],
        extra={"rows": rows, "fixture_load_seconds": round(load_seconds, 2)},
    )


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
            out.append(Result(name, what + ": not available", None, "s", 0.2, extra={"available": False}))
            continue
        call()  # warm-up: first-call planning and caches
        times = []
        for r in range(sc.query_repeats):
            t0 = time.perf_counter()
            df = profile_call(name, call, profile) if profile and r == 0 else call()
            times.append(time.perf_counter() - t0)
        out.append(
            Result(name, what, statistics.median(times), "s", 0.2, runs=times, extra={"result_rows": len(df)})
        )
    reg.close()
    return out


# --- report ---------------------------------------------------------------------------------------


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v * 1000:,.1f} ms" if v < 1 else f"{v:,.2f} s"


def print_table(results: list[Result]) -> None:
    head = f"{'benchmark':<16} {'joshreg':>14} {'goal':>14} {'baseline':>12} {'ratio':>8}  result"
    print(head)
    print("-" * len(head))
    for r in results:
        goal = f"<= {r.goal:g}x base" if r.baseline is not None else f"<= {_fmt(r.goal)}"
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        verdict = {True: "PASS", False: "MISS", None: "not available"}[r.passed]
        value = "n/a" if r.value is None else _fmt(r.value)
        print(f"{r.name:<16} {value:>14} {goal:>14} {_fmt(r.baseline):>12} {ratio:>8}  {verdict}")
    print()
    for r in results:
        line = f"  {r.name}: {r.what}"
        if r.runs:
            line += f"; runs [{', '.join(_fmt(x) for x in r.runs)}]"
        if r.baseline_runs:
            line += f"; baseline runs [{', '.join(_fmt(x) for x in r.baseline_runs)}]"
        if r.extra:
            line += f"; {r.extra}"
        print(line)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small-scale smoke run (< 30 s)")
    ap.add_argument(
        "--only", action="append", metavar="NAME", help=f"run only this benchmark (repeatable): {NAMES}"
    )
    ap.add_argument("--out", default="bench-output/results.json", help="where to write the JSON results")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="profile the joshreg paths, top N")
    ap.add_argument("--tmp", default=None, help="directory for temporary stores (default: system temp)")
    args = ap.parse_args(argv)
    sc = QUICK if args.quick else Scale()
    only = set(NAMES) if not args.only else set(args.only) & set(NAMES)
    if not only:
        print(f"bench_results: nothing to run for --only {args.only} (its benchmarks are {NAMES})")
        return 0
    info = machine()
    print(
        f"joshreg results benchmarks ({'quick' if args.quick else 'full'}): nproc={info['nproc']} "
        f"python={info['python']} duckdb={info['duckdb']} {info['platform']}\n"
    )
    results: list[Result] = []
    t_all = time.perf_counter()

    def step(label: str, fn: Callable[[], Result | list[Result]]) -> None:
        t = time.perf_counter()
        got = fn()
        got = got if isinstance(got, list) else [got]
        results.extend(got)
        figs = ", ".join(f"{g.name} {_fmt(g.value) if g.value is not None else 'n/a'}" for g in got)
        print(f"  [{time.perf_counter() - t:6.1f} s] {label}: {figs}", flush=True)

    with tempfile.TemporaryDirectory(prefix="joshreg-bench-results-", dir=args.tmp) as tmp:
        base = Path(tmp)
        csvs = base / "csv"
        csvs.mkdir()
        n_files = max(sc.batch, sc.rebuild_files, 2 * sc.repeats)
        files = [csvs / f"patch_{i:03d}.csv" for i in range(n_files)]
        warm = duckdb.connect()
        load_spatial(warm)  # the extension's shared library, once per process, before any clock
        warm.close()
        t = time.perf_counter()
        for i, f in enumerate(files):
            write_csv(f, sc, seed=i, replicate=i // sc.hashes)
        size = files[0].stat().st_size
        print(
            f"  [{time.perf_counter() - t:6.1f} s] wrote {n_files} CSVs of {size / 1e6:.1f} MB each",
            flush=True,
        )
        if "load_single" in only:
            step("load_single", lambda: bench_load_single(sc, base, files, args.profile))
        if "load_batch" in only:
            step("load_batch", lambda: bench_load_batch(sc, base, files, args.profile))
        if only & {"rebuild_cells", "get_timeseries", "get_comparison"}:
            t = time.perf_counter()
            db, hashes, load_s = build_big(sc, base, files)
            print(f"  [{time.perf_counter() - t:6.1f} s] big registry: {sc.rebuild_files} loads", flush=True)
            if "rebuild_cells" in only:
                step("rebuild_cells", lambda: bench_rebuild(sc, db, load_s, args.profile))
            if only & {"get_timeseries", "get_comparison"}:
                step("queries", lambda: bench_queries(sc, db, hashes, only, args.profile))
    total = time.perf_counter() - t_all
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\ntotal {total:.1f} s; load average at start {info['loadavg_at_start']}, at end [{load}]\n")
    print_table(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "mode": "quick" if args.quick else "full",
        "machine": info,
        "scale": asdict(sc),
        "csv_bytes": size,
        "total_seconds": round(total, 2),
        "results": [
            {**asdict(r), "ratio": r.ratio, "passed": r.passed, "goal_kind": _goal_kind(r)} for r in results
        ],
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


def _goal_kind(r: Result) -> str:
    if r.baseline is not None:
        return "joshreg seconds / baseline seconds <= goal"
    return "seconds <= goal"


if __name__ == "__main__":
    sys.exit(main())
