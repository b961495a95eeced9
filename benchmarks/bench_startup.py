"""Start-up: how long a user waits before joshreg does anything, against bare Python and DuckDB.

Run from the repository root (``just bench`` runs it)::

    python benchmarks/bench_startup.py           # 5 timed process starts per row, about a minute
    python benchmarks/bench_startup.py --quick   # 3 per row

Each process row is the median wall time of separate process starts (one untimed warm-up
first, so byte-code caches exist), next to ``bare_python`` (``python -c pass``):

- ``import_joshreg``: ``import joshreg``, counted over the bare interpreter (goal <= 150 ms);
- ``import_registry``: ``from joshreg import RunRegistry`` (goal <= 400 ms);
- ``cli_help``: ``joshreg --help`` (goal <= 200 ms);
- ``cli_sessions``: ``joshreg sessions`` on a registry the demo sweep wrote (goal <= 500 ms).

``open_empty`` is measured in one process, in turns with its baseline: opening a new on-disk
registry (``RunRegistry(path)`` then ``close()``) against DuckDB alone creating the same file
and tables; the goal is at most 1.5× DuckDB. Writes ``bench-output/startup.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import Result, bench_args, chosen, loadavg, machine, print_table, write_report


@dataclass
class Scale:
    starts: int = 5
    opens: int = 9


QUICK = Scale(starts=3, opens=3)
REG = "RunRegistry"


def _cli() -> list[str]:
    """The installed ``joshreg`` script beside this interpreter, else ``python -m joshreg``."""
    script = Path(sys.executable).with_name("joshreg")
    return [str(script)] if script.exists() else [sys.executable, "-m", "joshreg"]


def _starts(argv: list[str], n: int) -> list[float]:
    """Wall seconds of ``n`` starts of ``argv`` to exit, after one untimed warm-up."""
    times = []
    for i in range(n + 1):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i:
            times.append(time.perf_counter() - t0)
    return times


def _process_rows(sc: Scale, demo: Path) -> list[Result]:
    py = sys.executable
    load = loadavg()
    bare = _starts([py, "-c", "pass"], sc.starts)
    b = statistics.median(bare)
    imp = _starts([py, "-c", "import joshreg"], sc.starts)
    rows = [
        Result("bare_python", "python -c pass (s)", b, "s", None, False, runs=bare, loadavg_start=load),
        Result(
            "import_joshreg",
            "import joshreg, over the bare interpreter (s)",
            statistics.median(imp) - b,
            "s",
            0.150,
            False,
            runs=[t - b for t in imp],
            extra={"with_interpreter_runs": imp},
        ),
    ]
    cases = (
        ("import_registry", "from joshreg import RunRegistry (s)", [py, "-c", f"from joshreg import {REG}"]),
        ("cli_help", "joshreg --help (s)", [*_cli(), "--help"]),
        ("cli_sessions", "joshreg sessions on the demo's registry (s)", [*_cli(), "sessions", str(demo)]),
    )
    for (name, what, argv), goal in zip(cases, (0.4, 0.2, 0.5), strict=True):
        load = loadavg()
        runs = _starts(argv, sc.starts)
        rows.append(
            Result(name, what, statistics.median(runs), "s", goal, False, runs=runs, loadavg_start=load)
        )
    return rows


def _open_row(sc: Scale, base: Path) -> Result:
    import duckdb

    from joshreg import RunRegistry
    from joshreg.projection.tables import create_tables

    def joshreg_open(d: Path) -> None:
        RunRegistry(d / "reg.duckdb").close()

    def duckdb_alone(d: Path) -> None:
        con = duckdb.connect(str(d / "reg.duckdb"))
        create_tables(con)
        con.close()

    def timed(fn: Callable[[Path], None], i: int, tag: str) -> float:
        d = base / f"{tag}{i}"
        d.mkdir()
        t0 = time.perf_counter()
        fn(d)
        return time.perf_counter() - t0

    load = loadavg()
    timed(joshreg_open, -1, "warm")  # imports, extension loading: not what this row measures
    timed(duckdb_alone, -2, "warm")
    ours, theirs = [], []
    for i in range(sc.opens):
        ours.append(timed(joshreg_open, i, "j"))
        theirs.append(timed(duckdb_alone, i, "d"))
    return Result(
        "open_empty",
        "open a new on-disk registry vs DuckDB creating the same file and tables (s)",
        statistics.median(ours),
        "s",
        1.5,  # at most 1.5x DuckDB alone
        False,
        baseline=statistics.median(theirs),
        runs=ours,
        baseline_runs=theirs,
        relative=True,
        loadavg_start=load,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_args(ap, "bench-output/startup.json")  # --quick: 3 starts per row instead of 5
    args = ap.parse_args(argv)
    names = ("bare_python", "import_joshreg", "import_registry", "cli_help", "cli_sessions", "open_empty")
    only = chosen(args, "bench_startup", names)
    if not only:
        return 0
    sc = QUICK if args.quick else Scale()
    info = machine()
    print(
        f"joshreg start-up benchmarks: nproc={info['nproc']} python={info['python']} "
        f"duckdb={info['duckdb']}\n"
    )
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="joshreg-bench-startup-", dir=args.tmp) as tmp:
        base = Path(tmp)
        print("  running the demo sweep for cli_sessions ...", flush=True)
        env = {**os.environ, "MPLBACKEND": "Agg"}
        subprocess.run(
            [sys.executable, "-m", "joshreg.demo", "--dir", str(base / "demo")],
            check=True,
            stdout=subprocess.DEVNULL,
            env=env,
        )
        results = _process_rows(sc, base / "demo" / "sweep.duckdb")
        results.append(_open_row(sc, base))
        shutil.rmtree(base / "demo", ignore_errors=True)
    total = time.perf_counter() - t_all
    print()
    print_table(results)
    results = [r for r in results if r.name in only]
    write_report(Path(args.out or "bench-output/startup.json"), args.quick, info, sc, total, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
