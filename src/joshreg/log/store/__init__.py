"""Where the log's bytes live. Backends know names and bytes, never events and never DuckDB."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from joshreg.errors import InvalidArgumentError
from joshreg.log.store.base import LogStore, SegmentInfo
from joshreg.log.store.local import LocalStore
from joshreg.log.store.memory import MemoryStore

__all__ = [
    "LocalStore",
    "LogStore",
    "MemoryStore",
    "SegmentInfo",
    "is_object_location",
    "open_store",
    "store_exists_at",
]


def is_object_location(location: str) -> bool:
    return location.startswith("s3://")


def open_store(
    location: str,
    *,
    create: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    refresh_interval: float = 0.0,
) -> LogStore:
    """The store at ``location``: a directory path, ``s3://bucket/prefix`` (settings from
    ``storage_options``, then the environment, see ``s3options``), or ``":memory:"`` for a
    private in-memory one.

    ``refresh_interval`` (object storage only): list other processes' writes at most this often.
    ``create=False`` raises ``LogFormatError`` instead of making a store where there is none.
    """
    if location == ":memory:":
        return MemoryStore()
    if is_object_location(location):
        from joshreg.log.store.objects import open_s3_store

        return open_s3_store(
            location, create=create, storage_options=storage_options, refresh_interval=refresh_interval
        )
    if storage_options:
        raise InvalidArgumentError(f"storage_options are for s3:// event stores, not {location}")
    return LocalStore(location, create=create)


def store_exists_at(location: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether an event store is already at ``location`` (without creating one)."""
    if is_object_location(location):
        from joshreg.log.store.objects import s3_store_exists

        return s3_store_exists(location, storage_options)
    return location == ":memory:" or os.path.isfile(os.path.join(location, "FORMAT"))
