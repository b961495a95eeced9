"""Importing a joshpy registry, against DuckDB alone copying the same tables into a new file.

Run from the repository root (``just bench`` runs it)::

    python benchmarks/bench_import.py            # 10,000 configurations, 50,000 executions,
                                                 # 1,000,000 cell_data rows; about a minute
    python benchmarks/bench_import.py --quick    # a smoke run, a few seconds
    python benchmarks/bench_import.py --profile 25

The source is built with joshpy's schema (section 2 of the joshpy reference, with its keys) by
bulk SQL: 10 sessions, 10,000 configurations with three typed parameters, 50,000 completed
executions with one output each, 100 labels, and 1,000,000 ``cell_data`` rows (five variables
and positions) belonging to 1,000 of the executions (1,000 rows each: 100 cells × 10 steps).

``import_joshpy`` (``import_10k``) is timed from the call to a projected registry, on a fresh
target each run (``extra.importer_runs``: the importer's own share, reading the source and
appending events and result files; the rest is mostly the projector's rebuild); the baseline
(``import_copy_baseline``) is DuckDB attaching the source and copying every table into a new
file with ``CREATE TABLE AS``. The goal: the import takes at most 3× the copy (``goal`` 3,
``relative``). Writes ``bench-output/import.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_core import Result, bench_args, chosen, loadavg, machine, print_table, profile_call, write_report

from joshpy_shapes import seed_ddl
from joshreg import RunRegistry
from joshreg.projection.tables import UPSTREAM_TABLES

GOAL = 3.0  # the import may take at most 3× DuckDB's copy


@dataclass
class Scale:
    sessions: int = 10
    configs: int = 10_000
    runs_per_config: int = 5
    runs_with_results: int = 1_000
    cells: int = 100
    steps: int = 10
    labels: int = 100
    repeats: int = 3


QUICK = Scale(sessions=2, configs=500, runs_with_results=50, cells=20, steps=5, labels=10, repeats=1)

TABLES = UPSTREAM_TABLES


def build_source(path: Path, sc: Scale) -> dict[str, int]:
    """A joshpy-shaped registry at ``path``, filled by bulk SQL; its row counts."""
    runs = sc.configs * sc.runs_per_config
    with duckdb.connect(str(path)) as con:
        con.execute(seed_ddl(keys=True))
        con.execute("ALTER TABLE config_parameters ADD COLUMN maxGrowth DOUBLE")
        con.execute("ALTER TABLE config_parameters ADD COLUMN survival DOUBLE")
        con.execute("ALTER TABLE config_parameters ADD COLUMN scenario VARCHAR")
        for v in ("treeCount", "avg.height", "cover", "biomass", "soilWater"):
            con.execute(f'ALTER TABLE cell_data ADD COLUMN "{v}" DOUBLE')
        con.execute(
            f"""INSERT INTO sweep_sessions (session_id, experiment_name, simulation, metadata, status)
            SELECT 'session-' || i, 'experiment ' || i, 'Main',
                   '{{"job_config": {{"replicates": 5}}, "git_hash": "0123abc"}}', 'completed'
            FROM range({sc.sessions}) t(i)"""
        )
        con.execute(
            f"""INSERT INTO job_configs (run_hash, session_id, josh_path, config_content, label)
            SELECT printf('%012x', i), 'session-' || (i % {sc.sessions}), 'models/main.josh',
                   'maxGrowth = ' || (i % 97) || chr(10) || 'survival = ' || (i % 13) / 13.0,
                   CASE WHEN i < {sc.labels} THEN 'label-' || i END
            FROM range({sc.configs}) t(i)"""
        )
        con.execute(
            f"""INSERT INTO session_configs (session_id, run_hash)
            SELECT 'session-' || (i % {sc.sessions}), printf('%012x', i) FROM range({sc.configs}) t(i)"""
        )
        con.execute(
            f"""INSERT INTO config_parameters
            SELECT printf('%012x', i), i % 97, (i % 13) / 13.0, CASE WHEN i % 2 = 0 THEN 'dry' ELSE 'wet' END
            FROM range({sc.configs}) t(i)"""
        )
        con.execute(
            f"""INSERT INTO job_runs
            SELECT 'run-' || i, printf('%012x', i // {sc.runs_per_config}),
                   'session-' || ((i // {sc.runs_per_config}) % {sc.sessions}), i % {sc.runs_per_config},
                   TIMESTAMP '2026-06-01' + INTERVAL (i) SECOND,
                   TIMESTAMP '2026-06-01' + INTERVAL (i + 30) SECOND,
                   CASE WHEN i % 50 = 0 THEN 1 ELSE 0 END, '/scratch/out/' || i,
                   CASE WHEN i % 50 = 0 THEN 'java.lang.OutOfMemoryError' END,
                   '{{"replicates": 5}}'
            FROM range({runs}) t(i)"""
        )
        con.execute(
            f"""INSERT INTO run_outputs (output_id, run_id, output_type, file_path, file_size)
            SELECT 'out-' || i, 'run-' || i, 'export.patch', '/scratch/out/' || i || '/patch.csv', 4096
            FROM range({runs}) t(i)"""
        )
        per_run = sc.cells * sc.steps
        con.execute(
            f"""INSERT INTO cell_data (run_id, run_hash, step, replicate, position_x, position_y,
                   longitude, latitude, entity_type, treeCount, "avg.height", cover, biomass, soilWater)
            SELECT 'run-' || r, printf('%012x', r // {sc.runs_per_config}), (k // {sc.cells})::INTEGER,
                   (r % {sc.runs_per_config})::INTEGER, k % {sc.cells}, 0, -116 + (k % {sc.cells}) * 0.01,
                   34.0, 'patch', k % 50, (k % 17) * 0.3, (k % 11) / 11.0, k * 1.5, (k % 7) * 0.1
            FROM range({sc.runs_with_results}) a(r), range({per_run}) b(k)"""
        )
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def copy_baseline(source: Path, target: Path) -> float:
    """DuckDB alone: attach the source and copy every table into a new file."""
    t0 = time.perf_counter()
    with duckdb.connect(str(target)) as con:
        con.execute(f"ATTACH '{source}' AS src (READ_ONLY)")
        con.execute("BEGIN")
        for t in TABLES:
            con.execute(f"CREATE TABLE {t} AS SELECT * FROM src.{t}")
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    return time.perf_counter() - t0


def joshreg_import(source: Path, target: Path) -> tuple[float, float, dict[str, int]]:
    """The whole import's seconds, the importer's own (events and result files; the rest is
    opening, projecting and closing), and what it added."""
    t0 = time.perf_counter()
    with RunRegistry(target) as reg:
        report = reg.import_joshpy(source, source_timezone="UTC")
        rows = reg.query("SELECT count(*) FROM cell_data").fetchone()[0]
    seconds = time.perf_counter() - t0
    return seconds, report.seconds, {**report.added, "projected_cell_rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_args(ap, "bench-output/import.json")
    args = ap.parse_args(argv)
    if not chosen(args, "bench_import", ("import_10k",)):
        return 0
    sc = QUICK if args.quick else Scale()
    info = machine()
    print(f"joshreg import benchmark ({'quick' if args.quick else 'full'}): nproc={info['nproc']}\n")
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="joshreg-bench-import-", dir=args.tmp) as tmp:
        base = Path(tmp)
        source = base / "joshpy.duckdb"
        t0 = time.perf_counter()
        counts = build_source(source, sc)
        print(f"  [{time.perf_counter() - t0:6.1f} s] source: {counts}", flush=True)
        if args.profile:
            profile_call("import", lambda: joshreg_import(source, base / "profiled.duckdb"), args.profile)
        copies, imports, importer, added = [], [], [], {}
        load_start = loadavg()
        for i in range(sc.repeats):
            copies.append(copy_baseline(source, base / f"copy-{i}.duckdb"))
            seconds, own, added = joshreg_import(source, base / f"import-{i}.duckdb")
            imports.append(seconds)
            importer.append(own)
            print(
                f"  copy {copies[-1]:.2f} s, import {imports[-1]:.2f} s "
                f"(importer {own:.2f} s, projection and the rest {seconds - own:.2f} s)",
                flush=True,
            )
        if added.get("projected_cell_rows") != counts["cell_data"]:
            got = added.get("projected_cell_rows")
            raise SystemExit(f"the import projected {got} of {counts['cell_data']} rows")
    result = Result(
        name="import_10k",
        what=(
            f"import_joshpy of {counts['job_configs']:,} configs, {counts['job_runs']:,} runs, "
            f"{counts['cell_data']:,} cell rows, projected; baseline: DuckDB copying the tables"
        ),
        value=statistics.median(imports),
        unit="s",
        goal=GOAL,
        higher_is_better=False,
        baseline=statistics.median(copies),
        runs=imports,
        baseline_runs=copies,
        extra={"added": added, "importer_runs": [round(s, 3) for s in importer]},
        relative=True,
        loadavg_start=load_start,
    )
    total = time.perf_counter() - t_all
    print()
    print_table([result])
    write_report(Path(args.out or "bench-output/import.json"), args.quick, info, sc, total, [result])
    return 0


if __name__ == "__main__":
    sys.exit(main())
