"""Where the log's bytes live. Backends know names and bytes, never events and never DuckDB."""

from __future__ import annotations

import os

from joshreg.log.store.base import LogStore, SegmentInfo
from joshreg.log.store.local import LocalStore
from joshreg.log.store.memory import MemoryStore

__all__ = ["LocalStore", "LogStore", "MemoryStore", "SegmentInfo", "open_store", "store_exists_at"]


def open_store(location: str, *, create: bool = True) -> LogStore:
    """The store at ``location``: a directory path, or ``":memory:"`` for a private in-memory one.

    ``create=False`` raises ``LogFormatError`` instead of making a store where there is none.
    """
    if location == ":memory:":
        return MemoryStore()
    return LocalStore(location, create=create)


def store_exists_at(location: str) -> bool:
    """Whether an event store is already at ``location`` (without creating one)."""
    return location == ":memory:" or os.path.isfile(os.path.join(location, "FORMAT"))
