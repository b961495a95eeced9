"""The shared read base: a projection to read, caught up before each read, and closed once.

``RegistryReader`` is what every reader accepts (``DiagnosticQueries``, the plots, discovery):
the live ``RunRegistry`` and a ``RegistryView`` of the past are both readers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import duckdb

from joshreg.closing import Closeable
from joshreg.errors import InvalidArgumentError, RegistryClosedError
from joshreg.log.store import LogStore
from joshreg.projection.projector import CatchUp, Projector
from joshreg.projection.sqltext import quote_identifier
from joshreg.registry import listings, text

if TYPE_CHECKING:
    from joshreg.projection.timetravel import Moment
    from joshreg.registry.view import RegistryView
from joshreg.registry.consistency import ConsistencyReads
from joshreg.registry.designs import DesignReads
from joshreg.registry.discovering import ResultReads
from joshreg.registry.inspecting import SourceReads
from joshreg.registry.outputs import OutputReads
from joshreg.registry.readmodel import ReadModel
from joshreg.registry.reads import ConfigReads
from joshreg.registry.status import StatusReads
from joshreg.registry.tags import TagReads


class RegistryReader(
    ConfigReads,
    StatusReads,
    TagReads,
    DesignReads,
    ConsistencyReads,
    OutputReads,
    SourceReads,
    ResultReads,
    Closeable,
):
    """A registry's read API over one DuckDB projection (live, or as of a past moment).

    A subclass opens the projection (setting the attributes below) and says what ``sync``
    means for it: the live registry catches up with the log, a view of the past stays put.
    """

    db_path: str | os.PathLike[str]
    enable_spatial: bool
    tracer: Callable[[str], None] | None
    events_path: str
    private_projection: bool
    _store: LogStore
    _conn: duckdb.DuckDBPyConnection | None
    _projector: Projector
    _filters: list[tuple[str, list[Any]]]
    _read_model: ReadModel | None = None

    def sync(self) -> CatchUp:
        """Bring the tables up to date before a read."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Make every event this registry wrote durable now (a view wrote none)."""

    def as_of(self, when: Moment | str) -> RegistryView:
        """A read-only view of the registry as it was at ``when`` (see ``RunRegistry.as_of``)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"RunRegistry(db_path={self.db_path!r}, enable_spatial={self.enable_spatial!r})"

    def _trace(self, msg: str) -> None:
        if self.tracer is not None:
            self.tracer(msg)

    def _con(self) -> duckdb.DuckDBPyConnection:
        if self._conn is None:
            raise RegistryClosedError(f"the registry {self.db_path} is closed; open it again")
        return self._conn

    def _answers(self) -> ReadModel:
        """The read model (``registry.readmodel``) after a catch-up, emptied first if the
        projector changed the tables since it last answered."""
        self.sync()
        model = self._read_model
        if model is None:
            model = self._read_model = ReadModel()
        return model.use(self._con(), getattr(self._projector, "generation", 0))

    def _forget_answers(self) -> None:
        """Raw SQL may have written the tables: answer the next point reads from them again."""
        if self._read_model is not None:
            self._read_model.clear()

    @property
    def conn(self) -> duckdb.DuckDBPyConnection | None:
        """The DuckDB connection, caught up with the log (None after close)."""
        if self._conn is None:
            return None
        self.sync()
        self._forget_answers()
        return self._conn

    @property
    def store(self) -> LogStore:
        return self._store

    def query(self, sql: str, params: list[Any] | None = None) -> duckdb.DuckDBPyConnection:
        """Run SQL on the tables; returns a cursor (``.df()``, ``.fetchall()``, ...).

        Each call gets its own cursor, so a result stays readable after later registry calls.
        The tables are projections: write through the registry's methods, not with SQL.
        """
        self.sync()
        cur = self._con().cursor()
        try:
            cur.execute(sql, params or [])
        finally:
            self._forget_answers()
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

    # --- listings (what the command line prints, as data) -------------------------------------

    def sessions_overview(self) -> list[dict[str, Any]]:
        """Every session, newest first, with its configuration and run counts."""
        return listings.session_rows(self)

    def labels_overview(self, label: str | None = None) -> list[dict[str, Any]]:
        """Current labels, sorted, with when each was given and when its run was registered."""
        return listings.label_rows(self, label)

    def runs_overview(
        self, session_id: str | None = None, run_hash: str | None = None
    ) -> list[dict[str, Any]]:
        """Executions, oldest first, of one session and/or configuration; ``registered`` is
        False for a run of a hash no event registers."""
        return listings.run_rows(self, session_id, run_hash)

    def timeline(
        self,
        *,
        type: str | None = None,
        run: str | None = None,
        session_id: str | None = None,
        label: str | None = None,
        full: bool = False,
    ) -> list[listings.LogEntry]:
        """The event log and label changes in log order, filtered (see ``listings.log_entries``)."""
        return listings.log_entries(self, type=type, run=run, session_id=session_id, label=label, full=full)

    def run_overview(self, label_or_hash: str) -> dict[str, Any]:
        """Everything known about one configuration: sources, parameters, executions, labels."""
        return listings.run_info(self, label_or_hash)

    # --- the same as text (upstream HEAD's describe_*), as the command line prints them -------

    def describe_sessions(self) -> str:
        """Every session with its configurations and run counts, as a table."""
        return text.format_table(text.SESSION_HEADERS, map(text.session_table_row, self.sessions_overview()))

    def describe_labels(self) -> str:
        """The current labels, as a table."""
        return text.format_table(text.LABEL_HEADERS, map(text.label_table_row, self.labels_overview()))

    def describe_run(self, label_or_hash: str) -> str:
        """One run's page (``joshreg info``): status, parameters, sources, loaded replicates,
        executions, label and status history, then its consistency findings."""
        page = text.format_run_info(self.run_overview(label_or_hash))
        issues = self.check_consistency(label_or_hash)
        if issues:
            page += "\n\nConsistency:\n" + "\n".join(f"  {i.severity}: {i.kind}: {i.detail}" for i in issues)
        return page

    def describe_summary(self) -> str:
        """What ``cell_data`` holds (of the runs that count): rows, configurations, steps, variables."""
        return str(self.get_data_summary())
