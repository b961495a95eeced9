"""RunRegistry: upstream joshpy's registry API over the event log. The only module that wires
store, writer, label log, projector and queries together.

Every write method validates against the projection, appends exactly one event (or one label
commit) and returns; when it returns, the event has reached the operating system and is durable
under the chosen ``durability``. Every read method first catches up with the log (its own
writes and every other process's), then answers from DuckDB. The DuckDB file is a cache of the
log: delete it and the next open rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb

from . import discovery
from . import queries as q
from .clock import uuid7
from .errors import (
    DuplicateSessionError,
    InvalidArgumentError,
    JoshregError,
    LabelConflictError,
    LogDamageWarning,
    RunNotFoundError,
    SessionNotFoundError,
)
from .events import (
    EventBase,
    LabelAction,
    LabelArchived,
    LabelAssigned,
    LabelReleased,
    ResultsLoaded,
    RunRegistered,
    SessionCreated,
    SessionStatusChanged,
)
from .git import git_hash
from .labels import LabelLog, LabelState
from .models import (
    ConfigInfo,
    DataSummary,
    LabelChange,
    RunInfo,
    SessionInfo,
    SessionSummary,
    SparsityReport,
)
from .projector import CatchUp, Progress, Projector
from .recorder import RunRecorder, default_events_path
from .spatial import load_spatial
from .store import LogStore, open_store
from .tables import (
    CONFIG_PARAMS_CORE_COLUMNS,
    check_new_names,
    infer_type,
    quote_identifier,
)
from .writer import Durability, EventWriter

__all__ = ["RegistryClosedError", "RunRegistry"]


class RegistryClosedError(JoshregError, RuntimeError):
    """A method was called on a registry after ``close()``."""


_JSON_SCALARS = (str, int, float, bool, type(None))


def _jsonable(value: Any) -> Any:
    """Parameter values go into the log as JSON; anything else is stored as its string."""
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


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
    ) -> None:
        self.db_path = db_path
        self.enable_spatial = enable_spatial
        self.tracer = tracer
        memory = str(db_path) == ":memory:"
        if events_path is None:
            events_path = ":memory:" if memory else default_events_path(db_path)
        self.events_path = os.fspath(events_path)
        self._store: LogStore = open_store(self.events_path)
        self.private_projection = False
        self._conn: duckdb.DuckDBPyConnection | None = self._connect(memory)
        self._projector = Projector(self._conn, self._store, tracer=tracer, spatial=enable_spatial)
        if self._projector.needs_rebuild:
            self._projector.rebuild()
        else:
            self._projector.catch_up()
        self._writer = EventWriter(self._store, durability=durability, tracer=tracer)
        self._recorder = RunRecorder(writer=self._writer)
        self._labels: LabelLog | None = None
        self._sessions: set[str] | None = None
        self._hashes: set[str] | None = None
        self._runs: set[str] | None = None
        self._param_types: dict[str, str] = {}
        self._cell_types: dict[str, str] = {}
        self._filters: list[tuple[str, list[Any]]] = []

    def _connect(self, memory: bool) -> duckdb.DuckDBPyConnection:
        if memory:
            return duckdb.connect(":memory:")
        path = os.fspath(self.db_path)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            return duckdb.connect(path)
        except duckdb.IOException as e:
            if "lock" not in str(e).lower():
                raise JoshregError(
                    f"cannot open the registry database {path}: {e}. It is only a cache of the "
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

    def flush(self) -> None:
        """Make every event this registry wrote durable now."""
        self._writer.flush()

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
        job_config = _jsonable(config.to_dict())
        simulation = getattr(config, "simulation", None)
        template_path = getattr(config, "template_path", None)
        replicates = getattr(config, "replicates", None)
        sid = uuid7() if session_id is None else str(session_id)
        if session_id is not None and self._known("session", sid):
            raise DuplicateSessionError(f"a session with id '{sid}' already exists")
        digest = hashlib.sha256(sid.encode()).hexdigest()[:32]
        if not self._store.claim(f"claims/sessions/{digest}.json", sid.encode()):
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
        params = {str(k): _jsonable(v) for k, v in (parameters or {}).items()}
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
            metadata=None if metadata is None else _jsonable(metadata),
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
                        LabelArchived(label=label, run_hash=holder, archived_as=_archive_name(holder))
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

        def _archive_name(holder: str) -> str:
            when = q.created_at(con, holder) or datetime.now(UTC).replace(tzinfo=None)
            base = f"{label}_{when:%Y%m%d_%H%M%S}"
            taken = self._label_log().state.holder
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base}_{n}"
            return name

        self._label_log().commit(plan)

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
