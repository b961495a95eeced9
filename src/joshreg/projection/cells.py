"""Result files into ``cell_data``: first load of each source, run and entity type, in log order,
consecutive files of one layout in one INSERT, read ahead in threads.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import msgspec

from joshreg.log.codec import Problem
from joshreg.log.events import (
    ResultsLoaded,
)
from joshreg.log.reader import ReadBatch
from joshreg.projection.handover import handed_over
from joshreg.projection.removals import LIVE_RESULT, counted_loads
from joshreg.projection.sqltext import quote_identifier, sql_literal
from joshreg.projection.tables import CELL_DATA_CORE_COLUMNS, widen

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from joshreg.projection.handover import Handover

_Load = tuple[str | None, str, str, str, dict[str, str]]  # run id, run hash, entity type, blob, columns

BLOB_BATCH_ROWS = 1 << 20  # result rows inserted at once (files of one column layout)
# Fewer rows than DuckDB's row group go to the WAL whatever the threads; one thread inserts them
# in half the time two take (no ordered merge of the threads' pieces). Larger inserts keep every
# thread: they write whole row groups straight to the file, which makes their commit cheap.
SERIAL_BELOW_ROWS = 122_880


class ProjectResults:
    """How loaded results reach ``cell_data``. A mixin of ``Projector``."""

    def _load_all_results(self, problems: list[Problem]) -> None:
        """Fill ``cell_data`` from every result load in the event table, first load of each
        source, run and entity type only, in log order, leaving out what live resets and drops
        name (a full rebuild)."""
        self.cell_columns = {}
        rows = self.con.execute(counted_loads()).fetchall()
        self._load_blobs(((*r[:4], msgspec.json.decode(r[4] or "{}")) for r in rows), problems)

    def _apply_loads(self, batch: ReadBatch) -> None:
        """Project the batch's result loads; a load whose source, run and entity type were
        loaded before adds no rows (the first in log order counts)."""
        import pyarrow as pa

        loads = sorted(
            (e for e in batch.events if type(e) is ResultsLoaded),
            key=lambda e: (e.hlc, e.writer, e.seq),
        )
        if not loads:
            return
        if self._any_removals():
            removed = self._removed_among(loads)
            loads = [e for e in loads if e.event_id not in removed and e.run_id not in removed]  # type: ignore[attr-defined]
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
                    "SELECT k.s, k.r, k.t, count(*) FROM _keys k JOIN "
                    f"(SELECT * FROM events_results_loaded WHERE {LIVE_RESULT}) e "
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

    def _removed_among(self, loads: list[ResultsLoaded]) -> set[str]:
        """The event ids and run ids of ``loads`` that a live reset or drop names."""
        ids = {e.event_id for e in loads} | {e.run_id for e in loads if e.run_id is not None}
        listed = ", ".join(sql_literal(i) for i in sorted(ids))
        rows = self.con.execute(
            f"SELECT key FROM removed_keys WHERE kind IN ('result', 'run_id') AND key IN ({listed})"
        ).fetchall()
        return {r[0] for r in rows}

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
        handover = handed_over(self.store)  # tables this thread's batch load just stored
        read_blob = self._read_blob if handover is None else _handed(handover, self._read_blob)
        for (run_id, run_hash, entity_type, _, columns), read in _read_in_threads(loads, read_blob):
            table = read(problems)
            if table is None:
                continue
            shape = tuple(f"{f.name}:{f.type}" for f in table.schema)
            if pending and (shape != layout or self._cell_columns_change(columns) or rows >= BLOB_BATCH_ROWS):
                self._insert_cells(pending)
                pending, rows = [], 0
            self._ensure_cell_columns(columns)
            n = table.num_rows
            table = table.append_column("run_id", _constant(run_id, n))
            table = table.append_column("run_hash", _constant(run_hash, n))
            table = table.append_column("entity_type", _constant(entity_type, n))
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
        import pyarrow as pa
        import pyarrow.parquet as pq

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
        import numpy as np
        import pyarrow as pa

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
            # A point where both coordinates are finite, from WKB made here in one pass:
            # DuckDB's own ST_GeomFromWKB needs no extension (loading spatial costs 0.2-0.4 s a
            # connection) and is 7x faster than going through WKT; the bytes equal ST_Point's.
            points = _points_wkb(table.column("longitude"), table.column("latitude"))
            table = table.append_column("_wkb", points)
            geom = "CASE WHEN isfinite(longitude) AND isfinite(latitude) THEN ST_GeomFromWKB(_wkb) END"
        self.con.register("_blob", table)
        try:
            with one_thread(self.con, n < SERIAL_BELOW_ROWS):
                self.con.execute(
                    "INSERT INTO cell_data (cell_id, run_id, run_hash, step, replicate, position_x, "
                    f"position_y, longitude, latitude, entity_type, geom{names}) "
                    f"SELECT {int(first)} + _ord, run_id, run_hash, step, replicate, position_x, "
                    f"position_y, longitude, latitude, entity_type, {geom}{names} FROM _blob"
                )
        finally:
            self.con.unregister("_blob")

    def _cell_columns_change(self, wanted: dict[str, str]) -> bool:
        """Whether ``_ensure_cell_columns(wanted)`` would add or widen a column."""
        for name, typ in wanted.items():
            have = self.cell_columns.get(name)
            if have is None or (have != "VARCHAR" and widen(have, typ) == "VARCHAR"):
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
            elif have != "VARCHAR" and widen(have, typ) == "VARCHAR":
                self.con.execute(f"ALTER TABLE cell_data ALTER COLUMN {quote_identifier(name)} TYPE VARCHAR")
                self.cell_columns[name] = "VARCHAR"


def _handed(
    handover: Handover, read: Callable[[_Load], Callable[[list[Problem]], pa.Table | None]]
) -> Callable[[_Load], Callable[[list[Problem]], pa.Table | None]]:
    """``read``, except that a result file whose parsed table was handed over is not read: its
    bytes were encoded from that table and are named by their hash, so they decode to it."""

    def read_or_take(load: _Load) -> Callable[[list[Problem]], pa.Table | None]:
        table = handover.get(load[3])
        if table is None:
            return read(load)
        return lambda problems: table

    return read_or_take


@contextmanager
def one_thread(con: duckdb.DuckDBPyConnection, serial: bool) -> Iterator[None]:
    """DuckDB on one thread while inside (when ``serial``: work under ``SERIAL_BELOW_ROWS``),
    then the setting it had."""
    if not serial:
        yield
        return
    row = con.execute("SELECT current_setting('threads')").fetchone()
    con.execute("SET threads = 1")
    try:
        yield
    finally:
        con.execute(f"SET threads = {int(row[0]) if row else 1}")


def _constant(value: str | None, n: int) -> pa.Array:
    """``n`` copies of one text as a dictionary array: zeros and the text once, instead of the
    text ``n`` times (``pa.repeat`` cost about 0.15 s a column per million rows); DuckDB inserts
    it into a VARCHAR column as the same values, and a bit faster."""
    import numpy as np
    import pyarrow as pa

    kind = pa.dictionary(pa.int32(), pa.string())
    if value is None:
        return pa.nulls(n, kind)
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value], pa.string()))


def _points_wkb(longitude: pa.ChunkedArray, latitude: pa.ChunkedArray) -> pa.Array:
    """Little-endian WKB points (byte order, type 1, x, y: 21 bytes each) of the coordinates;
    a missing one becomes NaN (the caller's CASE gives those rows no point)."""
    import numpy as np
    import pyarrow as pa

    n = len(longitude)
    points = np.empty(n, dtype=[("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])
    points["order"] = 1
    points["type"] = 1
    points["x"] = longitude.to_numpy()
    points["y"] = latitude.to_numpy()
    offsets = np.arange(0, 21 * (n + 1), 21, dtype=np.int64)
    return pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(points)])


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
