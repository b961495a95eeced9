"""RunRecorder: the worker API. Records run starts, completions and outputs without DuckDB.

A worker process (on this host or another sharing the store's directory) opens a recorder on the
registry's event store and appends to its own segment; it never opens the DuckDB file, so any
number of workers record at once with no lock. The registry sees their events at its next read.
Each call appends exactly one event and returns once the event has reached the operating system
(see ``EventWriter`` for when it reaches the disk; ``flush()`` makes it durable now).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from typing import Any

from joshreg.closing import Closeable
from joshreg.errors import InvalidArgumentError, LogFormatError
from joshreg.log.clock import uuid7
from joshreg.log.events import EventBase, OutputRegistered, ResultsLoaded, RunCompleted, RunStarted
from joshreg.log.names import default_events_path
from joshreg.log.store import LogStore, open_store, store_exists_at
from joshreg.log.writer import Durability, EventWriter
from joshreg.results.josh_csv import JoshExport, read_josh_csv, to_parquet_bytes

__all__ = ["RunRecorder", "results_event"]


def results_event(
    store: LogStore,
    export: JoshExport,
    *,
    run_id: str | None,
    run_hash: str,
    entity_type: str = "patch",
) -> ResultsLoaded:
    """Store an export's rows as a content-addressed Parquet claim; return the event naming it.

    The claim is immutable and its name is the hash of its bytes, so storing the same rows
    twice, from any number of processes, writes them once.
    """
    blob = export.parquet if export.parquet is not None else to_parquet_bytes(export.table)
    sha = hashlib.sha256(blob).hexdigest()
    name = f"blobs/{sha[:2]}/{sha}.parquet"
    store.claim(name, blob)
    return ResultsLoaded(
        run_id=run_id,
        run_hash=run_hash,
        entity_type=entity_type,
        blob=name,
        blob_sha256=sha,
        source_path=export.source_path,  # absolute, or the s3:// URI it came from
        source_sha256=export.source_sha256,
        row_count=export.rows,
        columns=export.variables,
    )


class RunRecorder(Closeable):
    """Appends run events for one worker process.

    ``RunRecorder("sweep.duckdb")`` records into the store beside that registry file;
    ``events_path=`` names the store directly (a folder, or ``s3://bucket/prefix`` with
    ``storage_options=`` or the ``AWS_*`` / ``MINIO_*`` environment). ``session_id`` is the
    default for ``start_run``.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        *,
        events_path: str | os.PathLike[str] | None = None,
        session_id: str | None = None,
        durability: Durability = "batch",
        store: LogStore | None = None,
        writer: EventWriter | None = None,
        tracer: Callable[[str], None] | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._owns_writer = writer is None  # a borrowed writer (registry.recorder()) stays open
        if writer is None:
            if store is None:
                if events_path is None:
                    if db_path is None:
                        raise InvalidArgumentError("RunRecorder needs db_path or events_path")
                    if str(db_path) == ":memory:":
                        raise InvalidArgumentError(
                            "a ':memory:' registry has no event store other processes can reach; "
                            "use registry.recorder() in the same process, or a file path"
                        )
                    events_path = default_events_path(db_path)
                    if not store_exists_at(events_path) and os.path.lexists(db_path):
                        raise LogFormatError(
                            f"there is no event store at {events_path} beside {os.fspath(db_path)}; a "
                            "worker records into the store of a joshreg registry, which "
                            f"RunRegistry({os.fspath(db_path)!r}) makes when it first opens the file "
                            "(a joshpy registry must be imported first: joshreg import)"
                        )
                store = open_store(os.fspath(events_path), storage_options=storage_options)
            writer = EventWriter(store, durability=durability, tracer=tracer)
        self.writer = writer
        self.session_id = session_id
        self.storage_options = storage_options  # also for exports read from s3://

    @property
    def store(self) -> LogStore:
        return self.writer.store

    def record(self, event: EventBase) -> None:
        """Append one validated event and publish it: the one path by which a call of this
        recorder or of a ``RunRegistry`` becomes an event. Published at once, so a worker
        killed after a call returns loses nothing of that call (on object storage: nothing
        older than the upload delay, 50 ms; ``flush()`` waits for the upload)."""
        self.writer.append(event)
        self.writer.publish()

    def start_run(
        self,
        run_hash: str,
        *,
        session_id: str | None = None,
        replicate: int = 0,
        output_path: str | None = None,
        metadata: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Record that an execution of ``run_hash`` started; return its run id."""
        sid = session_id or self.session_id
        if not sid:
            raise InvalidArgumentError(
                "start_run needs a session_id (pass it here or to RunRecorder(session_id=...))"
            )
        rid = run_id or uuid7()
        self.record(
            RunStarted(
                run_id=rid,
                run_hash=run_hash,
                session_id=sid,
                replicate=int(replicate),
                output_path=None if output_path is None else str(output_path),
                metadata=metadata or None,
            )
        )
        return rid

    def complete_run(self, run_id: str, exit_code: int, error_message: str | None = None) -> None:
        """Record that execution ``run_id`` finished; a later completion replaces an earlier one."""
        self.record(RunCompleted(run_id=run_id, exit_code=int(exit_code), error_message=error_message))

    def register_output(
        self,
        run_id: str,
        output_type: str,
        file_path: str | os.PathLike[str],
        file_size: int | None = None,
        row_count: int | None = None,
    ) -> str:
        """Record a file the execution produced; return the output id."""
        oid = uuid7()
        self.record(
            OutputRegistered(
                output_id=oid,
                run_id=run_id,
                output_type=output_type,
                file_path=str(file_path),
                file_size=file_size,
                row_count=row_count,
            )
        )
        return oid

    def load_csv(
        self,
        csv_path: str | os.PathLike[str],
        run_id: str | None,
        run_hash: str,
        entity_type: str = "patch",
    ) -> int:
        """Store a Josh CSV export's rows for a run and record it; return the row count.

        The registry adds the rows to ``cell_data`` at its next read. A worker cannot see the
        registry's columns, so a variable whose type conflicts with an existing column widens
        that column to VARCHAR instead of failing; ``CellDataLoader`` refuses such loads.
        """
        export = read_josh_csv(csv_path, storage_options=self.storage_options)
        self.record(
            results_event(self.store, export, run_id=run_id, run_hash=run_hash, entity_type=entity_type)
        )
        return export.rows

    def flush(self) -> int:
        """Make everything recorded so far durable; return the last durable sequence number."""
        return self.writer.flush()

    def close(self) -> None:
        """Seal this recorder's segment; a writer it was given is only flushed (its owner closes it)."""
        if self._owns_writer:
            self.writer.close()
        else:
            self.writer.flush()
