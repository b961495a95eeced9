"""Events that name something no event created: a run of a hash never registered, results for
an unknown run, a completion of a run that never started.

A worker appends without reading the tables, and rows imported from joshpy may be orphans
already (joshpy files without foreign keys), so such events are kept and projected as they are;
this module finds them, by file and line, for ``verify`` and for the listings that mark them.
Reads the event tables of a projection; changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

__all__ = ["Orphan", "find_orphans"]


@dataclass(frozen=True)
class Orphan:
    """One event that names what no event created: where it is, and what it names."""

    segment: str
    line: int
    message: str


# (event table, what the event is as SQL, the column naming the reference, the table and column
#  that should hold it, what it is called)
_CHECKS = (
    ("events_run_registered", "'run.registered of ' || run_hash", "session_id", "events_session_created",
     "session_id", "session"),
    ("events_run_started", "'run.started of run ' || run_id", "run_hash", "events_run_registered", "run_hash",
     "run hash"),
    ("events_run_started", "'run.started of run ' || run_id", "session_id", "events_session_created",
     "session_id", "session"),
    ("events_run_completed", "'run.completed'", "run_id", "events_run_started", "run_id", "run"),
    ("events_output_registered", "'output.registered'", "run_id", "events_run_started", "run_id", "run"),
    ("events_results_loaded", "'results.loaded'", "run_hash", "events_run_registered", "run_hash",
     "run hash"),
    ("events_results_loaded", "'results.loaded'", "run_id", "events_run_started", "run_id", "run"),
)  # fmt: skip


def find_orphans(con: duckdb.DuckDBPyConnection) -> list[Orphan]:
    """Every orphan event in the projection open in ``con``, in file and line order."""
    found: list[Orphan] = []
    for table, what, column, other, other_column, called in _CHECKS:
        rows = con.execute(
            f"SELECT segment, line, {what}, {column} FROM {table} e WHERE {column} IS NOT NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {other} o WHERE o.{other_column} = e.{column})"
        ).fetchall()
        for segment, line, subject, value in rows:
            found.append(
                Orphan(
                    segment,
                    line,
                    f"{subject} names {called} {value}, which no event in the log creates; it is kept "
                    f"and shown as it is (if the {called} was recorded in another registry, merge it in)",
                )
            )
    found.sort(key=lambda o: (o.segment, o.line))
    return found
