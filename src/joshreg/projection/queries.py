"""Read-side SQL over the projected tables → the models. Never touches the log.

Every function takes a DuckDB connection (or cursor) whose tables are up to date; the registry
catches up before calling.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb

from joshreg.models import ConfigInfo, LabelChange, RunInfo, SessionInfo, SessionSummary
from joshreg.projection.sqltext import bind, quote_identifier
from joshreg.projection.tables import CONFIG_PARAMS_CORE_COLUMNS

__all__ = [
    "ConfigRecord",
    "config_columns",
    "config_from_record",
    "config_records",
    "debug_outputs",
    "get_config",
    "get_configs_for_session",
    "get_run",
    "get_runs_by_parameters",
    "get_runs_for_hash",
    "get_session",
    "get_session_summary",
    "label_history",
    "label_holders",
    "latest_run_id",
    "latest_run_ids",
    "list_labels",
    "list_sessions",
    "parameters_for",
    "parameters_from_text",
    "registered_parameters_text",
    "resolve_label",
    "resolve_latest",
    "run_events",
    "run_from_row",
    "run_hash_of",
    "run_rows",
    "runs_by_hash",
    "session_from_row",
    "session_results",
    "session_rows",
]

Con = duckdb.DuckDBPyConnection

_SESSION_COLS = (
    "session_id, experiment_name, created_at, template_path, template_hash, simulation, "
    "total_jobs, total_replicates, status, metadata"
)
_CONFIG_COLS = (
    "jc.run_hash, jc.session_id, jc.josh_path, jc.josh_content, jc.config_content, "
    "jc.file_mappings, jc.label, jc.created_at, jc.status, jc.superseded_by, jc.status_reason, "
    "jc.status_updated_at"
)
RESULT_COLUMNS = (
    "run_id",
    "run_hash",
    "replicate",
    "started_at",
    "completed_at",
    "exit_code",
    "output_path",
    "error_message",
)
_RUN_COLS = (
    "run_id, run_hash, replicate, started_at, completed_at, exit_code, output_path, error_message, metadata"
)


def _execute(con: Con, sql: str, params: Sequence[object] = ()) -> Con:
    """Run a read with its values written as literals (see ``sqltext``: no pandas import)."""
    return con.execute(bind(sql, params))


def _json(text: str | None) -> Any:
    if text is None or text == "" or text == "null":
        return None
    return json.loads(text)


def _session(row: tuple[Any, ...]) -> SessionInfo:
    *head, metadata = row
    return SessionInfo(*head, metadata=_json(metadata))


def session_rows(con: Con, session_id: str | None = None) -> list[tuple[Any, ...]]:
    """The ``sweep_sessions`` row of ``session_id`` (none or one), or every row."""
    sql = f"SELECT {_SESSION_COLS} FROM sweep_sessions"
    if session_id is None:
        return con.execute(sql).fetchall()
    return _execute(con, sql + " WHERE session_id = ?", [session_id]).fetchall()


def session_from_row(row: tuple[Any, ...]) -> SessionInfo:
    """A new ``SessionInfo`` from a ``session_rows`` row."""
    return _session(row)


def get_session(con: Con, session_id: str) -> SessionInfo | None:
    rows = session_rows(con, session_id)
    return _session(rows[0]) if rows else None


def list_sessions(con: Con, experiment_name: str | None = None, limit: int = 100) -> list[SessionInfo]:
    where, params = "", []
    if experiment_name is not None:
        where, params = "WHERE experiment_name = ?", [experiment_name]
    rows = _execute(
        con,
        f"SELECT {_SESSION_COLS} FROM sweep_sessions {where} "
        "ORDER BY created_at DESC, session_id DESC LIMIT ?",
        [*params, limit],
    ).fetchall()
    return [_session(r) for r in rows]


def get_session_summary(con: Con, session_id: str) -> SessionSummary | None:
    row = _execute(
        con,
        """
        SELECT s.session_id, s.experiment_name, s.simulation, s.status, s.total_jobs,
               s.total_replicates,
               count(r.run_id), count(r.completed_at),
               count(*) FILTER (WHERE r.exit_code = 0),
               count(*) FILTER (WHERE r.exit_code IS NOT NULL AND r.exit_code <> 0)
        FROM sweep_sessions s LEFT JOIN job_runs r ON r.session_id = s.session_id
        WHERE s.session_id = ?
        GROUP BY ALL
        """,
        [session_id],
    ).fetchone()
    if row is None:
        return None
    sid, name, sim, status, jobs, reps, total, completed, ok, failed = row
    return SessionSummary(
        session_id=sid,
        experiment_name=name,
        simulation=sim,
        status=status,
        total_jobs=jobs or 0,
        total_replicates=reps or 0,
        runs_completed=completed,
        runs_succeeded=ok,
        runs_failed=failed,
        runs_pending=total - completed,
    )


def config_columns(con: Con) -> list[str]:
    """Sorted parameter column names of ``config_parameters``.

    Read from an empty result's description: a tenth of what ``information_schema`` costs,
    which point reads would otherwise pay on every call."""
    description = con.execute("SELECT * FROM config_parameters LIMIT 0").description or []
    return sorted(d[0] for d in description if d[0] not in CONFIG_PARAMS_CORE_COLUMNS)


def parameters_for(con: Con, run_hashes: list[str]) -> dict[str, dict[str, Any]]:
    """run_hash → {parameter: value} (NULLs left out, keys sorted), for many hashes at once."""
    cols = config_columns(con)
    out: dict[str, dict[str, Any]] = {h: {} for h in run_hashes}
    if not cols or not run_hashes:
        return out
    select = ", ".join(quote_identifier(c) for c in cols)
    rows = _execute(
        con,
        f"SELECT run_hash, {select} FROM config_parameters WHERE run_hash IN (SELECT unnest(?::VARCHAR[]))",
        [run_hashes],
    ).fetchall()
    for h, *values in rows:
        out[h] = {c: v for c, v in zip(cols, values, strict=True) if v is not None}
    return out


#: A configuration as read: its ``job_configs`` row and its non-NULL parameters, both tuples,
#: so a read model can keep it and hand out a fresh ``ConfigInfo`` each time.
ConfigRecord = tuple[tuple[Any, ...], tuple[tuple[str, Any], ...]]


def config_records(con: Con, run_hash: str | None = None) -> list[ConfigRecord]:
    """The configuration ``run_hash`` (none or one), or every configuration, with its
    parameters, in one statement: the parameter row comes back as a struct, keyed by the
    columns' own names, so no second statement has to find them."""
    sql = (
        f"SELECT {_CONFIG_COLS}, cp FROM job_configs jc "
        "LEFT JOIN config_parameters cp ON cp.run_hash = jc.run_hash"
    )
    if run_hash is None:
        rows = con.execute(sql).fetchall()
    else:
        rows = _execute(con, sql + " WHERE jc.run_hash = ?", [run_hash]).fetchall()
    core = CONFIG_PARAMS_CORE_COLUMNS
    return [
        (
            row[:-1],
            tuple(sorted((k, v) for k, v in (row[-1] or {}).items() if v is not None and k not in core)),
        )
        for row in rows
    ]


def config_from_record(record: ConfigRecord) -> ConfigInfo:
    """A new ``ConfigInfo`` (its dicts the caller's own) from a record."""
    (h, sid, jp, jcontent, cc, fm, label, created, status, by, reason, updated), params = record
    return ConfigInfo(
        run_hash=h,
        session_id=sid,
        josh_path=jp,
        josh_content=jcontent,
        config_content=cc,
        file_mappings=_json(fm),
        parameters=dict(params),
        label=label,
        created_at=created,
        status=status,
        superseded_by=by,
        status_reason=reason,
        status_updated_at=updated,
    )


def _configs(con: Con, rows: list[tuple[Any, ...]]) -> list[ConfigInfo]:
    params = parameters_for(con, [r[0] for r in rows])
    return [
        ConfigInfo(
            run_hash=h,
            session_id=sid,
            josh_path=jp,
            josh_content=jcontent,
            config_content=cc,
            file_mappings=_json(fm),
            parameters=params[h],
            label=label,
            created_at=created,
            status=status,
            superseded_by=by,
            status_reason=reason,
            status_updated_at=updated,
        )
        for h, sid, jp, jcontent, cc, fm, label, created, status, by, reason, updated in rows
    ]


def get_config(con: Con, run_hash: str) -> ConfigInfo | None:
    records = config_records(con, run_hash)
    return config_from_record(records[0]) if records else None


def get_configs_for_session(con: Con, session_id: str) -> list[ConfigInfo]:
    rows = _execute(
        con,
        f"SELECT {_CONFIG_COLS} FROM job_configs jc "
        "JOIN session_configs sc ON sc.run_hash = jc.run_hash WHERE sc.session_id = ? "
        "ORDER BY sc.created_at, jc.run_hash",
        [session_id],
    ).fetchall()
    return _configs(con, rows)


def _run(row: tuple[Any, ...]) -> RunInfo:
    *head, metadata = row
    return RunInfo(*head, metadata=_json(metadata))


def run_from_row(row: tuple[Any, ...]) -> RunInfo:
    """A new ``RunInfo`` from a ``run_rows`` row."""
    return _run(row)


def run_rows(con: Con, run_id: str | None = None) -> list[tuple[Any, ...]]:
    """The ``job_runs`` row of ``run_id`` (none or one), or every row."""
    sql = f"SELECT {_RUN_COLS} FROM job_runs"
    if run_id is None:
        return con.execute(sql).fetchall()
    return _execute(con, sql + " WHERE run_id = ?", [run_id]).fetchall()


def runs_by_hash(con: Con, run_hash: str | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """run_hash → its ``job_runs`` rows, oldest first (``ORDER BY started_at, run_id``), for
    ``run_hash`` alone (an empty list when never run) or for every configuration run."""
    if run_hash is not None:
        rows = _execute(
            con,
            f"SELECT {_RUN_COLS} FROM job_runs WHERE run_hash = ? ORDER BY started_at, run_id",
            [run_hash],
        ).fetchall()
        return {run_hash: rows}
    out: dict[str, list[tuple[Any, ...]]] = {}
    # Sorted by hash first, then as above: each hash's rows come in the order asked for.
    for row in con.execute(
        f"SELECT {_RUN_COLS} FROM job_runs ORDER BY run_hash, started_at, run_id"
    ).fetchall():
        out.setdefault(row[1], []).append(row)
    return out


def get_run(con: Con, run_id: str) -> RunInfo | None:
    rows = run_rows(con, run_id)
    return _run(rows[0]) if rows else None


def get_runs_for_hash(con: Con, run_hash: str) -> list[RunInfo]:
    return [_run(r) for r in runs_by_hash(con, run_hash)[run_hash]]


def run_hash_of(con: Con, run_id: str) -> str | None:
    """The configuration an execution ran; None for an unknown run id."""
    row = _execute(con, "SELECT run_hash FROM job_runs WHERE run_id = ?", [run_id]).fetchone()
    return row[0] if row else None


_LATEST = "ORDER BY started_at DESC NULLS LAST, completed_at DESC NULLS LAST, run_id DESC"


def latest_run_id(con: Con, run_hash: str) -> str | None:
    """The latest execution of a configuration (upstream's tie-breaks); None when never run."""
    row = _execute(
        con, f"SELECT run_id FROM job_runs WHERE run_hash = ? {_LATEST} LIMIT 1", [run_hash]
    ).fetchone()
    return row[0] if row else None


def latest_run_ids(con: Con) -> dict[str, str]:
    """run_hash → its latest execution (as ``latest_run_id``), for every configuration run."""
    rows = con.execute(
        "SELECT run_hash, run_id FROM job_runs "
        f"QUALIFY row_number() OVER (PARTITION BY run_hash {_LATEST}) = 1"
    ).fetchall()
    return dict(rows)


def debug_outputs(con: Con, run_id: str, entity_types: list[str] | None = None) -> list[tuple[str, str]]:
    """``(output_type, file_path)`` of an execution's ``debug.*`` outputs, ordered by both.

    ``entity_types`` (``["organism"]``) keeps only ``debug.<type>``; None keeps every type.
    Duplicate registrations are returned as they are.
    """
    types = None if entity_types is None else [f"debug.{t}" for t in entity_types]
    return [
        (kind, path)
        for kind, path in _execute(
            con,
            "SELECT output_type, file_path FROM run_outputs "
            "WHERE run_id = ? AND starts_with(output_type, 'debug.') "
            "AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], output_type)) "
            "ORDER BY output_type, file_path",
            [run_id, types, types],
        ).fetchall()
    ]


def get_runs_by_parameters(con: Con, params: dict[str, Any]) -> list[dict[str, Any]]:
    base = ", ".join(f"r.{c}" for c in RESULT_COLUMNS)
    if params:
        where = " AND ".join(f"cp.{quote_identifier(k)} = ?" for k in params)
        sql = (
            f"SELECT {base} FROM job_runs r JOIN config_parameters cp ON r.run_hash = cp.run_hash "
            f"WHERE {where} ORDER BY r.started_at DESC, r.run_id DESC"
        )
        rows = _execute(con, sql, list(params.values())).fetchall()
    else:
        rows = _execute(
            con, f"SELECT {base} FROM job_runs r ORDER BY r.started_at DESC, r.run_id DESC"
        ).fetchall()
    names = RESULT_COLUMNS
    by_hash = parameters_for(con, sorted({r[1] for r in rows}))
    return [{**dict(zip(names, r, strict=True)), "parameters": by_hash[r[1]]} for r in rows]


def session_results(con: Con, session_id: str) -> list[dict[str, Any]]:
    """A session's executions, oldest first, each with its parameters flattened in."""
    rows = _execute(
        con,
        f"SELECT {', '.join(RESULT_COLUMNS)} FROM job_runs WHERE session_id = ? ORDER BY started_at, run_id",
        [session_id],
    ).fetchall()
    params = parameters_for(con, sorted({r[1] for r in rows}))
    return [{**dict(zip(RESULT_COLUMNS, r, strict=True)), **params[r[1]]} for r in rows]


def list_labels(con: Con) -> list[tuple[str, str]]:
    return [
        (label, h)
        for label, h in _execute(
            con, "SELECT label, run_hash FROM job_configs WHERE label IS NOT NULL ORDER BY label"
        ).fetchall()
    ]


def label_holders(con: Con) -> dict[str, str]:
    """label → the run hash holding it, for every label."""
    return dict(con.execute("SELECT label, run_hash FROM job_configs WHERE label IS NOT NULL").fetchall())


def resolve_label(con: Con, label: str) -> str | None:
    row = _execute(con, "SELECT run_hash FROM job_configs WHERE label = ?", [label]).fetchone()
    return row[0] if row else None


def resolve_latest(con: Con, prefix: str) -> str | None:
    row = _execute(
        con,
        "SELECT run_hash FROM job_configs WHERE label IS NOT NULL AND starts_with(label, ?) "
        "ORDER BY created_at DESC, run_hash DESC LIMIT 1",
        [prefix],
    ).fetchone()
    return row[0] if row else None


def label_history(con: Con, label: str | None = None, run_hash: str | None = None) -> list[LabelChange]:
    where, params = [], []
    if label is not None:
        where.append("(label = ? OR archived_as = ?)")
        params += [label, label]
    if run_hash is not None:
        where.append("(run_hash = ? OR previous_run_hash = ? OR superseded_by = ?)")
        params += [run_hash, run_hash, run_hash]
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    rows = _execute(
        con,
        "SELECT version, changed_at, actor, action, label, run_hash, previous_run_hash, archived_as, "
        f"reason, hlc, superseded_by FROM label_history {clause} ORDER BY version, idx",
        params,
    ).fetchall()
    return [LabelChange(*r) for r in rows]


def created_at(con: Con, run_hash: str) -> datetime | None:
    row = _execute(con, "SELECT created_at FROM job_configs WHERE run_hash = ?", [run_hash]).fetchone()
    return row[0] if row else None


def registered_parameters_text(con: Con, run_hash: str) -> tuple[str | None] | None:
    """The JSON text of a configuration's first registered parameters (in a 1-tuple), None
    when no event registers it; ``registered_parameters`` decodes it."""
    row = _execute(
        con,
        "SELECT parameters FROM events_run_registered WHERE run_hash = ? ORDER BY hlc, writer, seq LIMIT 1",
        [run_hash],
    ).fetchone()
    return None if row is None else (row[0],)


def parameters_from_text(found: tuple[str | None] | None) -> dict[str, Any] | None:
    """A new dict, sorted by name, from ``registered_parameters_text``'s answer."""
    if found is None:
        return None
    return dict(sorted(_json(found[0]).items())) if found[0] else {}


def registered_parameters(con: Con, run_hash: str) -> dict[str, Any] | None:
    """A configuration's parameters as first registered, with their JSON types intact.

    ``config_parameters`` stores numbers as DOUBLE (upstream's schema), so ``85`` reads back as
    ``85.0``; the ``run.registered`` event keeps what the caller passed, which is what a user
    re-running the configuration must write.
    """
    return parameters_from_text(registered_parameters_text(con, run_hash))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat() + "Z"  # naive UTC throughout


def run_events(con: Con, run_hash: str) -> list[dict[str, Any]]:
    """The events that tell a configuration's story, in log order, as JSON objects.

    The ``session.created`` of every session it was registered to, its ``run.registered``, its
    executions' ``run.started``, ``run.completed`` and ``output.registered``, and the label
    changes it took part in (as holder or previous holder). Bottles carry these, so an archive
    says on its own what was run, by whom, when, and how it ended.
    """
    rows = _execute(
        con,
        "WITH runs AS (SELECT run_id FROM events_run_started WHERE run_hash = ?), "
        "sessions AS (SELECT session_id FROM events_run_registered WHERE run_hash = ?) "
        "SELECT hlc, writer, seq, event_id, recorded_at, actor, v, type, body FROM event_log "
        "WHERE (type = 'session.created' AND session_id IN (SELECT session_id FROM sessions)) "
        "OR (type IN ('run.registered', 'run.started') AND run_hash = ?) "
        "OR (type IN ('run.completed', 'output.registered') AND run_id IN (SELECT run_id FROM runs))",
        [run_hash, run_hash, run_hash],
    ).fetchall()
    keyed: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for hlc, writer, seq, event_id, at, actor, v, kind, body in rows:
        event = {"type": kind, "event_id": event_id, "writer": writer, "seq": seq, "hlc": hlc}
        event.update(at=_iso(at), actor=actor, v=v, **_json(body))
        keyed.append(((hlc, 0, writer, seq), event))
    changes = _execute(
        con,
        "SELECT version, idx, commit_id, writer, hlc, changed_at, actor, action, label, run_hash, "
        "previous_run_hash, archived_as, reason FROM label_history "
        "WHERE run_hash = ? OR previous_run_hash = ?",
        [run_hash, run_hash],
    ).fetchall()
    for version, idx, commit_id, writer, hlc, at, actor, action, *rest in changes:
        event = {"type": f"label.{action}", "event_id": commit_id, "writer": writer, "hlc": hlc}
        event.update(at=_iso(at), actor=actor, version=version, idx=idx)
        names = ("label", "run_hash", "previous_run_hash", "archived_as", "reason")
        event.update({k: v for k, v in zip(names, rest, strict=True) if v is not None})
        keyed.append(((hlc, 1, version, idx), event))
    keyed.sort(key=lambda pair: pair[0])
    return [event for _, event in keyed]
