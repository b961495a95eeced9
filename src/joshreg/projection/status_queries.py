"""Reading run statuses: the current one (``run_status``), every change (``status_history``),
which runs one superseded, and the replicate indices a run has loaded.

The two views are defined with the tables (``tables.STATUS_DDL``); a run's status is its latest
change by (clock, writer, sequence) across segment events and label commits.
"""

from __future__ import annotations

import duckdb

from joshreg.models import RunStatus, StatusChange
from joshreg.projection.sqltext import bind

__all__ = ["loaded_replicates", "run_status", "run_statuses", "status_history", "superseded_by"]


def run_status(con: duckdb.DuckDBPyConnection, run_hash: str) -> RunStatus:
    row = con.execute(
        bind(
            "SELECT status, superseded_by, status_reason, status_updated_at FROM job_configs "
            "WHERE run_hash = ?",
            [run_hash],
        )
    ).fetchone()
    if row is None:
        return RunStatus(run_hash)
    return RunStatus(run_hash, *row)


def run_statuses(con: duckdb.DuckDBPyConnection) -> list[RunStatus]:
    """Every configuration's status, by run hash."""
    rows = con.execute(
        "SELECT run_hash, status, superseded_by, status_reason, status_updated_at FROM job_configs "
        "ORDER BY run_hash"
    ).fetchall()
    return [RunStatus(*r) for r in rows]


def status_history(con: duckdb.DuckDBPyConnection, run_hash: str | None = None) -> list[StatusChange]:
    """Every status change, oldest first (the order that decides), or those of one run."""
    where = "" if run_hash is None else bind(" WHERE run_hash = ?", [run_hash])
    rows = con.execute(
        "SELECT changed_at, actor, run_hash, status, superseded_by, reason, hlc, version, segment, "
        f"line FROM status_history{where} ORDER BY hlc, writer, seq"
    ).fetchall()
    return [StatusChange(*r) for r in rows]


def superseded_by(con: duckdb.DuckDBPyConnection, run_hash: str) -> list[str]:
    """The runs ``run_hash`` superseded, still marked so; the most recently superseded first."""
    rows = con.execute(
        bind(
            "SELECT run_hash FROM job_configs WHERE status = 'superseded' AND superseded_by = ? "
            "ORDER BY status_updated_at DESC, run_hash",
            [run_hash],
        )
    ).fetchall()
    return [r[0] for r in rows]


def loaded_replicates(con: duckdb.DuckDBPyConnection, run_hash: str) -> set[int]:
    """The distinct replicate indices with rows in ``cell_data`` for ``run_hash``."""
    rows = con.execute(bind("SELECT DISTINCT replicate FROM cell_data WHERE run_hash = ?", [run_hash]))
    return {r[0] for r in rows.fetchall()}
