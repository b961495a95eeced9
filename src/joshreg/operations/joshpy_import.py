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

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from joshreg.errors import InvalidArgumentError
from joshreg.log.events import (
    OutputRegistered,
    RegistryImported,
    RunCompleted,
    RunRegistered,
    RunStarted,
    SessionCreated,
    SessionStatusChanged,
)
from joshreg.log.labels import LabelLog
from joshreg.log.names import session_claim_name
from joshreg.log.store.base import LogStore
from joshreg.log.writer import EventWriter
from joshreg.operations.joshpy_curation import ImportCuration
from joshreg.operations.joshpy_results import ImportResults
from joshreg.operations.joshpy_source import (
    CONFIG_COLUMNS,
    KNOWN,
    LATER_COLUMNS,
    LATER_TABLES,
    LINK_COLUMNS,
    OUTPUT_COLUMNS,
    RUN_COLUMNS,
    SESSION_COLUMNS,
    Source,
    decode,
    event_id,
    local_timezone,
    mappings,
    plain,
    widened,
)
from joshreg.projection.tables import (
    CELL_DATA_CORE_COLUMNS,
    CONFIG_PARAMS_CORE_COLUMNS,
    check_new_names,
)

__all__ = ["ImportReport", "ImportTarget", "import_joshpy", "local_timezone"]


Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(kw_only=True)
class ImportReport:
    """What an import added, what the target already held, and everything that differs."""

    source: str
    source_kind: str
    source_timezone: str
    dry_run: bool = False
    added: dict[str, int] = field(default_factory=dict)
    already_present: dict[str, int] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    not_imported: list[str] = field(default_factory=list)
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
        return asdict(self)


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


class _Importer(ImportResults, ImportCuration):
    def __init__(
        self, source: Source, target: ImportTarget, tz: str, dry_run: bool, progress: Progress | None
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

    def _appender(self) -> Callable[[Any], object]:
        """``_append`` without its check per event, for the loops over every row."""
        writer = self.tgt.writer
        return writer.append if writer is not None else lambda event: None

    def _claim(self, name: str, data: bytes) -> bool:
        return True if self.dry_run else self.tgt.store.claim(name, data)

    def _ids(self, table: str) -> set[str]:
        return {r[0] for r in self.tgt.con.execute(f"SELECT event_id::VARCHAR FROM {table}").fetchall()}

    def check(self) -> None:
        """Refuse parameter and variable columns that clash with the target's, so that a refused
        import writes nothing."""
        for table, core in (
            ("config_parameters", CONFIG_PARAMS_CORE_COLUMNS),
            ("cell_data", CELL_DATA_CORE_COLUMNS),
        ):
            source = {c: t for c, t in self.src.tables.get(table, {}).items() if c not in core}
            types = {c: widened(t) for c, t in source.items()}
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

    def survey(self) -> None:
        src, notes = self.src, self.report.not_imported
        for table in sorted(src.tables):
            n = None
            if table in LATER_TABLES:
                continue
            if table not in KNOWN and table not in ("config_parameters", "cell_data", "cell_data_current"):
                n = src.count(table)
                notes.append(f"table {table} ({n} rows): not a joshpy table, so nothing of it is imported")
        for table, known in KNOWN.items():
            for column in src.tables.get(table, {}):
                if column in known:
                    continue
                n = src.count_values(table, column)
                if not n:
                    continue
                if column not in LATER_COLUMNS.get(table, ()):
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

    def sessions(self) -> None:
        con = self.tgt.con
        have = {
            r[0]: (r[1], r[2], r[3], decode(r[4]), r[5])
            for r in con.execute(
                "SELECT session_id, experiment_name, simulation, template_path, metadata::VARCHAR, status "
                "FROM sweep_sessions"
            ).fetchall()
        }
        status_ids = self._ids("events_session_status_changed")
        rows = self.src.select("sweep_sessions", SESSION_COLUMNS, self.tz, ("created_at", "session_id"))
        for sid, name, created, template, _th, simulation, _jobs, _reps, status, metadata in rows:
            meta = decode(metadata)
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
                        event_id=event_id("session", sid),
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
            eid = event_id("session-status", sid, status)
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

    def configurations(self) -> None:
        src, con = self.src, self.tgt.con
        params, types = self.param_types
        values: dict[str, dict[str, Any]] = {}
        if params:
            names = list(params)
            for row in src.select("config_parameters", ["run_hash", *names], self.tz):
                values[row[0]] = {n: plain(v) for n, v in zip(names, row[1:], strict=True)}
        elif src.has("config_parameters"):
            values = {r[0]: {} for r in src.select("config_parameters", ["run_hash"], self.tz)}
        have = {
            r[0]: (r[1], r[2], decode(r[3]))
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
                and mine[2] == decode(row[5])
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
                    event_id=event_id("registration", sid, h),
                    session_id=sid,
                    run_hash=h,
                    josh_path=row[2],
                    josh_content=row[3],
                    config_content=row[4] or "",
                    file_mappings=mappings(row[5]),
                    parameters=p,
                    parameter_types={k: types[k] for k in p},
                    created_us=at,
                    config_created_us=row[7] if brings else None,
                )
            )
            links.add((sid, h))
            if new_config:
                have[h] = (row[4], row[3], decode(row[5]))
                self.added["configurations"] += 1
            else:
                self.added["session_links"] += 1
            if done % 1000 == 0:
                self._say("configurations", done, len(wanted))

    def runs(self) -> list[tuple[Any, ...]]:
        con = self.tgt.con
        have = {
            r[0]: (r[1], r[2], r[3])
            for r in con.execute(
                "SELECT run_id, exit_code, epoch_us(completed_at), error_message FROM job_runs"
            ).fetchall()
        }
        owner = {r[0]: r[1] for r in self.src.select("job_configs", ("run_hash", "session_id"), self.tz)}
        rows = self.src.select(
            "job_runs",
            RUN_COLUMNS,
            self.tz,
            ("started_at", "run_id"),
            ids=(("start", "run_id"), ("completion", "run_id", "exit_code", "completed_at", "error_message")),
        )
        no_session = no_start = odd = started_n = present = completions = 0
        append = self._appender()
        bad_hashes, bad_sessions = self.bad_hashes, self.bad_sessions
        for i, (rid, h, sid, rep, started, completed, code, out, error, meta, start_id, done_id) in enumerate(
            rows
        ):
            if h in bad_hashes or sid in bad_sessions:
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
                # JSON text decodes to JSON values only: json_value would return it unchanged.
                decoded = decode(meta)
                append(
                    RunStarted(
                        event_id=start_id,
                        run_id=rid,
                        run_hash=h,
                        session_id=sid,
                        replicate=int(rep or 0),
                        output_path=out,
                        metadata=decoded if isinstance(decoded, dict) else None,
                        started_us=started,
                    )
                )
                started_n += 1
            else:
                present += 1
            if code is None:
                odd += completed is not None
                continue
            if mine is not None and mine == (code, completed, error):
                continue
            append(
                RunCompleted(
                    event_id=done_id,
                    run_id=rid,
                    exit_code=int(code),
                    error_message=error,
                    completed_us=completed,
                )
            )
            completions += 1
            if i % 5000 == 0:
                self._say("runs", i, len(rows))
        self.added["runs"] += started_n
        self.present["runs"] += present
        self.added["completions"] += completions
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
        runs = {}
        if self.bad_hashes or self.bad_sessions:  # whose runs' outputs are left out
            runs = {
                r[0]: (r[1], r[2])
                for r in self.src.select("job_runs", ("run_id", "run_hash", "session_id"), self.tz)
            }
        append = self._appender()
        check = bool(self.bad_hashes or self.bad_sessions)
        added = present = 0
        for oid, rid, kind, path, size, rows, created, eid in self.src.select(
            "run_outputs",
            OUTPUT_COLUMNS,
            self.tz,
            ("created_at", "output_id"),
            ids=(("output", "output_id"),),
        ):
            if check:
                run = runs.get(rid)
                if run is not None and (run[0] in self.bad_hashes or run[1] in self.bad_sessions):
                    continue
            if oid in have:
                present += 1
                continue
            append(
                OutputRegistered(
                    event_id=eid,
                    output_id=oid,
                    run_id=rid,
                    output_type=kind or "",
                    file_path=path or "",
                    file_size=size,
                    row_count=rows,
                    created_us=created,
                )
            )
            added += 1
        self.added["outputs"] += added
        self.present["outputs"] += present


def import_joshpy(
    source: str | os.PathLike[str] | Source,
    target: ImportTarget,
    *,
    source_timezone: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Append the events that reproduce the joshpy registry at ``source`` to ``target``.
    A ``Source`` the caller opened (tables already in a connection) stays the caller's to close."""
    t0 = time.perf_counter()
    tz = source_timezone or local_timezone()
    with duckdb.connect() as check:
        known = check.execute("SELECT count(*) FROM pg_timezone_names() WHERE name = ?", [tz]).fetchone()
    if known != (1,):
        raise InvalidArgumentError(
            f"unknown time zone {tz!r}; give an IANA name such as Europe/Berlin or America/Los_Angeles"
        )
    src = source if isinstance(source, Source) else Source(os.fspath(source))
    try:
        imp = _Importer(src, target, tz, dry_run, progress)
        imp.check()
        imp.start_results()  # DuckDB reads and sorts cell_data while the events are built
        try:
            imp.survey()
            imp.sessions()
            imp.configurations()
            imp.runs()
            imp.outputs()
            imp.results()
        finally:
            imp.stop_results()
        imp.labels()
        imp.statuses()
        imp.tags()
        imp.designs()
    finally:
        if src is not source:
            src.close()
    report = imp.report
    order = ("sessions", "session_statuses", "configurations", "session_links", "runs", "completions",
             "outputs", "labels", "result_files", "result_rows", "statuses", "tags", "designs")  # fmt: skip
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
