"""Projector: the log's events → DuckDB tables, exactly once, checkpoint in the same transaction.

Imports ``events``, ``codec``, ``errors``, ``reader``, ``labels``, ``labelstreams``, ``tables``,
``pyarrow``, ``duckdb``.

Every batch of new events is inserted into ``event_log`` as one Arrow table; then the public
tables are recomputed *from ``event_log``* for the keys the batch touched. Each table row is a
deterministic function of the set of events with its key (the first registration of a hash in
``(hlc, writer, seq)`` order, the last completion of a run, ...), so applying the same events in
any order or batch split gives the tables a full rebuild gives. Label commits are applied in
version order, which the label log fixes at write time; after a merge, in the order the fold of
every label stream gives (``labelstreams``), which depends only on the commits.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import duckdb
import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from joshreg.errors import JoshregError
from joshreg.log.codec import GENESIS, Problem
from joshreg.log.events import (
    EventBase,
    LabelAssigned,
    LabelCommit,
    OutputRegistered,
    ResultsLoaded,
    RunCompleted,
    RunRegistered,
    RunStarted,
    SessionCreated,
    SessionStatusChanged,
    event_types,
)
from joshreg.log.labels import LabelLog, commit_name
from joshreg.log.labelstreams import LabelStreams, imported_dirs, imports_pending
from joshreg.log.reader import Cursor, LogReader, ReadBatch, abandoned, ends_sealed
from joshreg.log.store.base import LogStore, SegmentInfo
from joshreg.log.store.compacted import container_metadata, read_container
from joshreg.projection.dbfile import check_connection
from joshreg.projection.spatial import load_spatial
from joshreg.projection.tables import (
    CELL_DATA_CORE_COLUMNS,
    CONFIG_PARAMS_CORE_COLUMNS,
    PROJECTOR_VERSION,
    create_tables,
    drop_tables,
    event_insert_sql,
    quote_identifier,
    table_columns,
)

__all__ = ["CatchUp", "Projector"]

_TAG = {cls: tag for tag, cls in event_types().items()}
CHUNK_BYTES = 64 << 20
# A rebuild's first batch, doubled per batch up to CHUNK_BYTES: DuckDB idles until it arrives.
FIRST_CHUNK_BYTES = 4 << 20
FAST_BATCH_BYTES = 256 << 20  # JSONL bytes of compacted segments inserted at once by a rebuild
BLOB_BATCH_ROWS = 1 << 20  # result rows inserted at once (files of one column layout)
SPATIAL_FROM_ROWS = 200_000  # rows at once from which loading the spatial extension pays

Progress = Callable[[int, int], None]  # (bytes done, bytes total)
# The public tables a full refresh fills with one query over the event tables: views instead,
# in a projector that does not materialize.
_VIEWED = frozenset({"job_configs", "session_configs", "sweep_sessions", "job_runs", "run_outputs"})


class CatchUp(msgspec.Struct):
    """What one catch-up or rebuild applied."""

    events: int = 0
    label_commits: int = 0
    problems: list[Problem] = []
    seconds: float = 0.0
    # Clock (ns) of the newest event or label commit applied, 0 for none: a follower's lag.
    newest_hlc: int = 0


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Projector:
    """Keeps the tables of one DuckDB connection up to date with one store."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        store: LogStore,
        *,
        tracer: Callable[[str], None] | None = None,
        spatial: bool = False,
        materialize: bool = True,
    ) -> None:
        """``spatial`` fills ``cell_data.geom`` with ``ST_Point(longitude, latitude)``; it loads
        the spatial extension the first time results are projected.

        ``materialize=False`` is for a projection read once and thrown away (verify's private
        rebuild): ``rebuild`` then defines the public tables that are queries over the event
        tables as views, typed like the tables, instead of filling them; reading each view
        once costs about half of writing its rows and reading them. Such a projector only
        rebuilds.
        """
        self.con = con
        self.spatial = spatial
        self.materialize = materialize
        self._spatial_loaded = False
        self.cell_columns: dict[str, str] = {}
        self.store = store
        self.reader = LogReader(store)
        self.tracer = tracer
        self.cursors: dict[str, Cursor] = {}
        self.writer_seqs: dict[str, int] = {}
        self.labels_head = 0
        self.labels_c = GENESIS
        self.param_columns: dict[str, str] = {}
        self.needs_rebuild = False
        self._touched: dict[str, bool] = {}
        self._ranges: dict[str, tuple[str, str]] = {}
        # After a merge: every label stream's fold (kept between catch-ups) and the imported
        # streams' versions the tables hold.
        self._streams: LabelStreams | None = None
        self.label_imports: dict[str, int] = {}
        self._fresh = False
        self._open()

    # --- state ----------------------------------------------------------------------------------

    def _open(self) -> None:
        """Use the tables if this connection holds joshreg's (its marker, ``joshreg_meta``) at
        this projector version, else make them; refuse a database someone else wrote."""
        found = check_connection(self.con)  # ForeignDatabaseError
        if found.kind != "joshreg" or found.projector_version != PROJECTOR_VERSION:
            self.needs_rebuild = True
            with self._transaction():
                self._reset_tables()
            self._fresh = True  # empty tables of this version: a rebuild need not make them again
            return  # and nothing to load: the state of empty tables is the initial one
        self._load_state()

    def _load_state(self) -> None:
        con = self.con
        self.cursors = {
            s: Cursor(o, n, p)
            for s, o, n, p in con.execute(
                "SELECT segment, byte_offset, line, prev FROM joshreg_segments"
            ).fetchall()
        }
        self.writer_seqs = dict(con.execute("SELECT writer, last_seq FROM joshreg_writers").fetchall())
        meta = dict(con.execute("SELECT key, value FROM joshreg_meta").fetchall())
        self.labels_head = int(meta.get("labels_head", 0))
        self.labels_c = meta.get("labels_c", GENESIS)
        self.label_imports = msgspec.json.decode(meta.get("label_imports", "{}"))
        self._streams = None  # rebuilt from the log when next needed
        cols = table_columns(con, "config_parameters")
        self.param_columns = {k: v for k, v in cols.items() if k not in CONFIG_PARAMS_CORE_COLUMNS}
        cols = table_columns(con, "cell_data")
        self.cell_columns = {k: v for k, v in cols.items() if k not in CELL_DATA_CORE_COLUMNS}

    def _set_meta(self, values: dict[str, str]) -> None:
        rows = ", ".join(f"({_literal(k)}, {_literal(v)})" for k, v in values.items())
        self.con.execute(f"INSERT OR REPLACE INTO joshreg_meta VALUES {rows}")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Rows and checkpoint commit together; on failure both roll back and the in-memory
        cursors are reloaded from the tables, so nothing is applied twice or skipped."""
        self.con.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            self._load_state()
            raise
        self.con.execute("COMMIT")

    def _reset_tables(self) -> None:
        if not self.materialize:  # the views a rebuild made in place of tables go first
            for (name,) in self.con.execute(
                "SELECT view_name FROM duckdb_views() WHERE schema_name = current_schema()"
            ).fetchall():
                if name in _VIEWED:
                    self.con.execute(f"DROP VIEW {name}")
        drop_tables(self.con)
        create_tables(self.con)  # the marker table with the others, in the caller's transaction
        self._set_meta({"projector_version": str(PROJECTOR_VERSION), "store_id": self.store.store_id})

    def _trace(self, msg: str) -> None:
        if self.tracer is not None:
            self.tracer(msg)

    # --- public ---------------------------------------------------------------------------------

    def pending(self) -> bool:
        """Cheap check: has anything been written since the last catch-up?"""
        if self.reader.pending(self.cursors):
            return True
        if self.store.read_claim(commit_name(self.labels_head + 1)) is not None:
            return True
        return imports_pending(self.store, self.label_imports)

    def damage(self, now: float | None = None) -> dict[str, int]:
        """Damaged lines per file that replay has skipped or reported (``log_problems``), plus
        the torn last line of every segment that can no longer grow (compacted, sealed, or
        abandoned by a dead local writer): what a user must be told at every open."""
        counts = dict(
            self.con.execute("SELECT segment, count(*) FROM log_problems GROUP BY segment").fetchall()
        )
        at = time.time() if now is None else now
        for seg in self.store.segments():
            read = self.cursors.get(seg.name, Cursor()).offset
            if seg.size < read:  # shorter than what was read from it: cut short
                counts[seg.name] = counts.get(seg.name, 0) + 1
            if seg.size <= read:
                continue  # bytes past the cursor: a line still being written, unless the writer is done
            if seg.compacted is not None or ends_sealed(self.store, seg.name, read) or abandoned(seg, at):
                counts[seg.name] = counts.get(seg.name, 0) + 1
        return counts

    def catch_up(self, progress: Progress | None = None) -> CatchUp:
        """Apply everything written since the checkpoint, in transactions of at most 64 MiB."""
        if not self.materialize:
            raise JoshregError("a projector that does not materialize its tables only rebuilds")
        t0 = time.perf_counter()
        result = CatchUp(problems=[])
        total = self._pending_bytes() if progress else 0
        done = 0
        while True:
            batch = self.reader.read_new(self.cursors, self.writer_seqs, max_bytes=CHUNK_BYTES)
            labels, commits, rewrite = self._read_labels(batch.problems)
            if not batch.cursors and not commits and not rewrite:
                break
            self._apply(batch, commits, labels, full=False, rewrite=rewrite)
            result.events += len(batch.events)
            result.label_commits += len(commits)
            result.newest_hlc = max(
                [result.newest_hlc, *(e.hlc for e in batch.events), *(c.hlc for c in commits)]
            )
            result.problems.extend(batch.problems)
            if progress:
                done += sum(c.offset - self.cursors.get(s, Cursor()).offset for s, c in batch.cursors.items())
                progress(done, total)
            self._commit_state(batch, labels)
            if not batch.more:
                break
        result.seconds = time.perf_counter() - t0
        if result.events or result.label_commits:
            self._trace(f"catch-up: {result.events} events, {result.label_commits} label commits")
        return result

    def rebuild(self, progress: Progress | None = None) -> CatchUp:
        """Drop every table and replay the whole log, in one transaction."""
        t0 = time.perf_counter()
        con = self.con
        if self._fresh and self._store_is_empty():
            # A new registry: its empty tables are the rebuild of an empty log (and half the cost
            # of opening one was making them twice).
            with self._transaction():
                self._set_meta({"labels_head": "0", "labels_c": GENESIS, "store_id": self.store.store_id})
            self._fresh = False
            return CatchUp(0, 0, [], time.perf_counter() - t0)
        with self._transaction():
            if not self._fresh:
                self._reset_tables()
            self._fresh = False
            self.cursors, self.writer_seqs, self.param_columns = {}, {}, {}
            self.labels_head, self.labels_c = 0, GENESIS
            merged = ReadBatch()
            params: dict[str, str] = {}
            self._replay_segments(merged, params, progress)
            labels, commits = self._rebuild_labels(merged.problems)
            self._insert_label_commits(commits)
            self._load_all_results(merged.problems)
            self._rebuild_param_table(params)
            self._refresh(full=True)
            self._write_checkpoint(merged, labels.state.version, labels.state.last_c, previous={})
            self._insert_problems(merged.problems)
        self._load_state()
        n = con.execute("SELECT count(*) FROM event_log").fetchone()[0]
        self._trace(f"rebuild: {n} events, {len(commits)} label commits")
        return CatchUp(n, len(commits), merged.problems, time.perf_counter() - t0)

    def _store_is_empty(self) -> bool:
        return (
            not self.store.segments()
            and self.store.read_claim(commit_name(1)) is None
            and not imported_dirs(self.store)
        )

    def project_tables(self) -> list[Problem]:
        """Recompute every public table from the typed event tables and ``label_history``
        already in this connection, without reading the log; return the damaged result files.
        The public tables must still be empty (a fresh connection).

        For a connection whose event tables were filled from elsewhere: a registry view as of
        a log position copies the rows up to that position and projects them here, which gives
        the tables a registry that had stopped there shows.
        """
        problems: list[Problem] = []
        self._fresh = False
        with self._transaction():
            self._load_all_results(problems)
            params: dict[str, str] = {}
            self._declared_params(params)
            self._rebuild_param_table(params)
            self._refresh(full=True)
            self._insert_problems(problems)
        return problems

    # --- applying -------------------------------------------------------------------------------

    def _pending_bytes(self) -> int:
        return sum(max(0, s.size - self.cursors.get(s.name, Cursor()).offset) for s in self.store.segments())

    def _apply(
        self,
        batch: ReadBatch,
        commits: list[LabelCommit],
        labels: LabelLog,
        *,
        full: bool,
        rewrite: bool = False,
    ) -> None:
        """Apply a batch; ``rewrite`` replaces every label row with ``commits`` (a merged label
        fold that started over) instead of adding them."""
        con = self.con
        try:
            with self._transaction():
                self._insert_events(batch)
                self._apply_loads(batch)
                if rewrite:
                    con.execute("DELETE FROM label_history")
                self._insert_label_commits(commits)
                params: dict[str, str] = {}
                _collect_param_types(batch.events, params)
                schema_changed = self._ensure_param_columns(params)
                self._register_affected(batch.events, commits)
                self._refresh(full=full, params_full=schema_changed)
                if rewrite:
                    con.execute(_ALL_LABELS)
                self._write_checkpoint(batch, labels.state.version, labels.state.last_c)
                if self._streams is not None:
                    self._set_meta({"label_imports": msgspec.json.encode(self._streams.heads()).decode()})
                self._insert_problems(batch.problems)
        finally:
            for name in ("_aff_s", "_aff_h", "_aff_l", "_aff_r", "_aff_o"):
                con.unregister(name)

    def _commit_state(self, batch: ReadBatch, labels: LabelLog) -> None:
        self._fresh = False
        self.cursors.update(batch.cursors)
        self.writer_seqs = batch.writer_seqs
        self.labels_head, self.labels_c = labels.state.version, labels.state.last_c
        if self._streams is not None:
            self.label_imports = self._streams.heads()

    # --- label streams ----------------------------------------------------------------------------

    def _read_labels(self, problems: list[Problem]) -> tuple[LabelLog, list[LabelCommit], bool]:
        """The own label stream as read, the label commits to record, and whether they replace
        every label row.

        A store that never merged records its commits as they are, numbered by version. After
        a merge the commits of every stream are folded (``labelstreams``) and recorded as they
        took effect, numbered by their place in the fold; when a commit arrives that orders
        before ones already recorded, every label row is written again.
        """
        if self._streams is None and not self.label_imports and not imported_dirs(self.store):
            labels = LabelLog(self.store, after=self.labels_head, after_c=self.labels_c)
            commits = labels.refresh()
            problems.extend(labels.problems)
            return labels, commits, False
        fresh = self._streams is None
        streams = self._streams = self._streams or LabelStreams(self.store)
        applied, rewrite = streams.refresh()
        problems.extend(streams.new_problems())
        if fresh:
            if streams.own.state.version == self.labels_head and streams.heads() == self.label_imports:
                return streams.own, [], False  # the tables hold this fold already
            rewrite = True
        return streams.own, [a.effective() for a in applied], rewrite

    def _rebuild_labels(self, problems: list[Problem]) -> tuple[LabelLog, list[LabelCommit]]:
        """Every label commit to record in a rebuild (see ``_read_labels``)."""
        if not imported_dirs(self.store):
            labels = LabelLog(self.store)
            commits = labels.refresh()
            problems.extend(labels.problems)
            return labels, commits
        streams = LabelStreams(self.store)
        applied, _ = streams.refresh()
        problems.extend(streams.new_problems())
        self._set_meta({"label_imports": msgspec.json.encode(streams.heads()).decode()})
        return streams.own, [a.effective() for a in applied]

    # --- replaying every segment (rebuild) -------------------------------------------------------

    def _replay_segments(self, merged: ReadBatch, params: dict[str, str], progress: Progress | None) -> None:
        """Read every segment into the event tables, in name order as ``read_new`` would.

        Clean compacted segments go from their Parquet straight into the tables (no Python
        decode), many segments per INSERT; runs of other segments are read in 64 MiB batches.
        """
        segments = self.store.segments()
        total = sum(max(0, s.size - self.cursors.get(s.name, Cursor()).offset) for s in segments)
        done = 0
        slow: list[SegmentInfo] = []
        fast: list[pa.Table] = []
        fast_bytes = 0

        def read_slow() -> None:
            nonlocal done
            if not slow:
                return
            for batch, raw in _read_ahead(self.reader, list(slow), self.cursors, self.writer_seqs):
                merged.problems.extend(batch.problems)
                self._insert_events(batch, raw)
                for s, c in batch.cursors.items():
                    done += c.offset - self.cursors.get(s, Cursor()).offset
                    self.cursors[s] = c
                self.writer_seqs = batch.writer_seqs
                merged.cursors.update(batch.cursors)
                if progress:
                    progress(done, total)
            slow.clear()

        for seg in segments:
            if (
                seg.compacted is None
                or seg.jsonl_size is not None  # an unfinished compaction: read the JSONL, as catch-up does
                or seg.size <= self.cursors.get(seg.name, Cursor()).offset
            ):
                slow.append(seg)
                continue
            read_slow()
            cursor = self._read_compacted(seg, fast)
            if cursor is None:  # not clean, or unreadable: the line by line path reports why
                slow.append(seg)
                continue
            done += cursor.offset - self.cursors.get(seg.name, Cursor()).offset
            self.cursors[seg.name] = merged.cursors[seg.name] = cursor
            fast_bytes += seg.size
            if fast_bytes >= FAST_BATCH_BYTES:
                self._insert_compacted(fast)
                fast_bytes = 0
            if progress:
                progress(done, total)
        self._insert_compacted(fast)
        read_slow()
        merged.writer_seqs = self.writer_seqs
        # Every registration's parameter types, from the table: one query instead of a Python
        # loop over every event read, which holds the GIL the read-ahead thread needs.
        self._declared_params(params)

    def _declared_params(self, into: dict[str, str]) -> None:
        """Merge the parameter types every registration in the event table declares."""
        sql = "SELECT DISTINCT parameter_types FROM events_run_registered"
        for (text,) in self.con.execute(sql).fetchall():
            for name, typ in msgspec.json.decode(text or "{}", type=dict[str, str]).items():
                have = into.get(name)
                into[name] = "VARCHAR" if "VARCHAR" in (have, typ) else "DOUBLE"

    def _read_compacted(self, seg: SegmentInfo, fast: list[pa.Table]) -> Cursor | None:
        """Add the rows of a clean compacted segment to ``fast``; its new cursor, or None when it
        must be read line by line instead.

        Clean means every line intact, chained and decoded, one writer, seqs 1..n in line
        order: exactly the case where ``read_new`` takes lines ``mark + 1 ..`` whole, so this
        gives the same rows, cursor and high-water mark.
        """
        assert seg.compacted is not None
        data = self.store.read_claim(seg.compacted)
        if data is None:
            return None
        try:
            meta = container_metadata(data)
            if meta.get("clean") != b"1" or int(meta.get("source_bytes", b"-1")) != seg.size:
                return None
            table, _ = read_container(data, ["type", "seq", "line"])
        except Exception:  # damaged: pyarrow raises many kinds; the slow path reports it
            return None
        writer, n = meta["writer"].decode(), int(meta["lines"])
        mark = self.writer_seqs.get(writer, 0)
        if mark < n:
            rows = table.slice(mark)  # row i holds seq i + 1, which is also its line number
            if rows["type"][-1].as_py() == "segment.sealed":  # clean: a seal is only ever last
                rows = rows.slice(0, len(rows) - 1)
            body = rows["line"].cast(pa.large_string())
            names = pa.DictionaryArray.from_arrays(pa.nulls(len(rows), pa.int32()).fill_null(0), [seg.name])
            fast.append(pa.table({"type": rows["type"], "body": body, "line": rows["seq"], "segment": names}))
        self.writer_seqs = {**self.writer_seqs, writer: max(mark, int(meta["last_seq"]))}
        return Cursor(seg.size, n, meta["last_c"].decode())

    def _insert_compacted(self, fast: list[pa.Table]) -> None:
        """One INSERT per event type for the rows gathered by ``_read_compacted``: few large
        inserts let DuckDB write whole row groups to the file."""
        if not fast:
            return
        raw = pa.concat_tables(fast)
        fast.clear()
        self.con.register("_raw", raw)
        try:
            for tag in sorted(pc.unique(raw["type"]).to_pylist()):
                self.con.execute(event_insert_sql(tag, f"(SELECT * FROM _raw WHERE type = {_literal(tag)})"))
        finally:
            self.con.unregister("_raw")

    def _insert_events(self, batch: ReadBatch, raw: pa.Table | None = None) -> None:
        """The raw lines go to DuckDB as one Arrow table (``_raw_lines``'s, or ``raw`` when the
        caller built it already); DuckDB parses each event type's lines into that type's typed
        table (vectorised, instead of building columns here)."""
        if not batch.events:
            return
        if raw is None:
            raw = _raw_lines(batch)
        self.con.register("_raw", raw)
        try:
            for tag in sorted(raw["type"].combine_chunks().dictionary.to_pylist()):  # the types present
                source = f"(SELECT body, segment, line FROM _raw WHERE type = '{tag}')"
                self.con.execute(event_insert_sql(tag, source))
        finally:
            self.con.unregister("_raw")

    def _insert_label_commits(self, commits: Iterable[LabelCommit]) -> None:
        rows = [
            (
                c.version,
                i,
                c.hlc,
                c.hlc,
                c.actor,
                c.writer,
                c.event_id,
                a.__struct_config__.tag.split(".", 1)[1],  # type: ignore[union-attr]
                a.label,
                a.run_hash,
                getattr(a, "previous_run_hash", None),
                getattr(a, "archived_as", None),
                getattr(a, "reason", None),
            )
            for c in commits
            for i, a in enumerate(c.actions)
        ]
        if rows:
            self.con.executemany(
                "INSERT INTO label_history VALUES "
                "(?, ?, make_timestamp(?::BIGINT // 1000), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def _insert_problems(self, problems: list[Problem]) -> None:
        if problems:
            self.con.executemany(
                "INSERT INTO log_problems VALUES (?, ?, ?, ?)",
                [(p.segment, p.line, p.kind, p.detail) for p in problems],
            )

    def _write_checkpoint(
        self,
        batch: ReadBatch,
        labels_head: int,
        labels_c: str,
        previous: dict[str, int] | None = None,
    ) -> None:
        """Persist cursors and writer high-water marks that moved since ``previous``."""
        before = self.writer_seqs if previous is None else previous
        con = self.con
        if batch.cursors:
            cur = pa.table(
                {
                    "segment": list(batch.cursors),
                    "byte_offset": [c.offset for c in batch.cursors.values()],
                    "line": [c.line for c in batch.cursors.values()],
                    "prev": [c.prev for c in batch.cursors.values()],
                }
            )
            changed = {w: s for w, s in batch.writer_seqs.items() if before.get(w) != s}
            wr = pa.table({"writer": list(changed), "last_seq": pa.array(list(changed.values()), pa.int64())})
            con.register("_cur", cur)
            con.register("_wr", wr)
            try:
                con.execute("INSERT OR REPLACE INTO joshreg_segments SELECT * FROM _cur")
                if changed:
                    con.execute("INSERT OR REPLACE INTO joshreg_writers SELECT * FROM _wr")
            finally:
                con.unregister("_cur")
                con.unregister("_wr")
        self._set_meta(
            {"labels_head": str(labels_head), "labels_c": labels_c, "store_id": self.store.store_id}
        )

    # --- recomputing tables ---------------------------------------------------------------------

    def _register_affected(self, events: list[EventBase], commits: list[LabelCommit]) -> None:
        sessions: set[str] = set()
        hashes: set[str] = set()
        runs: set[str] = set()
        outputs: set[str] = set()
        for e in events:
            t = type(e)
            if t is RunStarted or t is RunCompleted:
                runs.add(e.run_id)  # type: ignore[attr-defined]
            elif t is OutputRegistered:
                outputs.add(e.output_id)  # type: ignore[attr-defined]
            elif t is RunRegistered:
                hashes.add(e.run_hash)  # type: ignore[attr-defined]
                sessions.add(e.session_id)  # type: ignore[attr-defined]
            elif t is SessionCreated or t is SessionStatusChanged:
                sessions.add(e.session_id)  # type: ignore[attr-defined]
        labelled: set[str] = set(hashes)
        for c in commits:
            for a in c.actions:
                labelled.add(a.run_hash)
                if isinstance(a, LabelAssigned) and a.previous_run_hash:
                    labelled.add(a.previous_run_hash)
        for name, keys in (
            ("_aff_s", sessions),
            ("_aff_h", hashes),
            ("_aff_l", labelled),
            ("_aff_r", runs),
            ("_aff_o", outputs),
        ):
            self.con.register(name, pa.table({"k": pa.array(sorted(keys), pa.string())}))
        # Key ranges let DuckDB skip row groups by their min/max statistics: run and output
        # ids minted by joshreg are UUIDv7, so a batch's ids are close together in time.
        self._ranges = {
            name: (min(keys), max(keys))
            for name, keys in (
                ("_aff_s", sessions),
                ("_aff_h", hashes),
                ("_aff_l", labelled),
                ("_aff_r", runs),
                ("_aff_o", outputs),
            )
            if keys
        }
        self._touched = {
            "_aff_s": bool(sessions),
            "_aff_h": bool(hashes),
            "_aff_l": bool(labelled),
            "_aff_r": bool(runs),
            "_aff_o": bool(outputs),
        }

    def _fill(self, table: str, select: str, *, full: bool) -> None:
        """Add ``select``'s rows to ``table``; in a full refresh without ``materialize``, make
        ``table`` a view of them instead, with the table's column names and types (so that
        comparing it with a real table compares values, not types)."""
        if full and not self.materialize:
            assert table in _VIEWED, table  # so that a second rebuild drops the view again
            cols = table_columns(self.con, table)
            names = ", ".join(quote_identifier(c) for c in cols)
            typed = ", ".join(
                f"CAST({quote_identifier(c)} AS {t}) AS {quote_identifier(c)}" for c, t in cols.items()
            )
            self.con.execute(f"DROP TABLE {table}")
            self.con.execute(f"CREATE VIEW {table} AS SELECT {typed} FROM ({select}) AS _rows({names})")
            return
        self.con.execute(f"INSERT INTO {table} {select}")

    def _refresh(self, *, full: bool, params_full: bool = True) -> None:
        con = self.con
        touched = self._touched

        def skip(aff: str) -> bool:
            return not full and not touched.get(aff, False)

        def flt(col: str, aff: str) -> str:
            if full:
                return ""
            lo, hi = (_literal(k) for k in self._ranges.get(aff, ("", "")))
            return f"AND {col} BETWEEN {lo} AND {hi} AND {col} IN (SELECT k FROM {aff})"

        def delete(table: str, col: str, aff: str) -> None:
            if not full:
                con.execute(f"DELETE FROM {table} WHERE true {flt(col, aff)}")

        def first(table: str, key: str, where: str, *, last: bool = False) -> str:
            return _first_rows(table, key, where, last=last, split=full)

        # A full refresh starts from empty tables: it gives each configuration its label as it
        # inserts it, instead of updating every row just written (which rewrites them at commit).
        label = "(SELECT min(lc.label) FROM labels_current lc WHERE lc.run_hash = r.run_hash)"
        if not skip("_aff_h"):
            delete("job_configs", "run_hash", "_aff_h")
            self._fill(
                "job_configs",
                f"""
                SELECT run_hash, session_id, josh_path, josh_content, config_content, file_mappings,
                       {label if full else "NULL"},
                       make_timestamp(coalesce(config_created_us, created_us, hlc // 1000))
                FROM {first("events_run_registered", "run_hash", flt("run_hash", "_aff_h"))} r
                """,
                full=full,
            )
        if not full and not skip("_aff_l"):
            con.execute(
                f"""
                UPDATE job_configs SET label = (
                    SELECT min(lc.label) FROM labels_current lc WHERE lc.run_hash = job_configs.run_hash)
                WHERE true {flt("run_hash", "_aff_l")}
                """
            )
        if not skip("_aff_h"):
            delete("session_configs", "run_hash", "_aff_h")
            self._fill(
                "session_configs",
                f"""
                SELECT session_id, run_hash, make_timestamp(min(coalesce(created_us, hlc // 1000)))
                FROM events_run_registered WHERE true {flt("run_hash", "_aff_h")}
                GROUP BY session_id, run_hash
                """,
                full=full,
            )
        if params_full:
            self._fill_params(full=True)
        elif not skip("_aff_h"):
            delete("config_parameters", "run_hash", "_aff_h")
            self._fill_params(full=False)
        if not skip("_aff_s"):
            delete("sweep_sessions", "session_id", "_aff_s")
            fs = flt("session_id", "_aff_s")
            self._fill(
                "sweep_sessions",
                f"""
                SELECT c.session_id, c.experiment_name, make_timestamp(coalesce(c.created_us, c.hlc // 1000)),
                       c.template_path,
                       NULL, c.simulation, coalesce(j.n, 0), coalesce(j.n, 0) * coalesce(c.replicates, 1),
                       coalesce(s.status, 'pending'), c.metadata
                FROM (
                    SELECT * FROM {first("events_session_created", "session_id", fs)}
                ) c
                LEFT JOIN (
                    SELECT session_id, arg_max(status, (hlc, writer, seq)) AS status
                    FROM events_session_status_changed WHERE true {fs} GROUP BY session_id
                ) s USING (session_id)
                LEFT JOIN (
                    SELECT session_id, count(DISTINCT run_hash) AS n
                    FROM events_run_registered WHERE true {fs} GROUP BY session_id
                ) j USING (session_id)
                """,
                full=full,
            )
        if not skip("_aff_r"):
            delete("job_runs", "run_id", "_aff_r")
            fr = flt("run_id", "_aff_r")
            self._fill(
                "job_runs",
                f"""
                SELECT s.run_id, s.run_hash, s.session_id, s.replicate,
                       make_timestamp(coalesce(s.started_us, s.hlc // 1000)),
                       make_timestamp(coalesce(c.completed_us, c.hlc // 1000)), c.exit_code, s.output_path,
                       c.error_message, s.metadata
                FROM {first("events_run_started", "run_id", fr)} s
                LEFT JOIN {first("events_run_completed", "run_id", fr, last=True)} c USING (run_id)
                """,
                full=full,
            )
        if not skip("_aff_o"):
            delete("run_outputs", "output_id", "_aff_o")
            self._fill(
                "run_outputs",
                f"""
                SELECT output_id, run_id, output_type, file_path, file_size, row_count,
                       make_timestamp(coalesce(created_us, hlc // 1000))
                FROM {first("events_output_registered", "output_id", flt("output_id", "_aff_o"))}
                """,
                full=full,
            )

    # --- simulation results ---------------------------------------------------------------------

    def _load_all_results(self, problems: list[Problem]) -> None:
        """Fill ``cell_data`` from every result load in the event table, first load of each
        source, run and entity type only, in log order (a full rebuild)."""
        self.cell_columns = {}
        rows = self.con.execute(
            "SELECT run_id, run_hash, entity_type, blob, columns FROM events_results_loaded "
            "QUALIFY row_number() OVER (PARTITION BY source_sha256, run_id, entity_type "
            "ORDER BY hlc, writer, seq) = 1 ORDER BY hlc, writer, seq"
        ).fetchall()
        self._load_blobs(((*r[:4], msgspec.json.decode(r[4] or "{}")) for r in rows), problems)

    def _apply_loads(self, batch: ReadBatch) -> None:
        """Project the batch's result loads; a load whose source, run and entity type were
        loaded before adds no rows (the first in log order counts)."""
        loads = sorted(
            (e for e in batch.events if type(e) is ResultsLoaded),
            key=lambda e: (e.hlc, e.writer, e.seq),
        )
        if not loads:
            return
        in_batch: dict[tuple[str, str | None, str], int] = {}
        for e in loads:
            key = (e.source_sha256, e.run_id, e.entity_type)  # type: ignore[attr-defined]
            in_batch[key] = in_batch.get(key, 0) + 1
        # How many loads of each key the table holds, batch included: one query for the batch.
        keys = pa.table(
            {
                "s": pa.array([k[0] for k in in_batch], pa.string()),
                "r": pa.array([k[1] for k in in_batch], pa.string()),
                "t": pa.array([k[2] for k in in_batch], pa.string()),
            }
        )
        self.con.register("_keys", keys)
        try:
            totals = {
                (s, r, t): n
                for s, r, t, n in self.con.execute(
                    "SELECT k.s, k.r, k.t, count(*) FROM _keys k JOIN events_results_loaded e "
                    "ON e.source_sha256 = k.s AND e.run_id IS NOT DISTINCT FROM k.r AND e.entity_type = k.t "
                    "GROUP BY ALL"
                ).fetchall()
            }
        finally:
            self.con.unregister("_keys")
        first = []
        for e in loads:
            key = (e.source_sha256, e.run_id, e.entity_type)  # type: ignore[attr-defined]
            if key in in_batch and totals.get(key) == in_batch.pop(key):
                first.append((e.run_id, e.run_hash, e.entity_type, e.blob, e.columns))  # type: ignore[attr-defined]
        self._load_blobs(first, batch.problems)

    def _load_blobs(
        self, loads: Iterable[tuple[str | None, str, str, str, dict[str, str]]], problems: list[Problem]
    ) -> None:
        """Add the rows of result files ``(run_id, run_hash, entity_type, blob, columns)`` to
        ``cell_data`` in the order given. Consecutive files of one column layout go in with one
        INSERT (a statement per file cost more than its rows); a file that adds or widens a
        column first flushes what came before, so every row keeps its place (its ``cell_id``)."""
        pending: list[pa.Table] = []
        layout: tuple[str, ...] = ()
        rows = 0
        for (run_id, run_hash, entity_type, _, columns), read in _read_in_threads(loads, self._read_blob):
            table = read(problems)
            if table is None:
                continue
            shape = tuple(f"{f.name}:{f.type}" for f in table.schema)
            if pending and (shape != layout or self._cell_columns_change(columns) or rows >= BLOB_BATCH_ROWS):
                self._insert_cells(pending)
                pending, rows = [], 0
            self._ensure_cell_columns(columns)
            n = table.num_rows
            table = table.append_column("run_id", pa.repeat(pa.scalar(run_id, pa.string()), n))
            table = table.append_column("run_hash", pa.repeat(pa.scalar(run_hash, pa.string()), n))
            table = table.append_column("entity_type", pa.repeat(pa.scalar(entity_type, pa.string()), n))
            pending.append(table)
            layout = shape
            rows += n
        if pending:
            self._insert_cells(pending)

    def _read_blob(
        self, load: tuple[str | None, str, str, str, dict[str, str]]
    ) -> Callable[[list[Problem]], pa.Table | None]:
        """Read one result file (in a worker thread); the returned call hands over its table, or
        records why there is none, on the caller's thread."""
        run_id, run_hash, _, blob, _ = load
        try:
            data = self.store.read_claim(blob)
            if data is not None:
                table = pq.read_table(pa.BufferReader(data))
                return lambda problems: table
            problem = Problem(
                blob, 0, "missing-blob", f"the results of run {run_id} ({run_hash}) are missing"
            )
        except (OSError, pa.ArrowException) as e:  # one damaged file must not stop the replay
            problem = Problem(
                blob, 0, "damaged-blob", f"the results of run {run_id} ({run_hash}) do not read: {e}"
            )

        def missing(problems: list[Problem]) -> None:
            problems.append(problem)

        return missing

    def _insert_cells(self, tables: list[pa.Table]) -> None:
        """Insert the rows with ``cell_id``s in their order: a sequence default is evaluated
        by parallel threads in no set order, and a rebuild must number rows as catch-up did."""
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        n = table.num_rows
        if not n:
            return
        (first,) = self.con.execute(
            f"SELECT min(v) FROM (SELECT nextval('cell_id_seq') AS v FROM range({int(n)}))"
        ).fetchone()
        variables = [c for c in table.column_names if c not in CELL_DATA_CORE_COLUMNS]
        table = table.append_column("_ord", pa.array(np.arange(n, dtype=np.int64)))
        names = "".join(f", {quote_identifier(v)}" for v in variables)
        geom = "NULL"
        if self.spatial:
            # A point where both coordinates are finite. DuckDB reads WKT into GEOMETRY by itself;
            # the spatial extension's ST_Point is faster per row but costs about 0.2 s to load
            # on each connection, so it is used only for many rows (both give the same points).
            if self._spatial_loaded or n >= SPATIAL_FROM_ROWS:
                if not self._spatial_loaded:
                    load_spatial(self.con)
                    self._spatial_loaded = True
                point = "ST_Point(longitude, latitude)"
            else:
                point = "('POINT (' || longitude::VARCHAR || ' ' || latitude::VARCHAR || ')')::GEOMETRY"
            geom = f"CASE WHEN isfinite(longitude) AND isfinite(latitude) THEN {point} END"
        self.con.register("_blob", table)
        try:
            self.con.execute(
                "INSERT INTO cell_data (cell_id, run_id, run_hash, step, replicate, position_x, position_y, "
                f"longitude, latitude, entity_type, geom{names}) "
                f"SELECT {int(first)} + _ord, run_id, run_hash, step, replicate, position_x, position_y, "
                f"longitude, latitude, entity_type, {geom}{names} FROM _blob"
            )
        finally:
            self.con.unregister("_blob")

    def _cell_columns_change(self, wanted: dict[str, str]) -> bool:
        """Whether ``_ensure_cell_columns(wanted)`` would add or widen a column."""
        for name, typ in wanted.items():
            have = self.cell_columns.get(name)
            if have is None or (have != typ and "VARCHAR" in (have, typ) and have != "VARCHAR"):
                return True
        return False

    def _ensure_cell_columns(self, wanted: dict[str, str]) -> None:
        """Add new variable columns; widen one to VARCHAR when any load says VARCHAR."""
        for name, typ in wanted.items():
            have = self.cell_columns.get(name)
            if have is None:
                if name.lower() in {c.lower() for c in (*self.cell_columns, *CELL_DATA_CORE_COLUMNS)}:
                    continue  # refused at load time; ignored if a merged log has it
                self.con.execute(f"ALTER TABLE cell_data ADD COLUMN {quote_identifier(name)} {typ}")
                self.cell_columns[name] = typ
            elif have != typ and "VARCHAR" in (have, typ) and have != "VARCHAR":
                self.con.execute(f"ALTER TABLE cell_data ALTER COLUMN {quote_identifier(name)} TYPE VARCHAR")
                self.cell_columns[name] = "VARCHAR"

    # --- typed parameter columns ----------------------------------------------------------------

    def _ensure_param_columns(self, wanted: dict[str, str]) -> bool:
        """Widen the column set for new names or types; True if the table was recreated."""
        merged = dict(self.param_columns)
        for name, typ in wanted.items():
            have = merged.get(name)
            merged[name] = "VARCHAR" if "VARCHAR" in (have, typ) else "DOUBLE"
        if merged == self.param_columns:
            return False
        self._rebuild_param_table(merged)
        return True

    def _rebuild_param_table(self, columns: dict[str, str]) -> None:
        usable: dict[str, str] = {}
        seen: dict[str, str] = {c.lower(): c for c in CONFIG_PARAMS_CORE_COLUMNS}
        for name in sorted(columns):
            if name.lower() in seen:  # refused at write time; ignored if a merged log has it
                continue
            seen[name.lower()] = name
            usable[name] = columns[name]
        cols = "".join(f", {quote_identifier(n)} {t}" for n, t in usable.items())
        self.con.execute("DROP TABLE IF EXISTS config_parameters")
        self.con.execute(f"CREATE TABLE config_parameters (run_hash VARCHAR(12){cols})")
        self.param_columns = usable

    def _fill_params(self, *, full: bool) -> None:
        exprs, params = [], []
        for name, typ in self.param_columns.items():
            pointer = "/" + name.replace("~", "~0").replace("/", "~1")
            if typ == "DOUBLE":
                exprs.append("TRY_CAST(json_extract_string(p, ?) AS DOUBLE)")
            else:
                exprs.append("json_extract_string(p, ?)")
            params.append(pointer)
        select = ", ".join(["run_hash", *exprs])
        flt = "" if full else "AND run_hash IN (SELECT k FROM _aff_h)"
        first = _first_rows("events_run_registered", "run_hash", flt, split=full)
        self.con.execute(
            f"""
            INSERT INTO config_parameters
            SELECT {select}
            FROM (SELECT run_hash, parameters AS p FROM {first})
            """,
            params,
        )


_Ahead = tuple[ReadBatch, pa.Table | None] | BaseException | None
_T = TypeVar("_T")
_R = TypeVar("_R")


def _read_in_threads(
    items: Iterable[_T], read: Callable[[_T], _R], window: int = 16
) -> Iterator[tuple[_T, _R]]:
    """``(item, read(item))`` in the order of ``items``, with up to ``window`` reads running in
    threads ahead of the consumer: reading and decoding Parquet releases the GIL, so on two cores
    the next files are read while DuckDB inserts the last ones."""
    with ThreadPoolExecutor(
        max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="joshreg-blob"
    ) as pool:
        ahead: deque[tuple[_T, Future[_R]]] = deque()
        for item in items:
            ahead.append((item, pool.submit(read, item)))
            if len(ahead) >= window:
                first, fut = ahead.popleft()
                yield first, fut.result()
        while ahead:
            first, fut = ahead.popleft()
            yield first, fut.result()


def _read_ahead(
    reader: LogReader, segments: list[SegmentInfo], cursors: dict[str, Cursor], seqs: dict[str, int]
) -> Iterator[tuple[ReadBatch, pa.Table | None]]:
    """The batches of ``segments`` after ``cursors``, as ``read_new`` gives them in a loop, each
    with its ``_raw_lines`` table (None without events), read and built while the caller
    inserts the one before: reading, checking, decoding and building is Python, an insert is
    DuckDB without the GIL, so on two cores they overlap. The last batch holds problems only
    (or nothing) when a read makes no progress."""
    out: queue.Queue[_Ahead] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: _Ahead) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        at, high = dict(cursors), dict(seqs)
        size = FIRST_CHUNK_BYTES
        try:
            while True:
                batch = reader.read_new(at, high, max_bytes=size, segments=segments)
                size = min(CHUNK_BYTES, size * 2)
                if not batch.cursors:
                    if batch.problems:
                        put((batch, None))
                    break
                at.update(batch.cursors)
                high = batch.writer_seqs
                if not put((batch, _raw_lines(batch) if batch.events else None)) or not batch.more:
                    break
        except BaseException as e:  # handed to the consumer
            put(e)
            return
        put(None)

    thread = threading.Thread(target=produce, name="joshreg-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := out.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _raw_lines(batch: ReadBatch) -> pa.Table:
    """A batch's lines as the Arrow table ``_insert_events`` gives DuckDB: type, text, segment
    and line number of each event."""
    types = list(map(_TAG.__getitem__, map(type, batch.events)))
    return pa.table(
        {
            "type": pa.array(types, pa.string()).dictionary_encode(),
            "body": _text_array(batch.lines, batch.bodies),
            "segment": pa.array(batch.origins, pa.string()).dictionary_encode(),
            "line": pa.array(batch.linenos, pa.int64()),
        }
    )


def _text_array(
    lines: list[bytes], bodies: Sequence[tuple[int, int, bytes | memoryview]] = ()
) -> pa.ChunkedArray:
    """The lines as Arrow strings. Runs of them still in the buffer they were read from
    (``bodies``, see ``ReadBatch``) are used in place; the other lines are joined into one
    buffer. ``pa.array`` on a list of bytes objects costs about 4 µs a line, joining a few
    hundred ns, and a run used in place only its offsets."""
    pieces: list[pa.Array] = []
    at = 0
    for first, n, body in bodies:
        if first > at:
            pieces.append(_strings(lines[at:first]))
        pieces.append(_strings(lines[first : first + n], body))
        at = first + n
    if at < len(lines) or not pieces:
        pieces.append(_strings(lines[at:]))
    return pa.chunked_array(pieces, pa.large_string())


def _strings(lines: list[bytes], buffer: bytes | memoryview | None = None) -> pa.Array:
    """``lines`` as Arrow strings over ``buffer``, which holds each line followed by a newline
    (joined here when not given); each string keeps its newline, which JSON parsing ignores.
    The cast checks that every line is UTF-8."""
    n = len(lines)
    if buffer is None:
        buffer = b"\n".join([*lines, b""])
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.fromiter(map(len, lines), np.int64, n) + 1, out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(buffer)]
    return pa.Array.from_buffers(pa.large_binary(), n, buffers).cast(pa.large_string())


def _first_rows(table: str, key: str, where: str, *, last: bool = False, split: bool = False) -> str:
    """A subquery of the rows of ``table`` matching ``where`` (``AND ...`` or empty) that come
    first per ``key`` in ``(hlc, writer, seq)`` order (``last``: come last), one row per key.

    ``split`` is for whole tables, where nearly every key has a single row: the rows whose key
    is unique are taken as they are, and only the keys with several rows are sorted by the
    window function, which skips a sort of every row. Both forms give the same rows (a NULL
    key is one key, as in ``PARTITION BY``).
    """
    o = " DESC" if last else ""
    rank = f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY hlc{o}, writer{o}, seq{o}) = 1"
    if not split:
        return f"(SELECT * FROM {table} WHERE true {where} {rank})"
    dup = f"SELECT 1 FROM _dup WHERE _dup._k IS NOT DISTINCT FROM _t.{key}"
    return f"""(
        WITH _dup AS MATERIALIZED (
            SELECT {key} AS _k FROM {table} WHERE true {where} GROUP BY {key} HAVING count(*) > 1)
        SELECT * FROM {table} _t WHERE true {where} AND NOT EXISTS ({dup})
        UNION ALL
        SELECT * FROM (SELECT * FROM {table} _t WHERE true {where} AND EXISTS ({dup}) {rank}))"""


# Every configuration's label again, after the label rows were replaced (a merged fold).
_ALL_LABELS = """
UPDATE job_configs SET label = (
    SELECT min(lc.label) FROM labels_current lc WHERE lc.run_hash = job_configs.run_hash)
"""


def _collect_param_types(events: list[EventBase], into: dict[str, str]) -> None:
    for e in events:
        if type(e) is RunRegistered:
            for name, typ in e.parameter_types.items():  # type: ignore[attr-defined]
                have = into.get(name)
                into[name] = "VARCHAR" if "VARCHAR" in (have, typ) else "DOUBLE"
