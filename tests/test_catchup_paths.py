"""Catch-up's own ways of writing: rows replaced in place (MERGE), key sets of every size (literals,
one JSON text, an Arrow table), checkpoint rows updated, values with a NUL. Each must leave the
tables a full rebuild of the same log gives."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from joshreg.log.clock import uuid7
from joshreg.log.codec import Problem
from joshreg.log.events import (
    EventBase,
    LabelAssigned,
    OutputRegistered,
    RunCompleted,
    RunRegistered,
    RunStarted,
    RunStatusChanged,
    SessionCreated,
    SessionStatusChanged,
)
from joshreg.log.labels import LabelLog
from joshreg.log.store import MemoryStore
from joshreg.log.writer import EventWriter
from joshreg.projection.projector import Projector
from joshreg.projection.refresh import INLINE_KEYS
from joshreg.projection.sqltext import INLINE_ROWS
from joshreg.projection.tables import PUBLIC_TABLES

CHECKPOINT = ("joshreg_segments", "joshreg_writers", "joshreg_meta", "log_problems")


def rows(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Every public and checkpoint table's rows, sorted."""
    return {
        t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
        for t in (*PUBLIC_TABLES, *CHECKPOINT)
    }


def rebuilt(store: MemoryStore) -> dict[str, list[tuple[Any, ...]]]:
    con = duckdb.connect()
    Projector(con, store).rebuild()
    return rows(con)


def executions(n: int, session: str, hashes: list[str]) -> tuple[list[EventBase], list[EventBase]]:
    """``n`` starts with their outputs, and their completions (to write in a later batch)."""
    starts: list[EventBase] = []
    ends: list[EventBase] = []
    for i in range(n):
        rid = uuid7()
        h = hashes[i % len(hashes)]
        starts.append(RunStarted(run_id=rid, run_hash=h, session_id=session, replicate=i % 3))
        starts.append(OutputRegistered(output_id=uuid7(), run_id=rid, output_type="csv", file_path=f"/o/{i}"))
        ends.append(RunCompleted(run_id=rid, exit_code=i % 2, error_message="boom" if i % 2 else None))
    return starts, ends


@pytest.mark.parametrize("n", [1, INLINE_KEYS + 3, INLINE_ROWS + 40])
def test_catch_ups_of_every_key_set_size_equal_a_rebuild(n: int) -> None:
    store = MemoryStore()
    w = EventWriter(store, durability="none")
    con = duckdb.connect()
    projector = Projector(con, store)
    projector.rebuild()

    def write(events: list[EventBase]) -> None:
        w.append_many(events)
        w.publish()
        projector.catch_up()

    hashes = [f"h{i:04d}" for i in range(n)]
    write([SessionCreated(session_id="s1", experiment_name="e", replicates=2)])
    write(
        [
            RunRegistered(session_id="s1", run_hash=h, config_content=f"c{h}", parameters={"x": i})
            for i, h in enumerate(hashes)
        ]
    )
    starts, ends = executions(n, "s1", hashes)
    write(starts)  # rows added
    write(ends)  # the same rows completed: replaced in place
    again = RunCompleted(run_id=starts[0].run_id, exit_code=7)  # type: ignore[attr-defined]
    write([*ends[: max(1, n // 2)], again])
    # A configuration registered again in another session, statuses, a label and a session status.
    write(
        [
            SessionCreated(session_id="s2"),
            RunRegistered(session_id="s2", run_hash=hashes[0], config_content="again"),
            RunStatusChanged(run_hash=hashes[-1], status="bad", reason="why"),
            SessionStatusChanged(session_id="s1", status="completed"),
        ]
    )
    LabelLog(store).commit(lambda state: [LabelAssigned(label="best", run_hash=hashes[-1])])
    projector.catch_up()
    write([RunStatusChanged(run_hash=hashes[-1], status=None, reason="fine after all")])

    got = rows(con)
    assert got == rebuilt(store)
    assert len(got["job_runs"]) == n and len(got["job_configs"]) == n
    assert [r[6] for r in got["sweep_sessions"] if r[0] == "s1"] == [n]


def test_a_catch_up_across_writers_updates_the_checkpoint_rows_it_holds() -> None:
    store = MemoryStore()
    con = duckdb.connect()
    projector = Projector(con, store)
    projector.rebuild()
    a, b = EventWriter(store, durability="none"), EventWriter(store, durability="none")
    for step in range(3):
        a.append(SessionCreated(session_id=f"a{step}"))
        a.publish()
        projector.catch_up()
        b.append(SessionCreated(session_id=f"b{step}"))
        a.append(SessionStatusChanged(session_id=f"a{step}", status="running"))
        a.publish()
        b.publish()
        projector.catch_up()
    assert rows(con) == rebuilt(store)
    assert con.execute("SELECT count(*) FROM joshreg_segments").fetchone() == (2,)
    assert sorted(con.execute("SELECT last_seq FROM joshreg_writers").fetchall()) == [(3,), (6,)]


def test_text_with_a_nul_is_recorded() -> None:
    con = duckdb.connect()
    projector = Projector(con, MemoryStore())
    problems = [Problem("log/w.jsonl", 1, "undecodable", "a\x00b"), Problem("log/w.jsonl", 2, "torn", "it's")]
    projector._insert_problems(problems)
    got = con.execute("SELECT line, detail FROM log_problems ORDER BY line").fetchall()
    assert got == [(1, "a\x00b"), (2, "it's")]
