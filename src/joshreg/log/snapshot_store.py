"""A store as a projection has read it: what ``verify`` rebuilds from while writers go on.

Segments are cut at the projection's checkpoint and label streams at its heads, so appends made
meanwhile cause no false alarms. Read-only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager

from joshreg.errors import StoreError
from joshreg.log.labels import PREFIX as LABEL_PREFIX
from joshreg.log.labelstreams import IMPORTED
from joshreg.log.store.base import LogStore, SegmentInfo

__all__ = ["SnapshotStore"]


class SnapshotStore(LogStore):
    """``store`` as a projection has read it: segments cut at ``sizes``, label commits up to
    ``labels_head`` (and imported streams up to ``imports``). Read-only: every write raises
    ``StoreError``; result files and other claims pass through."""

    def __init__(
        self, store: LogStore, sizes: dict[str, int], labels_head: int, imports: dict[str, int] | None = None
    ) -> None:
        self.inner = store
        self.location = store.location
        self.store_id = store.stored_id() or "unidentified"
        self.sizes = sizes
        self.labels_head = labels_head
        self.imports = imports or {}  # imported label stream -> the version the tables hold

    def append(self, segment: str, data: bytes) -> None:
        raise StoreError(f"the snapshot of {self.location} is read-only")

    def sync(self, segment: str) -> None:
        return None

    def close_segment(self, segment: str) -> None:
        return None

    def segments(self) -> list[SegmentInfo]:
        return [
            SegmentInfo(s.name, min(s.size, self.sizes[s.name]), s.modified)
            for s in self.inner.segments()
            if s.name in self.sizes
        ]

    def read(self, segment: str, offset: int = 0, end: int | None = None) -> bytes:
        limit = self.sizes.get(segment, 0)
        return self.inner.read(segment, offset, limit if end is None else min(end, limit))

    def _visible(self, name: str) -> bool:
        if name.startswith(IMPORTED + "/"):
            parts = name.split("/")
            head = self.imports.get("/".join(parts[:2]))
            if head is None or len(parts) < 3:
                return head is not None
            return not parts[2][:20].isdigit() or int(parts[2][:20]) <= head
        if not name.startswith(LABEL_PREFIX + "/"):
            return True
        base = name.rsplit("/", 1)[-1]
        return not base[:20].isdigit() or int(base[:20]) <= self.labels_head

    def claim(self, name: str, data: bytes) -> bool:
        raise StoreError(f"the snapshot of {self.location} is read-only")

    def read_claim(self, name: str) -> bytes | None:
        return self.inner.read_claim(name) if self._visible(name) else None

    def list_claims(self, prefix: str) -> list[str]:
        return [n for n in self.inner.list_claims(prefix) if self._visible(n)]

    def walk_claims(self, prefix: str) -> Iterator[str]:
        return (n for n in self.inner.walk_claims(prefix) if self._visible(n))

    def claim_exists(self, name: str) -> bool:
        return self._visible(name) and self.inner.claim_exists(name)

    def put_segment(self, segment: str, data: bytes) -> bool:
        raise StoreError(f"the snapshot of {self.location} is read-only")

    def exclusive(self, name: str) -> AbstractContextManager[None]:
        raise StoreError(f"the snapshot of {self.location} is read-only")
