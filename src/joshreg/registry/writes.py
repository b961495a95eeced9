"""Every write of the registry: validated against the projection, then one event (or one
label commit) through the registry's recorder (``RunRecorder.record``), as a worker's calls are.

A mixin of ``RunRegistry``, not of the read-only ``RegistryView``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from joshreg.errors import (
    DuplicateLoadWarning,
    DuplicateSessionError,
    InvalidArgumentError,
    RunNotFoundError,
    SessionNotFoundError,
    SparsityWarning,
)
from joshreg.log.clock import uuid7
from joshreg.log.events import (
    EventBase,
    RunRegistered,
    SessionCreated,
    SessionStatusChanged,
    json_value,
)
from joshreg.log.names import session_claim_name
from joshreg.projection.handover import Handover, handing_over
from joshreg.projection.sqltext import bind
from joshreg.projection.tables import (
    CELL_DATA_CORE_COLUMNS,
    CONFIG_PARAMS_CORE_COLUMNS,
    check_new_names,
    infer_type,
)
from joshreg.provenance.git import git_hash
from joshreg.registry.recorder import RunRecorder, results_event
from joshreg.results import discovery
from joshreg.results.josh_csv import read_josh_csv
from joshreg.results.locations import s3_uri, source_exists

if TYPE_CHECKING:
    import duckdb

# Rows recorded between two catch-ups of a batch load: inserts this big write whole row groups
# (a cheap commit), and the next files are parsed ahead while DuckDB inserts them; half a
# million rather than a million starts the first insert sooner, so more parsing overlaps it.
SYNC_EVERY_ROWS = 1 << 19


class RegistryWrites:
    """Sessions, configurations, executions, outputs, results and labels, recorded."""

    def _append(self, event: EventBase) -> None:
        self._recorder.record(event)

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

    def _require_run(self, run_id: str, *, removed_ok: bool = False) -> None:
        """Refuse an unknown execution; with ``removed_ok``, one a reset or drop removed is
        accepted (a late worker's write must not crash it): the catch-up that projects the write
        warns with ``RemovedRunWarning``, for this registry's writes and every other writer's."""
        if self._known("run", run_id):
            return
        if removed_ok:
            row = (
                self._con()
                .execute(bind("SELECT 1 FROM removed_keys WHERE kind = 'run_id' AND key = ?", [run_id]))
                .fetchone()
            )
            if row is not None:
                return
        raise RunNotFoundError(f"No run execution found for run_id '{run_id}'")

    def _forget_known(self) -> None:
        """After a reset, drop or restore: rows left or came back, so ask the tables again."""
        self._hashes = self._runs = None

    def load_results(
        self,
        csv_path: str | os.PathLike[str],
        run_id: str | None,
        run_hash: str,
        entity_type: str = "patch",
    ) -> int:
        """Load one Josh CSV export for a run execution; return the number of rows added.

        ``CellDataLoader.load_csv`` (upstream's name) calls this. The file is read once and
        checked against the registry before anything is stored: an unknown run id or
        unregistered hash, a run of another hash, a variable whose type clashes with its
        column refuse the load. The rows become one content-addressed result file and one
        ``results.loaded`` event. The same content loaded again for the same run and entity
        type adds nothing, says so with a ``DuplicateLoadWarning`` and returns 0. A load into a
        non-empty ``cell_data`` that leaves it sparse emits a ``SparsityWarning``.
        """
        return self._load_results_batch([(csv_path, run_id, run_hash)], entity_type)

    def _load_results_batch(
        self,
        items: Iterable[tuple[str | os.PathLike[str], str | None, str]],
        entity_type: str = "patch",
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """``load_results`` of ``(path, run_id, run_hash)`` triples in order; return the rows
        added in all (``CellDataLoader.load_csv_batch`` calls this).

        Each file is checked and recorded as ``load_results`` does, in its turn: a failure stops
        the batch and leaves the files before it loaded. The tables catch up once per about
        ``SYNC_EVERY_ROWS`` rows and at the end, not after every file (a catch-up per file made
        each small insert its own transaction through DuckDB's WAL, and cost most of a load);
        the sparsity check runs once, at the end, on the whole table. ``progress(done, total)``
        is called after each file is recorded.
        """
        todo = list(items)
        options = getattr(self, "storage_options", None)  # an s3:// export is read with them
        self.sync()
        con = self._con()
        owners = _run_owners(con, [i[1] for i in todo if isinstance(i, tuple | list) and len(i) == 3])
        had_rows = con.execute("SELECT count(*) FROM cell_data").fetchone() != (0,)
        in_batch: set[tuple[str, str | None, str]] = set()
        total = unsynced = loaded = 0
        # The catch-ups below take each parsed table from ``handover`` instead of reading back
        # the result file just written from it (the file and the event are written as ever).
        with handing_over(self._store) as handover:
            for i, item in enumerate(todo):
                if not isinstance(item, tuple | list) or len(item) != 3:
                    raise InvalidArgumentError(
                        f"load_csv_batch item {i} is not (path, run_id, run_hash): {item!r}"
                    )
                csv_path, run_id, run_hash = item
                if not source_exists(csv_path, options):
                    raise FileNotFoundError(f"CSV not found: {s3_uri(os.fspath(csv_path))}")
                # Rows for a run nobody registered would be orphans for good: refuse them up front.
                self._require_hash(run_hash)
                if run_id is not None:
                    self._require_owner(run_id, run_hash, owners)
                export = read_josh_csv(csv_path, storage_options=options)
                check_new_names(
                    export.variables,
                    {**self._cell_types, **self._projector.cell_columns},
                    CELL_DATA_CORE_COLUMNS,
                    what="Column",
                    advice="This may indicate mixed simulation types. Use a separate registry.",
                    examples={k: f"{os.fspath(csv_path)}, {v}" for k, v in export.examples.items()},
                )
                key = (export.source_sha256, run_id, entity_type)
                if key in in_batch or _loaded_before(self._con(), key):
                    warnings.warn(
                        f"{os.fspath(csv_path)} was already loaded for run {run_id} ({entity_type}); "
                        "no rows added",
                        DuplicateLoadWarning,
                        stacklevel=3,
                    )
                else:
                    event = results_event(
                        self._store, export, run_id=run_id, run_hash=run_hash, entity_type=entity_type
                    )
                    self._cell_types.update(event.columns)
                    self._append(event)
                    handover.put(event.blob, export.table)
                    in_batch.add(key)
                    total += export.rows
                    unsynced += export.rows
                    loaded += 1
                    if unsynced >= SYNC_EVERY_ROWS:
                        self._sync_handed(handover)  # big inserts, while the next files are parsed ahead
                        unsynced = 0
                if progress is not None:
                    progress(i + 1, len(todo))
            if loaded:
                self._sync_handed(handover)
        if had_rows or loaded > 1:
            # Upstream's check: the whole table, whatever filters are active.
            report = discovery.check_sparsity(self._con())
            if report.should_warn:
                warnings.warn(str(report), SparsityWarning, stacklevel=3)
        return total

    def _sync_handed(self, handover: Handover) -> None:
        """Catch up (taking the handed-over tables), then let them go."""
        try:
            self.sync()
        finally:
            handover.clear()

    def _require_owner(self, run_id: str, run_hash: str, owners: dict[str, str]) -> None:
        """Refuse a run id unknown or of another configuration; ``owners`` (run id to hash,
        read once for a batch) answers without a catch-up per file."""
        owner = owners.get(run_id)
        if owner is None:  # not known when the batch began: ask again (it may be new)
            self._require_run(run_id)
            info = self.get_run(run_id)
            owner = None if info is None else info.run_hash
        if owner is not None and owner != run_hash:
            raise InvalidArgumentError(
                f"run_id '{run_id}' is an execution of run hash '{owner}', not '{run_hash}'; "
                "load its results under that hash"
            )

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

    def register_run(
        self,
        session_id: str,
        run_hash: str,
        josh_path: str | os.PathLike[str] | None,
        config_content: str,
        file_mappings: dict[str, dict[str, str]] | None,
        parameters: dict[str, Any] | None,
        josh_content: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        """Register a run configuration with ``session_id``.

        A hash registered before keeps its first registration (content, parameters, owner
        session); registering it from another session links it there too (pooling). Parameter
        columns are typed DOUBLE or VARCHAR by upstream's rules; a name that clashes with a
        core column, another name by case, or an existing column's type raises
        ``ColumnConflictError`` (a ``ValueError``) and records nothing. ``attributes`` (an
        ``ExpandedJob``'s) are merged into the run's attributes by the same event.
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
                attributes={str(k): json_value(v) for k, v in attributes.items()} if attributes else None,
            )
        )
        self._remember("hash", str(run_hash))

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
        self._require_run(run_id, removed_ok=True)
        self._recorder.complete_run(run_id, exit_code, error_message)

    def register_output(
        self,
        run_id: str,
        output_type: str,
        file_path: str | os.PathLike[str],
        file_size: int | None = None,
        row_count: int | None = None,
    ) -> str:
        """Record a file produced by execution ``run_id``; return the output id."""
        self._require_run(run_id, removed_ok=True)
        return self._recorder.register_output(run_id, output_type, file_path, file_size, row_count)

    def recorder(self, session_id: str | None = None) -> RunRecorder:
        """A worker-style recorder writing to this registry's log from this process."""
        return RunRecorder(writer=self._writer, session_id=session_id)


def _run_owners(con: duckdb.DuckDBPyConnection, run_ids: list[str | None]) -> dict[str, str]:
    """The configuration of each of these executions that ``job_runs`` holds."""
    ids = sorted({r for r in run_ids if isinstance(r, str)})
    if not ids:
        return {}
    rows = con.execute(
        "SELECT run_id, run_hash FROM job_runs WHERE list_contains(?, run_id)", [ids]
    ).fetchall()
    return dict(rows)


def _loaded_before(con: duckdb.DuckDBPyConnection, key: tuple[str, str | None, str]) -> bool:
    """Whether the projected log holds a load of this source for this run and entity type."""
    seen = con.execute(
        "SELECT count(*) FROM events_results_loaded WHERE source_sha256 = ? "
        "AND run_id IS NOT DISTINCT FROM ? AND entity_type = ?",
        list(key),
    ).fetchone()
    return bool(seen and seen[0])
