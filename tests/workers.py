"""Process targets for tests/test_concurrency.py and tests/test_faults.py (with ``Disk``, the
fault injector a worker installs in itself).

They live in their own module because multiprocessing's "spawn" start method imports the
target by name in the child; a function defined in a test module would drag pytest along.
Results go back through queues or through acknowledgement files; nothing here asserts.
"""

from __future__ import annotations

import errno
import functools
import os
import random
import signal
from typing import Any

from joshreg import RunRecorder, RunRegistry
from joshreg.errors import LabelConflictError
from joshreg.log.codec import encode_event, frame
from joshreg.log.events import RunCompleted, RunStarted
from joshreg.testing.registries import FakeJobConfig


def run_id(worker: int, n: int) -> str:
    """The deterministic run id of run ``n`` of ``worker``."""
    return f"w{worker}-{n}"


def output_path(worker: int, n: int) -> str:
    """The deterministic output file path of run ``n`` of ``worker``."""
    return f"/out/w{worker}/{n}.csv"


def record_runs(
    db_path: str,
    session_id: str,
    hashes: list[str],
    worker: int,
    runs: int,
    ack_path: str,
    seed: int,
    tear: bool = False,
) -> None:
    """Record ``runs`` runs of three events each, acknowledging every durable run.

    After each ``flush()`` returns, the runs it made durable are appended to ``ack_path`` as
    ``"<n> <output id>"`` lines, in a single write: an acknowledged run is exactly one whose
    three events the worker was told are durable; a line cut short by a kill is no ack. With
    ``tear`` the worker ends by writing half an event line to its own segment and killing
    itself, as a crash in the middle of a write would.
    """
    rng = random.Random(seed)
    ack = os.open(ack_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    rec = RunRecorder(db_path, session_id=session_id, durability="batch")
    pending: list[str] = []
    next_flush = rng.randint(1, 40)
    for n in range(runs):
        rid = rec.start_run(
            hashes[n % len(hashes)], run_id=run_id(worker, n), replicate=n, metadata={"worker": worker}
        )
        rec.complete_run(rid, exit_code=n % 7, error_message=None if n % 7 == 0 else f"code {n % 7}")
        oid = rec.register_output(rid, "csv", output_path(worker, n), file_size=n, row_count=worker)
        pending.append(f"{n} {oid}\n")
        if len(pending) >= next_flush:
            rec.flush()
            os.write(ack, "".join(pending).encode())
            pending.clear()
            next_flush = rng.randint(1, 40)
    rec.flush()
    if pending:
        os.write(ack, "".join(pending).encode())
    if tear:
        w = rec.writer
        extra = RunStarted(run_id=run_id(worker, runs), run_hash=hashes[0], session_id=session_id)
        line, _ = frame(encode_event(extra), "00000000")
        w.store.append(w.segment, line[: len(line) // 2])
        w.store.sync(w.segment)
        os.kill(os.getpid(), signal.SIGKILL)
    rec.close()
    os.close(ack)


def hold_registry(db_path: str, session_id: str, run_hash: str, go: Any, results: Any) -> None:
    """Open the registry, keep its DuckDB file, and report what it sees at each step.

    Steps: write a session and a run, report ``ready``; on ``go``, write one more run start
    and report it; on the next ``go``, sync and report every run and label; then close.
    """
    reg = RunRegistry(db_path, enable_spatial=False)
    try:
        reg.create_session(FakeJobConfig(simulation="Sim"), experiment_name="held", session_id=session_id)
        reg.register_run(session_id, run_hash, "a.josh", "cfg a", None, {"alpha": 1.0})
        first = reg.start_run(run_hash, session_id=session_id)
        results.put(("ready", reg.private_projection, first))
        go.get(timeout=60)
        second = reg.start_run(run_hash, session_id=session_id, replicate=1)
        results.put(("wrote", second))
        go.get(timeout=60)
        runs = sorted(r[0] for r in reg.query("SELECT run_id FROM job_runs").fetchall())
        configs = sorted(r[0] for r in reg.query("SELECT run_hash FROM job_configs").fetchall())
        results.put(("seen", runs, configs, reg.list_labels()))
    finally:
        reg.close()
    results.put(("closed",))


def label_best(db_path: str, run_hash: str, barrier: Any, results: Any) -> None:
    """Open the registry, wait for the others, then try to label ``run_hash`` "best"."""
    reg = RunRegistry(db_path, enable_spatial=False)
    try:
        barrier.wait(timeout=60)
        try:
            reg.label_run(run_hash, "best")
        except LabelConflictError as e:
            results.put((run_hash, "conflict", str(e)))
        else:
            results.put((run_hash, "ok", ""))
    except Exception as e:  # reported, so the parent's assertion shows it
        results.put((run_hash, "error", f"{type(e).__name__}: {e}"))
    finally:
        reg.close()


# --- fault injection (tests/test_faults.py) -----------------------------------------------------

_os_write = os.write  # the real calls, kept before a Disk wraps them
_os_fsync = os.fsync


class Disk:
    """Wraps ``os.write`` and ``os.fsync`` of this process for files under ``root``.

    It injects faults (short writes, a full disk, a failing fsync, a kill in the middle of a
    write) and keeps count of the bytes written and fsynced per file, so that a worker can tell
    whether what it acknowledges as durable really went through ``fsync``. Files elsewhere
    (acknowledgement files, pipes) pass through untouched.
    """

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root) + os.sep
        self.written: dict[str, int] = {}
        self.synced: dict[str, int] = {}
        self.poisoned: set[str] = set()  # files whose fsync failed
        self.resynced: list[str] = []  # fsync called again on a poisoned file: the fsyncgate mistake
        self.short = False  # write at most half of each request (at least one byte)
        self.space: int | None = None  # bytes left before ENOSPC; None: unlimited
        self.kill_in_write: int | None = None  # SIGKILL in the middle of this many-th write from now
        self.fail_fsyncs = 0  # fail this many segment fsyncs with ENOSPC
        os.write = self._write  # type: ignore[assignment]
        os.fsync = self._fsync  # type: ignore[assignment]

    def _path(self, fd: int) -> str | None:
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return None
        return path if path.startswith(self.root) else None

    def _write(self, fd: int, data: Any) -> int:
        path = self._path(fd)
        if path is None:
            return _os_write(fd, data)
        view = memoryview(data)
        n = len(view)
        if self.kill_in_write is not None:
            self.kill_in_write -= 1
            if self.kill_in_write <= 0 and n > 2:
                cut = n // 2 - (view[n // 2 - 1] == 0x0A)  # inside a line, not between two
                _os_write(fd, view[:cut])
                os.kill(os.getpid(), signal.SIGKILL)
        if self.short and n > 1:
            n //= 2
        if self.space is not None:
            if self.space <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
            if self.space < n:  # the disk fills inside this write: end it inside a line
                n = self.space - 1 if self.space > 1 and view[self.space - 1] == 0x0A else self.space
        done = _os_write(fd, view[:n])
        self.written[path] = self.written.get(path, 0) + done
        if self.space is not None:
            self.space -= done
        return done

    def _fsync(self, fd: int) -> None:
        path = self._path(fd)
        if path is not None and path in self.poisoned:
            self.resynced.append(path)
        if path is not None and self.fail_fsyncs > 0 and f"{os.sep}log{os.sep}" in path:
            self.fail_fsyncs -= 1
            self.poisoned.add(path)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        _os_fsync(fd)
        if path is not None:
            self.synced[path] = self.written.get(path, 0)

    def unsynced(self, path: str) -> int:
        """Bytes this process wrote to ``path`` that no later fsync covered."""
        path = os.path.realpath(path)
        return self.written.get(path, 0) - self.synced.get(path, 0)


FAULT_SESSION = "sweep-1"  # what tests/test_concurrency.py's registries hold
FAULT_HASH = "aaaaaaaaaaa1"


def _shifted(clock: Any, shift_ns: int) -> int:
    return int(clock()) + shift_ns


def stream_runs(
    events_path: str, worker: int, runs: int, ack_path: str, seed: int, fault: dict[str, Any]
) -> None:
    """Append ``run.started`` events in random groups through an ``EventWriter``, with faults.

    Run ``n`` of this worker has run id ``run_id(worker, n)`` and replicate ``n``. Groups of
    1..``fault["group"]`` events are appended (with pauses up to ``fault["pause"]`` seconds
    between and inside groups, so a kill lands anywhere), then published or flushed. Each
    outcome is one JSON line in ``ack_path``, written after the call returned:

    - ``{"ack": "published", "runs": [a, b]}``: runs ``a..b-1`` reached the operating system;
    - ``{"ack": "durable", "runs": [[a, b], ...], "unsynced": k}``: ``flush()`` returned for them;
      ``k`` is how many bytes of the writer's segment the Disk saw written but not fsynced;
    - ``{"ack": "error", "runs": [a, b], "error": "...", "segment": "..."}``: the call raised a
      ``StoreError``; its runs are in doubt, and runs published since the last flush are not
      acknowledged as durable. The worker then "frees space" (ends the faults) and goes on.

    ``fault`` keys: ``durability`` (``"batch"``), ``group``, ``pause``, ``short`` (bool),
    ``space_after`` ``[group, bytes]`` (a full disk from that group on), ``fsync_fail_at``
    (group whose flush fails), ``kill_at`` ``[group, write]`` (SIGKILL in the middle of that
    write of that group), ``clock_jump_at`` ``[run, seconds]`` (the wall clock jumps by
    ``seconds`` after that run starts, and every earlier run completes again with exit code 0),
    ``complete`` (each run also completes, with exit code 1), ``label`` (at the end, commit that
    label for ``FAULT_HASH`` to the label log; with ``label_space`` the disk is full for the
    first try). Finally ``{"done": true, "resynced": [...]}``.
    """
    import json
    import time

    from joshreg.errors import StoreError
    from joshreg.log.store import LocalStore
    from joshreg.log.writer import EventWriter

    rng = random.Random(seed)
    ack = os.open(ack_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def note(**fields: Any) -> None:
        _os_write(ack, json.dumps(fields).encode() + b"\n")

    disk = Disk(events_path)
    disk.short = bool(fault.get("short"))
    store = LocalStore(events_path)
    durability = fault.get("durability", "batch")
    writer = EventWriter(store, durability=durability, batch_size=1 << 30, max_delay=1e9)
    max_group, pause = int(fault.get("group", 50)), float(fault.get("pause", 0.0))
    jump_at, jump = fault.get("clock_jump_at", (None, 0))
    complete = bool(fault.get("complete"))
    unflushed: list[list[int]] = []
    n = group = 0
    while n < runs:
        k = min(rng.randint(1, max_group), runs - n)
        if fault.get("space_after", (None,))[0] == group:
            disk.space = int(fault["space_after"][1])
        if fault.get("kill_at", (None,))[0] == group:
            disk.kill_in_write = int(fault["kill_at"][1])
        if fault.get("fsync_fail_at") == group:
            disk.fail_fsyncs = 1
        segment = writer.segment
        try:
            for j in range(n, n + k):
                rid = run_id(worker, j)
                started = RunStarted(run_id=rid, run_hash=FAULT_HASH, session_id=FAULT_SESSION, replicate=j)
                writer.append(started)
                if j == jump_at:  # the wall clock jumps; runs so far complete again, now with 0
                    time.time_ns = functools.partial(_shifted, time.time_ns, int(jump * 1e9))
                    for i in range(j):
                        writer.append(RunCompleted(run_id=run_id(worker, i), exit_code=0))
                if complete:
                    writer.append(RunCompleted(run_id=rid, exit_code=1))
                if pause and rng.random() < 0.05:
                    time.sleep(rng.uniform(0, pause))
            if durability != "none" and rng.random() < 0.5:
                writer.flush()
                unflushed.append([n, n + k])
                unsynced = disk.unsynced(os.path.join(events_path, segment))
                note(ack="durable", runs=unflushed, unsynced=unsynced)
                unflushed = []
            else:
                writer.publish()
                note(ack="published", runs=[n, n + k])
                unflushed.append([n, n + k])
        except StoreError as e:
            note(ack="error", runs=[n, n + k], error=str(e), segment=segment)
            unflushed = []
            disk.space, disk.fail_fsyncs = None, 0  # space freed
        n += k
        group += 1
        if pause:
            time.sleep(rng.uniform(0, pause))
    segment = writer.segment
    writer.flush()
    if durability != "none" and unflushed:
        note(ack="durable", runs=unflushed, unsynced=disk.unsynced(os.path.join(events_path, segment)))
    writer.close()
    if fault.get("label"):
        _commit_label(store, disk, fault, note)
    note(done=True, resynced=disk.resynced)
    os.close(ack)


def label_attempts(
    db_path: str, worker: int, pairs: list[tuple[str, str, str]], barrier: Any, out_path: str
) -> None:
    """Race the other workers through ``label_run`` calls on a shared set of labels.

    ``pairs`` are ``(label, run_hash, mode)`` with mode ``"plain"``, ``"force"`` or
    ``"timestamp"`` (``on_collision``); each pair is unique across all workers, so a commit in
    the log tells which attempt made it. The outcome of every attempt is one JSON line in
    ``out_path``, written after the call returned: ``ok``, ``conflict`` (a ``ValueError``, with
    its message) or ``error``.
    """
    import json

    out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    reg = RunRegistry(db_path, enable_spatial=False)
    try:
        barrier.wait(timeout=60)
        for label, run_hash, mode in pairs:
            try:
                if mode == "force":
                    reg.label_run(run_hash, label, force=True)
                elif mode == "timestamp":
                    reg.label_run(run_hash, label, on_collision="timestamp")
                else:
                    reg.label_run(run_hash, label)
            except ValueError as e:
                outcome, message = "conflict", str(e)
            except Exception as e:
                outcome, message = "error", f"{type(e).__name__}: {e}"
            else:
                outcome, message = "ok", ""
            record = {"label": label, "run": run_hash, "mode": mode, "outcome": outcome, "message": message}
            os.write(out, json.dumps(record).encode() + b"\n")
    finally:
        reg.close()
        os.close(out)


def _commit_label(store: Any, disk: Disk, fault: dict[str, Any], note: Any) -> None:
    """Commit ``fault["label"]`` through the label log (a put-if-absent claim), noting each try."""
    from joshreg.errors import StoreError
    from joshreg.log.events import LabelAssigned
    from joshreg.log.labels import LabelLog

    def plan(state: Any) -> list[Any]:
        return [LabelAssigned(label=fault["label"], run_hash=FAULT_HASH, previous_run_hash=None)]

    if "label_space" in fault:
        disk.space = int(fault["label_space"])
    for _ in range(2):
        try:
            commit = LabelLog(store, writer="fault-worker").commit(plan)
        except StoreError as e:
            note(ack="label-error", error=str(e))
            disk.space = None  # space freed
        else:
            note(ack="label", version=commit.version if commit else None)
            return
