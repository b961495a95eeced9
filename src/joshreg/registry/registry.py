"""RunRegistry: upstream joshpy's registry API over the event log. The only module that wires
store, writer, label log, projector and queries together.

Every write method validates against the projection, appends exactly one event (or one label
commit) and returns; when it returns, the event has reached the operating system and is durable
under the chosen ``durability``. Every read method first catches up with the log (its own
writes and every other process's), then answers from DuckDB. The DuckDB file is a cache of the
log: delete it and the next open rebuilds it.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import duckdb

from joshreg.errors import (
    DuplicateSessionError,
    InvalidArgumentError,
    JoshregError,
    LabelConflictError,
    LogDamageWarning,
    NoDebugOutputError,
    ReadOnlyRegistryError,
    RunNotFoundError,
    SessionNotFoundError,
    SourceNotStoredError,
    StoreMismatchError,
)
from joshreg.log.clock import uuid7
from joshreg.log.events import (
    EventBase,
    LabelAction,
    LabelArchived,
    LabelAssigned,
    LabelReleased,
    ResultsLoaded,
    RunRegistered,
    SessionCreated,
    SessionStatusChanged,
    json_value,
)
from joshreg.log.labels import LabelLog, LabelState
from joshreg.log.labelstreams import LabelStreams
from joshreg.log.names import default_events_path, session_claim_name
from joshreg.log.store import LogStore, open_store, store_exists_at
from joshreg.log.writer import Durability, EventWriter
from joshreg.models import (
    ConfigInfo,
    ConfigSourceInfo,
    DataSummary,
    LabelChange,
    RunInfo,
    SessionInfo,
    SessionSummary,
    SparsityReport,
)
from joshreg.operations.compaction import ABANDONED_AFTER_S, MIN_BYTES, CompactionReport, compact_store
from joshreg.operations.joshpy_import import ImportReport, ImportTarget, import_joshpy
from joshreg.operations.joshpy_import import Progress as ImportProgress
from joshreg.operations.merge import MergeReport, merge_stores
from joshreg.operations.verify import VerifyProblem, VerifyProgress, VerifyReport, verify_store
from joshreg.operations.watch import DEFAULT_INTERVAL, wait_until
from joshreg.projection import queries as q
from joshreg.projection.dbfile import RegistryFile, inspect_registry_file
from joshreg.projection.projector import CatchUp, Progress, Projector
from joshreg.projection.snapshot import publish_snapshot, snapshot_path
from joshreg.projection.spatial import load_spatial
from joshreg.projection.tables import (
    CONFIG_PARAMS_CORE_COLUMNS,
    check_new_names,
    infer_type,
    quote_identifier,
)
from joshreg.projection.timetravel import Moment, describe, parse_when, project_as_of, to_position
from joshreg.provenance import sources
from joshreg.provenance.bottle import BottleSpec, config_file_name, custom_tags, write_bottle
from joshreg.provenance.debug import DebugMessageStore, load_debug_file, output_path
from joshreg.provenance.git import git_hash
from joshreg.registry.recorder import RunRecorder
from joshreg.results import discovery

__all__ = ["RegistryClosedError", "RegistryView", "RunRegistry"]

_T = TypeVar("_T")


class RegistryClosedError(JoshregError, RuntimeError):
    """A method was called on a registry after ``close()``."""


class RunRegistry:
    """A registry of sweep sessions, run configurations, executions, outputs and labels.

    ``RunRegistry("sweep.duckdb")`` keeps its event log in ``sweep.events/`` beside the file
    (``events_path=`` to place it elsewhere, for example on a shared file system);
    ``RunRegistry(":memory:")`` keeps both in memory. Any number of processes may open the same
    registry at once: a process that finds the DuckDB file held by another keeps a private
    projection in memory (``private_projection`` is then True) and still reads and writes.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] = "josh_runs.duckdb",
        enable_spatial: bool = True,
        *,
        events_path: str | os.PathLike[str] | None = None,
        durability: Durability = "batch",
        tracer: Callable[[str], None] | None = None,
        rebuild: bool = False,
        progress: Progress | None = None,
    ) -> None:
        """``rebuild=True`` drops the tables and replays the whole log at open; it is also how
        a registry file is pointed at another event store on purpose (otherwise a file built
        from one store and opened with another raises ``StoreMismatchError``). ``progress``
        hears of the catch-up or rebuild the open does (``(bytes done, bytes total)``), and
        ``opened`` says what it applied.

        A path that holds anything joshreg did not write (a joshpy registry, another DuckDB
        file, a directory) raises ``ForeignDatabaseError`` and is left exactly as it was, with
        no event store made beside it; see ``joshreg.dbfile``.
        """
        self.db_path = db_path
        self.enable_spatial = enable_spatial
        self.tracer = tracer
        memory = str(db_path) == ":memory:"
        if events_path is None:
            events_path = ":memory:" if memory else default_events_path(db_path)
        self.events_path = os.fspath(events_path)
        self.private_projection = False
        found = None if memory else self._inspect_file(rebuild)
        self._store: LogStore = open_store(self.events_path)
        if found is not None and found.kind == "joshreg" and not rebuild:
            self._check_same_store(found)
        self._conn: duckdb.DuckDBPyConnection | None = self._connect(
            memory, busy=found is not None and found.kind == "busy"
        )
        self._projector = Projector(self._conn, self._store, tracer=tracer, spatial=enable_spatial)
        if self._projector.needs_rebuild or rebuild:
            self.opened: CatchUp = self._projector.rebuild(progress)
        else:
            self.opened = self._projector.catch_up(progress)
        if not rebuild:  # a rebuild's caller reads its problems from ``opened``
            self._warn_damage()
        self._writer = EventWriter(self._store, durability=durability, tracer=tracer)
        self._recorder = RunRecorder(writer=self._writer)
        self._labels: LabelLog | None = None
        self._label_streams: LabelStreams | None = None
        self._sessions: set[str] | None = None
        self._hashes: set[str] | None = None
        self._runs: set[str] | None = None
        self._param_types: dict[str, str] = {}
        self._cell_types: dict[str, str] = {}
        self._filters: list[tuple[str, list[Any]]] = []

    def _warn_damage(self) -> None:
        """One ``LogDamageWarning`` at open if the log holds damage replay worked around, so a
        user hears of it where they look, not only from ``verify``."""
        damage = self._projector.damage()
        if not damage:
            return
        total = sum(damage.values())
        where = ", ".join(f"{n} in {name}" for name, n in sorted(damage.items()))
        name = self.db_path if str(self.db_path) != ":memory:" else "the registry"
        warnings.warn(
            f"the event log of {name} has {total} damaged line{'s' if total != 1 else ''} that "
            f"replay skipped or worked around ({where}, under {self.events_path}); run "
            f"`joshreg verify {name}` to see each one and what to do",
            LogDamageWarning,
            stacklevel=3,
        )

    def _inspect_file(self, rebuild: bool) -> RegistryFile:
        """Look at the registry file before anything is written anywhere: refuse files joshreg
        did not write, and a projection whose event store is missing."""
        path = os.fspath(self.db_path)
        store_exists = store_exists_at(self.events_path)
        found = inspect_registry_file(path, store_exists=store_exists)
        if found.kind == "joshreg" and found.store_id is not None and not store_exists and not rebuild:
            raise StoreMismatchError(
                f"{path} was built from an event store that is not at {self.events_path} (nothing is "
                "there): pass the events path it was built from (events_path=, --events-path), or "
                f"rebuild it from another store with: joshreg rebuild {path} --events-path DIR"
            )
        return found

    def _check_same_store(self, found: RegistryFile) -> None:
        have = self._store.stored_id()
        if found.store_id is None or found.store_id == have:
            return
        self._store.close()
        raise StoreMismatchError(
            f"{found.path} was built from event store {found.store_id}, but {self.events_path} is "
            f"event store {have or '(one made before store ids)'}: pass the events path it was built from "
            f"(events_path=, --events-path), or rebuild it from this store with: joshreg rebuild "
            f"{found.path} --events-path {self.events_path}"
        )

    def _connect(self, memory: bool, *, busy: bool = False) -> duckdb.DuckDBPyConnection:
        if memory:
            return duckdb.connect(":memory:")
        path = os.fspath(self.db_path)
        if not busy:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            try:
                return duckdb.connect(path)
            except duckdb.IOException as e:
                if "lock" not in str(e).lower():
                    raise JoshregError(
                        f"cannot open the registry database {path}: {e}. It is a projection of the "
                        f"log in {self.events_path}; move it aside and open again to rebuild it"
                    ) from e
        # Another process holds the file: keep a private projection of the same log.
        self.private_projection = True
        self._trace(f"{path} is held by another process; using a private projection")
        return duckdb.connect(":memory:")

    def _append(self, event: EventBase) -> None:
        self._writer.append(event)
        self._writer.publish()

    def _trace(self, msg: str) -> None:
        if self.tracer is not None:
            self.tracer(msg)

    def __repr__(self) -> str:
        return f"RunRegistry(db_path={self.db_path!r}, enable_spatial={self.enable_spatial!r})"

    # --- lifecycle ------------------------------------------------------------------------------

    def _con(self) -> duckdb.DuckDBPyConnection:
        if self._conn is None:
            raise RegistryClosedError(f"the registry {self.db_path} is closed; open it again")
        return self._conn

    def sync(self) -> CatchUp:
        """Catch the tables up with the log (every read does this first)."""
        self._con()
        self._writer.publish()
        result = self._projector.catch_up()
        if result.problems:
            for p in result.problems:
                warnings.warn(f"damaged event log: {p}", LogDamageWarning, stacklevel=3)
        return result

    def rebuild(self, progress: Progress | None = None) -> CatchUp:
        """Drop the tables and replay the whole log into them."""
        self._con()
        self._writer.flush()
        result = self._projector.rebuild(progress)
        self._sessions = self._hashes = self._runs = None
        return result

    def verify(self, *, rebuild_check: bool = True, progress: VerifyProgress | None = None) -> VerifyReport:
        """Check the log for damage and, unless ``rebuild_check=False``, the tables against a
        private rebuild from the log (see ``joshreg.verify``). Damage goes into the report, not
        into warnings; nothing is changed."""
        con = self._con()
        self._writer.publish()
        self._projector.catch_up()
        report = verify_store(
            self._store, con, rebuild=rebuild_check, spatial=self.enable_spatial, progress=progress
        )
        if rebuild_check and self.private_projection:
            report.add(
                VerifyProblem(
                    "private-projection",
                    f"{self.db_path} is held by another process, so the tables compared were this "
                    "process's private projection, not the file's; verify again when it is free",
                    severity="warning",
                )
            )
        return report

    def flush(self) -> None:
        """Make every event this registry wrote durable now."""
        self._writer.flush()

    def compact(
        self,
        *,
        abandoned_after: float = ABANDONED_AFTER_S,
        min_bytes: int = MIN_BYTES,
        dry_run: bool = False,
        tracer: Callable[[str], None] | None = None,
    ) -> CompactionReport:
        """Rewrite every finished segment of the log as Parquet and delete its JSONL.

        Finished means sealed by its writer's ``close()``, or unsealed but left by a writer of
        this host that exited ``abandoned_after`` seconds ago or more; live segments (this
        registry's own included) and segments under ``min_bytes`` are left alone. The tables do
        not change: compacted segments read as the same bytes, and a rebuild from them is faster
        (see ``joshreg.compaction``).
        """
        self._con()
        self._writer.publish()
        return compact_store(
            self._store, abandoned_after=abandoned_after, min_bytes=min_bytes, dry_run=dry_run, tracer=tracer
        )

    def import_joshpy(
        self,
        source: str | os.PathLike[str],
        *,
        source_timezone: str | None = None,
        dry_run: bool = False,
        progress: ImportProgress | None = None,
    ) -> ImportReport:
        """Import a registry joshpy wrote into this one, as the events that reproduce it.

        ``source`` is a joshpy DuckDB file (read-only; nothing in it changes) or a folder of
        its tables as Parquet (``EXPORT DATABASE``, or ``push_to_s3``'s layout). Its naive
        local times are read in ``source_timezone`` (default: this machine's zone) and kept
        in UTC. Importing again adds only what the source gained since; a session id or run
        hash this registry holds with other content is reported and left as it is. The report
        lists every difference from the source (see ``joshreg.joshpy_import``); ``dry_run``
        counts without writing.
        """
        self.sync()
        empty = not self._projector.cursors and not self._projector.labels_head
        writer = None
        if not dry_run:
            # One fsync per 64k events instead of one per 256: an import is one operation,
            # durable when it returns, and repeating it after a crash adds only what is missing.
            writer = EventWriter(
                self._store,
                durability="batch",
                batch_size=1 << 16,
                max_delay=float("inf"),
                clock=self._writer.clock,
            )
        target = ImportTarget(
            con=self._con(),
            store=self._store,
            writer=writer,
            labels=None if dry_run else self._label_log(),
            param_columns={**self._param_types, **self._projector.param_columns},
            cell_columns=self._variable_types(),
        )
        try:
            report = import_joshpy(
                source, target, source_timezone=source_timezone, dry_run=dry_run, progress=progress
            )
        finally:
            if writer is not None:
                writer.close()
        if not dry_run:
            if progress is not None:
                progress("projecting", 0, 1)
            if empty:
                self._projector.rebuild()  # the bulk path: faster than a catch-up of everything
            else:
                self.sync()
            self._sessions = self._hashes = self._runs = None
            if progress is not None:
                progress("projecting", 1, 1)
        return report

    def merge_from(self, *sources: str | os.PathLike[str] | RunRegistry) -> list[MergeReport]:
        """Add other registries' logs to this one's (registry files, event store folders or open
        registries) and catch up; one report per source of what was copied.

        A merge is a set union (``joshreg.merge``): repeating it, or merging in another order,
        gives the same tables. Labels given in several registries are ordered by their clocks;
        a conflict is resolved the same way everywhere and kept in ``label_history``.
        """
        self._con()
        if self._store.location == ":memory:":
            raise InvalidArgumentError("merge_from needs a registry whose event store is on disk")
        paths: list[str | os.PathLike[str]] = []
        for source in sources:
            if isinstance(source, RunRegistry):
                source.flush()
                source = source.events_path
            paths.append(source)
        self._writer.flush()
        reports = merge_stores(paths, self.events_path)
        self.sync()
        self._sessions = self._hashes = self._runs = None
        return reports

    # --- following other processes --------------------------------------------------------------

    def _watch_path(self) -> str | None:
        return None if self.events_path == ":memory:" else self.events_path

    def wait_for(
        self,
        condition: Callable[[RunRegistry], _T | None],
        timeout: float | None = None,
        *,
        interval: float = DEFAULT_INTERVAL,
        what: str = "the condition",
    ) -> _T:
        """Block until ``condition(registry)`` returns something other than None or False.

        The registry catches up before each call: at once, after every change of the event
        store (file events) and at least every ``interval`` seconds (a network file system sends
        none). Returns the condition's value; after ``timeout`` seconds (None: no limit) raises
        ``WaitTimeoutError`` (a ``TimeoutError``) naming ``what``.
        """

        def check() -> _T | None:
            self.sync()
            return condition(self)

        return wait_until(
            check,
            events_path=self._watch_path(),
            timeout=timeout,
            interval=interval,
            describe=lambda: f"{what} did not hold",
        )

    def wait_for_run(
        self, run_id: str, timeout: float | None = None, *, interval: float = DEFAULT_INTERVAL
    ) -> RunInfo:
        """Block until execution ``run_id`` has completed, as recorded by any process; return it.

        A run whose start nobody has recorded yet is waited for too. After ``timeout`` seconds
        (None: no limit) raises ``WaitTimeoutError`` (a ``TimeoutError``) naming the run and how
        far it got. See ``wait_for`` for when the registry looks.
        """

        def check() -> RunInfo | None:
            self.sync()
            run = q.get_run(self._con(), run_id)
            return run if run is not None and run.completed_at is not None else None

        def describe() -> str:
            run = q.get_run(self._con(), run_id)
            state = (
                "no process has recorded its start"
                if run is None
                else f"it started at {run.started_at:%Y-%m-%d %H:%M:%S} UTC and has not completed"
            )
            return f"run {run_id} did not complete in time: {state}"

        return wait_until(
            check, events_path=self._watch_path(), timeout=timeout, interval=interval, describe=describe
        )

    def wait_for_event(
        self, event_id: str, timeout: float | None = None, *, interval: float = DEFAULT_INTERVAL
    ) -> None:
        """Block until the event (or label commit) with this id is in the tables."""

        def check() -> bool:
            self.sync()
            return (
                self._con()
                .execute(
                    "SELECT 1 FROM event_log WHERE event_id = ? "
                    "UNION ALL SELECT 1 FROM label_history WHERE commit_id = ? LIMIT 1",
                    [event_id, event_id],
                )
                .fetchone()
                is not None
            )

        wait_until(
            check,
            events_path=self._watch_path(),
            timeout=timeout,
            interval=interval,
            describe=lambda: f"event {event_id} is not in the registry",
        )

    def publish_snapshot(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Catch up, then write a read-only copy of the tables for other processes; return its path.

        While this process holds the DuckDB file, DuckDB refuses every other process, even a
        read-only one; they open the copy instead, at any moment:
        ``duckdb.connect("sweep.snapshot.duckdb", read_only=True)``. The default path is beside
        the registry file. The copy replaces the previous one atomically; ``joshreg watch``
        keeps it fresh while a sweep runs.
        """
        self.sync()
        if path is None:
            if str(self.db_path) == ":memory:":
                raise InvalidArgumentError(
                    "a ':memory:' registry has no file to put a snapshot beside; pass path="
                )
            path = snapshot_path(self.db_path)
        self._publish_snapshot(path)
        return Path(path)

    def _publish_snapshot(self, path: str | os.PathLike[str]) -> float:
        """``publish_snapshot`` without the catch-up (a follower reports its own); the seconds."""
        in_file = str(self.db_path) != ":memory:"
        if in_file and Path(path).resolve() == Path(self.db_path).resolve():
            raise InvalidArgumentError(f"the snapshot path {path} is the registry file itself")
        in_file = in_file and not self.private_projection
        return publish_snapshot(self._con(), path, source_file=os.fspath(self.db_path) if in_file else None)

    def close(self) -> None:
        """Flush the log and close the database; calling it again does nothing."""
        if self._conn is None:
            return
        self._writer.close()
        self._conn.close()
        self._conn = None
        self._store.close()

    def __enter__(self) -> RunRegistry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def conn(self) -> duckdb.DuckDBPyConnection | None:
        """The DuckDB connection, caught up with the log (None after close)."""
        if self._conn is None:
            return None
        self.sync()
        return self._conn

    @property
    def store(self) -> LogStore:
        return self._store

    def recorder(self, session_id: str | None = None) -> RunRecorder:
        """A worker-style recorder writing to this registry's log from this process."""
        return RunRecorder(writer=self._writer, session_id=session_id)

    # --- time travel ----------------------------------------------------------------------------

    def as_of(self, when: Moment | str) -> RegistryView:
        """A read-only view of the registry exactly as it was at ``when``.

        ``when`` is a datetime (naive means UTC): everything recorded by then; or a log position,
        the ``position`` of a ``label_history()`` entry or of a ``joshreg log`` line: that change
        and everything before it. The view has the whole read API (``query``, exports,
        ``DiagnosticQueries(view)``, ...); writes raise ``ReadOnlyRegistryError``. It is a
        snapshot, built in memory from this registry's tables: later writes do not reach it.
        Close it when done, or use it in a ``with`` block.
        """
        self.sync()
        return RegistryView(self, when)

    def _require_writable(self) -> None:
        """Called first by writers outside this class (``CellDataLoader``); a view refuses."""
        self._con()

    # --- raw access -----------------------------------------------------------------------------

    def query(self, sql: str, params: list[Any] | None = None) -> duckdb.DuckDBPyConnection:
        """Run SQL on the tables; returns a cursor (``.df()``, ``.fetchall()``, ...).

        Each call gets its own cursor, so a result stays readable after later registry calls.
        The tables are projections: write through the registry's methods, not with SQL.
        """
        self.sync()
        cur = self._con().cursor()
        cur.execute(sql, params or [])
        return cur

    def _copy(self, path: str | os.PathLike[str], table: str, options: str) -> None:
        self.sync()
        con = self._con()
        names = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            ).fetchall()
        }
        if table not in names:
            raise InvalidArgumentError(
                f"no table or view named {table!r}; available: {', '.join(sorted(names))}"
            )
        target = os.fspath(path).replace("'", "''")
        con.execute(f"COPY (SELECT * FROM {quote_identifier(table)}) TO '{target}' ({options})")

    def to_csv(self, path: str | os.PathLike[str], table: str = "cell_data") -> None:
        """Write a table (or view) to a CSV file with a header, overwriting it."""
        self._copy(path, table, "FORMAT CSV, HEADER")

    def to_parquet(self, path: str | os.PathLike[str], table: str = "cell_data") -> None:
        """Write a table (or view) to a Parquet file, overwriting it."""
        self._copy(path, table, "FORMAT PARQUET")

    # --- validation caches ----------------------------------------------------------------------

    def _known(self, kind: str, key: str) -> bool:
        """Whether a session id / run hash / run id exists, from memory, else after a sync."""
        attr, sql = {
            "session": ("_sessions", "SELECT session_id FROM sweep_sessions"),
            "hash": ("_hashes", "SELECT run_hash FROM job_configs"),
            "run": ("_runs", "SELECT run_id FROM job_runs"),
        }[kind]
        known: set[str] | None = getattr(self, attr)
        if known is not None and key in known:
            return True
        self.sync()
        known = {r[0] for r in self._con().execute(sql).fetchall()}
        setattr(self, attr, known)
        return key in known

    def _remember(self, kind: str, key: str) -> None:
        known = getattr(self, {"session": "_sessions", "hash": "_hashes", "run": "_runs"}[kind])
        if known is not None:
            known.add(key)

    def _require_session(self, session_id: str) -> None:
        if not self._known("session", session_id):
            raise SessionNotFoundError(
                f"No session found with id '{session_id}'; create it with create_session first"
            )

    def _require_hash(self, run_hash: str) -> None:
        if not self._known("hash", run_hash):
            raise RunNotFoundError(
                f"No run found with hash '{run_hash}'; register it with register_run first"
            )

    def _require_run(self, run_id: str) -> None:
        if not self._known("run", run_id):
            raise RunNotFoundError(f"No run execution found for run_id '{run_id}'")

    # --- filters over cell_data ------------------------------------------------------------------

    @contextmanager
    def spatial_filter(
        self,
        bbox: tuple[float, float, float, float] | None = None,
        geojson: str | dict[str, Any] | None = None,
    ) -> Iterator[RunRegistry]:
        """Restrict every cell_data query (diagnostics, plots) to an area while inside.

        ``bbox`` is ``(min_lon, max_lon, min_lat, max_lat)`` (upstream's order); ``geojson`` a
        GeoJSON geometry (string or dict) that rows' ``geom`` must lie within. Nested filters
        all apply (their intersection).
        """
        if bbox is not None and geojson is not None:
            raise InvalidArgumentError("Specify either bbox or geojson, not both")
        if bbox is not None:
            if len(bbox) != 4:
                raise InvalidArgumentError(f"bbox must be (min_lon, max_lon, min_lat, max_lat), got {bbox!r}")
            lo_lon, hi_lon, lo_lat, hi_lat = (float(v) for v in bbox)
            clause = (
                "{a}longitude BETWEEN ? AND ? AND {a}latitude BETWEEN ? AND ?",
                [lo_lon, hi_lon, lo_lat, hi_lat],
            )
        elif geojson is not None:
            text = geojson if isinstance(geojson, str) else json.dumps(geojson)
            self._ensure_spatial()
            clause = ("ST_Within({a}geom, ST_GeomFromGeoJSON(?))", [text])
        else:
            raise InvalidArgumentError("spatial_filter needs bbox or geojson")
        with self._filter(clause):
            yield self

    @contextmanager
    def time_filter(self, step_range: tuple[int, int]) -> Iterator[RunRegistry]:
        """Restrict every cell_data query to steps ``lo..hi`` (inclusive) while inside."""
        lo, hi = step_range
        with self._filter(("{a}step BETWEEN ? AND ?", [int(lo), int(hi)])):
            yield self

    @contextmanager
    def _filter(self, clause: tuple[str, list[Any]]) -> Iterator[None]:
        self._filters.append(clause)
        try:
            yield
        finally:
            self._filters.remove(clause)

    def filter_clause(self, alias: str = "") -> tuple[str, list[Any]]:
        """The active filters as ``(" AND ...", params)`` over cell_data columns.

        ``alias`` qualifies the columns (``"cd"`` → ``cd.step``), so the clause is safe in a
        join where another table has a column of the same name. ``("", [])`` when no filter
        is active.
        """
        prefix = f"{alias}." if alias else ""
        sql = "".join(f" AND ({c.format(a=prefix)})" for c, _ in self._filters)
        params = [p for _, ps in self._filters for p in ps]
        return sql, params

    def _ensure_spatial(self) -> None:
        if not self.enable_spatial:
            raise InvalidArgumentError(
                "a geojson filter needs the spatial extension; open the registry with enable_spatial=True"
            )
        if not self._projector._spatial_loaded:
            load_spatial(self._con())
            self._projector._spatial_loaded = True

    # --- simulation results (used by CellDataLoader) --------------------------------------------

    def _variable_types(self) -> dict[str, str]:
        """``cell_data`` variable columns as of the last catch-up, plus this process's loads."""
        return {**self._cell_types, **self._projector.cell_columns}

    def _results_loaded(self, source_sha256: str, run_id: str | None, entity_type: str) -> bool:
        row = (
            self._con()
            .execute(
                "SELECT count(*) FROM events_results_loaded WHERE source_sha256 = ? "
                "AND run_id IS NOT DISTINCT FROM ? AND entity_type = ?",
                [source_sha256, run_id, entity_type],
            )
            .fetchone()
        )
        return bool(row and row[0])

    def _record_results(self, event: ResultsLoaded) -> None:
        self._cell_types.update(event.columns)
        self._append(event)

    # --- sessions -------------------------------------------------------------------------------

    def create_session(
        self,
        config: Any,
        experiment_name: str | None = None,
        session_id: str | None = None,
    ) -> str:
        """Record a sweep session for ``config`` (anything with ``to_dict()``); return its id.

        ``metadata`` holds ``job_config`` (``config.to_dict()``) and the working directory's
        ``git_hash``. A ``session_id`` that is already taken, here or by any process sharing
        the log, raises ``DuplicateSessionError`` (a ``ValueError``).
        """
        if not callable(getattr(config, "to_dict", None)):
            raise AttributeError(
                f"create_session needs a job config with a to_dict() method, got {type(config).__name__}"
            )
        job_config = json_value(config.to_dict())
        simulation = getattr(config, "simulation", None)
        template_path = getattr(config, "template_path", None)
        replicates = getattr(config, "replicates", None)
        sid = uuid7() if session_id is None else str(session_id)
        if session_id is not None and self._known("session", sid):
            raise DuplicateSessionError(f"a session with id '{sid}' already exists")
        if not self._store.claim(session_claim_name(sid), sid.encode()):
            raise DuplicateSessionError(f"a session with id '{sid}' already exists")
        metadata: dict[str, Any] = {"job_config": job_config}
        gh = git_hash()
        if gh is not None:
            metadata["git_hash"] = gh
        self._append(
            SessionCreated(
                session_id=sid,
                experiment_name=experiment_name if experiment_name is not None else simulation,
                simulation=None if simulation is None else str(simulation),
                template_path=None if template_path is None else str(template_path),
                metadata=metadata,
                replicates=replicates if isinstance(replicates, int) else None,
            )
        )
        self._remember("session", sid)
        return sid

    def update_session_status(self, session_id: str, status: str) -> None:
        """Set a session's free-text status (pending, running, completed, failed, ...)."""
        self._require_session(session_id)
        self._append(SessionStatusChanged(session_id=session_id, status=str(status)))

    def get_session(self, session_id: str) -> SessionInfo | None:
        self.sync()
        return q.get_session(self._con(), session_id)

    def list_sessions(self, experiment_name: str | None = None, limit: int = 100) -> list[SessionInfo]:
        """Sessions, newest first."""
        self.sync()
        return q.list_sessions(self._con(), experiment_name, limit)

    def get_session_summary(self, session_id: str) -> SessionSummary | None:
        self.sync()
        return q.get_session_summary(self._con(), session_id)

    # --- configurations -------------------------------------------------------------------------

    def register_run(
        self,
        session_id: str,
        run_hash: str,
        josh_path: str | os.PathLike[str] | None,
        config_content: str,
        file_mappings: dict[str, dict[str, str]] | None,
        parameters: dict[str, Any] | None,
        josh_content: str | None = None,
    ) -> None:
        """Register a run configuration with ``session_id``.

        A hash registered before keeps its first registration (content, parameters, owner
        session); registering it from another session links it there too (pooling). Parameter
        columns are typed DOUBLE or VARCHAR by upstream's rules; a name that clashes with a
        core column, another name by case, or an existing column's type raises
        ``ColumnConflictError`` (a ``ValueError``) and records nothing.
        """
        self._require_session(session_id)
        params = {str(k): json_value(v) for k, v in (parameters or {}).items()}
        types = {k: infer_type(v) for k, v in (parameters or {}).items()}
        # Columns as of the last catch-up plus this process's own registrations since: no
        # catch-up per call, so registering a thousand configurations stays cheap.
        check_new_names(
            types,
            {**self._param_types, **self._projector.param_columns},
            CONFIG_PARAMS_CORE_COLUMNS,
            what="Config parameter",
            advice="This may indicate mixed sweep configurations. Use a separate registry.",
        )
        self._param_types.update(types)
        self._append(
            RunRegistered(
                session_id=session_id,
                run_hash=str(run_hash),
                josh_path=None if josh_path is None else os.fspath(josh_path),
                josh_content=josh_content,
                config_content=config_content,
                file_mappings=file_mappings or None,
                parameters=params,
                parameter_types=types,
            )
        )
        self._remember("hash", str(run_hash))

    def get_config_by_hash(self, run_hash: str) -> ConfigInfo | None:
        self.sync()
        return q.get_config(self._con(), run_hash)

    def get_configs_for_session(self, session_id: str) -> list[ConfigInfo]:
        """Every configuration registered to the session (pooled ones included), oldest first."""
        self.sync()
        return q.get_configs_for_session(self._con(), session_id)

    def _resolve_label_or_hash(self, label_or_hash: str) -> str:
        self.sync()
        con = self._con()
        h = q.resolve_label(con, label_or_hash) or label_or_hash
        if q.get_config(con, h) is None:
            raise RunNotFoundError(f"No run found for '{label_or_hash}'")
        return h

    def get_file_mappings(self, label_or_hash: str) -> dict[str, Path] | None:
        """Data files of a run as ``{name: Path}``; None when it has none."""
        cfg = self.get_config_by_hash(self._resolve_label_or_hash(label_or_hash))
        if cfg is None or not cfg.file_mappings:
            return None
        return {name: Path(info["path"]) for name, info in cfg.file_mappings.items()}

    def get_registered_parameters(self, label_or_hash: str) -> dict[str, Any]:
        """A run's parameters exactly as registered (``85`` stays ``85``), sorted by name.

        ``ConfigInfo.parameters`` reads the typed table, where numbers are DOUBLE as upstream
        stores them; re-running a configuration needs the values as the user wrote them.
        """
        run_hash = self._resolve_label_or_hash(label_or_hash)
        return q.registered_parameters(self._con(), run_hash) or {}

    def get_runs_by_parameters(self, **params: Any) -> list[dict[str, Any]]:
        """Executions of configurations whose parameters equal the given values, newest first."""
        self.sync()
        con = self._con()
        known = q.config_columns(con)
        unknown = [k for k in params if k not in known]
        if unknown:
            raise InvalidArgumentError(
                f"unknown config parameter {unknown[0]!r}; known: {', '.join(known) or '(none)'}"
            )
        return q.get_runs_by_parameters(con, params)

    # --- sources: read-only exports, source files, diffs -------------------------------------

    def _named_config(self, label_or_hash: str) -> ConfigInfo:
        """The run a label or hash names (a label wins); ``RunNotFoundError`` otherwise."""
        cfg = q.get_config(self._con(), self._resolve_label_or_hash(label_or_hash))
        if cfg is None:  # cannot happen: _resolve_label_or_hash checked it
            raise RunNotFoundError(f"No run found for '{label_or_hash}'")
        return cfg

    def export_config(self, label_or_hash: str, output_dir: str | os.PathLike[str]) -> Path:
        """Write a run's stored .jshc to ``output_dir/<label or hash>.jshc``; return its path.

        A read-only snapshot under a ``READ-ONLY`` header: the registry's copy is what the run
        used, whatever happened to the source file since. Replaces an earlier export.
        """
        cfg = self._named_config(label_or_hash)
        return sources.export_file("config", cfg, str(label_or_hash), output_dir)

    def export_josh(self, label_or_hash: str, output_dir: str | os.PathLike[str]) -> Path:
        """Write a run's stored Josh source to ``output_dir/<label or hash>.josh``; return its path.

        ``SourceNotStoredError`` (a KeyError and a ValueError) when the run was registered
        without ``josh_content``.
        """
        cfg = self._named_config(label_or_hash)
        return sources.export_file("josh", cfg, str(label_or_hash), output_dir)

    def resolve_config_source(self, run_hash: str) -> ConfigSourceInfo:
        """The .jshc file a run was registered from, and whether it still holds the stored text.

        The path is the first session's ``job_config["config_path"]``; templated sweeps, unknown
        runs and missing sessions give ``ConfigSourceInfo(None, False, False)``. Never raises.
        """
        self.sync()
        con = self._con()
        cfg = q.get_config(con, run_hash)
        session = q.get_session(con, cfg.session_id) if cfg is not None else None
        return sources.config_source(cfg, session)

    def resolve_josh_source(self, run_hash: str) -> ConfigSourceInfo:
        """The .josh file a run was registered from (``josh_path``), compared with the stored text."""
        return sources.josh_source(self.get_config_by_hash(run_hash))

    def _source_info(self, kind: sources.Kind, cfg: ConfigInfo) -> ConfigSourceInfo:
        if kind == "josh":
            return sources.josh_source(cfg)
        return sources.config_source(cfg, q.get_session(self._con(), cfg.session_id))

    def _open_diff(
        self, kind: sources.Kind, a: str, b: str, ide: str, output_dir: str | os.PathLike[str] | None
    ) -> tuple[Path, Path]:
        sources.check_ide(ide)
        sides = []
        for name in (a, b):
            cfg = self._named_config(name)
            sources.stored_text(kind, cfg)  # fail before writing anything
            sides.append((str(name), cfg, self._source_info(kind, cfg)))
        p1, p2 = sources.diff_pair(kind, sides, sources.make_output_dir(output_dir))
        sources.launch_ide(ide, [p1, p2])
        return p1, p2

    def compare_configs(
        self, a: str, b: str, ide: str = "vscode", *, output_dir: str | os.PathLike[str] | None = None
    ) -> tuple[Path, Path]:
        """Open two runs' configs side by side in VS Code (``ide="vscode"``) or Cursor.

        Each side is the real source file while it still matches the stored text (editable in
        place), else a read-only export, whose header says when the source has drifted
        (exports go to ``output_dir`` or a fresh temporary directory). Unknown ``ide`` →
        ``ValueError``; its command not on PATH → ``IdeUnavailableError`` (a RuntimeError).
        ``diff_configs`` gives the same comparison as text.
        """
        return self._open_diff("config", a, b, ide, output_dir)

    def compare_josh(
        self, a: str, b: str, ide: str = "vscode", *, output_dir: str | os.PathLike[str] | None = None
    ) -> tuple[Path, Path]:
        """``compare_configs`` for the runs' Josh sources."""
        return self._open_diff("josh", a, b, ide, output_dir)

    def _diff_text(self, kind: sources.Kind, a: str, b: str, context: int) -> str:
        ca, cb = self._named_config(a), self._named_config(b)
        return sources.unified_diff(
            sources.stored_text(kind, ca),
            sources.stored_text(kind, cb),
            sources.run_title(str(a), ca),
            sources.run_title(str(b), cb),
            context,
        )

    def diff_configs(self, a: str, b: str, context: int = 3) -> str:
        """Unified diff of two runs' stored configs (``label (hash)`` headers); "" when equal.

        For terminals, CI logs and notebooks, where no IDE is at hand.
        """
        return self._diff_text("config", a, b, context)

    def diff_josh(self, a: str, b: str, context: int = 3) -> str:
        """Unified diff of two runs' stored Josh sources; "" when equal."""
        return self._diff_text("josh", a, b, context)

    # --- bottles ---------------------------------------------------------------------------------

    def _bottle_spec(self, label_or_hash: str) -> BottleSpec:
        """What a bottle of one run holds, read from the tables and the log."""
        run_hash = self._resolve_label_or_hash(label_or_hash)
        con = self._con()
        cfg = q.get_config(con, run_hash)
        if cfg is None:  # cannot happen: _resolve_label_or_hash checked it
            raise RunNotFoundError(f"No run found for '{label_or_hash}'")
        if cfg.josh_content is None:
            source = f" The file it was registered from is {cfg.josh_path}." if cfg.josh_path else ""
            raise SourceNotStoredError(
                f"Run {run_hash} was registered without its Josh source, so it cannot be bottled. "
                "Re-register the run with register_run(..., josh_content=<text of the .josh file>), "
                f"in a new registry: a registry keeps the first registration of each run hash.{source}"
            )
        session = q.get_session(con, cfg.session_id)
        metadata = (session.metadata if session else None) or {}
        job_config = metadata.get("job_config")
        job_config = job_config if isinstance(job_config, dict) else {}
        replicates = job_config.get("replicates", 1)
        simulation = (session.simulation if session else None) or job_config.get("simulation") or "Main"
        parameters = q.registered_parameters(con, run_hash) or {}
        data_files = {n: str(f.get("path") or "") for n, f in (cfg.file_mappings or {}).items()}
        latest_id = q.latest_run_id(con, run_hash)
        latest = q.get_run(con, latest_id) if latest_id is not None else None
        git = metadata.get("git_hash")
        return BottleSpec(
            run_hash=run_hash,
            label=cfg.label,
            josh_content=cfg.josh_content,
            josh_path=cfg.josh_path,
            config_name=config_file_name(job_config),
            config_content=cfg.config_content,
            data_files=data_files,
            simulation=str(simulation),
            replicates=replicates if isinstance(replicates, int) and replicates > 0 else 1,
            parameters=parameters,
            tags=custom_tags(parameters, run_hash, cfg.label, data_files),
            exit_code=latest.exit_code if latest else None,
            error_message=latest.error_message if latest else None,
            events=q.run_events(con, run_hash),
            git_hash=git if isinstance(git, str) else None,
        )

    def bottle(
        self,
        label_or_hash: str,
        output_dir: str | os.PathLike[str] = Path("bottles"),
        cli: Any = None,
        omit_jshd: bool = False,
    ) -> Path:
        """Pack a run into a self-contained ``.tar.gz`` that re-runs it with Java and the jar.

        Holds the stored Josh source and config (under the config's original name), the data
        files (none with ``omit_jshd``), ``run.sh`` with the session's replicate count and the
        parameters as registered, and ``manifest.json`` with provenance and the run's events.
        Returns ``<output_dir>/bottle_<label>_<hash>_<UTC timestamp>.tar.gz``. Unknown run →
        ``RunNotFoundError`` (a KeyError); no stored Josh source → ``SourceNotStoredError`` (a
        ValueError); a missing data file → ``FileNotFoundError`` unless ``omit_jshd``.
        ``cli`` (joshpy's JoshCLI, or anything with a ``jar_path``) adds the jar's version and
        SHA-256 to the manifest.
        """
        return write_bottle(self._bottle_spec(label_or_hash), output_dir, omit_jshd=omit_jshd, cli=cli)

    # --- executions -----------------------------------------------------------------------------

    def start_run(
        self,
        run_hash: str,
        *,
        session_id: str,
        replicate: int = 0,
        output_path: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Record that an execution of ``run_hash`` started now; return its run id."""
        self._require_hash(run_hash)
        self._require_session(session_id)
        rid = self._recorder.start_run(
            run_hash,
            session_id=session_id,
            replicate=replicate,
            output_path=output_path,
            metadata=None if metadata is None else json_value(metadata),
        )
        self._remember("run", rid)
        return rid

    def complete_run(self, run_id: str, exit_code: int, error_message: str | None = None) -> None:
        """Record that execution ``run_id`` finished; calling it again replaces the result."""
        self._require_run(run_id)
        self._recorder.complete_run(run_id, exit_code, error_message)

    def get_run(self, run_id: str) -> RunInfo | None:
        self.sync()
        return q.get_run(self._con(), run_id)

    def get_runs_for_hash(self, run_hash: str) -> list[RunInfo]:
        """Executions of a configuration, oldest first (``[-1]`` is the latest)."""
        self.sync()
        return q.get_runs_for_hash(self._con(), run_hash)

    def register_output(
        self,
        run_id: str,
        output_type: str,
        file_path: str | os.PathLike[str],
        file_size: int | None = None,
        row_count: int | None = None,
    ) -> str:
        """Record a file produced by execution ``run_id``; return the output id."""
        self._require_run(run_id)
        return self._recorder.register_output(run_id, output_type, file_path, file_size, row_count)

    # --- debug output -----------------------------------------------------------------------------

    def _resolve_run_id_for_hash(self, run_hash: str, run_id: str | None = None) -> str:
        """``run_id`` if it is an execution of ``run_hash``, else the latest execution.

        An unknown ``run_id`` raises ``RunNotFoundError`` (a KeyError); one of another
        configuration ``InvalidArgumentError`` (a ValueError). Latest means started last, then
        completed last, then the greatest run id (upstream's order).
        """
        self.sync()
        con = self._con()
        if run_id is not None:
            owner = q.run_hash_of(con, run_id)
            if owner is None:
                raise RunNotFoundError(f"No run execution found for run_id '{run_id}'")
            if owner != run_hash:
                raise InvalidArgumentError(
                    f"run_id '{run_id}' belongs to run_hash '{owner}', not '{run_hash}'"
                )
            return run_id
        latest = q.latest_run_id(con, run_hash)
        if latest is None:
            raise RunNotFoundError(
                f"No run executions found for run_hash '{run_hash}'; record one with start_run"
            )
        return latest

    def _debug_paths(
        self, label_or_hash: str, run_id: str | None, entity_types: list[str] | None
    ) -> tuple[str, list[Path]]:
        """The execution chosen and the distinct paths of its registered debug outputs."""
        if isinstance(entity_types, str):
            entity_types = [entity_types]  # one type, not its letters
        types = [t.removeprefix("debug.") for t in entity_types] if entity_types else None
        rid = self._resolve_run_id_for_hash(self._resolve_label_or_hash(label_or_hash), run_id)
        paths = dict.fromkeys(output_path(p) for _, p in q.debug_outputs(self._con(), rid, types))
        return rid, list(paths)

    def get_debug_output_files(
        self,
        label_or_hash: str,
        *,
        run_id: str | None = None,
        entity_types: list[str] | None = None,
        existing_only: bool = True,
    ) -> list[Path]:
        """Debug files (``debug.<type>`` outputs) of one execution of a run, ordered by type, path.

        The execution is ``run_id`` or the run's latest. ``entity_types`` (``["organism"]``)
        selects types (None or empty: all); ``existing_only`` drops files not on disk.
        ``file://`` URIs are read as the local files they name.
        """
        _, paths = self._debug_paths(label_or_hash, run_id, entity_types)
        return [p for p in paths if p.exists()] if existing_only else paths

    def load_debug(
        self,
        label_or_hash: str,
        *,
        run_id: str | None = None,
        entity_types: list[str] | None = None,
        existing_only: bool = True,
    ) -> DebugMessageStore:
        """Parse the files of ``get_debug_output_files`` (same arguments) into one store.

        Messages keep file order; parse errors add up (a ``DebugParseWarning`` per file with
        some). ``NoDebugOutputError`` (a ValueError) when there is no file to load;
        ``FileNotFoundError`` for a missing file when ``existing_only=False``.
        """
        rid, registered = self._debug_paths(label_or_hash, run_id, entity_types)
        files = [p for p in registered if p.exists()] if existing_only else registered
        if not files:
            detail = (
                f"; its {len(registered)} registered file(s) are missing, e.g. {registered[0]}"
                if registered
                else ""
            )
            raise NoDebugOutputError(
                f"No debug output files found for '{label_or_hash}'. Ensure debugFiles are "
                f"configured and outputs were registered (execution {rid}{detail})"
            )
        store = load_debug_file(files[0])
        for path in files[1:]:
            store.merge(load_debug_file(path))
        return store

    # --- labels ---------------------------------------------------------------------------------

    def _label_log(self) -> LabelLog:
        if self._labels is None:
            self._labels = LabelLog(self._store, clock=self._writer.clock, writer=self._writer.writer_id)
        return self._labels

    def label_run(
        self,
        run_hash: str,
        label: str,
        force: bool = False,
        on_collision: str | None = None,
    ) -> None:
        """Give ``run_hash`` the label ``label``.

        A label names one run and a run holds one label. If another run holds ``label``:
        ``force=True`` takes it away; ``on_collision="timestamp"`` renames the holder's label
        to ``<label>_<YYYYmmdd_HHMMSS>`` (its registration time; ``_2``, ``_3`` if taken);
        otherwise ``LabelConflictError`` (a ``ValueError``) says who holds it. Every change is
        kept in ``label_history``. Concurrent callers are ordered by the label log.
        """
        if force and on_collision is not None:
            raise InvalidArgumentError("force and on_collision are mutually exclusive; pass one")
        if on_collision is not None and on_collision != "timestamp":
            raise InvalidArgumentError(
                f"Invalid on_collision {on_collision!r}; the only choice is 'timestamp'"
            )
        if not isinstance(label, str) or not label:
            raise InvalidArgumentError(f"a label must be a non-empty string, got {label!r}")
        self._require_hash(run_hash)
        con = self._con()

        def plan(state: LabelState) -> list[LabelAction]:
            holder = state.holder.get(label)
            if holder == run_hash:
                return []
            actions: list[LabelAction] = []
            if holder is not None:
                if on_collision == "timestamp":
                    actions.append(
                        LabelArchived(label=label, run_hash=holder, archived_as=_archive_name(holder, state))
                    )
                elif force:
                    actions.append(LabelReleased(label=label, run_hash=holder, reason="force"))
                else:
                    raise LabelConflictError(
                        f"Label '{label}' is already assigned to run {holder} (label log version "
                        f"{state.version}). Use force=True to move it to {run_hash}, or "
                        "on_collision='timestamp' to archive the current holder's label"
                    )
            old = state.label_of.get(run_hash)
            if old is not None:
                actions.append(LabelReleased(label=old, run_hash=run_hash, reason="relabel"))
            actions.append(LabelAssigned(label=label, run_hash=run_hash, previous_run_hash=holder))
            return actions

        def _archive_name(holder: str, state: LabelState) -> str:
            when = q.created_at(con, holder) or datetime.now(UTC).replace(tzinfo=None)
            base = f"{label}_{when:%Y%m%d_%H%M%S}"
            taken = state.holder
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base}_{n}"
            return name

        log = self._label_log()
        if self._label_streams is None or self._label_streams.own is not log:
            self._label_streams = LabelStreams(self._store, own=log)
        streams = self._label_streams
        # After a merge, plan against every label stream's fold, not this store's alone.
        log.commit(lambda own: plan(streams.view(own)))

    def list_labels(self) -> list[tuple[str, str]]:
        """``(label, run_hash)`` pairs, sorted by label."""
        self.sync()
        return q.list_labels(self._con())

    def resolve_label(self, label: str) -> str:
        self.sync()
        h = q.resolve_label(self._con(), label)
        if h is None:
            raise RunNotFoundError(f"No run found with label '{label}'")
        return h

    def resolve_latest(self, prefix: str) -> str:
        """The most recently registered run whose label starts with ``prefix``."""
        self.sync()
        h = q.resolve_latest(self._con(), prefix)
        if h is None:
            raise RunNotFoundError(f"No run found with a label starting with '{prefix}'")
        return h

    def label_history(self, label: str | None = None, run_hash: str | None = None) -> list[LabelChange]:
        """Every label change, oldest first: when, who, what, and who held the label before.

        ``label`` matches a change of that label (archives to that name included); ``run_hash``
        a change involving that run, as new or previous holder.
        """
        self.sync()
        return q.label_history(self._con(), label, run_hash)

    # --- discovery ------------------------------------------------------------------------------

    def list_config_columns(self) -> list[str]:
        """Sorted parameter column names of ``config_parameters``."""
        self.sync()
        return q.config_columns(self._con())

    def list_config_parameters(self, session_id: str | None = None) -> list[str]:
        """Parameters with at least one value (in the session's configurations, if given)."""
        self.sync()
        return discovery.config_parameters(self._con(), session_id)

    def list_parameters(self, session_id: str | None = None) -> list[str]:
        """Deprecated: use ``list_config_parameters``."""
        warnings.warn(
            "list_parameters() is deprecated; use list_config_parameters()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.list_config_parameters(session_id)

    # --- discovery over simulation results (cell_data; the active filters apply) ---------------

    def get_replicate_count(self, run_hash: str) -> int:
        """Distinct ``(run_id, replicate)`` pairs with data for ``run_hash``; 0 with none."""
        self.sync()
        return discovery.replicate_count(self._con(), run_hash, self.filter_clause("cd"))

    def list_variable_columns(self) -> list[str]:
        """Sorted variable column names of ``cell_data``."""
        self.sync()
        return discovery.variable_columns(self._con())

    def list_export_variables(self, session_id: str | None = None) -> list[str]:
        """Variables; with a session, only those with a value in its data (pooled hashes included)."""
        self.sync()
        return discovery.export_variables(self._con(), session_id, self.filter_clause("cd"))

    def list_variables(self, session_id: str | None = None) -> list[str]:
        """Deprecated: use ``list_export_variables``."""
        warnings.warn(
            "list_variables() is deprecated; use list_export_variables()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.list_export_variables(session_id)

    def list_entity_types(self, session_id: str | None = None) -> list[str]:
        """Sorted entity types with data (in the session's data, if given)."""
        self.sync()
        return discovery.entity_types(self._con(), session_id, self.filter_clause("cd"))

    def check_sparsity(self) -> SparsityReport:
        """NULL counts per variable column: many sparse columns mean mixed simulations."""
        self.sync()
        return discovery.check_sparsity(self._con(), self.filter_clause("cd"))

    def get_data_summary(self, session_id: str | None = None) -> DataSummary:
        """Counts, variables, parameters and ranges of the registry or of one session."""
        self.sync()
        return discovery.data_summary(self._con(), session_id, self.filter_clause("cd"))

    def export_results_df(self, session_id: str) -> Any:
        """The session's executions with their parameters, as a pandas DataFrame."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("export_results_df needs pandas: pip install 'joshreg[pandas]'") from e
        self.sync()
        return pd.DataFrame(q.session_results(self._con(), session_id))


# Methods a view answers as the live registry would; every other public method is refused, so a
# method added to RunRegistry later cannot write through a view before it is listed here.
_VIEW_READS = frozenset(
    {
        "as_of",
        "bottle",
        "check_sparsity",
        "close",
        "compare_configs",
        "compare_josh",
        "diff_configs",
        "diff_josh",
        "export_config",
        "export_josh",
        "export_results_df",
        "filter_clause",
        "flush",
        "get_config_by_hash",
        "get_configs_for_session",
        "get_data_summary",
        "get_debug_output_files",
        "get_file_mappings",
        "get_registered_parameters",
        "get_replicate_count",
        "get_run",
        "get_runs_by_parameters",
        "get_runs_for_hash",
        "get_session",
        "get_session_summary",
        "label_history",
        "list_config_columns",
        "list_config_parameters",
        "list_entity_types",
        "list_export_variables",
        "list_labels",
        "list_parameters",
        "list_sessions",
        "list_variable_columns",
        "list_variables",
        "load_debug",
        "query",
        "resolve_config_source",
        "resolve_josh_source",
        "resolve_label",
        "resolve_latest",
        "spatial_filter",
        "sync",
        "time_filter",
        "to_csv",
        "to_parquet",
    }
)


class RegistryView(RunRegistry):
    """The registry as it was at one log position: read-only, in memory, a snapshot.

    Made by ``RunRegistry.as_of``. Its tables are a private projection of the events and label
    commits with ``hlc <= position``, built from the live registry's event tables (not by
    replaying the log), so every read answers as the registry did then. ``when`` is what was
    asked for, ``position`` the log position it stands for (see ``joshreg.timetravel``).
    """

    def __init__(self, live: RunRegistry, when: Moment | str) -> None:
        position = to_position(when)
        self.when: Moment = parse_when(when) if isinstance(when, str) else when
        self.position = position
        self.db_path = live.db_path
        self.enable_spatial = live.enable_spatial
        self.tracer = live.tracer
        self.events_path = live.events_path
        self.private_projection = live.private_projection
        self._store = live._store
        self._labels = None
        self._sessions = self._hashes = self._runs = None
        self._param_types = {}
        self._cell_types = {}
        self._filters = []
        self._conn, self._projector, problems = project_as_of(
            live._con(), live._store, position, spatial=live.enable_spatial
        )
        for p in problems:
            warnings.warn(f"damaged result file: {p}", LogDamageWarning, stacklevel=3)
        self._trace(f"view as of {describe(self.when, position)}")

    def __repr__(self) -> str:
        return f"RegistryView(db_path={self.db_path!r}, as_of={describe(self.when, self.position)!r})"

    def __enter__(self) -> RegistryView:
        return self

    def _refuse(self, name: str) -> ReadOnlyRegistryError:
        return ReadOnlyRegistryError(
            f"{name}() refused: this registry is a read-only view as of "
            f"{describe(self.when, self.position)}. Use the live registry to write "
            f"(RunRegistry({os.fspath(self.db_path)!r}))"
        )

    def sync(self) -> CatchUp:
        """Nothing to catch up with: the view stays as it was at its position."""
        self._con()
        return CatchUp()

    def flush(self) -> None:
        """Nothing to flush: a view writes nothing."""

    def close(self) -> None:
        """Free the view's tables (the live registry and its log are not touched)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def as_of(self, when: Moment | str) -> RegistryView:
        """An earlier view; a ``when`` after this view's position gives this view again (a view
        knows nothing later)."""
        return RegistryView(self, when if to_position(when) <= self.position else self.when)

    def _require_writable(self) -> None:
        raise self._refuse("loading results")

    def _append(self, event: EventBase) -> None:
        raise self._refuse(type(event).__name__)

    def _record_results(self, event: ResultsLoaded) -> None:
        raise self._refuse("loading results")

    def _label_log(self) -> LabelLog:
        raise self._refuse("label_run")


def _refusal(name: str) -> Callable[..., Any]:
    def refuse(self: RegistryView, *args: Any, **kwargs: Any) -> Any:
        raise self._refuse(name)

    refuse.__name__ = refuse.__qualname__ = name
    refuse.__doc__ = f"Refused on a view as of a past position: {name} needs the live registry."
    return refuse


for _name, _member in list(vars(RunRegistry).items()):
    public = not _name.startswith("_") and callable(_member)
    if public and _name not in _VIEW_READS and _name not in vars(RegistryView):
        setattr(RegistryView, _name, _refusal(_name))
