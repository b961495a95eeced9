"""Live projection with real processes: `joshreg watch`, snapshots for readers, waiting for runs.

- `joshreg watch` follows worker processes that record runs with `RunRecorder`, prints a line
  per batch, and its DuckDB file holds every run once it stops (SIGTERM: exit 0, a summary).
- While the sweep runs, another process opens the published snapshot read-only with plain
  duckdb again and again and always reads a consistent state; `joshreg runs` and a
  `RunRegistry` work at the same time without a lock error (private projection).
- The timer alone (`--poll`, no file events) keeps up too; SIGINT stops it cleanly.
- `RunRegistry.wait_for_run` returns once another process completes the run, woken by file
  events (its timer set far beyond the test's bound), and times out naming the run otherwise.

Every wait is bounded; every process the test starts is killed in `finally`.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from joshreg import JoshregError, RunRegistry
from joshreg.errors import WaitTimeoutError
from joshreg.projection.snapshot import snapshot_path
from joshreg.testing.registries import FakeJobConfig

pytestmark = pytest.mark.slow

SESSION = "sweep-1"
HASHES = ["aaaaaaaaaaa1", "bbbbbbbbbbb2", "ccccccccccc3"]
DEADLINE = 60.0  # seconds any one wait may take (a bound, not a speed check)
SETUP_EVENTS = 1 + len(HASHES)  # session.created + one run.registered per hash

# A worker: `runs` runs (start + complete: 2 events each) with ids w<worker>-<n>, a pause after each.
WORKER = r"""
import sys, time
from joshreg import RunRecorder
db, session, worker, runs, pause, hashes = sys.argv[1:7]
hashes = hashes.split(",")
with RunRecorder(db, session_id=session) as rec:
    for n in range(int(runs)):
        rid = rec.start_run(hashes[n % len(hashes)], run_id=f"w{worker}-{n}", replicate=n)
        rec.complete_run(rid, exit_code=n % 3)
        rec.flush()
        time.sleep(float(pause))
"""

# A reader that knows nothing of joshreg: plain duckdb, read-only, a fresh connection per read,
# one JSON line per read, until it has seen `expected` runs or its deadline passes.
READER = r"""
import json, sys, time
import duckdb
snap, expected, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
SQL = '''SELECT
    (SELECT count(*) FROM event_log),
    (SELECT count(*) FROM (SELECT writer, max(seq) AS m, count(*) AS n FROM event_log GROUP BY writer) e
        FULL JOIN joshreg_writers w USING (writer)
        WHERE e.m IS NULL OR w.last_seq IS NULL OR e.n <> e.m OR e.m > w.last_seq OR e.m < w.last_seq - 1),
    (SELECT count(*) FROM event_log WHERE type = 'run.started'),
    (SELECT count(*) FROM job_runs),
    (SELECT count(*) FROM job_runs WHERE completed_at IS NOT NULL),
    (SELECT count(*) FROM job_runs WHERE run_hash NOT IN (SELECT run_hash FROM job_configs))'''
while time.monotonic() < deadline:
    try:
        con = duckdb.connect(snap, read_only=True)
        try:
            row = con.execute(SQL).fetchone()
        finally:
            con.close()
    except Exception as e:
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
        time.sleep(0.05)
        continue
    keys = ("events", "bad_checkpoints", "started_events", "runs", "completed", "orphans")
    print(json.dumps(dict(zip(keys, row))), flush=True)
    if row[3] >= expected:
        break
    time.sleep(0.02)
"""


def _make_registry(db: Path) -> None:
    with RunRegistry(db, enable_spatial=False) as reg:
        reg.create_session(FakeJobConfig(simulation="Sim"), experiment_name="watch", session_id=SESSION)
        for i, h in enumerate(HASHES):
            reg.register_run(SESSION, h, f"{h}.josh", f"config {i}", None, {"alpha": float(i)})


def _python(*args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *args], text=True, **kw)


def _worker(db: Path, worker: int, runs: int, pause: float) -> subprocess.Popen[str]:
    args = [str(db), SESSION, str(worker), str(runs), str(pause), ",".join(HASHES)]
    return _python("-c", WORKER, *args, stderr=subprocess.PIPE)


class Watcher:
    """`joshreg watch` in a subprocess, its stdout lines collected by a thread."""

    def __init__(self, db: Path, *options: str) -> None:
        self.proc = _python(
            "-m", "joshreg", "watch", str(db), *options, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_line(self, match: Any = None, timeout: float = DEADLINE) -> str:
        """The next line (for which ``match(line)`` is true); fails if the watcher dies first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    self._reader.join(timeout=5)
                    if self.lines.empty():
                        raise AssertionError(
                            f"the watcher exited ({self.proc.returncode}) after {self.seen[-3:]}; "
                            f"stderr: {self.stderr()}"
                        ) from None
                continue
            self.seen.append(line)
            if match is None or match(line):
                return line
        raise AssertionError(f"no matching watcher line within {timeout} s; last lines {self.seen[-3:]}")

    def next_json(self, match: Any = None, timeout: float = DEADLINE) -> dict[str, Any]:
        line = self.next_line(lambda s: match is None or match(json.loads(s)), timeout)
        return json.loads(line)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=DEADLINE)
        self._reader.join(timeout=5)
        return code

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(running)"
        return self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _reap(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait(timeout=10)
        if p.stderr is not None:
            p.stderr.close()
        if p.stdout is not None:
            p.stdout.close()


def _wait_ok(p: subprocess.Popen[str], name: str) -> None:
    code = p.wait(timeout=DEADLINE)
    err = p.stderr.read() if p.stderr is not None else ""
    assert code == 0, f"{name} failed with {code}: {err}"


def _held_by_another_process(db: Path) -> bool:
    """Whether a fresh process is refused the DuckDB file (it is held read-write elsewhere)."""
    probe = (
        "import duckdb, sys\n"
        "try:\n    duckdb.connect(sys.argv[1]).close()\n"
        "except duckdb.IOException:\n    print('held')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(db)], capture_output=True, text=True, timeout=DEADLINE
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip() == "held"


def _cli_runs(db: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "joshreg", "runs", str(db), "--json"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert proc.returncode == 0, proc.stderr
    assert "lock" not in proc.stderr.lower(), proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


# --- a sweep followed live, read at any moment ------------------------------------------------------


def test_watch_follows_a_sweep_while_others_read(tmp_path: Path) -> None:
    db = tmp_path / "sweep.duckdb"
    _make_registry(db)
    workers, runs = 3, 40
    expected_runs = workers * runs
    expected_events = SETUP_EVENTS + 2 * expected_runs
    snap = snapshot_path(db)
    assert snap == tmp_path / "sweep.snapshot.duckdb"
    watcher = Watcher(db, "--json", "--snapshot-interval", "0.1")
    procs: list[subprocess.Popen[str]] = []
    try:
        head = watcher.next_json()
        assert head["file_events"] is True
        assert (head["total_events"], head["total_label_commits"]) == (SETUP_EVENTS, 0)
        assert head["snapshot"] == str(snap)
        assert snap.exists()  # published before the first wait
        assert _held_by_another_process(db)  # publishing did not drop the watcher's lock

        reader = _python("-c", READER, str(snap), str(expected_runs), str(DEADLINE), stdout=subprocess.PIPE)
        procs.append(reader)
        procs += [_worker(db, w, runs, 0.03) for w in range(workers)]

        # While the sweep runs: the CLI and a RunRegistry in this process, no lock error.
        during = _cli_runs(db)
        assert len(during) <= expected_runs
        with RunRegistry(db, enable_spatial=False) as other:
            assert other.private_projection is True  # the watcher holds the file
            assert other.get_session(SESSION) is not None
            assert len(other.query("SELECT run_id FROM job_runs").fetchall()) <= expected_runs

        for i, p in enumerate(procs[1:]):
            _wait_ok(p, f"worker {i}")
        batch = watcher.next_json(lambda r: r.get("total_events") == expected_events)
        assert batch["lag_ms"] is not None and batch["lag_ms"] >= 0
        assert batch["problems"] == []
        assert len(_cli_runs(db)) == expected_runs

        out, _ = reader.communicate(timeout=DEADLINE)
        assert reader.returncode == 0
        reads = [json.loads(line) for line in out.splitlines()]
        errors = [r["error"] for r in reads if "error" in r]
        assert errors == []
        assert len(reads) >= 3
        for r in reads:  # each read is one consistent state of the projection
            # Rows and checkpoint committed together: per writer, seqs 1..m applied and the
            # checkpoint at m (or m + 1: a trailing control record no table shows).
            assert r["bad_checkpoints"] == 0, r
            assert r["started_events"] == r["runs"], r
            assert r["completed"] <= r["runs"], r
            assert r["orphans"] == 0, r
        counts = [r["events"] for r in reads]
        assert counts == sorted(counts), "a later read went back in time"
        assert any(0 < r["runs"] < expected_runs for r in reads), "no read saw the sweep in progress"
        assert reads[-1]["runs"] == expected_runs

        assert watcher.stop(signal.SIGTERM) == 0
        summary = watcher.next_json(lambda r: r.get("stopped") is True, timeout=5)
        assert summary["events"] == expected_events - SETUP_EVENTS
        assert summary["total_events"] == expected_events
        assert summary["batches"] >= 2
        assert summary["snapshots"] >= 2
        batches = [json.loads(s) for s in watcher.seen if '"at"' in s]
        assert sum(b["events"] for b in batches) == summary["events"]
    finally:
        watcher.kill()
        _reap(procs)

    # The watcher committed everything into the file itself, which is free again.
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM event_log").fetchone() == (expected_events,)
        assert con.execute("SELECT count(*) FROM job_runs").fetchone() == (expected_runs,)
        assert con.execute("SELECT count(*) FROM job_runs WHERE exit_code = 0").fetchone() == (
            sum(1 for n in range(runs) if n % 3 == 0) * workers,
        )
    finally:
        con.close()
    con = duckdb.connect(str(snap), read_only=True)  # and the last snapshot has it all
    try:
        assert con.execute("SELECT count(*) FROM event_log").fetchone() == (expected_events,)
    finally:
        con.close()


# --- the timer alone ----------------------------------------------------------------------------------

LIVE_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}  \+(\d+) events  \+(\d+) label commits  "
    r"lag (\d+) ms  total (\d+) events, (\d+) label commits$"
)


def test_poll_mode_keeps_up_without_file_events_and_stops_on_sigint(tmp_path: Path) -> None:
    db = tmp_path / "polled.duckdb"
    _make_registry(db)
    watcher = Watcher(db, "--poll", "--interval", "0.2")
    procs: list[subprocess.Popen[str]] = []
    try:
        head = watcher.next_line()
        assert head.startswith(f"watching {db} ")
        assert "a catch-up every 0.2 s" in head and "file events" not in head
        assert f"; {SETUP_EVENTS} events, 0 label commits so far" in head
        procs.append(_worker(db, 0, 5, 0.0))
        _wait_ok(procs[0], "worker")
        with RunRegistry(db, enable_spatial=False) as other:  # a label commit from here
            other.label_run(HASHES[0], "best")

        totals = (0, 0)
        while totals != (SETUP_EVENTS + 10, 1):
            m = LIVE_LINE.match(watcher.next_line())
            assert m is not None, watcher.seen[-1]
            totals = (int(m[4]), int(m[5]))
        assert watcher.stop(signal.SIGINT) == 0
        last = watcher.next_line(timeout=5)
        assert last.startswith("stopped after ")
        assert f"; total {SETUP_EVENTS + 10} events, 1 label commits;" in last
        assert "snapshots to" in last
        assert watcher.stderr() == ""
    finally:
        watcher.kill()
        _reap(procs)


# --- damage, --once, a held file ------------------------------------------------------------------------


def test_damage_is_reported_live_and_in_the_exit_status(tmp_path: Path) -> None:
    db = tmp_path / "damaged.duckdb"
    _make_registry(db)
    watcher = Watcher(db, "--json")
    try:
        watcher.next_json()
        (tmp_path / "damaged.events" / "log" / "zz-broken.jsonl").write_text("not an event\n")
        batch = watcher.next_json(lambda r: bool(r.get("problems")))
        assert "zz-broken.jsonl:1" in batch["problems"][0]
        assert watcher.stop() == 1  # like `joshreg rebuild`: damage found
        summary = watcher.next_json(lambda r: r.get("stopped") is True, timeout=5)
        assert summary["problems"] == 1
        assert "joshreg: problem: log/zz-broken.jsonl:1" in watcher.stderr()
    finally:
        watcher.kill()


def test_once_publishes_a_snapshot_even_while_another_process_holds_the_file(tmp_path: Path) -> None:
    db = tmp_path / "held.duckdb"
    _make_registry(db)
    with RunRegistry(db, enable_spatial=False) as holder:  # this process holds the file
        holder.label_run(HASHES[1], "best")
        proc = subprocess.run(
            [sys.executable, "-m", "joshreg", "watch", str(db), "--once", "--json"],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
        assert proc.returncode == 0, proc.stderr
        assert "held by another process" in proc.stderr
        lines = [json.loads(s) for s in proc.stdout.splitlines()]
        assert lines[0]["total_events"] == SETUP_EVENTS
        assert lines[-1]["stopped"] is True and lines[-1]["snapshots"] == 1
        # The snapshot came from the watcher's private projection (a logical copy).
        con = duckdb.connect(str(snapshot_path(db)), read_only=True)
        try:
            assert con.execute("SELECT count(*) FROM event_log").fetchone() == (SETUP_EVENTS,)
            assert con.execute("SELECT * FROM labels_current").fetchall() == [("best", HASHES[1])]
            mine = holder.query("SELECT * FROM job_configs ORDER BY run_hash").fetchall()
            assert con.execute("SELECT * FROM job_configs ORDER BY run_hash").fetchall() == mine
        finally:
            con.close()
        # The owner can publish too, from its file (checkpoint and copy), and keeps its lock:
        # copying the file in this process would have dropped it (POSIX fcntl semantics).
        assert _held_by_another_process(db)
        path = holder.publish_snapshot(tmp_path / "mine.duckdb")
        assert _held_by_another_process(db)
        con = duckdb.connect(str(path), read_only=True)
        try:
            assert con.execute("SELECT count(*) FROM label_history").fetchone() == (1,)
        finally:
            con.close()


# --- waiting for a run --------------------------------------------------------------------------------

LATE = r"""
import sys, time
from joshreg import RunRecorder
db, session, run_hash, run_id, complete = sys.argv[1:6]
time.sleep(0.5)
with RunRecorder(db, session_id=session) as rec:
    rec.start_run(run_hash, run_id=run_id)
    rec.flush()
    time.sleep(0.3)
    if complete == "yes":
        rec.complete_run(run_id, exit_code=3, error_message="boom")
"""


def test_wait_for_run_returns_when_another_process_completes_it(tmp_path: Path) -> None:
    db = tmp_path / "wait.duckdb"
    _make_registry(db)
    procs: list[subprocess.Popen[str]] = []
    with RunRegistry(db, enable_spatial=False) as reg:
        try:
            procs.append(_python("-c", LATE, str(db), SESSION, HASHES[0], "late-1", "yes"))
            t0 = time.monotonic()
            # The timer is far beyond the bound: only a file event can wake the wait in time.
            run = reg.wait_for_run("late-1", timeout=DEADLINE, interval=3600)
            assert time.monotonic() - t0 < DEADLINE
            assert (run.run_id, run.exit_code, run.error_message) == ("late-1", 3, "boom")
            assert run.completed_at is not None

            procs.append(_python("-c", LATE, str(db), SESSION, HASHES[1], "half-1", "no"))
            started = reg.wait_for(lambda r: r.get_run("half-1"), timeout=DEADLINE, what="half-1's start")
            assert started.completed_at is None
            _wait_ok(procs[-1], "half worker")
            t0 = time.monotonic()
            with pytest.raises(WaitTimeoutError, match=r"run half-1 did not complete in time: it started at"):
                reg.wait_for_run("half-1", timeout=0.5)
            assert 0.5 <= time.monotonic() - t0 < 10
        finally:
            _reap(procs)


def test_wait_timeouts_name_what_was_awaited() -> None:
    with RunRegistry(":memory:") as reg:
        t0 = time.monotonic()
        with pytest.raises(WaitTimeoutError) as info:
            reg.wait_for_run("no-such-run", timeout=0.3, interval=0.1)
        assert 0.3 <= time.monotonic() - t0 < 10
        assert isinstance(info.value, TimeoutError) and isinstance(info.value, JoshregError)
        assert "run no-such-run did not complete in time: no process has recorded its start" in str(
            info.value
        )
        with pytest.raises(WaitTimeoutError, match="the labels did not hold"):
            reg.wait_for(lambda r: r.list_labels() or None, timeout=0, what="the labels")
        assert reg.wait_for(lambda r: 42, timeout=0) == 42
        with pytest.raises(ValueError, match="interval"):
            reg.wait_for_run("x", timeout=1, interval=0)


def test_snapshot_path_sits_beside_the_registry() -> None:
    assert snapshot_path("runs/sweep.duckdb") == Path("runs/sweep.snapshot.duckdb")
    assert snapshot_path("runs/sweep") == Path("runs/sweep.snapshot.duckdb")
    assert os.fspath(snapshot_path("a.b.duckdb")) == "a.b.snapshot.duckdb"
