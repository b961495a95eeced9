"""Where the log's bytes live. Backends know names and bytes, never events and never DuckDB."""

from __future__ import annotations

from .base import LogStore, SegmentInfo
from .local import LocalStore
from .memory import MemoryStore

__all__ = ["LocalStore", "LogStore", "MemoryStore", "SegmentInfo", "open_store"]


def open_store(location: str) -> LogStore:
    """The store at ``location``: a directory path, or ``":memory:"`` for a private in-memory one."""
    if location == ":memory:":
        return MemoryStore()
    return LocalStore(location)
