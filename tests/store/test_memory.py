"""The LogStore contract for MemoryStore."""

from __future__ import annotations

from pathlib import Path

from joshreg.log.store import LogStore, MemoryStore, open_store
from joshreg.testing.store_contract import LogStoreContract


class TestMemoryStore(LogStoreContract):
    store_class = MemoryStore

    def make_store(self, tmp_path: Path) -> LogStore:
        return open_store(":memory:")


def test_memory_stores_are_private() -> None:
    a, b = MemoryStore(), MemoryStore()
    a.append("log/x.jsonl", b"x\n")
    assert b.segments() == []
