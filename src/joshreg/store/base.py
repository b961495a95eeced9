"""The contract every log store keeps. Imports only ``errors``.

A store holds three kinds of named bytes:

- **segments** under ``log/``: append-only files, each with exactly one writer process. A
  reader may see a segment grow at any time and must treat bytes after the last newline as not
  yet written.
- **claims**: immutable objects created with put-if-absent. Exactly one of several concurrent
  ``claim`` calls for a name succeeds, and the content is complete before the name appears.
  The label log (``labels/<version>.json``), session ids and result blobs are claims.
- nothing else: there is no rename, no overwrite and no delete in the contract.

Guarantees:

- **Single writer.** ``append`` to a segment is only ever called by the process that created it,
  so a short write can be completed by a second write without corrupting another writer.
- **Durability.** After ``sync(segment)`` returns, every byte appended before it survives a crash
  of the machine. After ``claim`` returns True the claim is durable.
- **No shared mutable state.** Two processes never write the same file; the only contended
  operation is ``claim``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

__all__ = ["LogStore", "SegmentInfo"]


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """A segment's name (relative to the store) and its current size in bytes.

    ``modified`` (POSIX seconds, None when the store cannot tell) lets ``verify`` tell a torn
    last line that a live writer may still complete from one left by a writer long gone.
    """

    name: str
    size: int
    modified: float | None = field(default=None, compare=False)


class LogStore(ABC):
    """A place for segments and claims; see the module docstring for the guarantees."""

    #: Human-readable location, used in messages.
    location: str

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
        """Every segment with its size, sorted by name."""

    @abstractmethod
    def read(self, segment: str, offset: int = 0, end: int | None = None) -> bytes:
        """Bytes ``[offset, end)`` of a segment (to its current end when ``end`` is None)."""

    @abstractmethod
    def claim(self, name: str, data: bytes) -> bool:
        """Create ``name`` with ``data`` unless it exists; True if this call created it."""

    @abstractmethod
    def read_claim(self, name: str) -> bytes | None:
        """The content of a claim, or None if it does not exist."""

    @abstractmethod
    def list_claims(self, prefix: str) -> list[str]:
        """Names of the claims under ``prefix`` (a folder such as ``labels``), sorted."""

    def close(self) -> None:  # noqa: B027 - optional hook; most stores hold nothing
        """Release every resource; the store can be reopened later."""
