"""Reading the next Josh exports of a batch while the registry loads the current one.

``CellDataLoader.load_csv_batch`` loads its files one at a time through ``load_results``, which
reads each file itself (after checking the run). Inside ``reading_ahead(paths)``,
``read_josh_csv`` takes a local file's export from a background thread that parsed it and
encoded its Parquet result file ahead, when the file is unchanged since (same size,
modification time and inode): so the parsing of the next file (pyarrow, off the GIL) overlaps
the projection of this one (DuckDB). Nothing else about a load changes: the run is checked
before the file is asked for, a file read ahead that failed is read again in its turn (raising
the same error there), and a file in a bucket is read in its turn as before.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from typing import TYPE_CHECKING

from joshreg.results.locations import is_object_uri

if TYPE_CHECKING:
    from joshreg.results.josh_csv import JoshExport

__all__ = ["reading_ahead", "take_read_ahead"]

# Read ahead at least this many files, and more while their CSV bytes stay under AHEAD_BYTES:
# the reading goes on while the registry's catch-up inserts the files before (DuckDB), so the
# window must outlast a catch-up, and the parsed tables (about 3x the CSV) stay in bounds.
WINDOW = 2
AHEAD_BYTES = 32 << 20

_Stat = tuple[int, int, int, int]
_current: ContextVar[_ReadAhead | None] = ContextVar("joshreg_read_ahead", default=None)


@contextmanager
def reading_ahead(paths: Iterable[str | os.PathLike[str]]) -> Iterator[None]:
    """While inside, ``read_josh_csv`` of these local files, in this order, finds them read."""
    local = [p for p in paths if isinstance(p, str | os.PathLike) and not is_object_uri(p)]
    ahead = _ReadAhead([os.path.abspath(os.fspath(p)) for p in local])
    token = _current.set(ahead)
    try:
        yield
    finally:
        _current.reset(token)
        ahead.close()


def take_read_ahead(path: str | os.PathLike[str]) -> JoshExport | None:
    """The export of ``path`` if it was read ahead and is unchanged since, else None."""
    ahead = _current.get()
    if ahead is None or is_object_uri(path):
        return None
    return ahead.take(os.path.abspath(os.fspath(path)))


def _stat(path: str) -> _Stat:
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def _read(path: str) -> tuple[_Stat, JoshExport]:
    from joshreg.results.josh_csv import parse_josh_csv, to_parquet_bytes

    before = _stat(path)
    export = parse_josh_csv(path)
    return before, replace(export, parquet=to_parquet_bytes(export.table))


class _ReadAhead:
    """Up to ``WINDOW`` reads in flight, in the order the batch will ask for them."""

    def __init__(self, paths: list[str]) -> None:
        self._todo = deque(paths)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="joshreg-csv")
        self._ahead: deque[tuple[str, Future[tuple[_Stat, JoshExport]]]] = deque()
        self._sizes: deque[int] = deque()  # CSV bytes of each file in _ahead
        self._fill()

    def _fill(self) -> None:
        while self._todo and (len(self._ahead) < WINDOW or sum(self._sizes) < AHEAD_BYTES):
            path = self._todo.popleft()
            try:
                size = os.path.getsize(path)
            except OSError:
                size = 0  # the read fails, and the caller's own read raises it in its turn
            self._ahead.append((path, self._pool.submit(_read, path)))
            self._sizes.append(size)

    def take(self, path: str) -> JoshExport | None:
        if not self._ahead or self._ahead[0][0] != path:
            return None  # asked out of order: read in its turn
        _, future = self._ahead.popleft()
        self._sizes.popleft()
        self._fill()
        try:
            before, export = future.result()
            if _stat(path) != before:
                return None
        except Exception:  # the caller's own read raises it, in its turn and order
            return None
        return export

    def close(self) -> None:
        for _, future in self._ahead:
            future.cancel()
        self._pool.shutdown(wait=True)
