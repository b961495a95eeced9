"""The read-only contract for verify's snapshot store, over both writing backends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from joshreg.log.snapshot_store import SnapshotStore
from joshreg.log.store import LogStore, open_store
from joshreg.testing.store_contract import ReadOnlyStoreContract


def _snapshot(inner: LogStore, fill: Callable[[LogStore], None]) -> SnapshotStore:
    fill(inner)
    inner.append("log/w.jsonl", b"written after the checkpoint\n")  # cut off by the snapshot
    inner.claim("labels/00000000000000000002.json", b"a later commit\n")  # past the labels head
    return SnapshotStore(inner, {"log/w.jsonl": len(b"one\ntwo\n")}, labels_head=1)


class TestSnapshotOfALocalStore(ReadOnlyStoreContract):
    store_class = SnapshotStore

    def make_store(self, tmp_path: Path, fill: Callable[[LogStore], None]) -> LogStore:
        return _snapshot(open_store(str(tmp_path / "x.events")), fill)


class TestSnapshotOfAMemoryStore(ReadOnlyStoreContract):
    store_class = SnapshotStore

    def make_store(self, tmp_path: Path, fill: Callable[[LogStore], None]) -> LogStore:
        return _snapshot(open_store(":memory:"), fill)
