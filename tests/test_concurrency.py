"""Concurrency and crash behaviour with real processes (multiprocessing "spawn").

- Many recorder processes writing at once, some killed with SIGKILL mid-stream and one dying
  in the middle of a line: every acknowledged (durably appended) event is projected exactly
  once, nothing else is damaged, and incremental catch-up during the writes equals a rebuild.
- A registry opened while another process holds its DuckDB file reads and writes through a
  private projection, and both sides see each other's writes.
- Processes racing to give one label to different runs: exactly one wins.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import random
import time
from pathlib import Path
from typing import Any

import pytest

from joshreg import LabelConflictError, RunRegistry
from joshreg.projection.tables import BOOKKEEPING_TABLES, UPSTREAM_TABLES
from joshreg.testing.registries import FakeJobConfig, dump_tables

try:
    from . import workers  # tests as a package
except ImportError:
    import workers  # tests on sys.path (pytest's default "prepend" import mode)

pytestmark = pytest.mark.slow

CTX = mp.get_context("spawn")
HASHES = ["aaaaaaaaaaa1", "bbbbbbbbbbb2", "ccccccccccc3"]
SESSION = "sweep-1"
DEADLINE = 120.0  # seconds any one test may wait for its processes (a bound, not a speed check)


def _make_registry(db: Path, hashes: list[str]) -> None:
    with RunRegistry(db, enable_spatial=False) as reg:
        reg.create_session(FakeJobConfig(simulation="Sim"), experiment_name="conc", session_id=SESSION)
        for i, h in enumerate(hashes):
            reg.register_run(SESSION, h, f"{h}.josh", f"config {i}", None, {"alpha": float(i)})


def _reap(procs: list[Any]) -> None:
    """Kill and join whatever is still running (only processes this test started)."""
    for p in procs:
        if p.is_alive():
            p.kill()
    for p in procs:
        p.join(timeout=10)


def _get(results: Any, procs: list[Any]) -> Any:
    """The next result; fails at once if every process that could send it has died."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            return results.get(timeout=0.2)
        except queue.Empty:
            if not any(p.is_alive() for p in procs):
                try:
                    return results.get(timeout=1)
                except queue.Empty:
                    codes = [p.exitcode for p in procs]
                    raise AssertionError(f"worker died without reporting (exit codes {codes})") from None
    raise AssertionError(f"no result within {DEADLINE} s")


def _acks(path: Path) -> dict[int, str]:
    """Acknowledged run numbers → output ids; a line cut short by a kill is not an ack."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    out: dict[int, str] = {}
    for line in text.splitlines(keepends=True):
        if line.endswith("\n"):
            n, oid = line.split()
            out[int(n)] = oid
    return out


def _snapshot(reg: RunRegistry) -> dict[str, list[dict[str, Any]]]:
    tables = (
        *(t for t in UPSTREAM_TABLES if t != "cell_data"),
        "event_log",
        "label_history",
        *(t for t in BOOKKEEPING_TABLES if t != "joshreg_meta"),
    )
    return dump_tables(reg, tables)


# --- many writers, some killed ------------------------------------------------------------------


SURVIVORS = 4  # workers 0-3 finish
VICTIMS = 3  # workers 4-6 are killed by the test at a random point
TORN = 7  # worker 7 writes half a line, then kills itself
SURVIVOR_RUNS = 1000  # three events per run: 3000 events per survivor
TORN_RUNS = 600
ENDLESS = 1_000_000  # victims never finish on their own
SYNC_EVERY = 0.2  # seconds between catch-ups of the registry that follows the writers


def test_killed_writers_lose_only_unacknowledged_events(tmp_path: Path) -> None:
    db = tmp_path / "reg.duckdb"
    _make_registry(db, HASHES)
    rng = random.Random(os.getpid())
    acks = {i: tmp_path / f"ack{i}" for i in range(8)}
    plans = {i: SURVIVOR_RUNS for i in range(SURVIVORS)}
    plans.update({i: ENDLESS for i in range(SURVIVORS, SURVIVORS + VICTIMS)})
    plans[TORN] = TORN_RUNS
    kill_after = {i: rng.randint(150, 700) for i in range(SURVIVORS, SURVIVORS + VICTIMS)}
    procs = {
        i: CTX.Process(
            target=workers.record_runs,
            args=(str(db), SESSION, HASHES, i, runs, str(acks[i]), rng.randrange(1 << 30)),
            kwargs={"tear": i == TORN},
        )
        for i, runs in plans.items()
    }
    reg = RunRegistry(db, enable_spatial=False)
    configs = ["sweep_sessions", "job_configs", "session_configs", "config_parameters"]
    before = dump_tables(reg, tuple(configs))
    try:
        for p in procs.values():
            p.start()
        # Follow the log while it is written; kill each victim once it has acknowledged
        # its random number of runs.
        deadline = time.monotonic() + DEADLINE
        alive_victims = set(kill_after)
        next_sync = 0.0
        while time.monotonic() < deadline:
            for i in sorted(alive_victims):
                if len(_acks(acks[i])) >= kill_after[i]:
                    procs[i].kill()
                    alive_victims.discard(i)
                elif not procs[i].is_alive():
                    raise AssertionError(f"worker {i} died on its own (exit code {procs[i].exitcode})")
            if time.monotonic() >= next_sync:
                reg.sync()
                next_sync = time.monotonic() + SYNC_EVERY
            if not alive_victims and not any(p.is_alive() for p in procs.values()):
                break
            time.sleep(0.005)
        assert not alive_victims, f"victims {sorted(alive_victims)} never reached their kill point"
        for p in procs.values():
            p.join(timeout=max(0.1, deadline - time.monotonic()))
        assert [procs[i].exitcode for i in range(SURVIVORS)] == [0] * SURVIVORS
        assert all(procs[i].exitcode == -9 for i in kill_after)
        assert procs[TORN].exitcode == -9

        reg.sync()
        incremental = _snapshot(reg)
        assert {t: incremental[t] for t in configs} == before  # the workers touched only runs
        _check_projection(reg, {i: _acks(acks[i]) for i in range(8)}, plans)

        reg.rebuild()
        rebuilt = _snapshot(reg)
        for table in incremental:
            assert rebuilt[table] == incremental[table], f"{table} differs after rebuild"
        reg.rebuild()
        assert _snapshot(reg) == rebuilt
    finally:
        _reap(list(procs.values()))
        reg.close()

    # A registry opened from scratch (the file deleted) sees the same.
    db.unlink()
    with RunRegistry(db, enable_spatial=False) as fresh:
        assert _snapshot(fresh) == rebuilt


def _check_projection(reg: RunRegistry, acked: dict[int, dict[int, str]], plans: dict[int, int]) -> None:
    # Nothing in the log is damaged: a torn tail is simply not yet written.
    assert reg.query("SELECT * FROM log_problems").fetchall() == []

    # Every event is in event_log once; each writer's seqs run 1..k with no hole.
    dup = reg.query("SELECT event_id FROM event_log GROUP BY event_id HAVING count(*) > 1").fetchall()
    assert dup == []
    holes = reg.query(
        "SELECT writer, min(seq), max(seq), count(*), count(DISTINCT seq) FROM event_log GROUP BY writer "
        "HAVING min(seq) <> 1 OR max(seq) <> count(*) OR count(DISTINCT seq) <> count(*)"
    ).fetchall()
    assert holes == []
    checkpoint = dict(reg.query("SELECT writer, last_seq FROM joshreg_writers").fetchall())
    last = dict(reg.query("SELECT writer, max(seq) FROM event_log GROUP BY writer").fetchall())
    assert checkpoint.keys() == last.keys()
    # A writer that closed its segment sealed it: one more seq, a control record with no row.
    assert all(checkpoint[w] - last[w] in (0, 1) for w in last), (checkpoint, last)

    events: dict[tuple[int, str], list[int]] = {}
    writers: dict[int, set[str]] = {}
    for run_id, typ, writer in reg.query(
        "SELECT run_id, type, writer FROM event_log WHERE run_id IS NOT NULL"
    ).fetchall():
        w, n = run_id[1:].split("-")
        events.setdefault((int(w), typ), []).append(int(n))
        writers.setdefault(int(w), set()).add(writer)
    runs = {
        r[0]: r[1:]
        for r in reg.query(
            "SELECT run_id, run_hash, session_id, replicate, exit_code, error_message, completed_at IS NULL "
            "FROM job_runs"
        ).fetchall()
    }
    outputs = {
        r[0]: r[1:]
        for r in reg.query(
            "SELECT output_id, run_id, output_type, file_path, file_size, row_count FROM run_outputs"
        ).fetchall()
    }

    for w, acks in acked.items():
        assert len(writers[w]) == 1, f"worker {w} appears under several writer ids"
        started = sorted(events.get((w, "run.started"), []))
        completed = sorted(events.get((w, "run.completed"), []))
        output = sorted(events.get((w, "output.registered"), []))
        # Each worker's surviving events are a prefix of what it wrote, each exactly once.
        m = len(started)
        assert started == list(range(m))
        assert completed == list(range(len(completed)))
        assert output == list(range(len(output)))
        assert m - 1 <= len(output) <= len(completed) <= m
        # Every acknowledged run is there, whole.
        assert acks, f"worker {w} acknowledged nothing"
        assert max(acks) < len(output)
        assert sorted(acks) == list(range(len(acks)))
        if plans[w] != ENDLESS:
            assert len(acks) == plans[w]
            assert m == plans[w]
            if w != TORN:
                assert len(output) == m
        for n in range(m):
            rid = workers.run_id(w, n)
            done = n < len(completed)
            code = n % 7 if done else None
            message = (None if code == 0 else f"code {code}") if done else None
            assert runs[rid] == (HASHES[n % len(HASHES)], SESSION, n, code, message, not done)
        for n, oid in acks.items():
            assert outputs[oid] == (workers.run_id(w, n), "csv", workers.output_path(w, n), n, w)
    assert len(runs) == sum(len(events.get((w, "run.started"), [])) for w in acked)
    assert len(outputs) == sum(len(events.get((w, "output.registered"), [])) for w in acked)


# --- a second process while the DuckDB file is held -----------------------------------------------


def test_second_process_reads_and_writes_while_file_is_held(tmp_path: Path) -> None:
    db = tmp_path / "held.duckdb"
    go = CTX.Queue()
    results = CTX.Queue()
    holder = CTX.Process(target=workers.hold_registry, args=(str(db), SESSION, HASHES[0], go, results))
    holder.start()
    other: RunRegistry | None = None
    try:
        tag, holder_private, first = _get(results, [holder])
        assert (tag, holder_private) == ("ready", False)

        other = RunRegistry(db, enable_spatial=False)  # must not raise a lock error
        assert other.private_projection is True
        assert other.get_session(SESSION) is not None
        run = other.get_run(first)
        assert run is not None
        assert run.run_hash == HASHES[0]

        other.register_run(SESSION, HASHES[1], "b.josh", "cfg b", None, {"alpha": 2.0})
        mine = other.start_run(HASHES[1], session_id=SESSION)
        other.complete_run(mine, 0)
        other.label_run(HASHES[1], "mine")
        done = other.get_run(mine)
        assert done is not None
        assert done.exit_code == 0

        go.put("write")
        tag, second = _get(results, [holder])
        assert tag == "wrote"
        assert other.get_run(second) is not None  # the holder's later write reaches us

        go.put("report")
        tag, runs, configs, labels = _get(results, [holder])
        assert tag == "seen"
        assert runs == sorted([first, second, mine])
        assert configs == sorted(HASHES[:2])
        assert labels == [("mine", HASHES[1])]
        assert _get(results, [holder]) == ("closed",)
        holder.join(timeout=DEADLINE)
        assert holder.exitcode == 0

        # The private projection keeps working after the holder leaves ...
        assert other.resolve_label("mine") == HASHES[1]
        # ... and the next registry opened gets the real file, with everything in it.
        with RunRegistry(db, enable_spatial=False) as again:
            assert again.private_projection is False
            ids = sorted(r[0] for r in again.query("SELECT run_id FROM job_runs").fetchall())
            assert ids == sorted([first, second, mine])
            assert again.list_labels() == [("mine", HASHES[1])]
            assert _snapshot(again) == _snapshot(other)
    finally:
        _reap([holder])
        if other is not None:
            other.close()


# --- a label race ---------------------------------------------------------------------------------


def test_label_race_has_exactly_one_winner(tmp_path: Path) -> None:
    db = tmp_path / "labels.duckdb"
    hashes = [f"{c * 11}{i}" for i, c in enumerate("defg")]
    _make_registry(db, hashes)
    barrier = CTX.Barrier(len(hashes))
    results = CTX.Queue()
    procs = [CTX.Process(target=workers.label_best, args=(str(db), h, barrier, results)) for h in hashes]
    try:
        for p in procs:
            p.start()
        outcomes = {}
        for _ in procs:
            run_hash, outcome, message = _get(results, procs)
            outcomes[run_hash] = (outcome, message)
        for p in procs:
            p.join(timeout=DEADLINE)
        assert [p.exitcode for p in procs] == [0] * len(procs)
    finally:
        _reap(procs)

    winners = [h for h, (o, _) in outcomes.items() if o == "ok"]
    assert len(winners) == 1, outcomes
    winner = winners[0]
    for h, (outcome, message) in outcomes.items():
        if h != winner:
            assert outcome == "conflict", message
            assert winner in message
    with RunRegistry(db, enable_spatial=False) as reg:
        assert reg.resolve_label("best") == winner
        history = reg.label_history(label="best")
        assert [(c.action, c.run_hash, c.previous_run_hash) for c in history] == [("assigned", winner, None)]
        assert reg.list_labels() == [("best", winner)]
        with pytest.raises(LabelConflictError, match=winner):
            reg.label_run(next(h for h in hashes if h != winner), "best")
