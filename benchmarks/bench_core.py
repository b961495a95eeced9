"""Core benchmarks of joshreg against the goals in DESIGN.md, in one run.

Run from the repository root (``just bench``)::

    python benchmarks/bench_core.py            # full scale, about 3-5 minutes
    python benchmarks/bench_core.py --quick    # small-scale smoke run, under 30 s
    python benchmarks/bench_core.py --only rebuild_big --profile
    python benchmarks/bench_core.py --only rebuild_compacted_1m

Prints a table (figure, goal, baseline, ratio, PASS/MISS) and writes ``bench-output/core.json``.
``ratio`` is the speedup over the baseline where there is one, else the headroom against the
goal (figure/goal for throughputs, goal/figure for times); on-goal rows have ratio >= 1 (>= 10
for the baseline comparison). Quick mode shrinks every workload, so its PASS/MISS is only a smoke
signal. Medians of several runs where a run is cheap; one run for the big rebuilds.
``compacted_floor_1m`` times no joshreg path: the same tables filled by DuckDB alone from typed
Parquet, the least any compacted format could cost, against ``rebuild_compacted_1m``'s goal.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import multiprocessing as mp
import os
import platform
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from joshreg import RunRegistry
from joshreg.log.clock import uuid7
from joshreg.log.events import (
    EventBase,
    OutputRegistered,
    RunCompleted,
    RunRegistered,
    RunStarted,
    SessionCreated,
    SessionStatusChanged,
)
from joshreg.log.store import LocalStore, MemoryStore
from joshreg.log.writer import EventWriter
from joshreg.operations.compaction import compact_store
from joshreg.projection.projector import Projector
from joshreg.projection.tables import EVENT_TABLES

NAMES = (
    "registry_vs_duckdb",
    "append_1proc",
    "append_8proc",
    "rebuild_small",
    "rebuild_big",
    "rebuild_compacted_1m",
    "compacted_floor_1m",
    "catchup_1k",
    "open_big",
    "as_of_1m",
    "verify_1m",
)


@dataclass
class Scale:
    """Workload sizes; ``quick`` shrinks them for a smoke run."""

    runs: int = 10_000  # start_run + complete_run pairs (benchmark 1)
    # DuckDB commits one transaction per upstream call (an fsync each): 20,000 of them take
    # minutes, so the baseline times this many pairs once and scales the loop to ``runs``.
    baseline_runs: int = 1_000
    hashes: int = 100
    append_single: int = 200_000
    append_multi: int = 100_000  # per process
    procs: int = 8
    rebuild_small: int = 100_000
    rebuild_big: int = 1_000_000
    catchup: int = 1_000
    repeats: int = 3
    open_repeats: int = 5
    big_repeats: int = 2  # rebuilds of the 10^6-event fixture (JSONL, compacted, floor)
    # --scale: 10^7 events from 64 writer segments (4 processes x 16 writers), compacted
    scale_events: int = 10_000_000
    scale_procs: int = 4
    scale_writers: int = 64


QUICK = Scale(
    runs=500,
    baseline_runs=100,
    hashes=10,
    procs=4,
    append_single=20_000,
    append_multi=5_000,
    rebuild_small=10_000,
    rebuild_big=50_000,
    repeats=1,
    open_repeats=3,
    big_repeats=1,
    scale_events=500_000,
)


def loadavg() -> list[float]:
    """The machine's 1-, 5- and 15-minute load averages, rounded: every row carries them."""
    return [round(x, 2) for x in os.getloadavg()]


@dataclass
class Result:
    """One row of the table: the figure (median of ``runs``), its goal and its baseline.

    Goals, by the fields set:

    - no baseline: ``value <= goal`` (times) or ``value >= goal`` (``higher_is_better``);
    - ``baseline`` and not ``relative``: the speedup ``baseline / value >= goal``;
    - ``relative``: ``value <= goal x baseline``, the baseline being a floor or a plain-DuckDB
      way of doing the same work in the same run (``baseline_name`` when that is another row);
      when the baseline was not measured, the row says so (``NO_BASELINE``), never PASS;
    - ``goal=None``: a reference row (a floor, a bare interpreter), with no goal of its own.

    ``loadavg`` is taken when the row is made (the measurement's end); ``loadavg_start`` by the
    script's step runner where it has one.
    """

    name: str
    what: str
    value: float
    unit: str
    goal: float | None
    higher_is_better: bool
    baseline: float | None = None
    runs: list[float] = field(default_factory=list)
    baseline_runs: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    relative: bool = False
    baseline_name: str | None = None
    loadavg: list[float] = field(default_factory=loadavg)
    loadavg_start: list[float] | None = None

    def __post_init__(self) -> None:
        if not self.runs:  # a single measurement is its own run
            self.runs = [self.value]

    def set_baseline(self, other: Result | None) -> None:
        """Take ``other`` (a row of this run, or None when it was not measured) as the baseline."""
        if other is not None:
            self.baseline, self.baseline_runs = other.value, list(other.runs)

    @property
    def ratio(self) -> float | None:
        """Relative goals: value / baseline (on goal when <= goal); speedups: baseline / value;
        plain goals: the headroom (on goal when >= 1)."""
        if self.relative or self.baseline_name:
            if self.baseline is None:
                return None
            r = self.value / self.baseline if self.baseline else float("inf")
        elif self.baseline is not None:
            r = self.baseline / self.value if self.value else float("inf")
        elif self.goal is None:
            return None
        elif self.higher_is_better:
            r = self.value / self.goal
        else:
            r = self.goal / self.value if self.value else float("inf")
        return r if math.isfinite(r) else None

    @property
    def status(self) -> str:
        """PASS, MISS, NO_BASELINE (a relative goal without its baseline) or INFO (no goal)."""
        if self.goal is None:
            return "INFO"
        if self.relative or self.baseline_name:
            if self.baseline is None:
                return "NO_BASELINE"
            return "PASS" if self.value <= self.goal * self.baseline else "MISS"
        if self.baseline is not None:
            return "PASS" if self.baseline / self.value >= self.goal else "MISS"
        ok = self.value >= self.goal if self.higher_is_better else self.value <= self.goal
        return "PASS" if ok else "MISS"

    @property
    def passed(self) -> bool | None:
        """True when the goal holds; False on a miss or an unchecked relative goal; None: no goal."""
        return None if self.goal is None else self.status == "PASS"

    @property
    def goal_text(self) -> str:
        """The goal as the table and the README state it."""
        if self.goal is None:
            return "reference"
        if self.relative or self.baseline_name:
            return f"<= {self.goal:g}x {self.baseline_name or 'baseline'}"
        if self.baseline is not None:
            return f">= {self.goal:g}x faster"
        return (">= " if self.higher_is_better else "<= ") + _fmt(self.goal, self.unit)

    @property
    def goal_kind(self) -> str:
        if self.goal is None:
            return "none"
        if self.relative or self.baseline_name:
            return "value <= goal x baseline"
        if self.baseline is not None:
            return "speedup over baseline >= goal"
        return "value >= goal" if self.higher_is_better else "value <= goal"

    def row(self) -> dict[str, Any]:
        """The JSON row (``benchmarks/bench_row.schema.json``)."""
        status = self.status
        row = {
            **asdict(self),
            "min": min(self.runs),
            "max": max(self.runs),
            "baseline_min": min(self.baseline_runs) if self.baseline_runs else None,
            "baseline_max": max(self.baseline_runs) if self.baseline_runs else None,
            "ratio": self.ratio,
            "passed": self.passed,
            "status": status,
            "goal_kind": self.goal_kind,
            "goal_text": self.goal_text,
        }
        if row["loadavg_start"] is None:
            del row["loadavg_start"]
        if status == "NO_BASELINE":
            row["note"] = f"no {self.baseline_name or 'baseline'} measured in this run"
        return row


# --- helpers ----------------------------------------------------------------------------------


class _Config:
    """The smallest thing ``create_session`` accepts: an object with ``to_dict()``."""

    simulation = "Main"
    template_path = "sweep.jshc.j2"
    replicates = 3

    def to_dict(self) -> dict[str, Any]:
        return {"simulation": self.simulation, "replicates": self.replicates, "sweep": {"a": [1, 2, 3]}}


def _hash(i: int, prefix: str = "") -> str:
    return f"{prefix}{i:012x}"[-12:]


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def _collect(q: Any, procs: list[Any]) -> list[Any]:
    """One result per process from ``q``; fail fast (not after a timeout) if a child dies."""
    import queue

    got: list[Any] = []
    while len(got) < len(procs):
        try:
            got.append(q.get(timeout=0.5))
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                for p in procs:
                    if p.is_alive():
                        p.terminate()
                raise RuntimeError(f"a benchmark child process failed (exit codes {dead})") from None
    for p in procs:
        p.join()
    return got


def profile_call(label: str, fn: Callable[[], Any], top: int) -> Any:
    """Run ``fn`` under cProfile and print the top entries by cumulative and by own time."""
    prof = cProfile.Profile()
    out = prof.runcall(fn)
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(top)
        print(f"\n--- cProfile {label} (by {key}) ---")
        print("\n".join(buf.getvalue().splitlines()[4:]))
    return out


# --- 1. registry vs upstream-style DuckDB -------------------------------------------------------

UPSTREAM_DDL = """
CREATE TABLE IF NOT EXISTS sweep_sessions (
    session_id VARCHAR PRIMARY KEY, experiment_name VARCHAR,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, template_path VARCHAR,
    template_hash VARCHAR(12), simulation VARCHAR, total_jobs INTEGER, total_replicates INTEGER,
    status VARCHAR DEFAULT 'pending', metadata JSON);
CREATE TABLE IF NOT EXISTS job_configs (
    run_hash VARCHAR(12) PRIMARY KEY, session_id VARCHAR REFERENCES sweep_sessions(session_id),
    josh_path TEXT, josh_content TEXT, config_content TEXT, file_mappings JSON, label VARCHAR,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS session_configs (
    session_id VARCHAR REFERENCES sweep_sessions(session_id),
    run_hash VARCHAR(12) REFERENCES job_configs(run_hash),
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (session_id, run_hash));
CREATE TABLE IF NOT EXISTS config_parameters (
    run_hash VARCHAR(12) PRIMARY KEY REFERENCES job_configs(run_hash));
CREATE TABLE IF NOT EXISTS job_runs (
    run_id VARCHAR PRIMARY KEY, run_hash VARCHAR(12) REFERENCES job_configs(run_hash),
    session_id VARCHAR REFERENCES sweep_sessions(session_id), replicate INTEGER,
    started_at TIMESTAMP, completed_at TIMESTAMP, exit_code INTEGER, output_path VARCHAR,
    error_message TEXT, metadata JSON);
CREATE TABLE IF NOT EXISTS run_outputs (
    output_id VARCHAR PRIMARY KEY, run_id VARCHAR REFERENCES job_runs(run_id),
    output_type VARCHAR, file_path VARCHAR, file_size BIGINT, row_count INTEGER,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
"""

CONFIG_CONTENT = "\n".join(f"param{k} = {k * 1.5} count" for k in range(12))


def _joshreg_runs(tmp: Path, sc: Scale) -> tuple[float, int, float]:
    """Wall time of ``sc.runs`` start/complete pairs plus one read through RunRegistry.

    Also returns the rows read and the read's own time (it catches up with every run event).
    """
    reg = RunRegistry(tmp / "reg.duckdb", enable_spatial=True)
    sid = reg.create_session(_Config(), experiment_name="bench")
    hashes = [_hash(i) for i in range(sc.hashes)]
    for i, h in enumerate(hashes):
        reg.register_run(sid, h, "sim.josh", CONFIG_CONTENT, None, {"a": i * 0.5, "b": i, "c": "x"})
    reg.get_session(sid)  # project the setup before the clock starts
    meta = {"parameters": {"a": 1.0}, "replicates": 3}
    t0 = time.perf_counter()
    for i in range(sc.runs):
        h = hashes[i % sc.hashes]
        rid = reg.start_run(h, session_id=sid, replicate=0, output_path=f"/scratch/{h}", metadata=meta)
        reg.complete_run(rid, 0 if i % 50 else 1, None if i % 50 else "simulated failure")
    t_read0 = time.perf_counter()
    n = len(reg.get_runs_for_hash(hashes[0]))
    t1 = time.perf_counter()
    reg.close()
    return t1 - t0, n, t1 - t_read0


def _duckdb_runs(tmp: Path, sc: Scale) -> tuple[float, int]:
    """The same calls the way upstream joshpy makes them: one autocommit statement per call.

    Runs ``sc.baseline_runs`` pairs and returns the loop time scaled to ``sc.runs`` plus the
    read's time, and the number of rows the read returned.
    """
    con = duckdb.connect(str(tmp / "upstream.duckdb"))
    con.execute(UPSTREAM_DDL)
    sid = str(uuid.uuid4())
    con.execute(
        "INSERT INTO sweep_sessions (session_id, experiment_name, template_path, simulation, metadata) "
        "VALUES (?, ?, ?, ?, ?)",
        [sid, "bench", "sweep.jshc.j2", "Main", json.dumps({"job_config": _Config().to_dict()})],
    )
    hashes = [_hash(i) for i in range(sc.hashes)]
    con.execute("BEGIN")  # setup only, not timed
    for h in hashes:
        con.execute(
            "INSERT INTO job_configs (run_hash, session_id, josh_path, josh_content, config_content, "
            "file_mappings) VALUES (?, ?, ?, ?, ?, ?)",
            [h, sid, "sim.josh", None, CONFIG_CONTENT, None],
        )
        con.execute("INSERT INTO session_configs (session_id, run_hash) VALUES (?, ?)", [sid, h])
    con.execute("COMMIT")
    meta = {"parameters": {"a": 1.0}, "replicates": 3}
    t0 = time.perf_counter()
    for i in range(sc.baseline_runs):
        h = hashes[i % sc.hashes]
        rid = str(uuid.uuid4())
        con.execute(
            "INSERT INTO job_runs (run_id, run_hash, session_id, replicate, started_at, output_path, "
            "metadata) VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP, ?, ?)",
            [rid, h, sid, 0, f"/scratch/{h}", json.dumps(meta) if meta else None],
        )
        con.execute(
            "UPDATE job_runs SET completed_at = CURRENT_TIMESTAMP, exit_code = ?, error_message = ? "
            "WHERE run_id = ?",
            [0 if i % 50 else 1, None if i % 50 else "simulated failure", rid],
        )
    t_loop = time.perf_counter() - t0
    t1 = time.perf_counter()
    sql = "SELECT * FROM job_runs WHERE run_hash = ? ORDER BY started_at"
    rows = con.execute(sql, [hashes[0]]).fetchall()
    t_read = time.perf_counter() - t1
    con.close()
    return t_loop * sc.runs / sc.baseline_runs + t_read, len(rows)


def bench_registry(sc: Scale, base: Path) -> Result:
    ours, theirs, reads = [], [], []
    for r in range(sc.repeats):
        d = base / f"reg{r}"
        d.mkdir()
        t, n, t_read = _joshreg_runs(d, sc)
        ours.append(t)
        reads.append(round(t_read, 4))
        assert n == sc.runs // sc.hashes, n
        if r == 0:  # the baseline is slow and steady: one run
            tb, nb = _duckdb_runs(d, sc)
            theirs.append(tb)
            assert nb == sc.baseline_runs // sc.hashes, nb
        shutil.rmtree(d)
    return Result(
        "registry_vs_duckdb",
        f"{sc.runs:,} start+complete + 1 read (s); baseline timed on {sc.baseline_runs:,} pairs, scaled",
        _median(ours),
        "s",
        10.0,
        True,
        baseline=_median(theirs),
        runs=ours,
        baseline_runs=theirs,
        extra={"read_seconds": reads},
    )


# --- 2. append throughput -------------------------------------------------------------------------


def _run_events(n: int, tag: str) -> list[EventBase]:
    """About ``n`` worker events: start, complete, output per execution."""
    out: list[EventBase] = []
    i = 0
    while len(out) < n:
        rid = uuid7()
        h = _hash(i % 100)
        out.append(
            RunStarted(run_id=rid, run_hash=h, session_id=tag, output_path=f"/scratch/{h}", replicate=0)
        )
        out.append(RunCompleted(run_id=rid, exit_code=0))
        out.append(
            OutputRegistered(
                output_id=uuid7(),
                run_id=rid,
                output_type="export.patch",
                file_path=f"/scratch/{h}/out_{i}.csv",
                file_size=123_456,
            )
        )
        i += 1
    return out[:n]


def _append_worker(root: str, n: int, barrier: Any, q: Any) -> None:
    events = _run_events(n, "s1")
    w = EventWriter(LocalStore(root), durability="batch")
    w.writer_id  # noqa: B018 - pick the segment before the clock starts
    barrier.wait()
    t0 = time.monotonic()
    for ev in events:
        w.append(ev)
    w.flush()
    t1 = time.monotonic()
    w.close()
    q.put((t0, t1, n))


def bench_append_single(sc: Scale, base: Path) -> Result:
    rates = []
    for r in range(sc.repeats):
        root = base / f"app1_{r}"
        events = _run_events(sc.append_single, "s1")
        w = EventWriter(LocalStore(root), durability="batch")
        w.writer_id  # noqa: B018
        t0 = time.perf_counter()
        for ev in events:
            w.append(ev)
        w.flush()
        t = time.perf_counter() - t0
        w.close()
        rates.append(len(events) / t)
        shutil.rmtree(root)
    return Result(
        "append_1proc",
        f"1 process, {sc.append_single:,} append() (ev/s)",
        _median(rates),
        "ev/s",
        200_000,
        True,
        runs=rates,
    )


def bench_append_multi(sc: Scale, base: Path) -> Result:
    ctx = mp.get_context("spawn")
    rates = []
    for r in range(sc.repeats):
        root = base / f"app8_{r}"
        LocalStore(root)
        barrier, q = ctx.Barrier(sc.procs), ctx.Queue()
        procs = [
            ctx.Process(target=_append_worker, args=(str(root), sc.append_multi, barrier, q))
            for _ in range(sc.procs)
        ]
        for p in procs:
            p.start()
        got = _collect(q, procs)
        span = max(g[1] for g in got) - min(g[0] for g in got)
        rates.append(sum(g[2] for g in got) / span)
        shutil.rmtree(root)
    return Result(
        "append_8proc",
        f"{sc.procs} processes x {sc.append_multi:,} append() (ev/s total)",
        _median(rates),
        "ev/s",
        300_000,
        True,
        runs=rates,
    )


# --- 3-5. fixture, rebuild, catch-up, open ---------------------------------------------------------

JOSH_CONTENT = "start simulation Main\n" + "\n".join(
    f"  grid.size{k} = {k} m\n  steps.high = {k * 10} count" for k in range(20)
)


def _gen_worker(root: str, proc: int, n: int, writers: int, q: Any) -> None:
    """Write about ``n`` events of a realistic sweep mix from ``writers`` writers of this process.

    Per configuration: one run.registered (3 parameters) and 6 executions of start, complete,
    output: ~5% registrations. Each writer instance gets its own segment (a writer id is new per
    instance), so one process can stand in for several workers.
    """
    store = LocalStore(root)
    ws = [EventWriter(store, durability="none") for _ in range(writers)]
    pending: list[list[EventBase]] = [[] for _ in ws]
    count = 0
    sessions = [f"sess-{proc}-{k}" for k in range(2)]
    for k, sid in enumerate(sessions):
        pending[k % writers].append(
            SessionCreated(
                session_id=sid,
                experiment_name=f"bench{proc}",
                simulation="Main",
                template_path="sweep.jshc.j2",
                metadata={"job_config": _Config().to_dict(), "git_hash": "0123456789ab"},
                replicates=3,
            )
        )
        count += 1
    i = 0
    while count < n:
        w = i % writers
        sid = sessions[i % len(sessions)]
        h = f"{proc:02x}{i:010x}"
        params = {"maxGrowth": 0.5 + (i % 7), "seedCount": float(i % 11), "scenario": f"s{i % 3}"}
        evs = pending[w]
        evs.append(
            RunRegistered(
                session_id=sid,
                run_hash=h,
                josh_path="sim.josh",
                josh_content=JOSH_CONTENT,
                config_content=CONFIG_CONTENT,
                file_mappings={"cover": {"path": "/data/cover.jshd", "hash": "d41d8cd98f00b204"}},
                parameters=params,
                parameter_types={"maxGrowth": "DOUBLE", "seedCount": "DOUBLE", "scenario": "VARCHAR"},
            )
        )
        for rep in range(6):
            rid = uuid7()
            fail = (i + rep) % 40 == 0
            evs.append(
                RunStarted(
                    run_id=rid,
                    run_hash=h,
                    session_id=sid,
                    replicate=0,
                    output_path=f"/scratch/sweep/{h}",
                    metadata={"parameters": params, "replicates": 3},
                )
            )
            evs.append(
                RunCompleted(run_id=rid, exit_code=1 if fail else 0, error_message="boom" if fail else None)
            )
            evs.append(
                OutputRegistered(
                    output_id=uuid7(),
                    run_id=rid,
                    output_type="export.patch",
                    file_path=f"/scratch/sweep/{h}/patch_{rep}.csv",
                    file_size=1_000_000 + rep,
                )
            )
        count += 19
        if len(evs) >= 1024:
            ws[w].append_many(evs)
            evs.clear()
        i += 1
    for k, sid in enumerate(sessions):
        pending[k % writers].append(SessionStatusChanged(session_id=sid, status="completed"))
        count += 1
    for w, evs in zip(ws, pending, strict=True):
        if evs:
            w.append_many(evs)
        w.close()
    q.put(count)


def make_fixture(root: Path, n: int, procs: int = 4, writers_per_proc: int = 2) -> int:
    """Generate about ``n`` events into the store at ``root`` from procs x writers segments.

    Small fixtures are written in this process (8 writers): spawning costs more than it saves.
    """
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    if n <= 100_000:
        for p in range(procs):
            _gen_worker(str(root), p, n // procs, writers_per_proc, q)
        return sum(q.get() for _ in range(procs))
    ps = [
        ctx.Process(target=_gen_worker, args=(str(root), p, n // procs, writers_per_proc, q))
        for p in range(procs)
    ]
    for p in ps:
        p.start()
    return sum(_collect(q, ps))


def _rebuilds(db: Path, events: Path, profile: int, repeats: int) -> list[float]:
    """Time ``repeats`` full rebuilds, each into a new DuckDB file at ``db`` (the last one stays);
    only the first is profiled."""
    times = []
    for r in range(repeats):
        for f in (db, db.with_name(db.name + ".wal")):
            f.unlink(missing_ok=True)
        times.append(_rebuild(db, events, profile if r == 0 else 0))
    return times


def _rebuild(db: Path, events: Path, profile: int) -> float:
    """Time ``Projector.rebuild()`` on a fresh DuckDB file; return seconds."""
    con = duckdb.connect(str(db))
    proj = Projector(con, LocalStore(events))
    t0 = time.perf_counter()
    res = profile_call(f"rebuild {db.name}", proj.rebuild, profile) if profile else proj.rebuild()
    t = time.perf_counter() - t0
    assert not res.problems, res.problems[:3]
    con.close()
    return t


def bench_rebuild(
    name: str, n: int, base: Path, profile: int, *, goal: float, keep: bool, repeats: int, floor: bool = False
) -> Result:
    """Generate ``n`` events and time a full rebuild from the JSONL; with ``floor`` the goal is
    ``goal`` x ``compacted_floor_1m`` of the same run (``main`` sets the baseline)."""
    d = base / name
    d.mkdir()
    events = d / "reg.events"
    tg = time.perf_counter()
    made = make_fixture(events, n)
    gen = time.perf_counter() - tg
    size = sum(f.stat().st_size for f in (events / "log").iterdir())
    os.sync()  # the fixture just written: its writeback is not the rebuild's time
    times = _rebuilds(d / "reg.duckdb", events, profile, repeats)
    res = Result(
        name,
        f"full rebuild of {made:,} events (s)",
        statistics.median(times),
        "s",
        goal,
        False,
        runs=times,
        extra={"events": made, "log_bytes": size, "fixture_seconds": round(gen, 2)},
        relative=floor,
        baseline_name="compacted_floor_1m" if floor else None,
    )
    if not keep:
        shutil.rmtree(d)
    return res


def _compact_and_rebuild(d: Path, profile: int, repeats: int) -> tuple[list[float], int, dict[str, Any]]:
    """Compact the store at ``d/reg.events`` (every segment sealed), then time a full rebuild
    from the Parquet files into ``d/reg.duckdb``: seconds, events in the tables, details."""
    events = d / "reg.events"
    jsonl = sum(f.stat().st_size for f in (events / "log").iterdir())
    tc = time.perf_counter()
    report = compact_store(LocalStore(events))
    t_compact = time.perf_counter() - tc
    assert report.ok and not report.skipped and not list((events / "log").iterdir()), str(report)
    parquet = sum(f.stat().st_size for f in (events / "compacted").iterdir())
    os.sync()
    times = _rebuilds(d / "reg.duckdb", events, profile, repeats)
    with duckdb.connect(str(d / "reg.duckdb")) as con:
        n = con.execute("SELECT count(*) FROM event_log").fetchone()[0]
    extra = {
        "events": n,
        "compaction_seconds": round(t_compact, 2),
        "jsonl_bytes": jsonl,
        "parquet_bytes": parquet,
        "segments": len(report.compacted),
    }
    return times, n, extra


def bench_rebuild_compacted(base: Path, big: Path, profile: int, repeats: int) -> Result:
    """Compact a copy of the big fixture, then time a full rebuild from the Parquet files; the
    tables must hold as many events as a rebuild from the JSONL. Goal: at most 1.3x
    ``compacted_floor_1m`` of the same run."""
    d = base / "rebuild_compacted"
    d.mkdir()
    shutil.copytree(big / "reg.events", d / "reg.events")
    times, n, extra = _compact_and_rebuild(d, profile, repeats)
    with duckdb.connect(str(big / "reg.duckdb")) as con:
        want = con.execute("SELECT count(*) FROM event_log").fetchone()[0]
    assert n == want, (n, want)
    shutil.rmtree(d)
    return Result(
        "rebuild_compacted_1m",
        f"full rebuild of {n:,} events from compacted (Parquet) segments (s)",
        statistics.median(times),
        "s",
        1.3,
        False,
        runs=times,
        extra=extra,
        relative=True,
        baseline_name="compacted_floor_1m",
    )


def bench_scale(sc: Scale, base: Path, profile: int) -> list[Result]:
    """``scale_10m``: ``sc.scale_events`` events from ``sc.scale_writers`` writer segments
    (``sc.scale_procs`` processes), compacted, then a full rebuild (at most 10x
    ``rebuild_compacted_1m``); on that registry, catch-up of ``sc.catchup`` events and an open
    (each at most 1.2x its 10^6 row of the same run)."""
    d = base / "scale_10m"
    d.mkdir()
    events = d / "reg.events"
    tg = time.perf_counter()
    made = make_fixture(events, sc.scale_events, sc.scale_procs, sc.scale_writers // sc.scale_procs)
    gen = time.perf_counter() - tg
    print(f"  [{gen:6.1f} s] scale fixture: {made:,} events", flush=True)
    times, n, extra = _compact_and_rebuild(d, profile, 1)
    assert n == made, (n, made)
    t = times[0]
    print(f"  [{extra['compaction_seconds']:6.1f} s] scale compaction; rebuild {t:.1f} s", flush=True)
    rows = [
        Result(
            "scale_10m",
            f"full rebuild of {n:,} events from {extra['segments']} compacted writer segments (s)",
            t,
            "s",
            10.0,
            False,
            runs=[t],
            extra={**extra, "fixture_seconds": round(gen, 2), "writer_processes": sc.scale_procs},
            relative=True,
            baseline_name="rebuild_compacted_1m",
        )
    ]
    catchup = bench_catchup(sc, d, profile, name="scale_catchup_10m")
    open_ = bench_open(sc, d, profile, name="scale_open_10m")
    for r, of in ((catchup, "catchup_1k"), (open_, "open_big")):
        r.goal, r.relative, r.baseline_name, r.higher_is_better = 1.2, True, of, False
    rows += [catchup, open_]
    shutil.rmtree(d)
    return rows


def bench_compacted_floor(base: Path, big: Path, repeats: int) -> Result:
    """What ``rebuild_compacted_1m``'s goal is up against with these tables: the big registry's
    event tables read back from typed Parquet by DuckDB's own reader (nothing to parse, no
    Python), then the public tables and the commits as a rebuild makes them
    (``Projector.project_tables``). Not a path joshreg takes (DuckDB checks no Parquet page
    checksums; see ``compaction``): the floor of any compacted format for these tables."""
    d = base / "compacted_floor"
    d.mkdir()
    tables = [table for table, _ in EVENT_TABLES.values()]
    with duckdb.connect(str(big / "reg.duckdb"), read_only=True) as con:
        for table in tables:
            con.execute(f"COPY {table} TO '{d / table}.parquet' (FORMAT parquet, COMPRESSION zstd)")
    os.sync()
    times, events_times = [], []
    for r in range(repeats):
        con = duckdb.connect(str(d / f"floor{r}.duckdb"))
        proj = Projector(con, MemoryStore())
        t0 = time.perf_counter()
        con.execute("BEGIN")
        for table in tables:
            con.execute(f"INSERT INTO {table} SELECT * FROM read_parquet('{d / table}.parquet')")
        con.execute("COMMIT")
        events_times.append(time.perf_counter() - t0)
        proj.project_tables()
        times.append(time.perf_counter() - t0)
        n = sum(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables)
        con.close()
    shutil.rmtree(d)
    return Result(
        "compacted_floor_1m",
        f"floor for rebuild_compacted_1m: {n:,} events from typed Parquet into the same tables (s)",
        statistics.median(times),
        "s",
        None,
        False,
        runs=times,
        extra={
            "events": n,
            "event_tables_seconds": round(statistics.median(events_times), 2),
            "event_tables_runs": [round(t, 2) for t in events_times],
        },
    )


def _size(name: str) -> str:
    return "10^7-event (scale)" if name.startswith("scale") else "big"


def _catchup_events(n: int) -> list[EventBase]:
    out: list[EventBase] = [
        RunRegistered(
            session_id="sess-0-0",
            run_hash=f"ff{uuid7()[-10:]}",
            josh_path="sim.josh",
            config_content=CONFIG_CONTENT,
            parameters={"maxGrowth": 1.0, "seedCount": 2.0, "scenario": "new"},
            parameter_types={"maxGrowth": "DOUBLE", "seedCount": "DOUBLE", "scenario": "VARCHAR"},
        )
    ]
    run_evs = _run_events(n - 1, "sess-0-0")
    # Reuse hashes of the fixture so that the touched keys exist in the tables.
    for ev in run_evs:
        if isinstance(ev, RunStarted):
            ev = RunStarted(
                run_id=ev.run_id,
                run_hash=f"00{int(ev.run_hash, 16):010x}",
                session_id=ev.session_id,
                output_path=ev.output_path,
            )
        out.append(ev)
    return out


def bench_catchup(sc: Scale, d: Path, profile: int, name: str = "catchup_1k") -> Result:
    """Append ``sc.catchup`` events from a new writer, reopen, time ``Projector.catch_up``."""
    times = []
    store = LocalStore(d / "reg.events")
    for r in range(sc.repeats):
        w = EventWriter(store, durability="batch")
        w.append_many(_catchup_events(sc.catchup))
        w.close()
        con = duckdb.connect(str(d / "reg.duckdb"))
        proj = Projector(con, LocalStore(d / "reg.events"))
        assert not proj.needs_rebuild
        t0 = time.perf_counter()
        res = profile_call("catch-up", proj.catch_up, profile) if profile and r == 0 else proj.catch_up()
        times.append(time.perf_counter() - t0)
        assert res.events == sc.catchup, res.events
        con.close()
    return Result(
        name,
        f"catch-up of {sc.catchup:,} new events on the {_size(name)} registry (s)",
        _median(times),
        "s",
        0.1,
        False,
        runs=times,
    )


def bench_open(sc: Scale, d: Path, profile: int, name: str = "open_big") -> Result:
    times = []
    for r in range(sc.open_repeats):
        t0 = time.perf_counter()
        if profile and r == 0:
            reg = profile_call("open", lambda: RunRegistry(d / "reg.duckdb", enable_spatial=True), profile)
        else:
            reg = RunRegistry(d / "reg.duckdb", enable_spatial=True)
        times.append(time.perf_counter() - t0)
        assert not reg.private_projection
        reg.close()
    return Result(
        name,
        f"open an up-to-date {_size(name)} registry (s)",
        _median(times),
        "s",
        0.1,
        False,
        runs=times,
    )


def bench_as_of(sc: Scale, d: Path, profile: int) -> Result:
    """Time ``registry.as_of(position)`` on the big registry: the whole log (the figure) and its
    first half; the registry is open and caught up before the clock starts."""
    reg = RunRegistry(d / "reg.duckdb", enable_spatial=True)
    n, newest = reg.query("SELECT count(*), max(hlc) FROM event_log").fetchone()
    (half,) = reg.query("SELECT quantile_disc(hlc, 0.5) FROM event_log").fetchone()
    (below,) = reg.query("SELECT count(*) FROM event_log WHERE hlc <= ?", [half]).fetchone()
    times: dict[str, list[float]] = {"whole": [], "half": []}
    for r in range(sc.repeats):
        for name, position in (("whole", newest), ("half", half)):
            t0 = time.perf_counter()
            if profile and r == 0 and name == "whole":
                view = profile_call("as_of", lambda p=position: reg.as_of(p), profile)
            else:
                view = reg.as_of(position)
            times[name].append(time.perf_counter() - t0)
            if r == 0:
                (seen,) = view.query("SELECT count(*) FROM event_log").fetchone()
                assert seen == (n if name == "whole" else below), (name, seen)
            view.close()
    reg.close()
    return Result(
        "as_of_1m",
        f"registry.as_of(position) over {n:,} events (s)",
        _median(times["whole"]),
        "s",
        3.0,
        False,
        runs=times["whole"],
        extra={"events": n, "half_log_seconds": _median(times["half"]), "half_log_runs": times["half"]},
    )


def _verify_child(db: str, profile: int, q: Any) -> None:
    """Open the registry, time ``reg.verify()`` and report its seconds and this process's peak
    RSS before and after the call (a fresh process, so the peak is verify's own)."""
    import resource

    reg = RunRegistry(Path(db), enable_spatial=True)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    report = profile_call("verify", reg.verify, profile) if profile else reg.verify()
    t = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reg.close()
    q.put((t, rss0, rss1, report.ok, report.events, len(report.tables), str(report)[:2000]))


def bench_verify(sc: Scale, d: Path, profile: int) -> Result:
    """Time ``registry.verify()`` (log scan and table comparison against a fresh rebuild) on
    the big registry, in a child process so that its peak RSS can be reported."""
    ctx = mp.get_context("spawn")
    times, peaks, before = [], [], []
    os.sync()  # the fixture's 0.4 GB just written: its writeback is not verify's time
    for r in range(1 if profile else sc.repeats):
        q = ctx.Queue()
        p = ctx.Process(target=_verify_child, args=(str(d / "reg.duckdb"), profile if r == 0 else 0, q))
        p.start()
        t, rss0, rss1, ok, events, tables, text = _collect(q, [p])[0]
        assert ok and tables, text
        times.append(t)
        peaks.append(rss1 / 1024)  # ru_maxrss is in KiB on Linux
        before.append(rss0 / 1024)
    return Result(
        "verify_1m",
        f"registry.verify() of {events:,} events, with the table comparison (s)",
        _median(times),
        "s",
        10.0,
        False,
        runs=times,
        extra={
            "events": events,
            "peak_rss_mib": [round(x) for x in peaks],
            "rss_before_mib": [round(x) for x in before],
        },
    )


# --- report ---------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "platform": platform.platform(),
        "tmpdir": tempfile.gettempdir(),
        "loadavg_at_start": loadavg(),
    }


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "ev/s":
        return f"{v:,.0f}"
    return f"{v * 1000:,.1f} ms" if v < 1 else f"{v:,.2f} s"


def print_table(results: list[Result]) -> None:
    """The rows: figure (median), min-max of the runs, goal, baseline, ratio, verdict, load."""
    head = (
        f"{'benchmark':<22} {'median':>11} {'min-max':>21} {'goal':>26} {'baseline':>11} {'ratio':>7}"
        f"  {'result':<12} load"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        spread = f"{_fmt(min(r.runs), r.unit)}-{_fmt(max(r.runs), r.unit)}" if len(r.runs) > 1 else "-"
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        print(
            f"{r.name:<22} {_fmt(r.value, r.unit):>11} {spread:>21} {r.goal_text:>26} "
            f"{_fmt(r.baseline, r.unit):>11} {ratio:>7}  {r.status:<12} {r.loadavg[0]:.2f}"
        )
    print()
    for r in results:
        runs = ", ".join(_fmt(x, r.unit) for x in r.runs)
        line = f"  {r.name}: {r.what}; runs [{runs}]"
        if r.baseline_runs:
            line += f"; baseline runs [{', '.join(_fmt(x, r.unit) for x in r.baseline_runs)}]"
        if r.status == "NO_BASELINE":
            line += f"; goal not checked: no {r.baseline_name or 'baseline'} measured in this run"
        if r.extra:
            line += f"; {r.extra}"
        print(line)


def bench_args(ap: argparse.ArgumentParser, out: str) -> None:
    """The options every ``benchmarks/bench_*.py`` takes, so that ``just bench ARGS`` can pass
    the same ARGS to each: ``--only`` names another script's rows too (a script with none of
    them runs nothing), ``--scale`` runs the scale rows (a script without any runs nothing)."""
    ap.add_argument("--quick", action="store_true", help="small-scale smoke run")
    ap.add_argument(
        "--scale", action="store_true", help="the scale rows only (10^7 events; not in the default run)"
    )
    ap.add_argument("--only", action="append", metavar="NAME", help="run only this benchmark (repeatable)")
    ap.add_argument("--out", default=None, help=f"where to write the JSON results (default {out})")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="profile the big steps, top N")
    ap.add_argument("--tmp", default=None, help="directory for temporary stores (default: system temp)")


def chosen(
    args: argparse.Namespace, script: str, names: tuple[str, ...], scale: tuple[str, ...] = ()
) -> set[str]:
    """The rows of ``script`` to run: ``--only``'s among ``names`` and ``scale``, else the
    scale rows with ``--scale``, else ``names``; empty (said on stdout) when there are none."""
    if args.only:
        got = set(args.only) & set(names + scale)
    elif args.scale:
        got = set(scale)
    else:
        got = set(names)
    if not got:
        why = f"--only {' '.join(args.only)}" if args.only else "--scale"
        print(f"{script}: nothing to run for {why} (its rows: {', '.join(names + scale)})")
    return got


def run_step(results: list[Result], label: str, fn: Callable[[], Result | list[Result]]) -> list[Result]:
    """Run one benchmark step, stamp the load average at its start on its rows, keep them."""
    start = loadavg()
    t = time.perf_counter()
    got = fn()
    rows = got if isinstance(got, list) else [got]
    for r in rows:
        r.loadavg_start = start
    results.extend(rows)
    figures = ", ".join(f"{r.name} {_fmt(r.value, r.unit)}" for r in rows)
    print(f"  [{time.perf_counter() - t:6.1f} s] {label}: {figures}", flush=True)
    return rows


def link_baselines(results: list[Result]) -> None:
    """Give each row whose baseline is another row of this run that row's figure and runs."""
    by_name = {r.name: r for r in results}
    for r in results:
        if r.baseline_name:
            r.set_baseline(by_name.get(r.baseline_name))


SCALE_NAMES = ("scale_10m", "scale_catchup_10m", "scale_open_10m")
# The 10^6 rows the scale rows are judged against, measured in the same run.
SCALE_NEEDS = ("rebuild_big", "rebuild_compacted_1m", "compacted_floor_1m", "catchup_1k", "open_big")
BIG = (
    "rebuild_big",
    "rebuild_compacted_1m",
    "compacted_floor_1m",
    "catchup_1k",
    "open_big",
    "as_of_1m",
    "verify_1m",
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_args(ap, "bench-output/core.json (core-scale.json with --scale)")
    args = ap.parse_args(argv)
    sc = QUICK if args.quick else Scale()
    only = chosen(args, "bench_core", NAMES, SCALE_NAMES)
    if not only:
        return 0
    if only & set(SCALE_NAMES):
        only |= set(SCALE_NEEDS)
    out = Path(args.out or ("bench-output/core-scale.json" if args.scale else "bench-output/core.json"))
    info = machine()
    print(
        f"joshreg core benchmarks ({'quick' if args.quick else 'full'}{', scale' if args.scale else ''}): "
        f"nproc={info['nproc']} python={info['python']} duckdb={info['duckdb']} {info['platform']}\n"
    )
    results: list[Result] = []
    t_all = time.perf_counter()

    def step(label: str, fn: Callable[[], Result | list[Result]]) -> None:
        run_step(results, label, fn)

    with tempfile.TemporaryDirectory(prefix="joshreg-bench-", dir=args.tmp) as tmp:
        base = Path(tmp)
        if "registry_vs_duckdb" in only:
            step("registry_vs_duckdb", lambda: bench_registry(sc, base))
        if "append_1proc" in only:
            step("append_1proc", lambda: bench_append_single(sc, base))
        if "append_8proc" in only:
            step("append_8proc", lambda: bench_append_multi(sc, base))
        if "rebuild_small" in only:
            step(
                "rebuild_small",
                lambda: bench_rebuild(
                    "rebuild_small",
                    sc.rebuild_small,
                    base,
                    args.profile,
                    goal=1.0,
                    keep=False,
                    repeats=sc.repeats,
                ),
            )
        if only & set(BIG):
            wanted = "rebuild_big" in only
            step(
                "rebuild_big",
                lambda: bench_rebuild(
                    "rebuild_big",
                    sc.rebuild_big,
                    base,
                    args.profile if wanted else 0,
                    goal=2.5,
                    keep=True,
                    repeats=sc.big_repeats if wanted else 1,
                    floor=True,
                ),
            )
            if not wanted:  # only the fixture was wanted
                results.pop()
            d = base / "rebuild_big"
            if "rebuild_compacted_1m" in only:  # before catch-up adds events to the fixture
                step(
                    "rebuild_compacted_1m",
                    lambda: bench_rebuild_compacted(base, d, args.profile, sc.big_repeats),
                )
            if "compacted_floor_1m" in only:
                step("compacted_floor_1m", lambda: bench_compacted_floor(base, d, sc.big_repeats))
            if "verify_1m" in only:  # before catch-up adds events from a closed writer
                step("verify_1m", lambda: bench_verify(sc, d, args.profile))
            if "catchup_1k" in only:
                step("catchup_1k", lambda: bench_catchup(sc, d, args.profile))
            if "open_big" in only:
                step("open_big", lambda: bench_open(sc, d, args.profile))
            if "as_of_1m" in only:
                step("as_of_1m", lambda: bench_as_of(sc, d, args.profile))
            shutil.rmtree(d)  # room on the disk for the scale fixture
        if only & set(SCALE_NAMES):
            step("scale_10m", lambda: bench_scale(sc, base, args.profile))
    link_baselines(results)
    total = time.perf_counter() - t_all
    print(f"\ntotal {total:.1f} s; load average at start {info['loadavg_at_start']}, at end {loadavg()}\n")
    print_table(results)
    write_report(out, args.quick, info, sc, total, results, scale=args.scale)
    return 0


def write_report(
    out: Path,
    quick: bool,
    info: dict[str, Any],
    sc: Any,
    total: float,
    results: list[Result],
    *,
    scale: bool = False,
) -> None:
    """The results as JSON at ``out`` (``benchmarks/bench_row.schema.json``), with the machine
    and the workload sizes (``sc``, a dataclass) they were measured with."""
    out.parent.mkdir(parents=True, exist_ok=True)
    info = {**info, "loadavg_at_end": loadavg()}
    mode = "quick" if quick else "full"
    payload = {
        "mode": "quick-scale" if scale and quick else "scale" if scale else mode,
        "machine": info,
        "scale": asdict(sc),
        "total_seconds": round(total, 2),
        "results": [r.row() for r in results],
    }
    out.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    sys.exit(main())
