"""Projector: the log's events → DuckDB tables, exactly once, checkpoint in the same transaction.

Every batch of new events is inserted into ``event_log`` as one Arrow table; then the public
tables are recomputed *from ``event_log``* for the keys the batch touched. Each table row is a
deterministic function of the set of events with its key (the first registration of a hash in
``(hlc, writer, seq)`` order, the last completion of a run, ...), so applying the same events in
any order or batch split gives the tables a full rebuild gives. Label commits are applied in
version order, which the label log fixes at write time; after a merge, in the order the fold of
every label stream gives (``labelstreams``), which depends only on the commits.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Container, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
import msgspec

from joshreg.errors import JoshregError
from joshreg.log.codec import GENESIS, Problem
from joshreg.log.events import REMOVALS, LabelCommit
from joshreg.log.labels import LabelLog, commit_name
from joshreg.log.labelstreams import LabelStreams, imported_dirs, imports_pending
from joshreg.log.reader import Cursor, LogReader, ReadBatch, abandoned, ends_sealed
from joshreg.log.store.base import LogStore
from joshreg.projection.cells import SERIAL_BELOW_ROWS, ProjectResults, one_thread
from joshreg.projection.dbfile import CheckpointRows, RegistryFile, check_connection, read_checkpoint
from joshreg.projection.refresh import AFFECTED, ALL_LABELS, VIEWED, RefreshTables, collect_param_types
from joshreg.projection.removals import ProjectRemovals, removal_detail
from joshreg.projection.replay import CHUNK_BYTES, Progress, ReplaySegments
from joshreg.projection.sqltext import INLINE_ROWS, bind, literal, sql_literal
from joshreg.projection.tables import (
    CELL_DATA_CORE_COLUMNS,
    CONFIG_PARAMS_CORE_COLUMNS,
    PROJECTOR_VERSION,
    create_tables,
    drop_tables,
    table_columns,
)

if TYPE_CHECKING:
    pass

__all__ = ["CatchUp", "Projector"]

VALUES_ROWS = 1000  # rows per INSERT ... VALUES statement of ``_insert_rows``


@dataclass
class CatchUp:
    """What one catch-up or rebuild applied."""

    events: int = 0
    label_commits: int = 0
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0
    # Clock (ns) of the newest event or label commit applied, 0 for none: a follower's lag.
    newest_hlc: int = 0


class Projector(ReplaySegments, RefreshTables, ProjectResults, ProjectRemovals):
    """Keeps the tables of one DuckDB connection up to date with one store."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        store: LogStore,
        *,
        tracer: Callable[[str], None] | None = None,
        spatial: bool = False,
        materialize: bool = True,
        found: RegistryFile | None = None,
    ) -> None:
        """``spatial`` fills ``cell_data.geom`` with ``ST_Point(longitude, latitude)``; it loads
        the spatial extension the first time results are projected.

        ``materialize=False`` is for a projection read once and thrown away (verify's private
        rebuild): ``rebuild`` then defines the public tables that are queries over the event
        tables as views, typed like the tables, instead of filling them; reading each view
        once costs about half of writing its rows and reading them. Such a projector only
        rebuilds.

        ``found`` is what ``dbfile.check_connection`` said of this very connection, if the
        caller asked already (with the checkpoint it read): it is not asked again.
        """
        self.con = con
        self.spatial = spatial
        self.materialize = materialize
        self._spatial_loaded = False
        # The parameter and result columns beyond the core ones, read when first needed (a
        # reopened registry that only answers reads never needs them).
        self._param_columns: dict[str, str] | None = {}
        self._cell_columns: dict[str, str] | None = {}
        # Damaged lines per file as ``log_problems`` holds them, None when not known.
        self._damaged: dict[str, int] | None = None
        self.store = store
        self.reader = LogReader(store)
        self.tracer = tracer
        self.cursors: dict[str, Cursor] = {}
        self.writer_seqs: dict[str, int] = {}
        self.labels_head = 0
        self.labels_c = GENESIS
        self.needs_rebuild = False
        self._affected: dict[str, str] = {}  # affected-key set name → its SQL set expression
        self._ranges: dict[str, tuple[str, str]] = {}
        self._meta: dict[str, str] = {}  # joshreg_meta as this projector last read or wrote it
        # After a merge: every label stream's fold (kept between catch-ups) and the imported
        # streams' versions the tables hold.
        self._streams: LabelStreams | None = None
        self.label_imports: dict[str, int] = {}
        self._fresh = False
        self._open(found)

    def _open(self, found: RegistryFile | None) -> None:
        """Use the tables if this connection holds joshreg's (its marker, ``joshreg_meta``) at
        this projector version, else make them; refuse a database someone else wrote."""
        if found is None:
            found = check_connection(self.con)  # ForeignDatabaseError
        if found.kind != "joshreg" or found.projector_version != PROJECTOR_VERSION:
            self.needs_rebuild = True
            with self._transaction():
                self._reset_tables()
            self._fresh = True  # empty tables of this version: a rebuild need not make them again
            return  # and nothing to load: the state of empty tables is the initial one
        self._load_state(found.checkpoint)

    def _load_state(self, rows: CheckpointRows | None = None) -> None:
        """Take the checkpoint from the tables (one statement), or from ``rows`` that
        ``dbfile`` read from them already."""
        if rows is None:
            rows = read_checkpoint(self.con)
        meta: dict[str, str] = {}
        cursors: dict[str, Cursor] = {}
        seqs: dict[str, int] = {}
        damaged: dict[str, int] = {}
        params: list[tuple[int, str, str]] = []
        for tag, name, value, number, text in rows:
            if tag == 0:
                meta[name] = value
            elif tag == 1:
                cursors[name] = Cursor(int(value), number, text)
            elif tag == 2:
                seqs[name] = int(value)
            elif tag == 3:
                damaged[name] = int(value)
            else:
                params.append((int(value), name, text))
        self.cursors, self.writer_seqs, self._damaged = cursors, seqs, damaged
        self._meta = meta
        self.labels_head = int(meta.get("labels_head", 0))
        self.labels_c = meta.get("labels_c", GENESIS)
        self.label_imports = msgspec.json.decode(meta.get("label_imports", "{}"))
        self._streams = None  # rebuilt from the log when next needed
        self._param_columns = _param_columns(params) if params else None
        self._cell_columns = None  # read when next needed

    @property
    def param_columns(self) -> dict[str, str]:
        """``config_parameters``' columns beyond ``run_hash``: name → type."""
        if self._param_columns is None:
            cols = table_columns(self.con, "config_parameters")
            self._param_columns = _param_columns((0, k, v) for k, v in cols.items())
        return self._param_columns

    @param_columns.setter
    def param_columns(self, columns: dict[str, str]) -> None:
        self._param_columns = columns

    @property
    def cell_columns(self) -> dict[str, str]:
        """``cell_data``'s variable columns (beyond the core ones): name → type."""
        if self._cell_columns is None:
            cols = table_columns(self.con, "cell_data")
            self._cell_columns = {k: v for k, v in cols.items() if k not in CELL_DATA_CORE_COLUMNS}
        return self._cell_columns

    @cell_columns.setter
    def cell_columns(self, columns: dict[str, str]) -> None:
        self._cell_columns = columns

    def _set_meta(self, values: dict[str, str]) -> None:
        """Write the values that differ from the table's (known from ``_meta``), if any."""
        changed = {k: v for k, v in values.items() if self._meta.get(k) != v}
        if not changed:
            return
        # ``_meta`` mirrors the table: its keys are updated in place, new ones inserted (on a
        # freshly opened connection INSERT OR REPLACE costs several times an UPDATE).
        for keys, new in (
            ([k for k in changed if k in self._meta], False),
            ([k for k in changed if k not in self._meta], True),
        ):
            if not keys:
                continue
            rows = ", ".join(f"({sql_literal(k)}, {sql_literal(changed[k])})" for k in keys)
            if new:
                self.con.execute(f"INSERT INTO joshreg_meta VALUES {rows}")
            else:
                self.con.execute(
                    f"UPDATE joshreg_meta SET value = _v.value FROM (VALUES {rows}) AS _v(key, value) "
                    "WHERE joshreg_meta.key = _v.key"
                )
        self._meta.update(changed)  # a rollback reloads it (``_transaction``)

    @contextmanager
    def _transaction(self, *, guarded: bool = False) -> Iterator[None]:
        """Rows and checkpoint commit together; on failure both roll back and the in-memory
        cursors are reloaded from the tables, so nothing is applied twice or skipped.

        A ``guarded`` transaction (a catch-up's batch) first checks that the tables' position
        (``generation`` in ``joshreg_meta``, a digest of the checkpoint) is the one this
        projector loaded: another projector of the same file (a second registry opened on it in
        this process) may have applied the same events meanwhile. Then the state is reloaded
        and ``_CheckpointMoved`` raised, to read on from the tables' checkpoint."""
        self.con.execute("BEGIN")
        try:
            if guarded:
                mine = self._meta.get("generation")
                theirs = self.con.execute(
                    "SELECT max(value) FROM joshreg_meta WHERE key = 'generation'"
                ).fetchone()
                if (theirs[0] if theirs else None) != mine:
                    raise _CheckpointMoved()
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            self._load_state()
            raise
        try:
            self.con.execute("COMMIT")
        except duckdb.TransactionException:  # a concurrent transaction wrote the checkpoint
            self._load_state()
            raise _CheckpointMoved() from None

    def _reset_tables(self) -> None:
        if not self.materialize:  # the views a rebuild made in place of tables go first
            for (name,) in self.con.execute(
                "SELECT view_name FROM duckdb_views() WHERE schema_name = current_schema()"
            ).fetchall():
                if name in VIEWED:
                    self.con.execute(f"DROP VIEW {name}")
        drop_tables(self.con)
        create_tables(self.con)  # the marker table with the others, in the caller's transaction
        self._damaged = None
        self._meta = {}
        self._set_meta({"projector_version": str(PROJECTOR_VERSION), "store_id": self.store.store_id})

    def _trace(self, msg: str) -> None:
        if self.tracer is not None:
            self.tracer(msg)

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
        if self._damaged is None:
            rows = self.con.execute("SELECT segment, count(*) FROM log_problems GROUP BY segment").fetchall()
            self._damaged = dict(rows)
        counts = dict(self._damaged)
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
        done = moved = 0
        while True:
            batch = self.reader.read_new(self.cursors, self.writer_seqs, max_bytes=CHUNK_BYTES)
            labels, commits, rewrite = self._read_labels(batch.problems)
            if not batch.cursors and not commits and not rewrite:
                break
            try:
                self._apply(batch, commits, labels, full=False, rewrite=rewrite)
            except _CheckpointMoved:
                moved += 1  # another projector of this file applied it: read on from its checkpoint
                if moved > 100:
                    raise JoshregError(
                        "the registry's tables keep changing under this catch-up (another registry "
                        "open on the same file in this process); close one of them"
                    ) from None
                continue
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
        self._removals_seen = None
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
        fold that started over) instead of adding them.

        A batch of fewer events than a DuckDB row group is applied on one thread: its statements
        each touch a few hundred rows (and, at most, scan the keys of the tables' older rows),
        where a second thread's partitioning, hand-over and merging cost more than it saves
        (about a third less CPU for 1,000 events on 10^6, and no waiting for a descheduled
        thread on a busy machine)."""
        con = self.con
        try:
            serial = len(batch.events) < SERIAL_BELOW_ROWS
            with one_thread(con, serial), self._transaction(guarded=True):
                self._insert_events(batch)
                if rewrite:
                    con.execute("DELETE FROM label_history")
                    self._removals_seen = None
                self._insert_label_commits(commits)
                # Resets and drops first, so a load they name is not added (see cells.py).
                self._apply_removals(commits, rewrite=rewrite)
                self._warn_late_writes(batch.events, commits)
                self._apply_loads(batch)
                params: dict[str, str] = {}
                collect_param_types(batch.events, params)
                schema_changed = self._ensure_param_columns(params)
                self._register_affected(batch.events, commits)
                # Only resets, drops and restores take rows out of the tables (see _refresh).
                removing = rewrite or any(isinstance(a, REMOVALS) for c in commits for a in c.actions)
                self._refresh(full=full, params_full=schema_changed, upsert=not full and not removing)
                if rewrite:
                    con.execute(ALL_LABELS)
                self._write_checkpoint(batch, labels.state.version, labels.state.last_c)
                if self._streams is not None:
                    self._set_meta({"label_imports": msgspec.json.encode(self._streams.heads()).decode()})
                self._insert_problems(batch.problems)
        finally:
            for name in AFFECTED:
                con.unregister(name)

    def _commit_state(self, batch: ReadBatch, labels: LabelLog) -> None:
        self._fresh = False
        self.cursors.update(batch.cursors)
        self.writer_seqs = batch.writer_seqs
        self.labels_head, self.labels_c = labels.state.version, labels.state.last_c
        if self._streams is not None:
            self.label_imports = self._streams.heads()

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
                getattr(a, "label", None),
                a.run_hash,
                getattr(a, "previous_run_hash", None),
                getattr(a, "archived_as", None),
                getattr(a, "reason", None),
                getattr(a, "superseded_by", None),
                removal_detail(a),
            )
            for c in commits
            for i, a in enumerate(c.actions)
        ]
        row = "(?, ?, make_timestamp(?::BIGINT // 1000), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        self._insert_rows("label_history", row, rows)

    def _insert_problems(self, problems: list[Problem]) -> None:
        if problems:
            self._damaged = None  # counted again when next asked
        self._insert_rows(
            "log_problems", "(?, ?, ?, ?)", [(p.segment, p.line, p.kind, p.detail) for p in problems]
        )

    def _insert_rows(self, table: str, row_sql: str, rows: list[tuple[object, ...]]) -> None:
        """Insert ``rows`` (each filling the placeholders of ``row_sql``) as SQL values, many rows
        per statement: a statement with parameters costs one execution per row, and the first
        one in a process imports pandas (see ``sqltext``). Text holding a NUL, which an SQL
        literal cannot, goes as parameters."""
        if not rows:
            return
        if any("\x00" in v for row in rows for v in row if isinstance(v, str)):
            self.con.executemany(f"INSERT INTO {table} VALUES {row_sql}", rows)
            return
        for at in range(0, len(rows), VALUES_ROWS):
            values = ", ".join(bind(row_sql, row) for row in rows[at : at + VALUES_ROWS])
            self.con.execute(f"INSERT INTO {table} VALUES {values}")

    def _insert_new(self, table: str, rows: list[tuple[object, ...]]) -> None:
        """Insert rows of a checkpoint table whose keys it does not hold: a few as SQL values
        (see ``INLINE_ROWS``), many through Arrow. A plain INSERT: on a freshly opened
        connection ``INSERT OR REPLACE`` of one row cost about five times as much (its conflict
        handling), and a key the table held after all fails the transaction instead of being
        overwritten, so a checkpoint this projector did not know of is reloaded, not lost."""
        if len(rows) <= INLINE_ROWS:
            values = ", ".join("(" + ", ".join(literal(v) for v in row) + ")" for row in rows)
            self.con.execute(f"INSERT INTO {table} VALUES {values}")
            return
        import pyarrow as pa

        columns = [pa.array(list(col)) for col in zip(*rows, strict=True)]
        self.con.register("_new_rows", pa.Table.from_arrays(columns, [f"c{i}" for i in range(len(columns))]))
        try:
            self.con.execute(f"INSERT INTO {table} SELECT * FROM _new_rows")
        finally:
            self.con.unregister("_new_rows")

    def _update(
        self, table: str, columns: tuple[str, ...], rows: list[tuple[object, ...]], known: Container[object]
    ) -> None:
        """Write checkpoint rows keyed by their first column: those whose key the table holds
        (``known``: it mirrors the table, loaded with it and rolled back with it) updated in
        place, the others inserted. An update costs a fraction of replacing the row, which
        deletes it from the key's index and appends it again."""
        old = [r for r in rows if r[0] in known]
        if old:
            values = ", ".join("(" + ", ".join(literal(v) for v in r) + ")" for r in old)
            key, *rest = columns
            sets = ", ".join(f"{c} = _v.{c}" for c in rest)
            self.con.execute(
                f"UPDATE {table} SET {sets} FROM (VALUES {values}) AS _v({', '.join(columns)}) "
                f"WHERE {table}.{key} = _v.{key}"
            )
        new = [r for r in rows if r[0] not in known]
        if new:
            self._insert_new(table, new)

    def _write_checkpoint(
        self,
        batch: ReadBatch,
        labels_head: int,
        labels_c: str,
        previous: dict[str, int] | None = None,
    ) -> None:
        """Persist cursors and writer high-water marks that moved since ``previous``."""
        before = self.writer_seqs if previous is None else previous
        known = self.cursors if previous is None else {}
        if batch.cursors:
            rows = [(name, c.offset, c.line, c.prev) for name, c in batch.cursors.items()]
            self._update("joshreg_segments", ("segment", "byte_offset", "line", "prev"), rows, known)
            changed = [(w, s) for w, s in batch.writer_seqs.items() if before.get(w) != s]
            self._update("joshreg_writers", ("writer", "last_seq"), changed, before)
        cursors = {**self.cursors, **batch.cursors} if previous is None else dict(batch.cursors)
        position = sorted((name, c.offset) for name, c in cursors.items())
        digest = hashlib.blake2b(
            msgspec.json.encode([position, sorted(batch.writer_seqs.items()), labels_head, labels_c]),
            digest_size=8,
        ).hexdigest()
        self._set_meta(
            {
                "labels_head": str(labels_head),
                "labels_c": labels_c,
                "store_id": self.store.store_id,
                "generation": digest,  # what the tables hold, for other projectors of this file
            }
        )


class _CheckpointMoved(Exception):
    """The tables' checkpoint is not the one this projector loaded (it has been reloaded)."""


def _param_columns(columns: Iterable[tuple[int, str, str]]) -> dict[str, str]:
    """``config_parameters``' parameter columns from (position, name, type), in table order,
    with ``table_columns``' type names (DOUBLE for every floating-point type)."""
    return {
        name: "DOUBLE" if typ in ("DOUBLE", "FLOAT", "REAL") else typ
        for _, name, typ in sorted(columns, key=lambda c: c[0])
        if name not in CONFIG_PARAMS_CORE_COLUMNS
    }
