"""Statuses, attributes, designs and current results: upstream HEAD's registry features at scale.

Run from the repository root (``just bench`` runs it)::

    python benchmarks/bench_curation.py           # the goals' sizes, about a minute
    python benchmarks/bench_curation.py --quick   # a smoke run at a tenth of the size

Rows (goals from issue 14):

- ``curate_10k``: 10,000 ``set_attributes`` and 10,000 ``mark_run`` through ``RunRegistry``,
  then one read, against a baseline that does each call the way upstream does (read the row,
  merge, write it back on a held DuckDB connection): at least 20x faster.
- ``check_design_10k``: ``check_design`` of a design with 100 requirements over 10,000
  configurations with attributes: at most 200 ms.
- ``current_reads_1m``: ``get_timeseries``, ``get_parameter_comparison`` and
  ``get_data_summary`` over the current runs (10% of the runs marked bad) against the same
  calls over all of ``cell_data`` (``all_runs()``), 10^6 rows: at most 1.5x.

Writes ``bench-output/curation.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import Result, bench_args, chosen, loadavg, machine, print_table, write_report

from joshreg import DiagnosticQueries, Requirement, RunRegistry, TargetDesign
from joshreg.testing.registries import FakeJobConfig


@dataclass
class Scale:
    calls: int = 10_000
    # The baseline commits each call (an fsync each): 2 x 10,000 of them took minutes on a busy
    # machine, so it times this many of each kind and scales the loop to ``calls``. Its tables
    # then hold fewer rows than ours: if anything, the scaled baseline is the faster one.
    baseline_calls: int = 1_000
    configs: int = 10_000
    requirements: int = 100
    cells: int = 1_000_000
    runs: int = 1_000
    repeats: int = 3


QUICK = Scale(
    calls=1_000, baseline_calls=200, configs=1_000, requirements=20, cells=100_000, runs=200, repeats=1
)


def _registry(path: Path, n: int) -> RunRegistry:
    reg = RunRegistry(path, enable_spatial=False)
    sid = reg.create_session(FakeJobConfig(), session_id="bench")
    for i in range(n):
        reg.register_run(sid, f"{i:012x}", None, f"c{i}", None, {"g": float(i % 10)})
    reg.sync()
    return reg


def _curate(tmp: Path, sc: Scale) -> tuple[float, float]:
    reg = _registry(tmp / "curate.duckdb", sc.calls)
    t0 = time.perf_counter()
    for i in range(sc.calls):
        reg.set_attributes(f"{i:012x}", site=f"s{i % 7}", tier=i % 3)
    for i in range(sc.calls):
        reg.mark_run(f"{i:012x}", "bad" if i % 2 else "active", reason="bench")
    found = reg.find_by_attribute("site", "s1")
    ours = time.perf_counter() - t0
    reg.close()
    assert found, "the read found nothing"

    # Upstream's way: each call a read, a merge in Python and a write on a held connection.
    con = duckdb.connect(str(tmp / "baseline.duckdb"))
    con.execute("CREATE TABLE job_configs (run_hash VARCHAR PRIMARY KEY, status VARCHAR, status_reason TEXT, "
                "status_updated_at TIMESTAMP)")  # fmt: skip
    con.execute("CREATE TABLE run_tags (scope VARCHAR, key VARCHAR, tags JSON, updated_at TIMESTAMP, "
                "PRIMARY KEY (scope, key))")  # fmt: skip
    con.execute(f"INSERT INTO job_configs (run_hash) SELECT printf('%012x', range) FROM range({sc.calls})")
    n = sc.baseline_calls
    t0 = time.perf_counter()
    for i in range(n):
        h = f"{i:012x}"
        row = con.execute("SELECT tags FROM run_tags WHERE scope = 'run_hash' AND key = ?", [h]).fetchone()
        tags = json.loads(row[0]) if row else {}
        tags.update(site=f"s{i % 7}", tier=i % 3)
        con.execute("INSERT OR REPLACE INTO run_tags VALUES ('run_hash', ?, ?, now())", [h, json.dumps(tags)])
    for i in range(n):
        con.execute(
            "UPDATE job_configs SET status = ?, status_reason = ?, status_updated_at = now() "
            "WHERE run_hash = ?",
            ["bad" if i % 2 else "active", "bench", f"{i:012x}"],
        )
    t_loop = time.perf_counter() - t0
    t1 = time.perf_counter()
    con.execute(
        "SELECT t.key FROM run_tags t JOIN job_configs j ON j.run_hash = t.key "
        "WHERE json_extract_string(t.tags, '$.site') = 's1' AND coalesce(j.status, 'active') = 'active'"
    ).fetchall()
    theirs = t_loop * sc.calls / n + time.perf_counter() - t1
    con.close()
    return ours, theirs


def _check_design(tmp: Path, sc: Scale) -> list[float]:
    reg = _registry(tmp / "design.duckdb", sc.configs)
    for i in range(sc.configs):
        reg.set_attributes(f"{i:012x}", site=f"s{i % sc.requirements}", tier=i % 3)
    design = TargetDesign(
        "bench", [Requirement({"site": f"s{i}", "tier": i % 3}, 2) for i in range(sc.requirements)]
    )
    reg.register_design(design)
    reg.sync()
    times = []
    for _ in range(sc.repeats + 1):
        t0 = time.perf_counter()
        report = reg.check_design("bench")
        times.append(time.perf_counter() - t0)
    reg.close()
    assert len(report.requirements) == sc.requirements
    return times[1:]


def _current_reads(tmp: Path, sc: Scale) -> tuple[list[float], list[float]]:
    reg = _registry(tmp / "reads.duckdb", sc.runs)
    con = reg.conn
    assert con is not None
    con.execute("ALTER TABLE cell_data ADD COLUMN height DOUBLE")
    per_run = sc.cells // sc.runs
    con.execute(
        "INSERT INTO cell_data (cell_id, run_id, run_hash, step, replicate, position_x, position_y, height) "
        f"SELECT range, 'r' || (range // {per_run}), printf('%012x', range // {per_run}), range % 20, 0, "
        f"(range % {per_run}) // 20, 0, random() FROM range({sc.cells})"
    )
    for i in range(0, sc.runs, 10):
        reg.mark_run(f"{i:012x}", "bad")
    reg.sync()
    diag = DiagnosticQueries(reg)

    def calls() -> float:
        t0 = time.perf_counter()
        diag.get_timeseries("height", run_hash=f"{1:012x}")
        diag.get_parameter_comparison("height", "g")
        reg.get_data_summary()
        return time.perf_counter() - t0

    current, every = [], []
    calls()  # warm-up
    for _ in range(sc.repeats + 2):
        current.append(calls())
        with reg.all_runs():
            every.append(calls())
    reg.close()
    return current, every


NAMES = ("curate_10k", "check_design_10k", "current_reads_1m")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench_args(parser, "bench-output/curation.json")
    args = parser.parse_args(argv)
    only = chosen(args, "bench_curation", NAMES)
    if not only:
        return 0
    sc = QUICK if args.quick else Scale()
    info = machine()
    t_start = time.perf_counter()
    loads: dict[str, tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="joshreg-bench-curation-", dir=args.tmp) as tmp:
        start = loadavg()
        ours, theirs = _curate(Path(tmp), sc) if "curate_10k" in only else (0.0, 0.0)
        loads["curate_10k"], start = (start, loadavg()), loadavg()
        design = _check_design(Path(tmp), sc) if "check_design_10k" in only else [0.0]
        loads["check_design_10k"], start = (start, loadavg()), loadavg()
        current, every = _current_reads(Path(tmp), sc) if "current_reads_1m" in only else ([0.0], [0.0])
        loads["current_reads_1m"] = (start, loadavg())
    results = [
        Result(
            "curate_10k",
            f"{sc.calls:,} set_attributes + {sc.calls:,} mark_run, then one read, vs per-call SQL (s); "
            f"baseline timed on {sc.baseline_calls:,} of each, scaled",
            ours,
            "s",
            20.0,
            False,
            baseline=theirs,
            runs=[ours],
            baseline_runs=[theirs],
        ),
        Result(
            "check_design_10k",
            f"check_design, {sc.requirements} requirements over {sc.configs:,} configurations (s)",
            statistics.median(design),
            "s",
            0.200,
            False,
            runs=design,
        ),
        Result(
            "current_reads_1m",
            f"timeseries + parameter comparison + data summary, current runs vs all, {sc.cells:,} rows (s)",
            statistics.median(current),
            "s",
            1.5,  # at most 1.5x the reads over all of cell_data
            False,
            baseline=statistics.median(every),
            runs=current,
            baseline_runs=every,
            relative=True,
        ),
    ]
    results = [r for r in results if r.name in only]
    for r in results:
        r.loadavg_start, r.loadavg = loads[r.name]
    print_table(results)
    out = Path(args.out or "bench-output/curation.json")
    write_report(out, args.quick, info, sc, time.perf_counter() - t_start, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
