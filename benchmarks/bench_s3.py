"""The event store on object storage against the goals of issue 15 ("Speed"), each S3 row beside
the same workload on a local disk where the issue asks for one.

Run from the repository root (``just bench-s3``; SeaweedFS comes with the dev dependencies)::

    python benchmarks/bench_s3.py            # about 3-4 minutes on 2 cores
    python benchmarks/bench_s3.py --quick    # smoke run, about 30 s
    python benchmarks/bench_s3.py --only s3_catchup_1k --profile 25

A SeaweedFS server (``joshreg.testing.servers.seaweedfs``) runs on loopback in the temporary
folder for the whole run; workers reach it through ``AWS_ENDPOINT_URL`` and a key pair in the
environment, as a batch job would.

- ``s3_append_1proc`` / ``local_append_1proc``: one ``EventWriter(durability="batch")``
  appending worker events, events/s including the final ``flush()`` (goal 50,000 ev/s).
- ``s3_append_8proc`` / ``local_append_8proc``: total events/s of 8 processes, from the first
  append to the last flush; the goal is the same store's one-process figure of this run.
- ``s3_watch_latency_p95``: a worker (this process, ``RunRecorder`` on ``s3://``) flushes one
  run start; ``joshreg watch --poll --interval I`` in a subprocess (which lists at every poll)
  prints the batch. p95 of (printed - flushed); goal I + 300 ms.
- ``s3_rebuild_compacted_1m`` / ``local_rebuild_compacted_1m``: a 10^6-event fixture (bench_core's
  ``make_fixture``: 8 sealed segments) copied into the bucket with ``put_segment`` and compacted
  there with ``compact_store``, and compacted on disk the same way; full ``Projector.rebuild()``
  of each, alternating, 3 times. Goal for S3: 1.5x the local median; the local row is its
  reference (INFO: the local rebuild's own goal, relative to its floor, is bench_core's).
- ``s3_catchup_1k``: 8 writers (own stores, as 8 hosts) append 125 events each and close; a
  fresh ``ObjectStore`` (``refresh_interval=0``) and ``Projector`` on the rebuilt registry time
  ``catch_up()`` (goal 300 ms). ``warm_*`` in its extras: the same for a follower that stays open
  between rounds (its store has listed before).
- ``s3_64_writers``: 64 writer processes x 1,000 events each into one store; wall time from
  starting the processes to the last one's exit (interpreter start and imports included), then
  every event is counted by a rebuild: a lost or doubled event makes the row MISS.

Prints the table of ``bench_core.py`` and writes ``bench-output/s3.json`` in its row format.
Quick mode shrinks every workload (its PASS/MISS is a smoke signal only).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
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
import obstore
from bench_core import (
    Result,
    _catchup_events,
    _collect,
    _Config,
    _fmt,
    _run_events,
    machine,
    make_fixture,
    profile_call,
    write_report,
)
from bench_watch import _p95, _Watcher, flush_to_seen

from joshreg import RunRecorder, RunRegistry
from joshreg.log.store import LocalStore, LogStore, open_store
from joshreg.log.writer import EventWriter
from joshreg.operations.compaction import compact_store
from joshreg.projection.projector import Projector

NAMES = (
    "s3_append_1proc",
    "s3_append_8proc",
    "s3_watch_latency_p95",
    "s3_rebuild_compacted_1m",
    "s3_catchup_1k",
    "s3_64_writers",
)
BUCKET = "bench"
WAIT = 120.0


@dataclass
class Scale:
    """Workload sizes; ``quick`` shrinks them for a smoke run."""

    append_single: int = 200_000
    append_multi: int = 100_000  # per process
    procs: int = 8
    watch_events: int = 40
    watch_interval: float = 1.0
    rebuild_big: int = 1_000_000
    catchup_writers: int = 8
    catchup: int = 1_000  # in all, from catchup_writers writers
    many_writers: int = 64
    many_events: int = 1_000  # per writer process
    repeats: int = 3


QUICK = Scale(
    append_single=20_000,
    append_multi=5_000,
    procs=4,
    watch_events=6,
    watch_interval=0.5,
    rebuild_big=50_000,
    many_writers=8,
    many_events=200,
    repeats=1,
)


@dataclass
class Row(Result):
    """A ``bench_core`` row that can also fail outright (events lost), whatever its figure."""

    ok: bool = True

    @property
    def status(self) -> str:
        return super().status if self.ok else "MISS"


def _spread(xs: list[float], unit: str) -> str:
    return f"{_fmt(min(xs), unit)} - {_fmt(max(xs), unit)}" if xs else "-"


def print_table(results: list[Result]) -> None:
    """Figure (the median of the runs; the p95 of the samples for the latency row), min-max over
    runs, goal, headroom and PASS/MISS per row."""
    head = f"{'benchmark':<27} {'figure':>12} {'min - max':>25} {'goal':>14} {'ratio':>7}  result"
    print(head)
    print("-" * len(head))
    for r in results:
        goal = (">= " if r.higher_is_better else "<= ") + _fmt(r.goal, r.unit)
        print(
            f"{r.name:<27} {_fmt(r.value, r.unit):>12} {_spread(r.runs, r.unit):>25} {goal:>14} "
            f"{'-' if r.ratio is None else f'{r.ratio:.2f}x':>7}  {r.status}"
        )
    print()
    for r in results:
        runs = ", ".join(_fmt(x, r.unit) for x in r.runs)
        print(f"  {r.name}: {r.what}; runs [{runs}]" + (f"; {r.extra}" if r.extra else ""))


# --- stores ----------------------------------------------------------------------------------------


def s3_url(name: str) -> str:
    return f"s3://{BUCKET}/{name}"


def open_s3(name: str, refresh_interval: float = 0.0) -> Any:
    """The ``ObjectStore`` at ``s3://bench/<name>``, configured from the environment."""
    return open_store(s3_url(name), refresh_interval=refresh_interval)


def _store(where: str) -> LogStore:
    """``where`` is ``s3:<name>`` (a prefix in the bucket) or a local folder."""
    return open_s3(where[3:]) if where.startswith("s3:") else LocalStore(where)


# --- 1. append ------------------------------------------------------------------------------------


def _append_once(where: str, n: int) -> float:
    events = _run_events(n, "s1")
    store = _store(where)
    w = EventWriter(store, durability="batch")
    w.writer_id  # noqa: B018 - pick the segment before the clock starts
    t0 = time.perf_counter()
    for ev in events:
        w.append(ev)
    w.flush()
    t = time.perf_counter() - t0
    w.close()
    store.close()
    return n / t


def _append_worker(where: str, n: int, barrier: Any, q: Any) -> None:
    events = _run_events(n, "s1")
    store = _store(where)
    w = EventWriter(store, durability="batch")
    w.writer_id  # noqa: B018
    barrier.wait()
    t0 = time.monotonic()
    for ev in events:
        w.append(ev)
    w.flush()
    t1 = time.monotonic()
    w.close()
    store.close()
    q.put((t0, t1, n))


def _append_multi_once(where: str, procs: int, n: int) -> float:
    ctx = mp.get_context("spawn")
    barrier, q = ctx.Barrier(procs), ctx.Queue()
    ps = [ctx.Process(target=_append_worker, args=(where, n, barrier, q)) for _ in range(procs)]
    for p in ps:
        p.start()
    got = _collect(q, ps)
    return sum(g[2] for g in got) / (max(g[1] for g in got) - min(g[0] for g in got))


def bench_append(sc: Scale, base: Path, multi: bool) -> list[Result]:
    """The S3 row and the local row of one workload, runs alternating between the two."""
    rates: dict[str, list[float]] = {"s3": [], "local": []}
    for r in range(sc.repeats):
        for kind in ("s3", "local"):
            where = f"s3:append{int(multi)}_{r}" if kind == "s3" else str(base / f"append{int(multi)}_{r}")
            if multi:
                rates[kind].append(_append_multi_once(where, sc.procs, sc.append_multi))
            else:
                rates[kind].append(_append_once(where, sc.append_single))
            if kind == "local":
                shutil.rmtree(where)
    out: list[Result] = []
    for kind in ("s3", "local"):
        if multi:
            out.append(
                Result(
                    f"{kind}_append_8proc",  # the name of the full-scale row, whatever the scale
                    f"{sc.procs} processes x {sc.append_multi:,} append() + flush, {kind} (ev/s total; "
                    f"goal: above this run's {kind}_append_1proc)",
                    statistics.median(rates[kind]),
                    "ev/s",
                    0.0,  # set by main from the one-process row
                    True,
                    runs=rates[kind],
                )
            )
        else:
            out.append(
                Result(
                    f"{kind}_append_1proc",
                    f"1 process, {sc.append_single:,} append() + flush, durability batch, {kind} (ev/s)",
                    statistics.median(rates[kind]),
                    "ev/s",
                    50_000,
                    True,
                    runs=rates[kind],
                )
            )
    return out


# --- 2. watch latency -----------------------------------------------------------------------------


def bench_watch_latency(sc: Scale, base: Path) -> Result:
    """A flushed run start, until ``joshreg watch --poll`` (another process) prints its batch."""
    d = base / "watch"
    d.mkdir()
    db = d / "reg.duckdb"
    events = s3_url("watch")
    with RunRegistry(db, events_path=events, enable_spatial=False) as reg:
        sid = reg.create_session(_Config(), session_id="bench")
        reg.register_run(sid, "a1b2c3d4e5f6", None, "x = 1", None, {"x": 1.0})
    interval = sc.watch_interval
    watcher = _Watcher(db, "--events-path", events, "--poll", "--interval", f"{interval:g}", "--no-snapshot")
    rng = random.Random(15)
    # The writer waits for each event to be seen, so its next flush would land just after a
    # poll; a random pause puts it anywhere in the cycle, as workers' flushes would.
    pause = lambda: rng.uniform(0.02, interval)  # noqa: E731
    lat, lags, _ = flush_to_seen(
        watcher, RunRecorder(events_path=events, session_id=sid), sc.watch_events, pause
    )
    return Result(
        "s3_watch_latency_p95",
        f"p95 from a flushed append to `joshreg watch --poll --interval {interval:g}`'s line, "
        f"{sc.watch_events} events (s; goal interval + 300 ms)",
        _p95(lat),
        "s",
        interval + 0.3,
        False,
        runs=lat,
        extra={
            "interval_s": interval,
            "median_s": round(statistics.median(lat), 4),
            "max_s": round(max(lat), 4),
            "watcher_lag_median_s": round(statistics.median(lags), 4),
        },
    )


# --- 3-4. the 1M fixture: rebuild and catch-up ----------------------------------------------------


def _rebuild_once(db: Path, store: LogStore, profile: int) -> tuple[float, int]:
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    proj = Projector(con, store)
    t0 = time.perf_counter()
    res = profile_call(f"rebuild {db.name}", proj.rebuild, profile) if profile else proj.rebuild()
    t = time.perf_counter() - t0
    assert not res.problems, res.problems[:3]
    (n,) = con.execute("SELECT count(*) FROM event_log").fetchone()
    con.close()
    return t, n


def bench_rebuild(sc: Scale, base: Path, profile: int) -> list[Result]:
    """Fixture on disk, copied to the bucket, compacted in both places; rebuilds alternating.
    Leaves ``base/big/s3.duckdb`` (rebuilt from S3) for the catch-up row."""
    d = base / "big"
    d.mkdir()
    local = d / "local.events"
    tg = time.perf_counter()
    made = make_fixture(local, sc.rebuild_big)
    t_fixture = time.perf_counter() - tg
    disk = LocalStore(local)
    s3 = open_s3("big")
    tu = time.perf_counter()
    segments = disk.segments()
    for seg in segments:
        assert s3.put_segment(seg.name, disk.read(seg.name)), seg.name
    t_upload = time.perf_counter() - tu
    jsonl = sum(s.size for s in segments)
    before = dict(s3.requests)
    tc = time.perf_counter()
    s3_report = compact_store(s3)
    t_compact_s3 = time.perf_counter() - tc
    tc = time.perf_counter()
    disk_report = compact_store(disk)
    t_compact_disk = time.perf_counter() - tc
    for report in (s3_report, disk_report):
        assert report.ok and not report.skipped and len(report.compacted) == len(segments), str(report)
    asked = {k: v - before.get(k, 0) for k, v in s3.requests.items()}  # of the service, by compaction
    s3.close()
    os.sync()
    times: dict[str, list[float]] = {"s3": [], "local": []}
    counts: set[int] = set()
    requests: list[dict[str, int]] = []
    for r in range(sc.repeats):
        for kind in ("local", "s3"):
            store = open_s3("big") if kind == "s3" else LocalStore(local)
            t, n = _rebuild_once(d / f"{kind}.duckdb", store, profile if r == 0 and kind == "s3" else 0)
            times[kind].append(t)
            counts.add(n)
            if kind == "s3":
                requests.append(dict(store.requests))  # type: ignore[attr-defined]
            store.close()
    assert len(counts) == 1, counts  # both rebuilds hold every event
    local_median = statistics.median(times["local"])
    objects = sum(len(batch) for batch in obstore.list(s3.client, prefix="big/"))
    common = {"events": counts.pop(), "segments": len(segments), "jsonl_bytes": jsonl}
    return [
        Result(
            "s3_rebuild_compacted_1m",
            f"full rebuild of {made:,} compacted events from S3 (s; goal 1.5x local_rebuild_compacted_1m)",
            statistics.median(times["s3"]),
            "s",
            1.5 * local_median,
            False,
            runs=times["s3"],
            extra={
                **common,
                "vs_local": round(statistics.median(times["s3"]) / local_median, 2),
                "objects_in_store": objects,
                "requests_per_rebuild": requests[-1],
                "fixture_seconds": round(t_fixture, 1),
                "upload_seconds": round(t_upload, 1),
                "compaction_seconds": round(t_compact_s3, 1),
                "compaction_requests": asked,
            },
        ),
        Result(
            "local_rebuild_compacted_1m",
            f"the same rebuild of {made:,} compacted events from a local disk (s; the reference)",
            local_median,
            "s",
            None,
            False,
            runs=times["local"],
            extra={**common, "compaction_seconds": round(t_compact_disk, 1)},
        ),
    ]


def _write_new(sc: Scale) -> None:
    """``sc.catchup`` events from ``sc.catchup_writers`` writers, each with its own store (as on
    its own host), closed (sealed and uploaded)."""
    per = sc.catchup // sc.catchup_writers
    for _ in range(sc.catchup_writers):
        store = open_s3("big")
        w = EventWriter(store, durability="batch")
        evs = _catchup_events(per)
        w.append_many(evs)
        w.close()
        store.close()


def bench_catchup(sc: Scale, base: Path, profile: int) -> Result:
    """Catch-up of ``sc.catchup`` new events on the registry rebuilt from S3: a fresh store and
    projector per round (timed), and a follower kept open across rounds (in the extras)."""
    d = base / "big"
    shutil.copy(d / "s3.duckdb", d / "warm.duckdb")
    warm_store = open_s3("big")
    warm_con = duckdb.connect(str(d / "warm.duckdb"))
    warm = Projector(warm_con, warm_store)
    assert not warm.needs_rebuild
    warm.catch_up()  # the follower has listed once before the rounds
    times: list[float] = []
    warm_times: list[float] = []
    requests: list[dict[str, int]] = []
    per = sc.catchup // sc.catchup_writers
    want = per * sc.catchup_writers  # seals are control records, not counted
    for r in range(sc.repeats):
        _write_new(sc)
        store = open_s3("big")
        con = duckdb.connect(str(d / "s3.duckdb"))
        proj = Projector(con, store)
        assert not proj.needs_rebuild
        before = dict(store.requests)  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        res = profile_call("s3 catch-up", proj.catch_up, profile) if profile and r == 0 else proj.catch_up()
        times.append(time.perf_counter() - t0)
        assert res.events == want, (res.events, want)
        requests.append({k: v - before.get(k, 0) for k, v in store.requests.items()})  # type: ignore[attr-defined]
        con.close()
        store.close()
        t0 = time.perf_counter()
        res = warm.catch_up()
        warm_times.append(time.perf_counter() - t0)
        assert res.events == want, (res.events, want)
    warm_con.close()
    warm_store.close()
    return Result(
        "s3_catchup_1k",
        f"catch-up of {want:,} new events from {sc.catchup_writers} writers on the S3 registry "
        "(fresh store and projector; s)",
        statistics.median(times),
        "s",
        0.3,
        False,
        runs=times,
        extra={
            "requests": requests[-1],
            "warm_median_s": round(statistics.median(warm_times), 4),
            "warm_runs": [round(t, 4) for t in warm_times],
        },
    )


# --- 5. many writers ------------------------------------------------------------------------------


def _many_worker(n: int, q: Any) -> None:
    t0 = time.monotonic()
    store = open_s3("many")
    w = EventWriter(store, durability="batch")
    for ev in _run_events(n, "many"):
        w.append(ev)
    w.close()
    store.close()
    q.put((t0, time.monotonic(), w.last_seq))


def bench_many_writers(sc: Scale) -> Result:
    open_s3("many").close()  # FORMAT made once, before the processes race for it
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    t0 = time.monotonic()
    ps = [ctx.Process(target=_many_worker, args=(sc.many_events, q)) for _ in range(sc.many_writers)]
    for p in ps:
        p.start()
    got = _collect(q, ps)
    wall = time.monotonic() - t0
    appending = max(g[1] for g in got) - min(g[0] for g in got)
    store = open_s3("many")
    con = duckdb.connect(":memory:")
    res = Projector(con, store).rebuild()
    n, writers, distinct = con.execute(
        "SELECT count(*), count(DISTINCT writer), count(DISTINCT (writer, seq)) FROM event_log"
    ).fetchone()
    segments = len(store.segments())
    chunks = sum(len(c) for c in store._index.chunks.values())  # type: ignore[attr-defined]
    con.close()
    store.close()
    want = sc.many_writers * sc.many_events
    return Row(
        "s3_64_writers",
        f"{sc.many_writers} processes x {sc.many_events:,} events into one S3 store, start to last "
        "exit (s); every event counted after",
        wall,
        "s",
        60.0,
        False,
        runs=[wall],
        extra={
            "events_counted": n,
            "expected": want,
            "writers": writers,
            "distinct": distinct,
            "problems": len(res.problems),
            "segments": segments,
            "chunk_objects": chunks,
            "append_span_s": round(appending, 2),
        },
        ok=n == want == distinct and writers == sc.many_writers and not res.problems,
    )


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small-scale smoke run (under a minute)")
    ap.add_argument("--only", choices=NAMES, action="append", help="run only this benchmark (repeatable)")
    ap.add_argument("--out", default="bench-output/s3.json", help="where to write the JSON results")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="profile big steps, top N")
    ap.add_argument("--tmp", default=None, help="directory for the server and stores (default: system temp)")
    args = ap.parse_args(argv)
    sc = QUICK if args.quick else Scale()
    only = set(args.only or NAMES)
    if "s3_catchup_1k" in only:
        only.add("s3_rebuild_compacted_1m")  # the catch-up runs on the rebuilt registry
    from joshreg.testing.servers import seaweedfs

    info = machine()
    print(
        f"joshreg object-storage benchmarks ({'quick' if args.quick else 'full'}): nproc={info['nproc']} "
        f"python={info['python']} duckdb={info['duckdb']} {info['platform']}"
    )
    results: list[Result] = []
    t_all = time.perf_counter()

    def step(label: str, fn: Callable[[], list[Result]]) -> list[Result]:
        t = time.perf_counter()
        rows = fn()
        results.extend(rows)
        figures = ", ".join(f"{r.name} {_fmt(r.value, r.unit)}" for r in rows)
        print(f"  [{time.perf_counter() - t:6.1f} s] {label}: {figures}", flush=True)
        return rows

    with tempfile.TemporaryDirectory(prefix="joshreg-bench-s3-", dir=args.tmp) as tmp:
        base = Path(tmp)
        ts = time.perf_counter()
        with seaweedfs(base / "server") as server:
            server.create_bucket(BUCKET)
            os.environ.update(server.environ())  # for this process and every child
            info["server"] = f"SeaweedFS {_weed_version()} on loopback"
            print(f"{info['server']}, ready in {time.perf_counter() - ts:.1f} s\n", flush=True)
            if "s3_append_1proc" in only or "s3_append_8proc" in only:
                one = step("append, 1 process", lambda: bench_append(sc, base, multi=False))
                if "s3_append_8proc" in only:
                    many = step(f"append, {sc.procs} processes", lambda: bench_append(sc, base, multi=True))
                    for row, single in zip(many, one, strict=True):
                        row.goal = single.value
                        row.extra["vs_1proc"] = round(row.value / single.value, 2)
            if "s3_watch_latency_p95" in only:
                step("watch latency", lambda: [bench_watch_latency(sc, base)])
            if "s3_rebuild_compacted_1m" in only:
                step("rebuild compacted", lambda: bench_rebuild(sc, base, args.profile))
            if "s3_catchup_1k" in only:
                step("catch-up", lambda: [bench_catchup(sc, base, args.profile)])
            if "s3_64_writers" in only:
                step(f"{sc.many_writers} writers", lambda: [bench_many_writers(sc)])
    total = time.perf_counter() - t_all
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(
        f"\ntotal {total:.1f} s; load average at start {info['loadavg_at_start']}, "
        f"at end {info['loadavg_at_end']}\n"
    )
    print_table(results)
    write_report(Path(args.out), args.quick, info, sc, total, results)
    return 0


def _weed_version() -> str:
    from joshreg.testing.servers import _weed

    try:
        out = subprocess.run([_weed(), "version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "(version unknown)"
    return out.split("\n", 1)[0].replace("version ", "").strip() or "(version unknown)"


if __name__ == "__main__":
    sys.exit(main())
