"""Discovery over simulation results: what variables, entity types, steps and replicates exist.

Like ``queries``, every function takes a DuckDB connection whose tables are up to date (the
registry catches up first). Functions that read ``cell_data`` rows take ``where``: the
registry's active filters as ``(" AND ...", params)`` over columns qualified with ``cd.``; each
answers with one query however many variable columns there are.
"""

from __future__ import annotations

from typing import Any

import duckdb

from joshreg import models
from joshreg.models import ColumnStats, DataSummary, SparsityReport
from joshreg.projection.sqltext import bind, quote_identifier
from joshreg.projection.tables import CELL_DATA_CORE_COLUMNS, CONFIG_PARAMS_CORE_COLUMNS, table_columns

__all__ = [
    "NO_FILTER",
    "check_sparsity",
    "config_parameters",
    "data_summary",
    "entity_types",
    "export_variables",
    "replicate_count",
    "variable_columns",
]

Con = duckdb.DuckDBPyConnection
Where = tuple[str, list[object]]

NO_FILTER: Where = ("", [])

# Rows of one session: configurations are linked to sessions per hash (pooling), so data loaded
# under another session for a hash this session also registered counts here too (as upstream).
_IN_SESSION = " AND cd.run_hash IN (SELECT run_hash FROM session_configs WHERE session_id = ?)"


def _row(con: Con, sql: str, params: list[object]) -> tuple[Any, ...]:
    """The one row of an aggregate query (which always has exactly one); values bound as
    literals, so a CLI page that counts replicates loads no pandas (see ``sqltext``)."""
    row = con.execute(bind(sql, params)).fetchone()
    if row is None:  # pragma: no cover - aggregates without GROUP BY always return a row
        raise RuntimeError(f"no row from {sql}")
    return row


def _count(con: Con, sql: str, params: list[object]) -> int:
    return int(_row(con, sql, params)[0])


def _variable_types(con: Con) -> dict[str, str]:
    cols = table_columns(con, "cell_data")
    return {n: cols[n] for n in sorted(cols) if n not in CELL_DATA_CORE_COLUMNS}


def _session_where(session_id: str | None, where: Where) -> Where:
    sql, params = where
    if session_id:
        return _IN_SESSION + sql, [session_id, *params]
    return sql, list(params)


def variable_columns(con: Con) -> list[str]:
    """Sorted variable columns of ``cell_data`` (everything but the core columns)."""
    return list(_variable_types(con))


def replicate_count(con: Con, run_hash: str, where: Where = NO_FILTER) -> int:
    """Distinct replicate indices with data for ``run_hash`` (upstream HEAD's rule: the index
    is the replicate's identity, so one index loaded under two run ids counts once)."""
    sql, params = where
    return _count(
        con,
        f"SELECT count(DISTINCT cd.replicate) FROM cell_data cd WHERE cd.run_hash = ?{sql}",
        [run_hash, *params],
    )


def export_variables(con: Con, session_id: str | None = None, where: Where = NO_FILTER) -> list[str]:
    """Variable columns; with a session, only those with a value in its (filtered) rows."""
    cols = variable_columns(con)
    if not session_id or not cols:
        return cols
    sql, params = _session_where(session_id, where)
    checks = ", ".join(f"count(cd.{quote_identifier(c)})" for c in cols)
    counts = _row(con, f"SELECT {checks} FROM cell_data cd WHERE TRUE{sql}", params)
    return [c for c, n in zip(cols, counts, strict=True) if n]


def config_parameters(con: Con, session_id: str | None = None) -> list[str]:
    """Parameter columns; with a session, only those with a value in its configurations."""
    types = table_columns(con, "config_parameters")
    cols = sorted(c for c in types if c not in CONFIG_PARAMS_CORE_COLUMNS)
    if not session_id or not cols:
        return cols
    checks = ", ".join(f"count(cp.{quote_identifier(c)})" for c in cols)
    counts = _row(
        con,
        f"SELECT {checks} FROM config_parameters cp "
        "WHERE cp.run_hash IN (SELECT run_hash FROM session_configs WHERE session_id = ?)",
        [session_id],
    )
    return [c for c, n in zip(cols, counts, strict=True) if n]


def entity_types(con: Con, session_id: str | None = None, where: Where = NO_FILTER) -> list[str]:
    """Sorted distinct non-NULL entity types in the (session's, filtered) rows."""
    sql, params = _session_where(session_id, where)
    rows = con.execute(
        f"SELECT DISTINCT cd.entity_type FROM cell_data cd WHERE cd.entity_type IS NOT NULL{sql} ORDER BY 1",
        params,
    ).fetchall()
    return [r[0] for r in rows]


def check_sparsity(con: Con, where: Where = NO_FILTER) -> SparsityReport:
    """NULL counts of every variable column; the threshold is the module constant as of now."""
    threshold = models.SPARSITY_WARN_COLUMN_NULL_PERCENT
    types = _variable_types(con)
    sql, params = where
    counts = ", ".join(f"count(cd.{quote_identifier(c)})" for c in types)
    total, *non_null = _row(
        con, f"SELECT count(*){', ' + counts if counts else ''} FROM cell_data cd WHERE TRUE{sql}", params
    )
    if not total:
        return SparsityReport(0, [], threshold)
    stats = [
        ColumnStats(name, dtype, total, total - n)
        for (name, dtype), n in zip(types.items(), non_null, strict=True)
    ]
    return SparsityReport(total, stats, threshold)


def data_summary(con: Con, session_id: str | None = None, where: Where = NO_FILTER) -> DataSummary:
    """Counts, names and ranges of the whole registry or of one session.

    Unlike upstream, a session id that does not exist counts as 0 sessions, not 1.
    """
    if session_id:
        sessions = _count(con, "SELECT count(*) FROM sweep_sessions WHERE session_id = ?", [session_id])
        configs = _count(
            con, "SELECT count(DISTINCT run_hash) FROM session_configs WHERE session_id = ?", [session_id]
        )
        runs = _count(con, "SELECT count(*) FROM job_runs WHERE session_id = ?", [session_id])
    else:
        session_id = None
        sessions = _count(con, "SELECT count(*) FROM sweep_sessions", [])
        configs = _count(con, "SELECT count(*) FROM job_configs", [])
        runs = _count(con, "SELECT count(*) FROM job_runs", [])
    sql, params = _session_where(session_id, where)
    row = _row(
        con,
        "SELECT count(*), min(cd.step), max(cd.step), min(cd.replicate), max(cd.replicate), "
        "min(cd.longitude), max(cd.longitude), "
        "min(cd.latitude) FILTER (WHERE cd.longitude IS NOT NULL), "
        "max(cd.latitude) FILTER (WHERE cd.longitude IS NOT NULL) "
        f"FROM cell_data cd WHERE TRUE{sql}",
        params,
    )
    rows, lo_step, hi_step, lo_rep, hi_rep, lo_lon, hi_lon, lo_lat, hi_lat = row
    extent = None
    if lo_lon is not None and lo_lat is not None:
        extent = {"lon": (float(lo_lon), float(hi_lon)), "lat": (float(lo_lat), float(hi_lat))}
    return DataSummary(
        sessions=sessions,
        configs=configs,
        runs=runs,
        cell_data_rows=int(rows),
        variables=export_variables(con, session_id, where),
        entity_types=entity_types(con, session_id, where),
        step_range=None if lo_step is None else (int(lo_step), int(hi_step)),
        replicate_range=None if lo_rep is None else (int(lo_rep), int(hi_rep)),
        spatial_extent=extent,
        parameters=config_parameters(con, session_id),
    )
