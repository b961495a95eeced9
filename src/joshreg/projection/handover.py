"""Result tables a batch load just stored, handed to its own catch-up instead of read back.

A batch load (``RunRegistry._load_results_batch``) parses each export, stores its rows as a
content-addressed Parquet result file and appends the event naming it, exactly as before.
Inside ``handing_over(store)`` it also leaves the parsed table here under the file's name, and
the projector of the same store, catching up on the same thread, takes the table instead of
reading and decoding the file it was encoded into: the file is named by the hash of its bytes,
and those bytes decode to this very table, so the rows are the same. The tables are held only
until the load's next catch-up (``clear``) and never outside the block; a rebuild, another
process or another store reads the files as always.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Handover", "handed_over", "handing_over"]

_current: ContextVar[Handover | None] = ContextVar("joshreg_handover", default=None)


class Handover:
    """Parsed tables by result-file name, for one store."""

    def __init__(self, store: object) -> None:
        self.store = store
        self._tables: dict[str, pa.Table] = {}

    def put(self, blob: str, table: pa.Table) -> None:
        """Leave ``table``, the decoded content of result file ``blob`` just stored."""
        self._tables[blob] = table

    def get(self, blob: str) -> pa.Table | None:
        return self._tables.get(blob)

    def clear(self) -> None:
        """Drop every table (after the catch-up that inserted them)."""
        self._tables.clear()


@contextmanager
def handing_over(store: object) -> Iterator[Handover]:
    """While inside, this thread's catch-ups of ``store`` take the tables put here."""
    handover = Handover(store)
    token = _current.set(handover)
    try:
        yield handover
    finally:
        _current.reset(token)
        handover.clear()


def handed_over(store: object) -> Handover | None:
    """The current handover for ``store`` (the same object), else None."""
    handover = _current.get()
    return handover if handover is not None and handover.store is store else None
