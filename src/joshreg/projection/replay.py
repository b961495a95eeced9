"""Reading the whole log for a rebuild: segments in batches read ahead in a thread, clean
compacted segments straight from their Parquet, the lines to DuckDB as Arrow text.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING

import msgspec

from joshreg.log.events import event_types
from joshreg.log.reader import Cursor, LogReader, ReadBatch
from joshreg.log.store.base import LogStore, SegmentInfo
from joshreg.log.store.compacted import container_metadata, read_container
from joshreg.projection.sqltext import INLINE_BYTES, INLINE_ROWS, sql_literal
from joshreg.projection.tables import event_insert_sql, widen_into

if TYPE_CHECKING:
    import pyarrow as pa

_TAG = {cls: tag for tag, cls in event_types().items()}
CHUNK_BYTES = 64 << 20
# A rebuild's first batch, doubled per batch up to CHUNK_BYTES: DuckDB idles until it arrives.
FIRST_CHUNK_BYTES = 4 << 20
FAST_BATCH_BYTES = 256 << 20  # JSONL bytes of compacted segments inserted at once by a rebuild
PREFETCH_THREADS = 2  # compacted segments a rebuild reads at once, ahead of its inserts
PREFETCH_BYTES = FAST_BATCH_BYTES  # and how many of their JSONL bytes may wait, read, to be taken

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


class ReplaySegments:
    """How a rebuild reads every segment into the event tables. A mixin of ``Projector``."""

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

        def clean_candidate(seg: SegmentInfo) -> bool:
            return (
                seg.compacted is not None
                and seg.jsonl_size is None  # an unfinished compaction: read the JSONL, as catch-up does
                and seg.size > self.cursors.get(seg.name, Cursor()).offset
            )

        containers = _Prefetch(self.store, [s for s in segments if clean_candidate(s)])
        try:
            for seg in segments:
                if not clean_candidate(seg):
                    slow.append(seg)
                    continue
                read_slow()
                cursor = self._read_compacted(seg, containers.take(seg), fast)
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
        finally:
            containers.close()
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
            widen_into(into, msgspec.json.decode(text or "{}", type=dict[str, str]))

    def _read_compacted(
        self, seg: SegmentInfo, loaded: _Loaded | None, fast: list[pa.Table]
    ) -> Cursor | None:
        """Add the rows of a clean compacted segment (``loaded``: its container's table and
        metadata, None when unreadable or not clean) to ``fast``; its new cursor, or None when
        it must be read line by line instead.

        Clean means every line intact, chained and decoded, one writer, seqs 1..n in line
        order: exactly the case where ``read_new`` takes lines ``mark + 1 ..`` whole, so this
        gives the same rows, cursor and high-water mark.
        """
        import pyarrow as pa

        if loaded is None:
            return None
        table, meta = loaded
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
            return  # before importing pyarrow.compute (about 60 ms), which a JSONL-only rebuild never needs
        import pyarrow as pa
        import pyarrow.compute as pc

        raw = pa.concat_tables(fast)
        fast.clear()
        self.con.register("_raw", raw)
        try:
            for tag in sorted(pc.unique(raw["type"]).to_pylist()):
                self.con.execute(
                    event_insert_sql(tag, f"(SELECT * FROM _raw WHERE type = {sql_literal(tag)})")
                )
        finally:
            self.con.unregister("_raw")

    def _insert_events(self, batch: ReadBatch, raw: pa.Table | None = None) -> None:
        """The raw lines go to DuckDB as one Arrow table (``_raw_lines``'s, or ``raw`` when the
        caller built it already); DuckDB parses each event type's lines into that type's typed
        table (vectorised, instead of building columns here)."""
        if raw is None:
            if not batch.events:
                return
            if len(batch.lines) <= INLINE_ROWS and sum(map(len, batch.lines)) <= INLINE_BYTES:
                self._insert_few_events(batch)
                return
            raw = _raw_lines(batch)
        self.con.register("_raw", raw)
        try:
            for tag in sorted(raw["type"].combine_chunks().dictionary.to_pylist()):  # the types present
                source = f"(SELECT body, segment, line FROM _raw WHERE type = '{tag}')"
                self.con.execute(event_insert_sql(tag, source))
        finally:
            self.con.unregister("_raw")

    def _insert_few_events(self, batch: ReadBatch) -> None:
        """``_insert_events`` for a small batch: its lines as SQL values, no Arrow."""
        by_tag: dict[str, list[str]] = {}
        for event, line, origin, lineno in zip(
            batch.events, batch.lines, batch.origins, batch.linenos, strict=True
        ):
            row = f"({sql_literal(line.decode())}, {sql_literal(origin)}, {lineno})"
            by_tag.setdefault(_TAG[type(event)], []).append(row)
        for tag in sorted(by_tag):
            source = f"(SELECT * FROM (VALUES {', '.join(by_tag[tag])}) AS _raw(body, segment, line))"
            self.con.execute(event_insert_sql(tag, source))


_Loaded = "tuple[pa.Table, dict[str, bytes]]"


def _load_container(store: LogStore, seg: SegmentInfo) -> _Loaded | None:
    """The rows a rebuild takes from a compacted segment (type, seq, line) and its metadata;
    None when the claim is gone, damaged, or not clean (the line by line path reports why)."""
    assert seg.compacted is not None
    data = store.read_claim(seg.compacted)
    if data is None:
        return None
    try:
        meta = container_metadata(data)
        if meta.get("clean") != b"1" or int(meta.get("source_bytes", b"-1")) != seg.size:
            return None
        table, _ = read_container(data, ["type", "seq", "line"])
    except Exception:  # damaged: pyarrow raises many kinds
        return None
    return table, meta


class _Prefetch:
    """Compacted segments read and decoded ahead in threads while DuckDB inserts the ones before
    (pyarrow reads without the GIL): at most ``FAST_BATCH_BYTES`` of segments waiting, and
    a segment is always taken in the order given."""

    def __init__(self, store: LogStore, segments: list[SegmentInfo]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._store = store
        self._queue = list(reversed(segments))
        self._futures: dict[str, Future[_Loaded | None]] = {}
        self._ahead = 0
        self._pool = ThreadPoolExecutor(PREFETCH_THREADS, "joshreg-compacted") if segments else None
        self._fill()

    def _fill(self) -> None:
        while (
            self._queue and self._pool is not None and (not self._futures or self._ahead < FAST_BATCH_BYTES)
        ):
            seg = self._queue.pop()
            self._futures[seg.name] = self._pool.submit(_load_container, self._store, seg)
            self._ahead += seg.size

    def take(self, seg: SegmentInfo) -> _Loaded | None:
        """``seg``'s container, as ``_load_container`` gives it."""
        future = self._futures.pop(seg.name, None)
        loaded = _load_container(self._store, seg) if future is None else future.result()
        self._ahead -= seg.size if future is not None else 0
        self._fill()
        return loaded

    def close(self) -> None:
        if self._pool is not None:
            for future in self._futures.values():
                future.cancel()
            self._pool.shutdown(wait=True)
            self._futures.clear()


_Ahead = "tuple[ReadBatch, pa.Table | None] | BaseException | None"


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
                raw = _raw_lines(batch) if batch.events else None
                if not put((_without_events(batch), raw)) or not batch.more:
                    break
                _release(batch)
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


def _without_events(batch: ReadBatch) -> ReadBatch:
    """What the consumer of ``_read_ahead`` needs of a batch besides its ``_raw_lines``: where
    each segment stands, the marks and the problems. The events stay with the reading thread,
    which frees them: freeing 10^5 events at once holds the GIL for tens of milliseconds."""
    return ReadBatch(
        cursors=batch.cursors,
        writer_seqs=batch.writer_seqs,
        problems=batch.problems,
        duplicates=batch.duplicates,
        more=batch.more,
    )


def _release(batch: ReadBatch, piece: int = 4096) -> None:
    """Free a batch's events and lines a few thousand at a time, so that a thread waiting
    for the GIL gets it between pieces."""
    batch.bodies.clear()
    for items in (batch.events, batch.lines):
        while items:
            del items[-piece:]


def _raw_lines(batch: ReadBatch) -> pa.Table:
    """A batch's lines as the Arrow table ``_insert_events`` gives DuckDB: type, text, segment
    and line number of each event."""
    import pyarrow as pa

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
    buffer: ``pa.array`` on a list of bytes objects costs far more a line than joining them,
    and a run used in place costs only its offsets."""
    import pyarrow as pa

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
    import numpy as np
    import pyarrow as pa

    n = len(lines)
    if buffer is None:
        buffer = b"\n".join([*lines, b""])
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.fromiter(map(len, lines), np.int64, n) + 1, out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(buffer)]
    return pa.Array.from_buffers(pa.large_binary(), n, buffers).cast(pa.large_string())
