"""The DuckDB tables: upstream's public tables, joshreg's own, and identifier quoting.

The public tables keep upstream joshpy's names, columns and types, because users and upstream
tools query them with SQL. Foreign keys are left out: rows are projections of the log and may
arrive in any order (a run's completion before its start, a label before its run), so
referential checks would reject valid histories. Primary keys are left out too: the projector
guarantees one row per key, and maintaining the indexes made a rebuild several times slower.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import UnionType
from typing import Any, Union, get_args, get_origin

import duckdb
import msgspec

from joshreg.errors import ColumnConflictError
from joshreg.log.events import EventBase, event_types
from joshreg.projection.sqltext import bind, quote_identifier

__all__ = [
    "BOOKKEEPING_TABLES",
    "CELL_DATA_CORE_COLUMNS",
    "CONFIG_PARAMS_CORE_COLUMNS",
    "CURRENT_RUN_HASHES",
    "DDL",
    "EVENT_TABLES",
    "EVENT_TABLE_NAMES",
    "LATER_UPSTREAM_TABLES",
    "PROJECTOR_VERSION",
    "PUBLIC_TABLES",
    "REGISTRY_SYNC_TABLES",
    "UPSTREAM_TABLES",
    "EventColumn",
    "check_new_names",
    "create_tables",
    "drop_tables",
    "event_insert_sql",
    "infer_type",
    "table_columns",
    "widen",
    "widen_into",
]

# Bump when the projection of an existing log changes; a stored projection with another
# version is rebuilt from the log on open.
PROJECTOR_VERSION = 5

CONFIG_PARAMS_CORE_COLUMNS = frozenset({"run_hash"})
CELL_DATA_CORE_COLUMNS = frozenset(
    {
        "cell_id",
        "run_id",
        "run_hash",
        "step",
        "replicate",
        "position_x",
        "position_y",
        "longitude",
        "latitude",
        "entity_type",
        "geom",
    }
)

DDL = """
CREATE TABLE IF NOT EXISTS sweep_sessions (
    session_id VARCHAR,
    experiment_name VARCHAR,
    created_at TIMESTAMP,
    template_path VARCHAR,
    template_hash VARCHAR(12),
    simulation VARCHAR,
    total_jobs INTEGER,
    total_replicates INTEGER,
    status VARCHAR DEFAULT 'pending',
    metadata JSON
);
CREATE TABLE IF NOT EXISTS job_configs (
    run_hash VARCHAR(12),
    session_id VARCHAR,
    josh_path TEXT,
    josh_content TEXT,
    config_content TEXT,
    file_mappings JSON,
    label VARCHAR,
    created_at TIMESTAMP,
    status VARCHAR,
    superseded_by VARCHAR(12),
    status_reason TEXT,
    status_updated_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS session_configs (
    session_id VARCHAR,
    run_hash VARCHAR(12),
    created_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS config_parameters (
    run_hash VARCHAR(12)
);
CREATE TABLE IF NOT EXISTS job_runs (
    run_id VARCHAR,
    run_hash VARCHAR(12),
    session_id VARCHAR,
    replicate INTEGER,
    started_at TIMESTAMP,
    completed_at TIMESTAMP,
    exit_code INTEGER,
    output_path VARCHAR,
    error_message TEXT,
    metadata JSON
);
CREATE TABLE IF NOT EXISTS run_outputs (
    output_id VARCHAR,
    run_id VARCHAR,
    output_type VARCHAR,
    file_path VARCHAR,
    file_size BIGINT,
    row_count INTEGER,
    created_at TIMESTAMP
);
CREATE SEQUENCE IF NOT EXISTS cell_id_seq START 1;
CREATE TABLE IF NOT EXISTS cell_data (
    cell_id BIGINT DEFAULT nextval('cell_id_seq'),
    run_id VARCHAR,
    run_hash VARCHAR(12),
    step INTEGER NOT NULL,
    replicate INTEGER NOT NULL,
    position_x DOUBLE,
    position_y DOUBLE,
    longitude DOUBLE,
    latitude DOUBLE,
    entity_type VARCHAR,
    geom GEOMETRY
);
CREATE TABLE IF NOT EXISTS label_history (
    version BIGINT,
    idx INTEGER,
    changed_at TIMESTAMP,
    hlc BIGINT,
    actor VARCHAR,
    writer VARCHAR,
    commit_id VARCHAR,
    action VARCHAR,
    label VARCHAR,
    run_hash VARCHAR,
    previous_run_hash VARCHAR,
    archived_as VARCHAR,
    reason VARCHAR,
    superseded_by VARCHAR,
    detail JSON
);
CREATE TABLE IF NOT EXISTS run_tags (
    scope VARCHAR,
    key VARCHAR,
    tags JSON,
    updated_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS target_designs (
    name VARCHAR,
    created_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS target_requirements (
    design_name VARCHAR,
    attributes JSON,
    min_active INTEGER
);
CREATE TABLE IF NOT EXISTS log_problems (
    segment VARCHAR,
    line BIGINT,
    kind VARCHAR,
    detail VARCHAR
);
CREATE TABLE IF NOT EXISTS joshreg_segments (
    segment VARCHAR PRIMARY KEY,
    byte_offset BIGINT,
    line BIGINT,
    prev VARCHAR
);
CREATE TABLE IF NOT EXISTS joshreg_writers (
    writer VARCHAR PRIMARY KEY,
    last_seq BIGINT
);
CREATE TABLE IF NOT EXISTS joshreg_meta (
    key VARCHAR PRIMARY KEY,
    value VARCHAR
);
CREATE OR REPLACE VIEW labels_current AS
WITH effects AS (
    SELECT version, idx, 0 AS sub, label,
           CASE WHEN action = 'assigned' THEN run_hash END AS holder
    FROM label_history
    UNION ALL
    SELECT version, idx, 1 AS sub, archived_as AS label, run_hash AS holder
    FROM label_history WHERE action = 'archived'
)
SELECT label, holder AS run_hash
FROM effects
QUALIFY row_number() OVER (PARTITION BY label ORDER BY version DESC, idx DESC, sub DESC) = 1
    AND holder IS NOT NULL;
"""


ENVELOPE_DDL = (
    "event_id UUID, writer VARCHAR, seq BIGINT, hlc BIGINT, actor VARCHAR, v INTEGER, "
    "segment VARCHAR, line BIGINT"
)


@dataclass(frozen=True)
class EventColumn:
    """One payload field of an event type and how it is stored: VARCHAR, BIGINT or JSON."""

    name: str
    sql_type: str
    default_sql: str | None = None  # SQL literal of the field's default, when not NULL


def _default_sql(field: msgspec.structs.FieldInfo) -> str | None:
    """Lines leave out fields equal to their defaults; the projection puts them back."""
    if field.default is not msgspec.NODEFAULT:
        value = field.default
    elif field.default_factory is not msgspec.NODEFAULT:
        value = field.default_factory()
    else:
        return None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
        return "'" + text.replace("'", "''") + "'"
    return str(value)


def _sql_type(annotation: Any) -> str:
    if get_origin(annotation) in (Union, UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    base = get_origin(annotation) or annotation
    if base is int:
        return "BIGINT"
    if base is str:
        return "VARCHAR"
    return "JSON"


def _event_tables() -> dict[str, tuple[str, tuple[EventColumn, ...]]]:
    """tag → (table name, payload columns), derived from the event classes themselves so the
    tables cannot drift from the events."""
    envelope = {f.name for f in msgspec.structs.fields(EventBase)}
    out = {}
    for tag, cls in event_types().items():
        if not cls.projected:  # control records (segment.sealed) have no table
            continue
        cols = tuple(
            EventColumn(f.name, _sql_type(f.type), _default_sql(f))
            for f in msgspec.structs.fields(cls)
            if f.name not in envelope
        )
        out[tag] = ("events_" + tag.replace(".", "_"), cols)
    return out


EVENT_TABLES = _event_tables()

# The table catalogue: every other list of tables is built from these.

#: Upstream joshpy's tables, in its order; a joshpy registry is recognised by them.
UPSTREAM_TABLES = (
    "sweep_sessions",
    "job_configs",
    "session_configs",
    "config_parameters",
    "job_runs",
    "run_outputs",
    "cell_data",
)
#: The tables upstream's registry added after the seed's version (tags and target designs).
LATER_UPSTREAM_TABLES = ("run_tags", "target_designs", "target_requirements")
#: Upstream HEAD's name for its tables in parent-first order (what its S3 sync copies).
REGISTRY_SYNC_TABLES = (*UPSTREAM_TABLES, *LATER_UPSTREAM_TABLES)
#: What a user queries: upstream's tables, the label history and its current view.
PUBLIC_TABLES = (*UPSTREAM_TABLES, *LATER_UPSTREAM_TABLES, "label_history", "labels_current")
#: One table per projected event type, sorted.
EVENT_TABLE_NAMES = tuple(sorted(table for table, _ in EVENT_TABLES.values()))
#: The projection's own bookkeeping, rebuilt with it.
BOOKKEEPING_TABLES = ("log_problems", "joshreg_segments", "joshreg_writers", "joshreg_meta")
#: Every table the projector owns (views excluded), in the order they are dropped.
_OWNED_TABLES = (
    "cell_data",
    *EVENT_TABLE_NAMES,
    *(t for t in UPSTREAM_TABLES if t != "cell_data"),
    *LATER_UPSTREAM_TABLES,
    "label_history",
    *BOOKKEEPING_TABLES,
)

_ENVELOPE_SPEC = {
    "event_id": "VARCHAR",
    "writer": "VARCHAR",
    "seq": "BIGINT",
    "hlc": "BIGINT",
    "actor": "VARCHAR",
    "v": "INTEGER",
}


def event_insert_sql(tag: str, source: str) -> str:
    """SQL that parses the raw lines of ``source`` (columns body, segment, line) into the typed
    table of event type ``tag``: DuckDB parses the JSON, vectorised, instead of Python."""
    table, cols = EVENT_TABLES[tag]
    spec = {**_ENVELOPE_SPEC, **{c.name: c.sql_type for c in cols}}
    spec_sql = msgspec.json.encode(spec).decode().replace("'", "''")
    payload = ", ".join(
        f"j.{quote_identifier(c.name)}"
        if c.default_sql is None
        else f"coalesce(j.{quote_identifier(c.name)}, {c.default_sql})"
        for c in cols
    )
    return (
        f"INSERT INTO {table} SELECT TRY_CAST(j.event_id AS UUID), j.writer, j.seq, j.hlc, j.actor, "
        f"coalesce(j.v, 1), segment, line, {payload} "
        f"FROM (SELECT from_json(body, '{spec_sql}') AS j, segment, line FROM {source})"
    )


def _event_ddl() -> str:
    parts, views = [], []
    for tag, (table, cols) in EVENT_TABLES.items():
        payload = "".join(f", {quote_identifier(c.name)} {c.sql_type}" for c in cols)
        parts.append(f"CREATE TABLE IF NOT EXISTS {table} ({ENVELOPE_DDL}{payload});")
        keys = {c.name for c in cols}
        key_cols = ", ".join(
            (k if k in keys else f"NULL::VARCHAR AS {k}") for k in ("session_id", "run_hash", "run_id")
        )
        body = ", ".join(f"'{c.name}', {quote_identifier(c.name)}" for c in cols)
        views.append(
            f"SELECT event_id::VARCHAR AS event_id, writer, seq, hlc, "
            f"make_timestamp(hlc // 1000) AS recorded_at, actor, "
            f"'{tag}' AS type, v, {key_cols}, segment, line, json_object({body})::VARCHAR AS body "
            f"FROM {table}"
        )
    parts.append("CREATE OR REPLACE VIEW event_log AS\n" + "\nUNION ALL\n".join(views) + ";")
    return "\n".join(parts)


#: The run hashes whose results count: neither bad nor superseded (``cell_data_current``).
CURRENT_RUN_HASHES = "SELECT run_hash FROM job_configs WHERE coalesce(status, 'active') = 'active'"

# Every status change of a run, from segment events and label commits alike (a reset clears
# it), and each run's latest by (clock, writer, sequence): the one place clocks order changes
# (DESIGN.md); the keys that live resets and drops take out of the tables (``removed_keys``:
# what their commits name, never decided by clocks); the results of the runs that count.
STATUS_DDL = f"""
CREATE OR REPLACE VIEW status_history AS
SELECT hlc, writer, seq, actor, make_timestamp(coalesce(changed_us, hlc // 1000)) AS changed_at,
       run_hash, status, superseded_by, reason, segment, line, NULL::BIGINT AS version
FROM events_run_status_changed
UNION ALL
SELECT hlc, writer, idx AS seq, actor, changed_at, run_hash, 'superseded', superseded_by, reason,
       NULL, NULL, version
FROM label_history WHERE action = 'superseded'
UNION ALL
SELECT hlc, writer, idx AS seq, actor, changed_at, run_hash, NULL, NULL, reason, NULL, NULL, version
FROM label_history WHERE action = 'reset';
CREATE OR REPLACE VIEW removed_keys AS
WITH acts AS (
    SELECT commit_id, action, detail FROM label_history WHERE action IN ('reset', 'dropped', 'restored')
), live AS (
    SELECT detail FROM acts WHERE action <> 'restored' AND commit_id NOT IN (
        SELECT detail ->> 'restores' FROM acts
        WHERE action = 'restored' AND (detail ->> 'restores') IS NOT NULL)
)
SELECT 'registration' AS kind, unnest(from_json(detail -> 'registrations', '["VARCHAR"]')) AS key FROM live
UNION ALL SELECT 'run_id', unnest(from_json(detail -> 'run_ids', '["VARCHAR"]')) FROM live
UNION ALL SELECT 'result', unnest(from_json(detail -> 'results', '["VARCHAR"]')) FROM live;
CREATE OR REPLACE VIEW cell_data_current AS
SELECT * FROM cell_data WHERE run_hash IN ({CURRENT_RUN_HASHES});
CREATE OR REPLACE VIEW run_status AS
SELECT run_hash, status, superseded_by, reason, changed_at
FROM status_history
QUALIFY row_number() OVER (PARTITION BY run_hash ORDER BY hlc DESC, writer DESC, seq DESC) = 1;
"""


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)
    con.execute(_event_ddl())
    con.execute(STATUS_DDL)


def drop_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Drop every projected table (the log keeps the truth)."""
    con.execute("DROP VIEW IF EXISTS cell_data_current")
    con.execute("DROP VIEW IF EXISTS removed_keys")
    con.execute("DROP VIEW IF EXISTS run_status")
    con.execute("DROP VIEW IF EXISTS status_history")
    con.execute("DROP VIEW IF EXISTS labels_current")
    con.execute("DROP VIEW IF EXISTS event_log")
    for t in _OWNED_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {t}")
    con.execute("DROP SEQUENCE IF EXISTS cell_id_seq")


def infer_type(value: object) -> str:
    """Upstream's rule: numbers and numeric strings are DOUBLE, everything else VARCHAR."""
    if value is None or isinstance(value, bool):
        return "VARCHAR"
    if isinstance(value, (int, float)):
        return "DOUBLE"
    if isinstance(value, str) and value:
        try:
            float(value)
        except ValueError:
            return "VARCHAR"
        return "DOUBLE"
    return "VARCHAR"


def widen(have: str | None, new: str) -> str:
    """The one widening rule: a column that has ever held text stays VARCHAR, else DOUBLE."""
    return "VARCHAR" if "VARCHAR" in (have, new) else "DOUBLE"


def widen_into(into: dict[str, str], types: dict[str, str]) -> None:
    """Widen each of ``into``'s columns (adding new ones) by ``types``, in place."""
    for name, typ in types.items():
        into[name] = widen(into.get(name), typ)


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column name → normalised type (DOUBLE or the DuckDB type name), in table order; empty
    for a table that does not exist. ``pragma_table_info`` reads the one table's catalog entry:
    ``information_schema.columns`` scans every table's, half of reopening a registry."""
    try:
        sql = bind("SELECT name, type FROM pragma_table_info(?) ORDER BY cid", [table])
        rows = con.execute(sql).fetchall()
    except duckdb.CatalogException:
        return {}
    return {n: ("DOUBLE" if t in ("DOUBLE", "FLOAT", "REAL") else t) for n, t in rows}


def check_new_names(
    wanted: dict[str, str],
    existing: dict[str, str],
    core: frozenset[str],
    *,
    what: str,
    advice: str,
    examples: dict[str, str] | None = None,
) -> None:
    """Refuse names that clash with core columns, with each other by case, or by type.

    ``wanted`` and ``existing`` map names to ``DOUBLE``/``VARCHAR``. Raises
    ``ColumnConflictError`` naming both sides of the clash; ``examples`` (name → where its first
    value is, ``line 2: '1.5'``) shows the user the value that decided the new type.
    """
    core_lower = {c.lower(): c for c in core}
    by_lower = {n.lower(): n for n in existing}
    seen: dict[str, str] = {}
    for name, typ in wanted.items():
        low = name.lower()
        if low in core_lower:
            raise ColumnConflictError(
                f"{what} '{name}' clashes with the core column '{core_lower[low]}'; rename it"
            )
        if low in seen and seen[low] != name:
            raise ColumnConflictError(
                f"{what}s '{seen[low]}' and '{name}' differ only by case; DuckDB column names "
                "are case-insensitive, so rename one of them"
            )
        seen[low] = name
        other = by_lower.get(low)
        if other is None:
            continue
        if other != name:
            raise ColumnConflictError(
                f"{what} '{name}' differs only by case from the existing column '{other}'; "
                f"use '{other}' or rename it"
            )
        have = existing[other]
        if have != typ:
            where = f" ({examples[name]})" if examples and name in examples else ""
            raise ColumnConflictError(
                f"{what} '{name}' exists as {have} but new data has {typ}{where}. {advice}"
            )
