"""The contract every log store keeps.

A store holds three kinds of named bytes:

- **segments** under ``log/``: append-only files, each with exactly one writer process. A
  reader may see a segment grow at any time and must treat bytes after the last newline as not
  yet written.
- **claims**: immutable objects created with put-if-absent. Exactly one of several concurrent
  ``claim`` calls for a name succeeds, and the content is complete before the name appears.
  The label log (``labels/<version>.json``), session ids, result blobs and compacted segments
  (``compacted/<stem>.<size>.parquet``, see ``store.compacted``) are claims.
- nothing else: there is no rename and no overwrite in the contract, and one delete only.

Merging registries (``joshreg.operations.merge``) needs three more promises, written against
this interface so that every backend can be merged from and into: ``walk_claims`` lists every
claim under a folder, however deep; ``put_segment`` creates a whole segment at once unless its
name exists (a merge copies another writer's finished segment); ``exclusive`` serialises
maintenance across processes (two merges into one target never interleave).

Compaction, the one maintenance operation, extends the contract:

- A **compacted segment** is listed by ``segments()`` under its JSONL name and size, and
  ``read`` gives exactly the bytes the JSONL held, whether the JSONL is still there or not; so
  a reader cannot tell, except through ``SegmentInfo.compacted``.
- ``retire_segment`` deletes a segment's JSONL file, and refuses unless a compacted copy at
  least as long is already durable. It is the only delete; only the compactor calls it, and
  only for a segment whose writer has finished (sealed it, or died).
- ``discard_temporaries`` deletes the temporary files of claims whose process died before
  naming them (a crashed compaction leaves a big one); they were never visible.

Guarantees:

- **Single writer.** ``append`` to a segment is only ever called by the process that created it,
  so a short write can be completed by a second write without corrupting another writer.
- **Durability.** After ``sync(segment)`` returns, every byte appended before it survives a crash
  of the machine. After ``claim`` returns True the claim is durable.
- **No shared mutable state.** Two processes never write the same file; the only contended
  operation is ``claim``.
"""

from __future__ import annotations

import json
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from joshreg.errors import LogFormatError, StoreError

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "LogStore", "SegmentInfo", "format_body", "read_format"]

#: What every store's ``FORMAT`` says, whatever holds it (a folder, a bucket).
FORMAT_NAME = "joshreg-events"
FORMAT_VERSION = 1


def format_body() -> bytes:
    """A new store's ``FORMAT``: the format, its version and a new store id."""
    body = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "store_id": secrets.token_hex(16)}
    return json.dumps(body).encode() + b"\n"


def read_format(raw: bytes, location: str) -> str | None:
    """The store id a ``FORMAT`` names (None for a store made before ids existed); raises
    ``LogFormatError`` for anything but a joshreg store this joshreg can read."""
    try:
        info = json.loads(raw or b"{}")
    except ValueError as e:
        raise LogFormatError(f"{location}/FORMAT is not a joshreg FORMAT file: {e}") from e
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        raise LogFormatError(f"{location} is not a joshreg event store (FORMAT says {info!r})")
    if int(info.get("version", 0)) > FORMAT_VERSION:
        raise LogFormatError(
            f"{location} uses event store format {info.get('version')}, newer than this "
            f"joshreg's {FORMAT_VERSION}; upgrade joshreg to open it"
        )
    sid = info.get("store_id")
    return sid if isinstance(sid, str) and sid else None


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """A segment's name (relative to the store) and its current size in bytes.

    ``modified`` (POSIX seconds, None when the store cannot tell) lets ``verify`` tell a torn
    last line that a live writer may still complete from one left by a writer long gone.
    ``compacted`` names the claim holding all ``size`` bytes once the segment is compacted;
    ``jsonl_size`` is then the size of its JSONL if that is still there (a compaction was
    interrupted before deleting it), else None.
    """

    name: str
    size: int
    modified: float | None = field(default=None, compare=False)
    compacted: str | None = field(default=None, compare=False)
    jsonl_size: int | None = field(default=None, compare=False)


class LogStore(ABC):
    """A place for segments and claims; see the module docstring for the guarantees."""

    #: Human-readable location, used in messages.
    location: str
    #: Names this store for good: a projection remembers the store it was built from, so that
    #: opening it with another store (a mistyped path) is refused instead of emptying it.
    store_id: str
    #: True when ``append`` only buffers and the store makes bytes durable by itself soon after
    #: (object storage: a PUT per batch is too slow to wait for). Writers then hand every line
    #: over at once, call ``check_room`` before making an event, and ``sync`` only to wait.
    background_uploads: bool = False

    def check_room(self, segment: str) -> None:  # noqa: B027 - only buffering stores refuse
        """Raise ``StoreError`` if ``segment`` cannot take another line now (a full buffer)."""

    @abstractmethod
    def append(self, segment: str, data: bytes) -> None:
        """Append ``data`` to ``segment`` (created on first use); raises ``StoreError``."""

    @abstractmethod
    def sync(self, segment: str) -> None:
        """Make every byte appended to ``segment`` so far durable."""

    @abstractmethod
    def close_segment(self, segment: str) -> None:
        """Release resources held for appending to ``segment``; it stays readable."""

    @abstractmethod
    def segments(self) -> list[SegmentInfo]:
        """Every segment with its size, sorted by name; compacted ones under their JSONL name."""

    @abstractmethod
    def read(self, segment: str, offset: int = 0, end: int | None = None) -> bytes:
        """Bytes ``[offset, end)`` of a segment (to its current end when ``end`` is None).

        A compacted segment gives the bytes its JSONL held; ``StoreError`` if its copy is damaged.
        """

    @abstractmethod
    def claim(self, name: str, data: bytes) -> bool:
        """Create ``name`` with ``data`` unless it exists; True if this call created it."""

    @abstractmethod
    def read_claim(self, name: str) -> bytes | None:
        """The content of a claim, or None if it does not exist."""

    @abstractmethod
    def list_claims(self, prefix: str) -> list[str]:
        """Names of the claims under ``prefix`` (a folder such as ``labels``), sorted."""

    @abstractmethod
    def walk_claims(self, prefix: str) -> Iterator[str]:
        """Every claim under the folder ``prefix``, at any depth, sorted by name; never a
        segment, a temporary file or ``FORMAT``."""

    def claim_exists(self, name: str) -> bool:
        """Whether the claim ``name`` exists (without reading it, where the store can)."""
        return self.read_claim(name) is not None

    @abstractmethod
    def put_segment(self, segment: str, data: bytes) -> bool:
        """Create ``segment`` holding ``data`` (whole lines) unless a segment of that name
        exists; True if this call created it. The segment appears whole or not at all."""

    @abstractmethod
    def exclusive(self, name: str) -> AbstractContextManager[None]:
        """Hold the store's lock ``name`` for the ``with`` block: two holders of one lock, in
        any processes sharing the store, never overlap. For maintenance, not for writers."""

    def stored_id(self) -> str | None:
        """``store_id`` if the store has one already; None for a store made before store ids
        existed, which gets one at its first ``store_id`` (a write)."""
        return self.store_id

    def retire_segment(self, segment: str) -> bool:
        """Delete the JSONL of ``segment``, which a durable compacted copy holds in full.

        Returns False if the JSONL is already gone. Raises ``StoreError`` when no compacted copy
        at least as long as the JSONL exists, or the store cannot delete.
        """
        raise StoreError(f"the store at {self.location} cannot compact segments")

    def discard_temporaries(self, prefix: str, older_than: float) -> int:
        """Delete temporary files under ``prefix`` older than ``older_than`` seconds, left by
        processes that died inside ``claim``; return how many. Stores without any return 0."""
        return 0

    def close(self) -> None:  # noqa: B027 - optional hook; most stores hold nothing
        """Release every resource; the store can be reopened later."""
