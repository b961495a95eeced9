"""A small sweep, end to end: ``python -m joshreg.demo [--dir DIR]``.

Imports ``registry``, ``recorder``, ``plots``, ``cli`` (for its tables). It shows what the event
log buys: four worker processes run a stand-in simulation, write Josh-format CSV exports and
load them into one registry at the same time with no lock, while the main process keeps the
registry open; then labels move (every move stays in the history), and the results are
summarised, queried through a time and a spatial filter, and plotted.
The directory (``demo-output/`` by default) is wiped first, so the demo always starts fresh.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import multiprocessing
import random
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from .cli import (
    HISTORY_HEADERS,
    LABEL_HEADERS,
    SESSION_HEADERS,
    format_duration,
    format_table,
    history_rows,
    label_rows,
    session_rows,
    session_table_row,
)
from .errors import JoshregError
from .plots import plot_comparison, plot_spatial, plot_timeseries
from .recorder import RunRecorder, default_events_path
from .registry import RunRegistry

__all__ = ["DemoConfig", "main", "run_demo"]

MAX_GROWTH = (40.0, 60.0, 80.0)
SURVIVAL_RATE = (0.80, 0.85, 0.90, 0.95)
WORKERS = 4
# The stand-in landscape: GRID x GRID patches of CELL degrees, south-west corner at ORIGIN.
GRID = 4
CELL = 0.05
ORIGIN = (-116.0, 34.0)
STEPS = 10
# Josh's export layout: variables first, then the position columns, step and replicate last.
EXPORT_COLUMNS = (
    "avg.height",
    "treeCount",
    "position.x",
    "position.y",
    "position.longitude",
    "position.latitude",
    "step",
    "replicate",
)
# Marks a directory as the demo's own, so that wiping it can never remove someone's files.
MARKER = ".joshreg-demo"


@dataclass
class DemoConfig:
    """Stands in for joshpy's JobConfig: all ``create_session`` needs is ``to_dict()``."""

    simulation: str = "Main"
    replicates: int = 3
    template_path: str = "templates/sweep.jshc.j2"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def run_hash(params: dict[str, float]) -> str:
    """A deterministic 12-hex hash of a parameter set (upstream hashes the config's content)."""
    text = ",".join(f"{k}={v!r}" for k, v in sorted(params.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _fails(params: dict[str, float]) -> bool:
    # One corner of the grid "crashes", so the tables show a failure too.
    return params["maxGrowth"] == MAX_GROWTH[-1] and params["survivalRate"] == SURVIVAL_RATE[-1]


def simulate(run_hash: str, params: dict[str, float], replicate: int) -> list[tuple[object, ...]]:
    """A stand-in for Josh: trees per patch survive, recruit and grow for STEPS steps.

    Survival follows ``survivalRate``, growth ``maxGrowth``; patches to the north-east are
    kinder, and the replicate seeds the randomness, so replicates differ but reruns do not.
    Rows are in ``EXPORT_COLUMNS`` order.
    """
    rng = random.Random(f"{run_hash}:{replicate}")
    growth, survival = params["maxGrowth"], params["survivalRate"]
    rows: list[tuple[object, ...]] = []
    for x, y in itertools.product(range(GRID), range(GRID)):
        suitability = 0.6 + 0.8 * (x + y) / (2 * GRID - 2)
        trees, height = rng.randint(8, 14), 1.0
        lon, lat = ORIGIN[0] + (x + 0.5) * CELL, ORIGIN[1] + (y + 0.5) * CELL
        for step in range(STEPS):
            if step:
                survivors = sum(rng.random() < survival for _ in range(trees))
                trees = survivors + round(rng.uniform(0, 4) * suitability)
                crowding = max(0.0, 1.0 - trees / 60)
                height += growth / 100 * suitability * crowding * rng.uniform(0.6, 1.4)
            rows.append(
                (round(height, 3), trees, x + 0.5, y + 0.5, round(lon, 4), round(lat, 4), step, replicate)
            )
    return rows


def write_export(path: Path, rows: list[tuple[object, ...]]) -> None:
    """Write rows the way Josh's CSV export does (header, comma-separated, no index)."""
    lines = [",".join(EXPORT_COLUMNS), *(",".join(str(v) for v in row) for row in rows)]
    path.write_text("\n".join(lines) + "\n")


def _worker(
    db_path: str, session_id: str, jobs: list[tuple[str, dict[str, float]]], out_dir: str, replicates: int
) -> None:
    """One worker process: simulate, export and load each of its runs; never opens the DuckDB file."""
    exports = Path(out_dir) / "exports"
    with RunRecorder(db_path, session_id=session_id) as rec:
        for i, (h, params) in enumerate(jobs):
            run_id = rec.start_run(h, replicate=0, metadata={"worker_job": i})
            if _fails(params):
                rec.complete_run(run_id, 1, "simulated crash: population exploded at step 7")
                continue
            paths = []
            for r in range(replicates):
                paths.append(exports / f"{h}_{r}.csv")
                write_export(paths[-1], simulate(h, params, r))
            rec.complete_run(run_id, 0)
            rows = sum(rec.load_csv(path, run_id, h) for path in paths)
            rec.register_output(run_id, "export", f"{exports}/{h}_{{replicate}}.csv", row_count=rows)


def _prepare(directory: Path) -> None:
    if directory.exists():
        if any(directory.iterdir()) and not (directory / MARKER).exists():
            raise JoshregError(
                f"{directory} is not empty and was not made by the demo; pass another --dir "
                "(the demo wipes its directory)"
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("made by python -m joshreg.demo; wiped on each run\n")


def run_demo(directory: Path, out: TextIO | None = None) -> Path:
    """Run the sweep in ``directory``, print its tables to ``out`` (stdout); return the registry path."""
    out = out or sys.stdout
    t0 = time.perf_counter()
    _prepare(directory)
    (directory / "exports").mkdir()
    db_path = directory / "sweep.duckdb"
    grid = [{"maxGrowth": g, "survivalRate": s} for g, s in itertools.product(MAX_GROWTH, SURVIVAL_RATE)]
    demo_config = DemoConfig()

    with RunRegistry(db_path) as reg:
        sid = reg.create_session(demo_config, experiment_name="demo_sweep")
        for params in grid:
            h = run_hash(params)
            config = "\n".join(f"{k} = {v}" for k, v in params.items())
            reg.register_run(sid, h, "models/main.josh", config, None, params)
        reg.update_session_status(sid, "running")

        jobs = [(run_hash(p), p) for p in grid]
        ctx = multiprocessing.get_context("spawn")
        procs = [
            ctx.Process(
                target=_worker,
                args=(str(db_path), sid, jobs[w::WORKERS], str(directory), demo_config.replicates),
            )
            for w in range(WORKERS)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        failed = [p.exitcode for p in procs if p.exitcode != 0]
        if failed:
            raise JoshregError(f"{len(failed)} demo worker(s) failed with exit codes {failed}")
        reg.update_session_status(sid, "completed")

        population = final_population(reg)
        best, second, third = sorted(population, key=population.__getitem__, reverse=True)[:3]
        reg.label_run(best, "baseline")
        reg.label_run(second, "candidate")
        reg.label_run(third, "baseline", on_collision="timestamp")

        _print_report(reg, grid, population, out)
        _print_results(reg, sid, out)
        _write_plots(reg, sid, directory / "plots", out)
    events = default_events_path(db_path)
    cli = _cli_name()
    out.write(
        f"\nregistry: {db_path}   event log: {events}/   ({time.perf_counter() - t0:.1f} s)\n"
        f"look around: {cli} log {db_path}   |   {cli} labels {db_path} --history\n"
    )
    return db_path


def final_population(reg: RunRegistry) -> dict[str, float]:
    """Mean trees per patch at the last step, over the replicates: what 'best run' means here."""
    rows = reg.query(
        "SELECT run_hash, round(avg(treeCount), 2) FROM cell_data "
        "WHERE step = (SELECT max(step) FROM cell_data) GROUP BY run_hash"
    ).fetchall()
    return dict(rows)


def _cli_name() -> str:
    """How to call the CLI from here: the script beside this interpreter (venvs are rarely active)."""
    script = Path(sys.executable).parent / "joshreg"
    if not script.exists():
        return "joshreg"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _print_report(
    reg: RunRegistry, grid: list[dict[str, float]], population: dict[str, float], out: TextIO
) -> None:
    out.write("Sessions\n")
    out.write(format_table(SESSION_HEADERS, [session_table_row(r) for r in session_rows(reg)]))
    out.write("\n\nRuns\n")
    table = []
    for params in grid:
        h = run_hash(params)
        for r in reg.get_runs_for_hash(h):
            table.append(
                (
                    h,
                    params["maxGrowth"],
                    params["survivalRate"],
                    population.get(h),
                    r.exit_code,
                    format_duration(r.started_at, r.completed_at),
                    r.error_message,
                )
            )
    headers = ("RUN_HASH", "maxGrowth", "survivalRate", "TREES_AT_END", "EXIT", "DURATION", "ERROR")
    out.write(format_table(headers, table) + "\n\nLabels\n")
    labels = [(r["label"], r["run_hash"], r["created_at"]) for r in label_rows(reg)]
    out.write(format_table(LABEL_HEADERS, labels) + "\n\nLabel history\n")
    out.write(format_table(HISTORY_HEADERS, history_rows(reg.label_history())) + "\n")


def _print_results(reg: RunRegistry, sid: str, out: TextIO) -> None:
    """The loaded exports: a summary, then one query through a time and a spatial filter."""
    out.write("\nSimulation results (Josh CSV exports loaded by the workers)\n")
    if hasattr(reg, "get_data_summary"):
        out.write(f"{reg.get_data_summary(sid)}\n")
    else:
        rows, configs, lo, hi = reg.query(
            "SELECT count(*), count(DISTINCT run_hash), min(step), max(step) FROM cell_data"
        ).fetchone()
        out.write(f"Rows: {rows:,}   Configs: {configs}   Steps: {lo} - {hi}\n")

    steps = (STEPS // 2, STEPS - 1)
    bbox = (ORIGIN[0], ORIGIN[0] + 2 * CELL, ORIGIN[1], ORIGIN[1] + 2 * CELL)
    with reg.time_filter(steps), reg.spatial_filter(bbox=bbox):
        clause, params = reg.filter_clause("cd")
        rows = reg.query(
            'SELECT cd.run_hash, cp.maxGrowth, cp.survivalRate, count(*), round(avg(cd."avg.height"), 2), '
            "round(avg(cd.treeCount), 1) AS trees "
            "FROM cell_data cd JOIN config_parameters cp ON cp.run_hash = cd.run_hash "
            f"WHERE TRUE{clause} GROUP BY ALL ORDER BY trees DESC LIMIT 5",
            params,
        ).fetchall()
    out.write(
        f"\nFiltered query: steps {steps[0]}-{steps[1]} in the south-west corner, lon {bbox[0]}..{bbox[1]}, "
        f"lat {bbox[2]}..{bbox[3]}\n  with reg.time_filter({steps}), reg.spatial_filter(bbox={bbox}):\n"
        f'      reg.filter_clause("cd") → "{clause.removeprefix(" AND ")}"\n'
    )
    headers = ("RUN_HASH", "maxGrowth", "survivalRate", "ROWS", "avg.height", "treeCount")
    out.write(format_table(headers, rows) + "\n")


def _write_plots(reg: RunRegistry, sid: str, folder: Path, out: TextIO) -> None:
    """Three PNGs: every configuration over time, growth compared, the baseline's map."""
    try:
        import matplotlib  # noqa: F401  (only to say plainly why there are no plots)
    except ImportError:
        out.write("\nPlots skipped: matplotlib is not installed (pip install 'joshreg[plot]')\n")
        return
    folder.mkdir()
    baseline = reg.resolve_label("baseline")
    paths = [
        plot_timeseries(reg, "treeCount", session_id=sid, path=folder / "timeseries_treeCount.png"),
        plot_comparison(reg, "avg.height", "maxGrowth", path=folder / "comparison_height_by_maxGrowth.png"),
        plot_spatial(reg, "treeCount", STEPS - 1, baseline, path=folder / "map_treeCount_baseline.png"),
    ]
    out.write("\nPlots\n" + "".join(f"  {p}\n" for p in paths))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m joshreg.demo",
        description="Run a 12-configuration demo sweep with 4 concurrent worker processes.",
        epilog="example:\n  python -m joshreg.demo --dir /tmp/joshreg-demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dir", default="demo-output", help="where to write the registry (wiped first; default: demo-output)"
    )
    args = parser.parse_args(argv)
    try:
        run_demo(Path(args.dir))
    except JoshregError as e:
        sys.stderr.write(f"joshreg.demo: error: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
