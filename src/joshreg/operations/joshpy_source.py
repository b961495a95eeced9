"""Reading a joshpy registry: its tables as they are in a DuckDB file or a Parquet folder, the
columns joshpy writes, times in UTC, and the ids an import derives from joshpy's keys.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import duckdb
import msgspec

from joshreg.errors import ForeignDatabaseError, InvalidArgumentError
from joshreg.log.events import (
    json_value,
)
from joshreg.projection.dbfile import MARKER_TABLE, read_only_connection
from joshreg.projection.sqltext import quote_identifier, sql_literal
from joshreg.projection.tables import LATER_UPSTREAM_TABLES

# The columns joshpy's tables have (seed and HEAD); others are named in the report.
SESSION_COLUMNS = (
    "session_id", "experiment_name", "created_at", "template_path", "template_hash", "simulation",
    "total_jobs", "total_replicates", "status", "metadata",
)  # fmt: skip


CONFIG_COLUMNS = (
    "run_hash", "session_id", "josh_path", "josh_content", "config_content", "file_mappings", "label",
    "created_at",
)  # fmt: skip


LINK_COLUMNS = ("session_id", "run_hash", "created_at")


RUN_COLUMNS = (
    "run_id", "run_hash", "session_id", "replicate", "started_at", "completed_at", "exit_code",
    "output_path", "error_message", "metadata",
)  # fmt: skip


OUTPUT_COLUMNS = ("output_id", "run_id", "output_type", "file_path", "file_size", "row_count", "created_at")


KNOWN = {
    "sweep_sessions": SESSION_COLUMNS,
    "job_configs": CONFIG_COLUMNS,
    "session_configs": LINK_COLUMNS,
    "job_runs": RUN_COLUMNS,
    "run_outputs": OUTPUT_COLUMNS,
}


# What joshpy's HEAD added after the seed's version: imported by ``joshpy_curation``.
LATER_COLUMNS = {"job_configs": ("status", "superseded_by", "status_reason", "status_updated_at")}


LATER_TABLES = LATER_UPSTREAM_TABLES


_NAMESPACE = uuid.UUID("5b0b7d6e-3c1f-4f53-9a55-7a1d6c0e2f41")


POSITIONS = ("position_x", "position_y", "longitude", "latitude")


def local_timezone() -> str:
    """The zone this machine's DuckDB gives naive ``CURRENT_TIMESTAMP`` values, as joshpy's did."""
    with duckdb.connect() as con:
        return str(con.execute("SELECT current_setting('TimeZone')").fetchone()[0])


_NS = _NAMESPACE.bytes


_VARIANT = {f"{i:x}": f"{(i & 0x3) | 0x8:x}" for i in range(16)}


def event_id(*parts: object) -> str:
    """``uuid5(_NAMESPACE, parts joined)`` as a string, without building UUID objects (an import
    derives one per row)."""
    h = hashlib.sha1(_NS + "\x1f".join(map(str, parts)).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def decode(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text


class Source:
    """The source's tables behind one DuckDB connection, under their own names.

    ``con`` is a connection that already holds them (``kind`` says what they came from, ``path``
    where): ``pull_from_s3`` fills one from a bucket, so the bucket imports like a folder.
    """

    def __init__(self, path: str, *, con: duckdb.DuckDBPyConnection | None = None, kind: str = "") -> None:
        self.path = path if con is not None else os.path.abspath(path)
        if con is not None:
            self.kind, self.con = kind or "tables", con
        elif os.path.isdir(path):
            self.kind = "parquet"
            if os.path.isfile(os.path.join(path, "FORMAT")):
                raise InvalidArgumentError(
                    f"{path} is a joshreg event store, not a joshpy registry; combine joshreg "
                    "registries with joshreg merge"
                )
            files = sorted(f for f in os.listdir(path) if f.endswith(".parquet"))
            if not files:
                raise InvalidArgumentError(
                    f"{path} holds no <table>.parquet files; give a joshpy registry file, or the folder "
                    "of an EXPORT DATABASE ... (FORMAT parquet) or of push_to_s3"
                )
            self.con = duckdb.connect()
            for f in files:
                name = quote_identifier(f[: -len(".parquet")])
                target = os.path.join(path, f).replace("'", "''")
                self.con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{target}')")
        elif os.path.isfile(path):
            self.kind = "duckdb"
            self.con = read_only_connection(path)
        else:
            raise InvalidArgumentError(f"there is nothing to import at {path}")
        rows = self.con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = "
            "current_database() AND schema_name = 'main' ORDER BY table_name, column_index"
        ).fetchall()
        self.tables: dict[str, dict[str, str]] = {}
        for table, column, typ in rows:
            self.tables.setdefault(table, {})[column] = typ
        if MARKER_TABLE in self.tables:
            raise InvalidArgumentError(
                f"{path} is already a joshreg registry; combine joshreg registries with joshreg merge"
            )
        if "job_configs" not in self.tables and "sweep_sessions" not in self.tables:
            raise ForeignDatabaseError(
                f"{path} is not a joshpy registry: it has neither sweep_sessions nor job_configs "
                f"(tables: {', '.join(sorted(self.tables)) or 'none'})"
            )

    def close(self) -> None:
        self.con.close()

    def has(self, table: str) -> bool:
        return table in self.tables

    def select(
        self,
        table: str,
        columns: Iterable[str],
        tz: str,
        order: tuple[str, ...] = (),
        ids: Sequence[tuple[str, ...]] = (),
    ) -> list[tuple[Any, ...]]:
        """Rows of ``table`` with ``columns`` (NULL where the table lacks one), sorted by the
        ``order`` columns; timestamps as microseconds since the epoch, UTC; JSON as text.

        Each of ``ids``, ``(prefix, column, ...)``, adds a last field to every row: the row's
        ``event_id(prefix, *values of those columns)``. DuckDB derives them with the query when
        every such value is text or a whole number (their SQL text is then Python's ``str``),
        Python otherwise; an import derives one or two per row."""
        have = self.tables.get(table)
        if have is None:
            return []
        columns = list(columns)
        exprs = [self._expression(have.get(c), c, tz) for c in columns]
        sort = ", ".join(str(columns.index(c) + 1) for c in order)
        where = [[columns.index(c) for c in spec[1:]] for spec in ids]
        in_sql = all(_as_text(have.get(columns[i])) for idx in where for i in idx)
        listed = ", ".join(f"{e} AS _c{i}" for i, e in enumerate(exprs))
        outer = ", ".join(f"_c{i}" for i in range(len(exprs)))
        if ids and in_sql:
            for k, (spec, idx) in enumerate(zip(ids, where, strict=True)):
                listed += f", {_sha1_sql(spec[0], [exprs[i] for i in idx])} AS _h{k}"
                outer += f", {_uuid_sql(f'_h{k}')}"
        sql = f"SELECT {outer} FROM (SELECT {listed} FROM {quote_identifier(table)})" + (
            f" ORDER BY {sort}" if sort else ""
        )
        rows = self.con.execute(sql).fetchall()
        if ids and not in_sql:
            rows = [
                (*r, *(event_id(spec[0], *(r[i] for i in idx)) for spec, idx in zip(ids, where, strict=True)))
                for r in rows
            ]
        return rows

    @staticmethod
    def _expression(typ: str | None, column: str, tz: str) -> str:
        """The SQL that gives ``column`` (of type ``typ``, None where missing) as ``select``
        hands it over."""
        q = quote_identifier(column)
        if typ is None:
            return "NULL"
        if typ == "TIMESTAMP WITH TIME ZONE":
            return f"epoch_us({q})"
        if typ.startswith("TIMESTAMP") or typ == "DATE":
            tz_sql = tz.replace("'", "''")
            return f"epoch_us(CAST({q} AS TIMESTAMP) AT TIME ZONE '{tz_sql}')"
        if _textual(typ):
            return f"CAST({q} AS VARCHAR)"
        return q

    def count_values(self, table: str, column: str) -> int:
        q = quote_identifier(column)
        return int(self.con.execute(f"SELECT count({q}) FROM {quote_identifier(table)}").fetchone()[0])

    def count(self, table: str) -> int:
        return int(self.con.execute(f"SELECT count(*) FROM {quote_identifier(table)}").fetchone()[0])


def _textual(typ: str) -> bool:
    """Whether ``select`` hands a column of this type over as its text."""
    return typ in ("JSON", "VARCHAR") or typ.startswith(("VARCHAR", "STRUCT", "MAP")) or typ.endswith("[]")


_WHOLE = frozenset(
    f"{u}{t}" for u in ("", "U") for t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")
)


def _as_text(typ: str | None) -> bool:
    """Whether DuckDB's text of what ``select`` gives for a column of type ``typ`` (None:
    missing, so NULL) is Python's ``str`` of the value: text, whole numbers, times (as
    microseconds), NULL. Not so for floats, decimals and booleans."""
    return typ is None or typ.startswith("TIMESTAMP") or typ == "DATE" or _textual(typ) or typ in _WHOLE


# The namespace's bytes as a DuckDB BLOB literal.
_NS_SQL = "'" + "".join(f"\\x{b:02X}" for b in _NAMESPACE.bytes) + "'::BLOB"


def _sha1_sql(prefix: str, exprs: list[str]) -> str:
    """SQL of the SHA-1 (hex) ``event_id(prefix, *values)`` is made from, for expressions whose
    text is Python's ``str`` of their values (``None`` for NULL)."""
    parts = [sql_literal(prefix), *(f"coalesce(CAST({e} AS VARCHAR), 'None')" for e in exprs)]
    return f"sha1({_NS_SQL} || encode({' || chr(31) || '.join(parts)}))"


def _uuid_sql(h: str) -> str:
    """SQL laying out the SHA-1 hex ``h`` as ``event_id`` does: 8-4-4-4-12 digits, version 5,
    the variant's two bits 10."""
    return (
        f"substr({h}, 1, 8) || '-' || substr({h}, 9, 4) || '-5' || substr({h}, 14, 3) || '-' || "
        f"substr('89ab89ab89ab89ab', strpos('0123456789abcdef', substr({h}, 17, 1)), 1) || "
        f"substr({h}, 18, 3) || '-' || substr({h}, 21, 12)"
    )


def widened(typ: str) -> str:
    """The joshreg column type of a source column: DOUBLE for numbers, VARCHAR otherwise."""
    numeric = ("DOUBLE", "FLOAT", "REAL", "DECIMAL", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT")
    unsigned = typ.startswith("U") and "INT" in typ
    return "DOUBLE" if typ.startswith(numeric) or unsigned else "VARCHAR"


def plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return value
    return json_value(value)


def mappings(text: str | None) -> dict[str, dict[str, str]] | None:
    value = decode(text)
    if not isinstance(value, dict) or not value:
        return None
    return {
        str(k): {str(a): str(b) for a, b in v.items()} if isinstance(v, dict) else {"path": str(v)}
        for k, v in value.items()
    }
