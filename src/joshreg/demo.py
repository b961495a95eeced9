"""A small sweep, end to end: ``python -m joshreg.demo [--dir DIR]``.

Imports ``registry``, ``recorder``, ``cli`` (for its tables). It shows what the event log buys:
four worker processes record their runs into one registry at the same time with no lock, while
the main process keeps the registry open; then labels move and every move stays in the history.
The directory (``demo-output/`` by default) is wiped first, so the demo always starts fresh.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import multiprocessing
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
    run_rows,
    session_rows,
    session_table_row,
)
from .errors import JoshregError
from .recorder import RunRecorder, default_events_path
from .registry import RunRegistry

__all__ = ["DemoConfig", "main", "run_demo"]

MAX_GROWTH = (40.0, 60.0, 80.0)
SURVIVAL_RATE = (0.80, 0.85, 0.90, 0.95)
WORKERS = 4
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


def simulated_population(params: dict[str, float]) -> float:
    """The fake model's outcome: what 'best run' means in this demo."""
    g, s = params["maxGrowth"], params["survivalRate"]
    return round(g * s * (1.0 - abs(s - 0.88)), 3)


def _fails(params: dict[str, float]) -> bool:
    # One corner of the grid "crashes", so the tables show a failure too.
    return params["maxGrowth"] == MAX_GROWTH[-1] and params["survivalRate"] == SURVIVAL_RATE[-1]


def _worker(db_path: str, session_id: str, jobs: list[tuple[str, dict[str, float]]], out_dir: str) -> None:
    """One worker process: record each of its runs; never opens the DuckDB file."""
    with RunRecorder(db_path, session_id=session_id) as rec:
        for i, (h, params) in enumerate(jobs):
            run_id = rec.start_run(h, replicate=0, metadata={"worker_job": i})
            time.sleep(0.05 + 0.02 * i)  # the "simulation"
            if _fails(params):
                rec.complete_run(run_id, 1, "simulated crash: population exploded at step 12")
                continue
            rec.complete_run(run_id, 0)
            rec.register_output(run_id, "export", f"{out_dir}/exports/{h}_{{replicate}}.csv", row_count=1200)


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
    db_path = directory / "sweep.duckdb"
    grid = [{"maxGrowth": g, "survivalRate": s} for g, s in itertools.product(MAX_GROWTH, SURVIVAL_RATE)]

    with RunRegistry(db_path) as reg:
        sid = reg.create_session(DemoConfig(), experiment_name="demo_sweep")
        for params in grid:
            h = run_hash(params)
            config = "\n".join(f"{k} = {v}" for k, v in params.items())
            reg.register_run(sid, h, "models/main.josh", config, None, params)
        reg.update_session_status(sid, "running")

        jobs = [(run_hash(p), p) for p in grid]
        ctx = multiprocessing.get_context("spawn")
        procs = [
            ctx.Process(target=_worker, args=(str(db_path), sid, jobs[w::WORKERS], str(directory)))
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

        ok = {r["run_hash"] for r in run_rows(reg, session_id=sid) if r["exit_code"] == 0}
        ranked = sorted(
            (p for p in grid if run_hash(p) in ok),
            key=simulated_population,
            reverse=True,
        )
        best, second, third = (run_hash(p) for p in ranked[:3])
        reg.label_run(best, "baseline")
        reg.label_run(second, "candidate")
        reg.label_run(third, "baseline", on_collision="timestamp")

        _print_report(reg, sid, grid, out)
    events = default_events_path(db_path)
    cli = _cli_name()
    out.write(
        f"\nregistry: {db_path}   event log: {events}/   ({time.perf_counter() - t0:.1f} s)\n"
        f"look around: {cli} log {db_path}   |   {cli} labels {db_path} --history\n"
    )
    return db_path


def _cli_name() -> str:
    """How to call the CLI from here: the script beside this interpreter (venvs are rarely active)."""
    script = Path(sys.executable).parent / "joshreg"
    if not script.exists():
        return "joshreg"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _print_report(reg: RunRegistry, sid: str, grid: list[dict[str, float]], out: TextIO) -> None:
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
                    simulated_population(params) if r.exit_code == 0 else None,
                    r.exit_code,
                    format_duration(r.started_at, r.completed_at),
                    r.error_message,
                )
            )
    headers = ("RUN_HASH", "maxGrowth", "survivalRate", "POPULATION", "EXIT", "DURATION", "ERROR")
    out.write(format_table(headers, table) + "\n\nLabels\n")
    labels = [(r["label"], r["run_hash"], r["created_at"]) for r in label_rows(reg)]
    out.write(format_table(LABEL_HEADERS, labels) + "\n\nLabel history\n")
    out.write(format_table(HISTORY_HEADERS, history_rows(reg.label_history())) + "\n")


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
