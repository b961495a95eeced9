"""An in-process store for ``":memory:"`` registries and tests. Imports ``store.base``."""

from __future__ import annotations

import threading

from .base import LogStore, SegmentInfo

__all__ = ["MemoryStore"]


class MemoryStore(LogStore):
    """Segments and claims in dictionaries; visible only inside this process."""

    def __init__(self) -> None:
        self.location = ":memory:"
        self._segments: dict[str, bytearray] = {}
        self._claims: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def append(self, segment: str, data: bytes) -> None:
        with self._lock:
            self._segments.setdefault(segment, bytearray()).extend(data)

    def sync(self, segment: str) -> None:
        return None

    def close_segment(self, segment: str) -> None:
        return None

    def segments(self) -> list[SegmentInfo]:
        with self._lock:
            return [SegmentInfo(n, len(b)) for n, b in sorted(self._segments.items())]

    def read(self, segment: str, offset: int = 0, end: int | None = None) -> bytes:
        with self._lock:
            buf = self._segments.get(segment, bytearray())
            return bytes(buf[offset:end])

    def claim(self, name: str, data: bytes) -> bool:
        with self._lock:
            if name in self._claims:
                return False
            self._claims[name] = bytes(data)
            return True

    def read_claim(self, name: str) -> bytes | None:
        with self._lock:
            return self._claims.get(name)

    def list_claims(self, prefix: str) -> list[str]:
        p = prefix.rstrip("/") + "/"
        with self._lock:
            return sorted(n for n in self._claims if n.startswith(p))
