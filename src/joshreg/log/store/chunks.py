"""How a segment lies in a bucket: chunk objects named by time bucket, segment and offset.

A writer's segment ``log/<writer>.jsonl`` is a sequence of immutable chunk objects, one per
upload, named

    log/<time bucket>/<writer>.jsonl/<start offset, 20 digits>.chunk

where the time bucket (``20261202T203010``: UTC, 10-second steps) is the writer's clock when
the upload began. Keys sort by time first, so one listing that starts after a bucket
(S3's ``start_after``) finds every chunk uploaded since then, from every writer: a reader's
catch-up costs grow with what is new, not with the number of writers or the size of the store.
Within a segment the offsets put the chunks in order, and the lines continue the segment's
checksum chain, so a gap, a duplicate or an edited chunk shows exactly as on disk.

A reader lists again from ``GRACE_S`` before its previous listing, which covers uploads that
took long and writers whose clocks lag; a full listing every ``FULL_LISTING_S`` finds anything
older still. A segment is only as long as its chunks are contiguous from offset 0: a missing
chunk is "not yet visible" (the bytes after it are not read) until verify, after the grace
period, calls it lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = [
    "BUCKET_S",
    "CHUNK_SUFFIX",
    "FULL_LISTING_S",
    "GRACE_S",
    "ChunkIndex",
    "ChunkRef",
    "bucket_of",
    "chunk_name",
    "parse_chunk_name",
]

CHUNK_SUFFIX = ".chunk"
BUCKET_S = 10
#: How far before its previous listing a reader lists again (slow uploads, lagging clocks).
GRACE_S = 30.0
#: How often a reader lists the whole log (a writer whose clock lags more than the grace).
FULL_LISTING_S = 60.0


def bucket_of(when: float) -> str:
    """The time bucket of POSIX time ``when``: UTC, ``BUCKET_S``-second steps, sortable."""
    step = int(when) // BUCKET_S * BUCKET_S
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(step))


def chunk_name(segment: str, offset: int, when: float) -> str:
    """The object name (relative to the store) of ``segment``'s chunk starting at ``offset``."""
    folder, _, base = segment.rpartition("/")
    if folder != "log" or not base:
        raise ValueError(f"a segment is named log/<name>, not {segment!r}")
    return f"log/{bucket_of(when)}/{base}/{offset:020d}{CHUNK_SUFFIX}"


def parse_chunk_name(name: str) -> tuple[str, int, str] | None:
    """``(segment, offset, bucket)`` of a chunk name; None for anything else under ``log/``."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "log" or not parts[3].endswith(CHUNK_SUFFIX):
        return None
    digits = parts[3][: -len(CHUNK_SUFFIX)]
    if not digits.isdigit():
        return None
    return f"log/{parts[2]}", int(digits), parts[1]


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """A chunk object: where it starts, how long it is, its name, when the service stored it."""

    offset: int
    size: int
    name: str
    modified: float | None = None


@dataclass
class ChunkIndex:
    """What a reader knows of the chunks in a bucket, built from listings (full or new only)."""

    chunks: dict[str, dict[int, ChunkRef]] = field(default_factory=dict)

    def add(self, segment: str, ref: ChunkRef) -> None:
        self.chunks.setdefault(segment, {})[ref.offset] = ref

    def forget(self, segment: str) -> None:
        self.chunks.pop(segment, None)

    def ordered(self, segment: str) -> list[ChunkRef]:
        """The segment's known chunks that are contiguous from offset 0, in order."""
        known = self.chunks.get(segment, {})
        out: list[ChunkRef] = []
        at = 0
        while (ref := known.get(at)) is not None and ref.size > 0:
            out.append(ref)
            at += ref.size
        return out

    def size(self, segment: str) -> int:
        """Bytes readable from the start without a gap."""
        return sum(ref.size for ref in self.ordered(segment))

    def gaps(self, segment: str) -> list[tuple[int, ChunkRef]]:
        """``(where the contiguous bytes end, the first chunk after)`` when chunks are known past
        a missing one: ``[]`` for a whole segment."""
        end = self.size(segment)
        later = sorted(o for o in self.chunks.get(segment, {}) if o > end)
        return [(end, self.chunks[segment][later[0]])] if later else []

    def modified(self, segment: str) -> float | None:
        stamps = [r.modified for r in self.chunks.get(segment, {}).values() if r.modified is not None]
        return max(stamps) if stamps else None
