"""Operations on the whole registry: rebuild, verify, compact, import, merge, waiting for
other processes, snapshots and time travel.

A mixin of ``RunRegistry``; the work is in ``joshreg.operations``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Self, TypeVar

from joshreg.errors import (
    InvalidArgumentError,
)
from joshreg.log.writer import EventWriter
from joshreg.models import (
    RunInfo,
)
from joshreg.operations.compaction import ABANDONED_AFTER_S, MIN_BYTES, CompactionReport, compact_store
from joshreg.operations.watch import DEFAULT_INTERVAL, wait_until
from joshreg.projection import queries as q
from joshreg.projection.projector import CatchUp, Progress
from joshreg.projection.snapshot import publish_snapshot, snapshot_path

if TYPE_CHECKING:
    from joshreg.operations.joshpy_import import ImportReport
    from joshreg.operations.joshpy_import import Progress as ImportProgress
    from joshreg.operations.joshpy_source import Source
    from joshreg.operations.merge import MergeReport
    from joshreg.operations.verify import VerifyProgress, VerifyReport

# verify, import and merge are imported when called: a CLI listing need not load them.

_T = TypeVar("_T")


class RegistryMaintenance:
    """Rebuild, verify, compact, import, merge, wait, publish snapshots, look back."""

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
        from joshreg.operations.verify import VerifyProblem, verify_store

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
        source: str | os.PathLike[str] | Source,
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
        from joshreg.operations.joshpy_import import ImportTarget, import_joshpy
        from joshreg.projection.handover import handing_over

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
            cell_columns={**self._cell_types, **self._projector.cell_columns},
        )
        # The importer leaves the result tables it wrote here (up to 512 MiB), so the rebuild
        # below inserts them instead of reading its own files back (projection.handover).
        with handing_over(self._store):
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
        if not dry_run:
            self._sessions = self._hashes = self._runs = None
            if progress is not None:
                progress("projecting", 1, 1)
        return report

    def merge_from(self, *sources: str | os.PathLike[str] | RegistryMaintenance) -> list[MergeReport]:
        """Add other registries' logs to this one's (registry files, event store folders or open
        registries) and catch up; one report per source of what was copied.

        A merge is a set union (``joshreg.merge``): repeating it, or merging in another order,
        gives the same tables. Labels given in several registries are ordered by their clocks;
        a conflict is resolved the same way everywhere and kept in ``label_history``.
        """
        from joshreg.operations.merge import merge_stores

        self._con()
        if self._store.location == ":memory:":
            raise InvalidArgumentError("merge_from needs a registry whose event store is on disk")
        paths: list[str | os.PathLike[str]] = []
        for source in sources:
            if isinstance(source, RegistryMaintenance):  # an open registry: its log as it stands
                source.flush()
                source = source.events_path
            paths.append(source)
        self._writer.flush()
        reports = merge_stores(paths, self.events_path)
        self.sync()
        self._sessions = self._hashes = self._runs = None
        return reports

    def _watch_path(self) -> str | None:
        return None if self.events_path == ":memory:" else self.events_path

    def wait_for(
        self,
        condition: Callable[[Self], _T | None],
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

    def publish_snapshot(self, path: str | os.PathLike[str] | None = None, *, catch_up: bool = True) -> Path:
        """Catch up (unless ``catch_up=False``: a follower reports its own), then write a
        read-only copy of the tables for other processes; return its path.

        While this process holds the DuckDB file, DuckDB refuses every other process, even a
        read-only one; they open the copy instead, at any moment:
        ``duckdb.connect("sweep.snapshot.duckdb", read_only=True)``. The default path is beside
        the registry file. The copy replaces the previous one atomically; ``joshreg watch``
        keeps it fresh while a sweep runs.
        """
        if catch_up:
            self.sync()
        if path is None:
            if str(self.db_path) == ":memory:":
                raise InvalidArgumentError(
                    "a ':memory:' registry has no file to put a snapshot beside; pass path="
                )
            path = snapshot_path(self.db_path)
        in_file = str(self.db_path) != ":memory:"
        if in_file and Path(path).resolve() == Path(self.db_path).resolve():
            raise InvalidArgumentError(f"the snapshot path {path} is the registry file itself")
        in_file = in_file and not self.private_projection
        publish_snapshot(self._con(), path, source_file=os.fspath(self.db_path) if in_file else None)
        return Path(path)
