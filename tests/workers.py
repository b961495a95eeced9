"""Process targets for tests/test_concurrency.py.

They live in their own module because multiprocessing's "spawn" start method imports the
target by name in the child; a function defined in a test module would drag pytest along.
Results go back through queues or through acknowledgement files; nothing here asserts.
"""

from __future__ import annotations

import os
import random
import signal
from typing import Any

from joshreg import RunRecorder, RunRegistry
from joshreg.codec import encode_event, frame
from joshreg.errors import LabelConflictError
from joshreg.events import RunStarted


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
        reg.create_session(_Config(), experiment_name="held", session_id=session_id)
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


class _Config:
    """The least a session needs: something with ``to_dict()``."""

    simulation = "Sim"

    def to_dict(self) -> dict[str, Any]:
        return {"simulation": self.simulation}
