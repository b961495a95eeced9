"""An in-process store for ``":memory:"`` registries and tests."""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Iterator

from joshreg.errors import StoreError
from joshreg.log.store.base import LogStore, SegmentInfo
from joshreg.log.store.compacted import PREFIX as COMPACTED
from joshreg.log.store.compacted import container_bytes, longest_copy, merge_listing

__all__ = ["MemoryStore"]


class MemoryStore(LogStore):
    """Segments and claims in dictionaries; visible only inside this process."""

    def __init__(self) -> None:
        self.location = ":memory:"
        self.store_id = "memory-" + secrets.token_hex(8)
        self._segments: dict[str, bytearray] = {}
        self._claims: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}  # exclusive(): one per name

    def append(self, segment: str, data: bytes) -> None:
        with self._lock:
            self._segments.setdefault(segment, bytearray()).extend(data)

    def sync(self, segment: str) -> None:
        return None

    def close_segment(self, segment: str) -> None:
        return None

    def segments(self) -> list[SegmentInfo]:
        with self._lock:
            files = [SegmentInfo(n, len(b)) for n, b in sorted(self._segments.items())]
            compacted = [(n, None) for n in self._claims if n.startswith(COMPACTED + "/")]
        return merge_listing(files, compacted) if compacted else files

    def _compacted_copy(self, segment: str) -> tuple[str, int] | None:
        with self._lock:
            claims = [n for n in self._claims if n.startswith(COMPACTED + "/")]
        return longest_copy(claims, segment)

    def read(self, segment: str, offset: int = 0, end: int | None = None) -> bytes:
        with self._lock:
            buf = self._segments.get(segment)
            if buf is not None:
                return bytes(buf[offset:end])
        copy = self._compacted_copy(segment)
        if copy is None:
            return b""
        try:
            data = container_bytes(self._claims[copy[0]])
        except Exception as e:  # damaged or foreign file: pyarrow raises many kinds
            raise StoreError(f"cannot read the compacted segment {copy[0]}: {e}") from e
        return data[offset:end]

    def retire_segment(self, segment: str) -> bool:
        copy = self._compacted_copy(segment)
        with self._lock:
            buf = self._segments.get(segment)
            if buf is None:
                return False
            if copy is None or copy[1] < len(buf):
                raise StoreError(
                    f"refusing to delete {segment}: no compacted copy holds its {len(buf)} bytes"
                )
            del self._segments[segment]
            return True

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

    def walk_claims(self, prefix: str) -> Iterator[str]:
        p = prefix.rstrip("/") + "/"
        with self._lock:
            return iter(sorted(n for n in self._claims if n.startswith(p)))

    def claim_exists(self, name: str) -> bool:
        with self._lock:
            return name in self._claims

    def put_segment(self, segment: str, data: bytes) -> bool:
        with self._lock:
            if segment in self._segments:
                return False
            self._segments[segment] = bytearray(data)
            return True

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        with self._lock:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            yield
