"""Live projection benchmarks: how soon `joshreg watch` commits a worker's event, snapshot costs.

Run from the repository root (``just bench`` runs it after the core and results benchmarks)::

    python benchmarks/bench_watch.py            # about 1 minute
    python benchmarks/bench_watch.py --quick    # smoke run, about 15 s

- ``watch_latency``: a worker (this process) appends one run start with ``RunRecorder`` and
  flushes it; a ``joshreg watch`` subprocess (file events, defaults) commits it to the DuckDB
  file and prints its line. The figure is the 95th percentile from the flush returning to
  that line arriving here (goal: 200 ms on a local disk); the watcher's own ``lag`` (event
  clock to commit) is reported beside it. Events are 50-250 ms apart, one batch each.
- ``watch_latency_poll``: the same with ``--poll --interval 1`` (no file events, as on NFS);
  goal 2 s.
- ``watch_drain``: four worker processes record runs as fast as they can while the watcher
  follows; the time from the last worker's last append to the watcher's commit of it (goal 1 s),
  with the workers' and the watcher's event rates.
- ``snapshot_file`` / ``snapshot_logical``: publishing the read-only snapshot of a registry of
  ``snapshot_events`` events, from the DuckDB file (checkpoint + copy by ``cp``) and from a
  private in-memory projection (``COPY FROM DATABASE``).

Prints the same table as ``bench_core.py`` and writes ``bench-output/watch.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_core import Result, bench_args, chosen, machine, make_fixture, print_table, run_step, write_report

from joshreg import RunRecorder, RunRegistry

NAMES = ("watch_latency", "watch_latency_poll", "watch_drain", "snapshot_file", "snapshot_logical")
WAIT = 60.0  # seconds any single wait may take before the benchmark gives up


@dataclass
class Scale:
    latency_events: int = 60
    poll_events: int = 12
    drain_procs: int = 4
    drain_runs: int = 10_000  # per process, 2 events each
    snapshot_events: int = 100_000
    repeats: int = 5


QUICK = Scale(latency_events=15, poll_events=4, drain_runs=1_000, snapshot_events=10_000, repeats=2)


class _Config:
    def to_dict(self) -> dict[str, Any]:
        return {"simulation": "Main", "replicates": 1}


def _registry(db: Path) -> str:
    with RunRegistry(db, enable_spatial=False) as reg:
        sid = reg.create_session(_Config(), session_id="bench")
        reg.register_run(sid, "a1b2c3d4e5f6", None, "x = 1", None, {"x": 1.0})
    return sid


class _Watcher:
    """``joshreg watch --json`` in a subprocess; each stdout line arrives with its arrival time."""

    def __init__(self, db: Path, *options: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "joshreg", "watch", str(db), "--json", *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.perf_counter(), json.loads(line)))

    def until(self, pred: Any) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                at, record = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"joshreg watch exited with {self.proc.returncode}") from None
                continue
            if pred(record):
                return at, record
        raise RuntimeError(f"joshreg watch printed nothing matching within {WAIT} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def flush_to_seen(
    watcher: _Watcher, rec: RunRecorder, n: int, pause: Callable[[], float]
) -> tuple[list[float], list[float], dict[str, Any]]:
    """Record and flush a run start ``n`` times, ``pause()`` seconds apart, timing each until the
    watcher's line counts it: (latencies, the watcher's own lags, its first line). Stops the
    watcher and closes the recorder."""
    lat: list[float] = []
    lags: list[float] = []
    with rec:
        try:
            head = watcher.until(lambda r: "watching" in r)[1]
            total = head["total_events"]
            for _ in range(n):
                time.sleep(pause())
                rec.start_run("a1b2c3d4e5f6")
                rec.flush()
                t0 = time.perf_counter()
                total += 1
                at, batch = watcher.until(lambda r, want=total: r.get("total_events") == want)
                lat.append(at - t0)
                lags.append(batch["lag_ms"] / 1000)
        finally:
            watcher.stop()
    return lat, lags, head


def _p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]


def bench_latency(name: str, n: int, base: Path, options: list[str], goal: float) -> Result:
    d = base / name
    db = d / "reg.duckdb"
    sid = _registry(db)
    rng = random.Random(1)
    lat, lags, head = flush_to_seen(_Watcher(db, *options), RunRecorder(db, session_id=sid), n,
                                    lambda: rng.uniform(0.05, 0.25))  # fmt: skip
    return Result(
        name,
        f"p95 from a flushed append to the watcher's commit, {n} events ({' '.join(options) or 'defaults'})",
        _p95(lat),
        "s",
        goal,
        False,
        runs=lat,
        extra={
            "median_s": round(statistics.median(lat), 4),
            "max_s": round(max(lat), 4),
            "watcher_lag_median_s": round(statistics.median(lags), 4),
            "file_events": head["file_events"],
        },
    )


def _drain_worker(db: str, sid: str, runs: int, start: Any, done: Any) -> None:
    rec = RunRecorder(db, session_id=sid)
    rec.writer.writer_id  # noqa: B018 - pick the segment before the clock starts
    start.wait()
    for _ in range(runs):
        rid = rec.start_run("a1b2c3d4e5f6")
        rec.complete_run(rid, 0)
    rec.close()
    done.put(time.perf_counter())  # CLOCK_MONOTONIC: comparable across processes on Linux


def bench_drain(sc: Scale, base: Path) -> Result:
    """A burst: workers record as fast as they can; how long after the last append is the
    watcher done? On two shared cores the workers starve the watcher during the burst."""
    d = base / "drain"
    db = d / "reg.duckdb"
    sid = _registry(db)
    watcher = _Watcher(db)
    ctx = mp.get_context("spawn")
    start, done = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_drain_worker, args=(str(db), sid, sc.drain_runs, start, done))
        for _ in range(sc.drain_procs)
    ]
    try:
        head = watcher.until(lambda r: "watching" in r)[1]
        want = head["total_events"] + 2 * sc.drain_runs * len(procs)
        for p in procs:
            p.start()
        time.sleep(1.0)  # the workers import joshreg and open their segments
        t0 = time.perf_counter()
        start.set()
        at, _ = watcher.until(lambda r: r.get("total_events") == want)
        last = max(done.get(timeout=WAIT) for _ in procs)
        for p in procs:
            p.join(timeout=WAIT)
        assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        watcher.stop()
    n = want - head["total_events"]
    return Result(
        "watch_drain",
        f"{len(procs)} workers append {n:,} events at full speed; last append to the watcher's commit (s)",
        at - last,
        "s",
        1.0,
        False,
        extra={
            "workers_ev_per_s": round(n / (last - t0)),
            "watcher_ev_per_s": round(n / (at - t0)),
        },
    )


def bench_snapshot(sc: Scale, base: Path, *, logical: bool) -> Result:
    d = base / "snap"
    if not (d / "reg.events").exists():
        make_fixture(d / "reg.events", sc.snapshot_events)
    db = d / "reg.duckdb"
    RunRegistry(db, enable_spatial=False).close()  # built once, outside the timing
    holder = None
    if logical:  # another process holds the file: this one gets a private projection
        hold = "import duckdb, sys\ncon = duckdb.connect(sys.argv[1])\nprint('held', flush=True)\n"
        hold += "sys.stdin.read()"
        holder = subprocess.Popen(
            [sys.executable, "-c", hold, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    times: list[float] = []
    try:
        with RunRegistry(db, enable_spatial=False) as reg:
            assert reg.private_projection is logical
            reg.publish_snapshot()
            for _ in range(sc.repeats if not logical else max(1, sc.repeats // 2)):
                t0 = time.perf_counter()
                reg.publish_snapshot()
                times.append(time.perf_counter() - t0)
            size = os.path.getsize(d / "reg.snapshot.duckdb")
    finally:
        if holder is not None:
            assert holder.stdin is not None and holder.stdout is not None
            holder.stdin.close()
            holder.wait(timeout=WAIT)
            holder.stdout.close()
    how = "COPY FROM DATABASE of a private projection" if logical else "checkpoint + cp of the file"
    return Result(
        "snapshot_logical" if logical else "snapshot_file",
        f"publish the snapshot of a {sc.snapshot_events:,}-event registry ({size / 1e6:.1f} MB): {how}",
        statistics.median(times),
        "s",
        1.0 if logical else 0.1,
        False,
        runs=times,
        extra={"snapshot_mb": round(size / 1e6, 1)},
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_args(ap, "bench-output/watch.json")
    args = ap.parse_args(argv)
    sc = QUICK if args.quick else Scale()
    only = chosen(args, "bench_watch", NAMES)  # no scale rows: nothing with --scale
    if not only:
        return 0
    info = machine()
    print(f"joshreg watch benchmarks ({'quick' if args.quick else 'full'}): nproc={info['nproc']}\n")
    results: list[Result] = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="joshreg-bench-watch-", dir=args.tmp) as tmp:
        base = Path(tmp)
        steps = {
            "watch_latency": lambda: bench_latency("watch_latency", sc.latency_events, base, [], 0.2),
            "watch_latency_poll": lambda: bench_latency(
                "watch_latency_poll", sc.poll_events, base, ["--poll", "--interval", "1"], 2.0
            ),
            "watch_drain": lambda: bench_drain(sc, base),
            "snapshot_file": lambda: bench_snapshot(sc, base, logical=False),
            "snapshot_logical": lambda: bench_snapshot(sc, base, logical=True),
        }
        for name in NAMES:
            if name in only:
                run_step(results, name, steps[name])
    total = time.perf_counter() - t_all
    print(f"\ntotal {total:.1f} s\n")
    print_table(results)
    write_report(Path(args.out or "bench-output/watch.json"), args.quick, info, sc, total, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
