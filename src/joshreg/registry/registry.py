"""RunRegistry: upstream joshpy's registry API over the event log. The only module that wires
store, writer, label log, projector and queries together.

Every write method validates against the projection, appends exactly one event (or one label
commit) and returns; when it returns, the event has reached the operating system and is durable
under the chosen ``durability``. Every read method first catches up with the log (its own
writes and every other process's), then answers from DuckDB. The DuckDB file is a cache of the
log: delete it and the next open rebuilds it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import duckdb

from joshreg.errors import (
    JoshregError,
    LogDamageWarning,
    RegistryClosedError,
    StoreMismatchError,
)
from joshreg.log.labels import LabelLog
from joshreg.log.labelstreams import LabelStreams
from joshreg.log.names import default_events_path
from joshreg.log.store import LogStore, open_store, store_exists_at
from joshreg.log.writer import Durability, EventWriter
from joshreg.projection.dbfile import RegistryFile, open_registry_file
from joshreg.projection.projector import CatchUp, Progress
from joshreg.projection.timetravel import Moment
from joshreg.projection.tracked import TrackedProjector
from joshreg.registry.designs import DesignWrites
from joshreg.registry.labelling import RegistryLabelling
from joshreg.registry.maintenance import RegistryMaintenance
from joshreg.registry.publishing import RegistryPublishing
from joshreg.registry.reader import RegistryReader
from joshreg.registry.recorder import RunRecorder
from joshreg.registry.tags import TagWrites
from joshreg.registry.view import RegistryView
from joshreg.registry.writes import RegistryWrites

__all__ = ["RegistryClosedError", "RunRegistry"]


class RunRegistry(
    RegistryWrites,
    RegistryLabelling,
    TagWrites,
    DesignWrites,
    RegistryMaintenance,
    RegistryPublishing,
    RegistryReader,
):
    """A registry of sweep sessions, run configurations, executions, outputs and labels.

    ``RunRegistry("sweep.duckdb")`` keeps its event log in ``sweep.events/`` beside the file
    (``events_path=`` to place it elsewhere, for example on a shared file system);
    ``RunRegistry(":memory:")`` keeps both in memory. Any number of processes may open the same
    registry at once: a process that finds the DuckDB file held by another keeps a private
    projection in memory (``private_projection`` is then True) and still reads and writes.

    The methods are composed from one module per area: reads (``reads``, ``inspecting``,
    ``discovering``, shared with ``RegistryView`` through ``RegistryReader``), writes
    (``writes``) and whole-registry operations (``maintenance``); this module opens and closes.
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
        storage_options: Mapping[str, Any] | None = None,
        refresh_interval: float = 1.0,
    ) -> None:
        """``rebuild=True`` drops the tables and replays the whole log at open; it is also how
        a registry file is pointed at another event store on purpose (otherwise a file built
        from one store and opened with another raises ``StoreMismatchError``). ``progress``
        hears of the catch-up or rebuild the open does (``(bytes done, bytes total)``), and
        ``opened`` says what it applied. ``events_path`` may be ``s3://bucket/prefix``: settings
        from ``storage_options=`` (the keys pandas and polars take), then the ``AWS_*``, then the
        ``MINIO_*`` environment variables; there a read lists what other processes wrote at
        most every ``refresh_interval`` seconds (this process's own writes show at once).

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
        self.storage_options = storage_options
        found, con = (None, None) if memory else self._inspect_file(rebuild)
        try:
            self._store: LogStore = open_store(
                self.events_path, storage_options=storage_options, refresh_interval=refresh_interval
            )
            if found is not None and found.kind == "joshreg" and not rebuild:
                self._check_same_store(found)
        except BaseException:
            if con is not None:
                con.close()
            raise
        self._conn: duckdb.DuckDBPyConnection | None = con or self._connect(
            memory, busy=found is not None and found.kind == "busy"
        )
        # Tracked: the read model (``registry.readmodel``) learns of every change to the tables.
        # A file classified through this very connection is not looked at again (``found``).
        self._projector = TrackedProjector(
            self._conn,
            self._store,
            tracer=tracer,
            spatial=enable_spatial,
            found=found if con is not None else None,
        )
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

    def _inspect_file(self, rebuild: bool) -> tuple[RegistryFile, duckdb.DuckDBPyConnection | None]:
        """Look at the registry file before anything is written anywhere: refuse files joshreg
        did not write, and a projection whose event store is missing. Also the file's read-write
        connection when looking could open it so (see ``dbfile.open_registry_file``)."""
        path = os.fspath(self.db_path)
        store_exists = store_exists_at(self.events_path, self.storage_options)
        found, con = open_registry_file(path, store_exists=store_exists)
        if found.kind == "joshreg" and found.store_id is not None and not store_exists and not rebuild:
            if con is not None:
                con.close()
            raise StoreMismatchError(
                f"{path} was built from an event store that is not at {self.events_path} (nothing is "
                "there): pass the events path it was built from (events_path=, --events-path), or "
                f"rebuild it from another store with: joshreg rebuild {path} --events-path DIR"
            )
        return found, con

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

    def sync(self) -> CatchUp:
        """Catch the tables up with the log (every read does this first).

        When nothing was written since the last catch-up (``Projector.pending``: one listing of
        the segments and a look for the next label commit of each stream) there is nothing to
        apply, and the catch-up's own setup is skipped: that is most of what a point read
        answered from the read model costs (``tests/test_read_cache.py`` checks that every kind
        of write is seen as pending).
        """
        self._con()
        self._writer.publish()
        if not self._projector.pending():
            return CatchUp(problems=[])
        result = self._projector.catch_up()
        if result.problems:
            for p in result.problems:
                warnings.warn(f"damaged event log: {p}", LogDamageWarning, stacklevel=3)
        return result

    def close(self) -> None:
        """Flush the log and close the database; calling it again does nothing."""
        if self._conn is None:
            return
        self._writer.close()
        self._conn.close()
        self._conn = None
        self._forget_answers()
        self._store.close()

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
