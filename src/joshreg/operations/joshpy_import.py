"""Importing a registry joshpy wrote: its rows become the events that reproduce them.

The source is a joshpy DuckDB file (opened read-only, its ``.wal`` untouched) or a folder of its
tables as Parquet (``EXPORT DATABASE ... (FORMAT parquet)`` from any DuckDB, or the
``<table>.parquet`` layout of joshpy's ``push_to_s3``). Each row becomes the event joshreg would
have recorded for it, carrying the row's original time as data (``*_us`` fields, converted to UTC
from the source's naive local times) while the events' clocks say when the import happened.

Importing is idempotent per row: event ids derive from the source's keys (session ids, run
hashes, run ids, output ids, cell ids), and whatever the target already holds is not written
again, so a second import of a source that grew since adds only the new rows. A session id or run
hash the target holds with other content is a conflict: reported, and the target's kept.
Results go in one content-addressed Parquet file per run execution, labels in one label commit.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb
import msgspec
import pyarrow as pa

from joshreg.errors import ForeignDatabaseError, InvalidArgumentError
from joshreg.log.events import (
    LabelAction,
    LabelAssigned,
    OutputRegistered,
    RegistryImported,
    ResultsLoaded,
    RunCompleted,
    RunRegistered,
    RunStarted,
    SessionCreated,
    SessionStatusChanged,
    json_value,
)
from joshreg.log.labels import LabelLog, LabelState
from joshreg.log.names import session_claim_name
from joshreg.log.store.base import LogStore
from joshreg.log.writer import EventWriter
from joshreg.projection.dbfile import MARKER_TABLE, read_only_connection
from joshreg.projection.tables import (
    CELL_DATA_CORE_COLUMNS,
    CONFIG_PARAMS_CORE_COLUMNS,
    check_new_names,
    quote_identifier,
)
from joshreg.results.josh_csv import to_parquet_bytes

__all__ = ["ImportReport", "ImportTarget", "import_joshpy", "local_timezone"]

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
# What joshpy's HEAD added that this joshreg does not import yet.
LATER_COLUMNS = {"job_configs": ("status", "superseded_by", "status_reason", "status_updated_at")}
LATER_TABLES = ("run_tags", "target_designs", "target_requirements")
_NAMESPACE = uuid.UUID("5b0b7d6e-3c1f-4f53-9a55-7a1d6c0e2f41")
_POSITIONS = ("position_x", "position_y", "longitude", "latitude")

Progress = Callable[[str, int, int], None]  # (phase, done, total)


class ImportReport(msgspec.Struct, kw_only=True):
    """What an import added, what the target already held, and everything that differs."""

    source: str
    source_kind: str
    source_timezone: str
    dry_run: bool = False
    added: dict[str, int] = {}
    already_present: dict[str, int] = {}
    conflicts: list[str] = []
    differences: list[str] = []
    not_imported: list[str] = []
    seconds: float = 0.0

    def summary(self) -> str:
        """A few lines for a terminal: counts first, then every conflict and difference."""
        verb = "would import" if self.dry_run else "imported"
        counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in self.added.items()) or "nothing new"
        lines = [f"{verb} from {self.source} ({self.source_kind}): {counts}"]
        if any(self.already_present.values()):
            have = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in self.already_present.items() if n)
            lines.append(f"already in the registry, skipped: {have}")
        lines += [f"conflict: {c}" for c in self.conflicts]
        lines += [f"difference: {d}" for d in self.differences]
        lines += [f"not imported: {n}" for n in self.not_imported]
        if not self.dry_run:
            lines.append(f"took {self.seconds:.2f} s")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


@dataclass
class ImportTarget:
    """Where an import goes: the target's caught-up tables (to see what it holds), its store
    (claims), the writer of the import's events and the label log of its one label commit."""

    con: duckdb.DuckDBPyConnection
    store: LogStore
    writer: EventWriter | None  # None: a dry run
    labels: LabelLog | None
    param_columns: dict[str, str]
    cell_columns: dict[str, str]


def local_timezone() -> str:
    """The zone this machine's DuckDB gives naive ``CURRENT_TIMESTAMP`` values, as joshpy's did."""
    with duckdb.connect() as con:
        return str(con.execute("SELECT current_setting('TimeZone')").fetchone()[0])


_NS = _NAMESPACE.bytes
_VARIANT = {f"{i:x}": f"{(i & 0x3) | 0x8:x}" for i in range(16)}


def _event_id(*parts: object) -> str:
    """``uuid5(_NAMESPACE, parts joined)`` as a string, without building UUID objects (an import
    derives one per row)."""
    h = hashlib.sha1(_NS + "\x1f".join(map(str, parts)).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def _decode(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text


# --- the source ---------------------------------------------------------------------------------


class _Source:
    """The source's tables behind one DuckDB connection, under their own names."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        if os.path.isdir(path):
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
        self, table: str, columns: Iterable[str], tz: str, order: tuple[str, ...] = ()
    ) -> list[tuple[Any, ...]]:
        """Rows of ``table`` with ``columns`` (NULL where the table lacks one), sorted by the
        ``order`` columns; timestamps as microseconds since the epoch, UTC; JSON as text."""
        have = self.tables.get(table)
        if have is None:
            return []
        columns = list(columns)
        exprs = []
        for c in columns:
            typ = have.get(c)
            q = quote_identifier(c)
            if typ is None:
                exprs.append("NULL")
            elif typ == "TIMESTAMP WITH TIME ZONE":
                exprs.append(f"epoch_us({q})")
            elif typ.startswith("TIMESTAMP") or typ == "DATE":
                tz_sql = tz.replace("'", "''")
                exprs.append(f"epoch_us(CAST({q} AS TIMESTAMP) AT TIME ZONE '{tz_sql}')")
            elif (
                typ in ("JSON", "VARCHAR")
                or typ.startswith(("VARCHAR", "STRUCT", "MAP"))
                or typ.endswith("[]")
            ):
                exprs.append(f"CAST({q} AS VARCHAR)")
            else:
                exprs.append(q)
        sort = ", ".join(str(columns.index(c) + 1) for c in order)
        sql = f"SELECT {', '.join(exprs)} FROM {quote_identifier(table)}" + (
            f" ORDER BY {sort}" if sort else ""
        )
        return self.con.execute(sql).fetchall()

    def count_values(self, table: str, column: str) -> int:
        q = quote_identifier(column)
        return int(self.con.execute(f"SELECT count({q}) FROM {quote_identifier(table)}").fetchone()[0])

    def count(self, table: str) -> int:
        return int(self.con.execute(f"SELECT count(*) FROM {quote_identifier(table)}").fetchone()[0])


def _widened(typ: str) -> str:
    """The joshreg column type of a source column: DOUBLE for numbers, VARCHAR otherwise."""
    numeric = ("DOUBLE", "FLOAT", "REAL", "DECIMAL", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT")
    unsigned = typ.startswith("U") and "INT" in typ
    return "DOUBLE" if typ.startswith(numeric) or unsigned else "VARCHAR"


# --- the import -----------------------------------------------------------------------------------


class _Importer:
    def __init__(
        self, source: _Source, target: ImportTarget, tz: str, dry_run: bool, progress: Progress | None
    ) -> None:
        self.src = source
        self.tgt = target
        self.tz = tz
        self.dry_run = dry_run
        self.progress = progress
        self.report = ImportReport(
            source=source.path, source_kind=source.kind, source_timezone=tz, dry_run=dry_run
        )
        self.added: Counter[str] = Counter()
        self.present: Counter[str] = Counter()
        self.bad_sessions: set[str] = set()
        self.bad_hashes: set[str] = set()
        self.known_hashes: set[str] = set()
        self.config_time: dict[str, int | None] = {}
        self.skipped_runs: set[str] = set()
        self.param_types: tuple[dict[str, str], dict[str, str]] = ({}, {})
        self.cell_types: tuple[dict[str, str], dict[str, str]] = ({}, {})

    def _say(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(phase, done, total)

    def _append(self, event: Any) -> None:
        if self.tgt.writer is not None:
            self.tgt.writer.append(event)

    def _claim(self, name: str, data: bytes) -> bool:
        return True if self.dry_run else self.tgt.store.claim(name, data)

    def _ids(self, table: str) -> set[str]:
        return {r[0] for r in self.tgt.con.execute(f"SELECT event_id::VARCHAR FROM {table}").fetchall()}

    # --- before anything is written ---------------------------------------------------------------

    def check(self) -> None:
        """Refuse parameter and variable columns that clash with the target's, so that a refused
        import writes nothing."""
        for table, core in (
            ("config_parameters", CONFIG_PARAMS_CORE_COLUMNS),
            ("cell_data", CELL_DATA_CORE_COLUMNS),
        ):
            source = {c: t for c, t in self.src.tables.get(table, {}).items() if c not in core}
            types = {c: _widened(t) for c, t in source.items()}
            for c, t in source.items():
                if t not in ("DOUBLE", "VARCHAR"):
                    self.report.differences.append(
                        f"{table}.{c} is {t} in the source; joshreg keeps it as {types[c]}"
                    )
            params = table == "config_parameters"
            check_new_names(
                types,
                self.tgt.param_columns if params else self.tgt.cell_columns,
                core,
                what="Config parameter" if params else "Column",
                advice="Import into a separate registry.",
            )
            if params:
                self.param_types = (source, types)
            else:
                self.cell_types = (source, types)

    # --- what is there, and what is not imported -----------------------------------------------

    def survey(self) -> None:
        src, notes = self.src, self.report.not_imported
        for table in sorted(src.tables):
            n = None
            if table in LATER_TABLES:
                n = src.count(table)
                if n:
                    notes.append(f"table {table} ({n} rows): tags and designs arrive with a later joshreg")
            elif table not in KNOWN and table not in ("config_parameters", "cell_data", "cell_data_current"):
                n = src.count(table)
                notes.append(f"table {table} ({n} rows): not a joshpy table, so nothing of it is imported")
        for table, known in KNOWN.items():
            for column in src.tables.get(table, {}):
                if column in known:
                    continue
                n = src.count_values(table, column)
                if not n:
                    continue
                if column in LATER_COLUMNS.get(table, ()):
                    notes.append(
                        f"column {table}.{column} ({n} values): run status arrives with a later joshreg"
                    )
                else:
                    notes.append(f"column {table}.{column} ({n} values): not a joshpy column")
        if src.has("cell_data") and "geom" in src.tables["cell_data"]:
            self.report.differences.append(
                "cell_data.geom is not copied: joshreg computes it from longitude and latitude"
            )
        sessions = src.tables.get("sweep_sessions", {})
        if any(src.count_values("sweep_sessions", c) for c in ("template_hash",) if c in sessions):
            notes.append(
                "column sweep_sessions.template_hash: joshpy no longer uses it; joshreg leaves it empty"
            )

    # --- sessions ---------------------------------------------------------------------------------

    def sessions(self) -> None:
        con = self.tgt.con
        have = {
            r[0]: (r[1], r[2], r[3], _decode(r[4]), r[5])
            for r in con.execute(
                "SELECT session_id, experiment_name, simulation, template_path, metadata::VARCHAR, status "
                "FROM sweep_sessions"
            ).fetchall()
        }
        status_ids = self._ids("events_session_status_changed")
        rows = self.src.select("sweep_sessions", SESSION_COLUMNS, self.tz, ("created_at", "session_id"))
        for sid, name, created, template, _th, simulation, _jobs, _reps, status, metadata in rows:
            meta = _decode(metadata)
            mine = have.get(sid)
            if mine is not None and mine[:4] != (name, simulation, template, meta):
                self.bad_sessions.add(sid)
                self.report.conflicts.append(
                    f"session {sid} is in the registry with other content (experiment {mine[0]!r}); "
                    "kept the registry's, and left out the source's links and runs of it"
                )
                continue
            if mine is None:
                if not self._claim(session_claim_name(sid), sid.encode()):
                    self.bad_sessions.add(sid)
                    self.report.conflicts.append(f"session id {sid} is being created by another process")
                    continue
                job_config = meta.get("job_config") if isinstance(meta, dict) else None
                replicates = job_config.get("replicates", 1) if isinstance(job_config, dict) else None
                self._append(
                    SessionCreated(
                        event_id=_event_id("session", sid),
                        session_id=sid,
                        experiment_name=name,
                        simulation=simulation,
                        template_path=template,
                        metadata=meta if isinstance(meta, dict) else None,
                        replicates=replicates if isinstance(replicates, int) else None,
                        created_us=created,
                    )
                )
                self.added["sessions"] += 1
            else:
                self.present["sessions"] += 1
            now = mine[4] if mine is not None else "pending"
            eid = _event_id("session-status", sid, status)
            if status is not None and status != now and eid not in status_ids:
                self._append(SessionStatusChanged(event_id=eid, session_id=sid, status=status))
                self.added["session_statuses"] += 1
            if metadata is not None and not isinstance(meta, dict):
                self.report.differences.append(f"session {sid}: metadata is not a JSON object; left empty")
        if rows:
            self.report.differences.append(
                "sweep_sessions.total_jobs and total_replicates are filled in by joshreg (configurations, "
                "and configurations × replicates); joshpy leaves them empty"
            )

    # --- configurations ---------------------------------------------------------------------------

    def configurations(self) -> None:
        src, con = self.src, self.tgt.con
        params, types = self.param_types
        values: dict[str, dict[str, Any]] = {}
        if params:
            names = list(params)
            for row in src.select("config_parameters", ["run_hash", *names], self.tz):
                values[row[0]] = {n: _plain(v) for n, v in zip(names, row[1:], strict=True)}
        elif src.has("config_parameters"):
            values = {r[0]: {} for r in src.select("config_parameters", ["run_hash"], self.tz)}
        have = {
            r[0]: (r[1], r[2], _decode(r[3]))
            for r in con.execute(
                "SELECT run_hash, config_content, josh_content, file_mappings::VARCHAR FROM job_configs"
            ).fetchall()
        }
        links = set(con.execute("SELECT session_id, run_hash FROM session_configs").fetchall())
        configs = {
            r[0]: r for r in src.select("job_configs", CONFIG_COLUMNS, self.tz, ("created_at", "run_hash"))
        }
        wanted: list[tuple[str, str, int | None, bool]] = []  # session, hash, link time, brings the config
        linked = set()
        for sid, h, at in src.select("session_configs", LINK_COLUMNS, self.tz, ("created_at", "run_hash")):
            owner = configs.get(h)
            wanted.append((sid, h, at, owner is not None and owner[1] == sid))
            linked.add(h)
        missing_rows = 0
        for h, row in configs.items():
            self.config_time[h] = row[7]
            if h not in linked:  # joshpy before session_configs: the configuration's own session
                wanted.append((row[1], h, row[7], True))
                missing_rows += 1
        wanted.sort(key=lambda w: (w[2] is None, w[2] or 0, not w[3], w[1]))
        if missing_rows:
            self.report.differences.append(
                f"{missing_rows} configurations had no session_configs row; each is linked to its own session"
            )
        no_params = sum(1 for h in configs if h not in values) if src.has("config_parameters") else 0
        if no_params:
            self.report.differences.append(
                f"{no_params} configurations had no config_parameters row; joshreg gives each one "
                "without values"
            )
        for h, row in configs.items():
            mine = have.get(h)
            if mine is None:
                continue
            same = (
                mine[0] == row[4]
                and mine[2] == _decode(row[5])
                and (None in (mine[1], row[3]) or mine[1] == row[3])
            )
            if not same:
                self.bad_hashes.add(h)
                self.report.conflicts.append(
                    f"run hash {h} is in the registry with other content; kept the registry's configuration, "
                    "and left out the source's links, runs, outputs, results and label of it"
                )
            else:
                self.present["configurations"] += 1
        self.known_hashes = (set(have) - self.bad_hashes) | set(configs)
        for done, (sid, h, at, brings) in enumerate(wanted):
            row = configs.get(h)
            if row is None:
                self.report.differences.append(
                    f"session_configs links session {sid} to unknown run hash {h}; left out"
                )
                continue
            if h in self.bad_hashes or sid in self.bad_sessions or sid is None:
                continue
            if (sid, h) in links:
                self.present["session_links"] += 1
                continue
            new_config = h not in have
            p = values.get(h, {})
            self._append(
                RunRegistered(
                    event_id=_event_id("registration", sid, h),
                    session_id=sid,
                    run_hash=h,
                    josh_path=row[2],
                    josh_content=row[3],
                    config_content=row[4] or "",
                    file_mappings=_mappings(row[5]),
                    parameters=p,
                    parameter_types={k: types[k] for k in p},
                    created_us=at,
                    config_created_us=row[7] if brings else None,
                )
            )
            links.add((sid, h))
            if new_config:
                have[h] = (row[4], row[3], _decode(row[5]))
                self.added["configurations"] += 1
            else:
                self.added["session_links"] += 1
            if done % 1000 == 0:
                self._say("configurations", done, len(wanted))

    # --- executions and outputs -------------------------------------------------------------------

    def runs(self) -> list[tuple[Any, ...]]:
        con = self.tgt.con
        have = {
            r[0]: (r[1], r[2], r[3])
            for r in con.execute(
                "SELECT run_id, exit_code, epoch_us(completed_at), error_message FROM job_runs"
            ).fetchall()
        }
        owner = {r[0]: r[1] for r in self.src.select("job_configs", ("run_hash", "session_id"), self.tz)}
        rows = self.src.select("job_runs", RUN_COLUMNS, self.tz, ("started_at", "run_id"))
        no_session = no_start = odd = 0
        for i, (rid, h, sid, rep, started, completed, code, out, error, meta) in enumerate(rows):
            if h in self.bad_hashes or sid in self.bad_sessions:
                self.skipped_runs.add(rid)
                continue
            mine = have.get(rid)
            if mine is None:
                if sid is None:
                    sid = owner.get(h)
                    no_session += 1
                    if sid is None:
                        continue
                no_start += started is None
                decoded = _decode(meta)
                self._append(
                    RunStarted(
                        event_id=_event_id("start", rid),
                        run_id=rid,
                        run_hash=h,
                        session_id=sid,
                        replicate=int(rep or 0),
                        output_path=out,
                        metadata=json_value(decoded) if isinstance(decoded, dict) else None,
                        started_us=started,
                    )
                )
                self.added["runs"] += 1
            else:
                self.present["runs"] += 1
            if code is None:
                odd += completed is not None
                continue
            if mine is not None and mine == (code, completed, error):
                continue
            self._append(
                RunCompleted(
                    event_id=_event_id("completion", rid, code, completed, error),
                    run_id=rid,
                    exit_code=int(code),
                    error_message=error,
                    completed_us=completed,
                )
            )
            self.added["completions"] += 1
            if i % 5000 == 0:
                self._say("runs", i, len(rows))
        if no_session:
            self.report.differences.append(
                f"{no_session} executions had no session_id; each was given its configuration's session"
            )
        if no_start:
            self.report.differences.append(
                f"{no_start} executions had no started_at; their start time is the time of the import"
            )
        if odd:
            self.report.differences.append(
                f"{odd} executions had a completed_at but no exit_code; joshreg shows them as not completed"
            )
        return rows

    def outputs(self) -> None:
        have = {r[0] for r in self.tgt.con.execute("SELECT output_id FROM run_outputs").fetchall()}
        runs = {
            r[0]: (r[1], r[2])
            for r in self.src.select("job_runs", ("run_id", "run_hash", "session_id"), self.tz)
        }
        for oid, rid, kind, path, size, rows, created in self.src.select(
            "run_outputs", OUTPUT_COLUMNS, self.tz, ("created_at", "output_id")
        ):
            run = runs.get(rid)
            if run is not None and (run[0] in self.bad_hashes or run[1] in self.bad_sessions):
                continue
            if oid in have:
                self.present["outputs"] += 1
                continue
            self._append(
                OutputRegistered(
                    event_id=_event_id("output", oid),
                    output_id=oid,
                    run_id=rid,
                    output_type=kind or "",
                    file_path=path or "",
                    file_size=size,
                    row_count=rows,
                    created_us=created,
                )
            )
            self.added["outputs"] += 1

    # --- results ------------------------------------------------------------------------------------

    def results(self) -> None:
        src, con = self.src, self.tgt.con
        if not src.has("cell_data"):
            return
        columns = src.tables["cell_data"]
        variables, types = self.cell_types
        rows = con.execute(
            "SELECT run_id, run_hash, entity_type, max(import_through) FROM events_results_loaded "
            "WHERE import_through IS NOT NULL GROUP BY ALL"
        ).fetchall()
        through = pa.table(
            [pa.array([r[i] for r in rows], pa.string()) for i in range(3)]
            + [pa.array([r[3] for r in rows], pa.int64())],
            names=["run_id", "run_hash", "entity_type", "through"],
        )

        def cast(c: str) -> str:
            q = quote_identifier(c)
            return f"CAST(c.{q} AS {'DOUBLE' if types[c] == 'DOUBLE' else 'VARCHAR'}) AS {q}"

        positions = ", ".join(
            f"CAST(c.{p} AS DOUBLE) AS {p}" if p in columns else f"CAST(NULL AS DOUBLE) AS {p}"
            for p in _POSITIONS
        )
        values = "".join(", " + cast(c) for c in variables)
        entity = "coalesce(c.entity_type, 'patch')" if "entity_type" in columns else "'patch'"
        # The rows after those an earlier import of this source brought in, per run and type.
        new = f"""
            SELECT c.cell_id, c.run_id, c.run_hash, {entity} AS entity_type,
                   CAST(c.step AS INTEGER) AS step, CAST(c.replicate AS INTEGER) AS replicate,
                   {positions}{values}, c.cell_id <= coalesce(t.through, -1) AS seen
            FROM cell_data c LEFT JOIN _through t
              ON t.run_id IS NOT DISTINCT FROM c.run_id AND t.run_hash IS NOT DISTINCT FROM c.run_hash
             AND t.entity_type = {entity}"""
        order = "ORDER BY run_id NULLS FIRST, run_hash NULLS FIRST, entity_type"
        src.con.register("_through", through)
        try:
            groups = src.con.execute(
                f"SELECT run_id, run_hash, entity_type, count(*), max(cell_id) FROM ({new}) "
                f"WHERE NOT seen GROUP BY ALL {order}"
            ).fetchall()
            self.present["result_rows"] += src.con.execute(
                f"SELECT count(*) FROM ({new}) WHERE seen"
            ).fetchone()[0]
            reader = None
            if not self.dry_run:
                reader = src.con.execute(
                    f"SELECT * EXCLUDE (seen) FROM ({new}) WHERE NOT seen {order}, cell_id"
                ).to_arrow_reader(1 << 16)
            pending: list[pa.RecordBatch] = []
            buffered = 0
            # Result files are written and claimed in threads (Parquet encoding, hashing and
            # fsync release the GIL); their events follow in the source's order.
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="joshreg-import") as pool:
                ahead: deque[tuple[tuple[Any, ...], Future[tuple[str, str]] | None]] = deque()
                for i, (rid, h, etype, n, last) in enumerate(groups):
                    rows = None
                    if reader is not None:
                        while buffered < n:
                            batch = reader.read_next_batch()
                            pending.append(batch)
                            buffered += batch.num_rows
                        table = pa.Table.from_batches(pending)
                        rows, pending, buffered = table.slice(0, n), table.slice(n).to_batches(), buffered - n
                        rows = rows.drop_columns(["cell_id", "run_id", "run_hash", "entity_type"])
                    if h in self.bad_hashes or rid in self.skipped_runs:
                        continue
                    blob = None if rows is None else pool.submit(self._write_blob, rows)
                    ahead.append(((rid, h, etype, n, types, last), blob))
                    if len(ahead) >= 16:
                        self._record_results(*ahead.popleft())
                    if i % 100 == 0:
                        self._say("results", i, len(groups))
                while ahead:
                    self._record_results(*ahead.popleft())
        finally:
            src.con.unregister("_through")
        if groups:
            self.report.differences.append(
                "cell_data.cell_id is renumbered in the order joshreg loads the rows"
            )

    def _write_blob(self, rows: pa.Table) -> tuple[str, str]:
        """One execution's rows as a content-addressed result file; its name and SHA-256."""
        blob = to_parquet_bytes(rows)
        sha = hashlib.sha256(blob).hexdigest()
        name = f"blobs/{sha[:2]}/{sha}.parquet"
        self.tgt.store.claim(name, blob)
        return name, sha

    def _record_results(self, group: tuple[Any, ...], blob: Future[tuple[str, str]] | None) -> None:
        """The event of one execution's result file, once the file is durable."""
        run_id, run_hash, entity_type, n, types, last = group
        self.added["result_files"] += 1
        self.added["result_rows"] += n
        if blob is None:  # a dry run
            return
        name, sha = blob.result()
        self._append(
            ResultsLoaded(
                event_id=_event_id("results", run_id, run_hash, entity_type, last),
                run_id=run_id,
                run_hash=run_hash,
                entity_type=entity_type,
                blob=name,
                blob_sha256=sha,
                source_path=f"{self.src.path}::cell_data",
                source_sha256=sha,
                row_count=n,
                columns=types,
                import_through=last,
            )
        )

    # --- labels -------------------------------------------------------------------------------------

    def labels(self) -> None:
        holders: dict[str, list[str]] = {}
        for h, label in self.src.select("job_configs", ("run_hash", "label"), self.tz, ("run_hash",)):
            if label is not None:
                holders.setdefault(label, []).append(h)
        wanted: dict[str, str] = {}
        for label, hashes in sorted(holders.items()):
            # The most recently registered holder keeps a label joshpy let several runs hold.
            hashes.sort(key=lambda h: (self.config_time.get(h) or 0, h))
            keep = hashes[-1]
            if len(hashes) > 1:
                self.report.differences.append(
                    f"label {label!r} was held by {len(hashes)} runs ({', '.join(hashes)}); it stays with "
                    f"the most recently registered, {keep}"
                )
            if keep in self.bad_hashes:
                self.report.conflicts.append(
                    f"label {label!r}: its run {keep} conflicts (see above); left out"
                )
                continue
            wanted[label] = keep
        conflicts: list[str] = []

        def plan(state: LabelState) -> list[LabelAction]:
            conflicts.clear()
            actions: list[LabelAction] = []
            present = 0
            for label, h in wanted.items():
                if state.holder.get(label) == h:
                    present += 1
                    continue
                if label in state.holder:
                    conflicts.append(
                        f"label {label!r} is held by {state.holder[label]} in the registry; kept that"
                    )
                elif h in state.label_of:
                    conflicts.append(
                        f"run {h} holds label {state.label_of[h]!r} in the registry; {label!r} was left out"
                    )
                else:
                    actions.append(LabelAssigned(label=label, run_hash=h, reason="imported"))
            self.present["labels"] = present
            return actions

        if self.tgt.labels is None:  # a dry run: plan against the current state only
            log = LabelLog(self.tgt.store)
            log.refresh()
            n = len(plan(log.state))
        else:
            commit = self.tgt.labels.commit(plan)
            n = len(commit.actions) if commit is not None else 0
        self.report.conflicts.extend(conflicts)
        if n:
            self.added["labels"] = n


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return value
    return json_value(value)


def _mappings(text: str | None) -> dict[str, dict[str, str]] | None:
    value = _decode(text)
    if not isinstance(value, dict) or not value:
        return None
    return {
        str(k): {str(a): str(b) for a, b in v.items()} if isinstance(v, dict) else {"path": str(v)}
        for k, v in value.items()
    }


def import_joshpy(
    source: str | os.PathLike[str],
    target: ImportTarget,
    *,
    source_timezone: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Append the events that reproduce the joshpy registry at ``source`` to ``target``."""
    t0 = time.perf_counter()
    tz = source_timezone or local_timezone()
    with duckdb.connect() as check:
        known = check.execute("SELECT count(*) FROM pg_timezone_names() WHERE name = ?", [tz]).fetchone()
    if known != (1,):
        raise InvalidArgumentError(
            f"unknown time zone {tz!r}; give an IANA name such as Europe/Berlin or America/Los_Angeles"
        )
    src = _Source(os.fspath(source))
    try:
        imp = _Importer(src, target, tz, dry_run, progress)
        imp.check()
        imp.survey()
        imp.sessions()
        imp.configurations()
        imp.runs()
        imp.outputs()
        imp.results()
        imp.labels()
    finally:
        src.close()
    report = imp.report
    order = ("sessions", "session_statuses", "configurations", "session_links", "runs", "completions",
             "outputs", "labels", "result_files", "result_rows")  # fmt: skip
    report.added = {k: imp.added[k] for k in order if imp.added[k]}
    report.already_present = {k: imp.present[k] for k in order if imp.present[k]}
    if not dry_run and report.added and target.writer is not None:
        target.writer.append(
            RegistryImported(
                source=src.path,
                source_kind=src.kind,
                source_timezone=tz,
                counts=report.added,
                not_imported=report.not_imported,
            )
        )
    report.differences.insert(0, f"times were read as naive local times of {tz} and are kept in UTC")
    report.seconds = time.perf_counter() - t0
    return report
