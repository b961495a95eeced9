"""EventWriter: one segment per writer process, numbered, enveloped, chained and synced.

Imports ``events``, ``codec``, ``clock``, ``store.base``, ``errors``.

Every ``append`` call reaches the operating system before it returns, so killing the process
loses nothing that was appended. When the bytes reach the disk depends on ``durability``:

- ``"none"``: never fsynced by joshreg (the OS writes them back in its own time);
- ``"batch"`` (default): fsynced once ``batch_size`` events or ``max_delay`` seconds have
  accumulated since the last sync, and always by ``flush()`` and ``close()``;
- ``"event"``: fsynced before every ``append`` returns.

A writer never reopens an old segment: a new process (or a forked child) gets a new writer id.
After a failed write the segment may end in a torn line, so the writer moves to a new segment
under a new writer id before writing again.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Literal, TypeVar

import msgspec

from .clock import HybridClock, actor, new_writer_id, uuid7
from .codec import GENESIS, encode_event, frame
from .errors import InvalidArgumentError, StoreError
from .events import EventBase
from .store.base import LogStore

__all__ = ["DURABILITY_MODES", "Durability", "EventWriter"]

Durability = Literal["none", "batch", "event"]
DURABILITY_MODES: tuple[str, ...] = ("none", "batch", "event")

E = TypeVar("E", bound=EventBase)

_open_writers: weakref.WeakSet[EventWriter] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    for w in list(_open_writers):
        with contextlib.suppress(Exception):
            w.close()


class EventWriter:
    """Appends events to this process's own segment of a store."""

    def __init__(
        self,
        store: LogStore,
        *,
        durability: Durability = "batch",
        batch_size: int = 256,
        max_delay: float = 0.05,
        clock: HybridClock | None = None,
        tracer: Callable[[str], None] | None = None,
    ) -> None:
        if durability not in DURABILITY_MODES:
            raise InvalidArgumentError(
                f"durability must be one of {', '.join(DURABILITY_MODES)}, not {durability!r}"
            )
        self.store = store
        self.durability: Durability = durability
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.clock = clock or HybridClock()
        self.actor = actor()
        self.tracer = tracer
        self._pid = -1
        self._writer_id = ""
        self._segment = ""
        self._seq = 0
        self._prev = GENESIS
        self._unsynced = 0
        self._first_unsynced = 0.0
        self._synced_seq = 0
        _open_writers.add(self)

    # --- identity -----------------------------------------------------------------------------

    def _start(self) -> None:
        self._pid = os.getpid()
        self._writer_id = new_writer_id()
        self._segment = f"log/{self._writer_id}.jsonl"
        self._seq = 0
        self._synced_seq = 0
        self._prev = GENESIS
        self._unsynced = 0

    @property
    def writer_id(self) -> str:
        """This process's writer id (assigned on first use)."""
        if self._pid != os.getpid():
            self._start()
        return self._writer_id

    @property
    def segment(self) -> str:
        """The segment this writer appends to."""
        self.writer_id  # noqa: B018 - starts the writer if needed
        return self._segment

    @property
    def last_seq(self) -> int:
        """Sequence number of the last event appended (0 before the first)."""
        return self._seq if self._pid == os.getpid() else 0

    @property
    def durable_seq(self) -> int:
        """Every event up to this sequence number has been fsynced."""
        return self._synced_seq if self._pid == os.getpid() else 0

    # --- appending ----------------------------------------------------------------------------

    def _envelope(self, event: E) -> tuple[E, bytes]:
        self._seq += 1
        hlc = self.clock.now()
        full = msgspec.structs.replace(
            event,
            event_id=uuid7(hlc // 1_000_000),
            writer=self._writer_id,
            seq=self._seq,
            hlc=hlc,
            actor=self.actor,
        )
        line, self._prev = frame(encode_event(full), self._prev)
        return full, line

    def append(self, event: E) -> E:
        """Append one event; return it with its envelope filled in."""
        return self.append_many((event,))[0]

    def append_many(self, events: Iterable[E]) -> list[E]:
        """Append several events with one write; return them with their envelopes."""
        if self._pid != os.getpid():
            self._start()
        seq0, prev0 = self._seq, self._prev
        out: list[E] = []
        lines: list[bytes] = []
        for ev in events:
            full, line = self._envelope(ev)
            out.append(full)
            lines.append(line)
        if not lines:
            return out
        try:
            self.store.append(self._segment, b"".join(lines))
        except StoreError:
            # The segment may now end in a torn line; continue in a fresh one.
            self._seq, self._prev = seq0, prev0
            self.store.close_segment(self._segment)
            self._start()
            raise
        if self.tracer is not None:
            for ev in out:
                self.tracer(f"append {ev.__struct_config__.tag} {self._writer_id}#{ev.seq}")
        if self.durability == "event":
            self._sync()
        elif self.durability == "batch":
            if self._unsynced == 0:
                self._first_unsynced = time.monotonic()
            self._unsynced += len(out)
            if self._unsynced >= self.batch_size or time.monotonic() - self._first_unsynced >= self.max_delay:
                self._sync()
        return out

    def _sync(self) -> None:
        self.store.sync(self._segment)
        self._unsynced = 0
        self._synced_seq = self._seq

    def flush(self) -> int:
        """Make every appended event durable (except with ``durability="none"``).

        Returns the sequence number up to which events are durable.
        """
        if self._pid == os.getpid() and self._seq and self.durability != "none":
            self._sync()
        return self.durable_seq

    def close(self) -> None:
        """Flush, then release the segment. The writer may be used again (same segment)."""
        if self._pid == os.getpid() and self._seq:
            if self.durability != "none":
                self._sync()
            self.store.close_segment(self._segment)
