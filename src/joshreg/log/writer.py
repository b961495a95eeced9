"""EventWriter: one segment per writer process, numbered, enveloped, chained and synced.

Events are written in groups (group commit): ``append`` envelopes an event and adds it to the
group; the group goes to the operating system with one write, and, depending on ``durability``,
to the disk with one fsync:

- ``"none"``: groups are written when ``batch_size`` events or ``max_delay`` seconds have
  accumulated, and by ``publish()``, ``flush()`` and ``close()``; never fsynced by joshreg;
- ``"batch"`` (default): the same, and every written group is fsynced;
- ``"event"``: every ``append`` is written and fsynced before it returns.

``publish()`` writes the pending group without fsync, so that a killed process loses nothing
published; ``flush()`` returns once everything appended is durable. ``RunRecorder`` and
``RunRegistry`` publish after every call; a worker streaming events through ``EventWriter``
decides itself when to publish or flush. A process that exits normally flushes its writers.

A writer never reopens an old segment: a new process (or a forked child) gets a new writer id.
After a failed write (the segment may end in a torn line) or a failed fsync (the kernel may have
dropped what it did not write), the writer never touches that segment again: the error says
which events are durable and which are in doubt, and the next append starts a new segment under
a new writer id.

``close()`` seals the segment: it appends a last ``segment.sealed`` line (a control record no
table shows), so anyone can tell a finished segment from a live one and compact it to Parquet.
Appending after ``close()`` starts a new segment under a new writer id; a sealed segment never
grows again.

On object storage (a store with ``background_uploads``) every line is handed to the store at
once and the store's flusher uploads a chunk every 256 lines or within 50 ms of the oldest
waiting line (``store.uploads``): ``batch`` and ``none`` return without waiting, ``event``
waits for the upload, and ``flush()``/``close()`` always wait. A full upload buffer refuses an
event before it gets its envelope, and a flush that cannot finish says so, without the writer
leaving its segment: what waits in the buffer is not lost while the process lives.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Literal, NoReturn, TypeVar

import msgspec

from joshreg.errors import InvalidArgumentError, StoreError, UploadBacklogError
from joshreg.log.clock import HybridClock, actor, new_writer_id
from joshreg.log.codec import LineChain
from joshreg.log.events import EventBase, SegmentSealed
from joshreg.log.store.base import LogStore

__all__ = ["DURABILITY_MODES", "Durability", "EventWriter"]

Durability = Literal["none", "batch", "event"]
DURABILITY_MODES: tuple[str, ...] = ("none", "batch", "event")

E = TypeVar("E", bound=EventBase)

_open_writers: weakref.WeakSet[EventWriter] = weakref.WeakSet()
_replace = msgspec.structs.replace
_PID = os.getpid()  # this process's pid: os.getpid() is a system call, 0.2 µs an append here


def _after_fork() -> None:
    global _PID
    _PID = os.getpid()


os.register_at_fork(after_in_child=_after_fork)
_monotonic = time.monotonic


@atexit.register
def _flush_all() -> None:
    for w in list(_open_writers):
        try:
            w.close()
        except Exception as e:  # at exit nobody can catch it: say what may be lost
            sys.stderr.write(f"joshreg: at exit, the event log was not flushed: {e}\n")


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
        self.batch_size = 1 if durability == "event" else max(1, batch_size)
        self.max_delay = max_delay
        self.clock = clock or HybridClock()
        self.actor = actor()
        self.tracer = tracer
        self._pid = -1
        self._writer_id = ""
        self._segment = ""
        self._seq = 0
        self._chain = LineChain()  # the pending group's lines, and the chain
        self._pending = 0  # events in the pending group
        self._group_start = 0.0
        self._written_seq = 0
        self._synced_seq = 0
        self._sealed = False
        self._handoff = store.background_uploads
        _open_writers.add(self)

    # --- identity -----------------------------------------------------------------------------

    def _start(self) -> None:
        self._pid = _PID
        self._writer_id = new_writer_id()
        self._segment = f"log/{self._writer_id}.jsonl"
        self._seq = 0
        self._written_seq = 0
        self._synced_seq = 0
        self._sealed = False
        self._chain = LineChain()  # a forked child must not write its parent's pending events
        self._pending = 0

    @property
    def writer_id(self) -> str:
        """This process's writer id (assigned on first use)."""
        if self._pid != _PID:
            self._start()
        return self._writer_id

    @property
    def segment(self) -> str:
        """The segment this writer appends to."""
        return f"log/{self.writer_id}.jsonl"

    @property
    def last_seq(self) -> int:
        """Sequence number of the last event appended (0 before the first)."""
        return self._seq if self._pid == _PID else 0

    @property
    def durable_seq(self) -> int:
        """Every event up to this sequence number has been fsynced."""
        return self._synced_seq if self._pid == _PID else 0

    # --- appending ----------------------------------------------------------------------------

    def append(self, event: E) -> E:
        """Append one event to the current group; return it with its envelope filled in.

        This is the hot path, written out in one function: a Python call costs about as much
        here as any one step of the envelope. The sequence number is taken only once the event
        is framed, so an event that cannot be encoded raises and leaves no gap in the numbering
        and no mark on the chain.
        """
        if self._pid != _PID or self._sealed:
            self._start()
        if self._handoff:
            self.store.check_room(self._segment)  # before the envelope: a refusal leaves no trace
        hlc, new_id = self.clock.stamp()
        seq = self._seq + 1
        full = _replace(
            event,
            # An id given by the caller is kept: an importer derives ids from the source's keys.
            event_id=event.event_id or new_id,
            writer=self._writer_id,
            seq=seq,
            hlc=hlc,
            actor=self.actor,
        )
        self._chain.add(full)
        self._seq = seq
        if self._handoff:
            self._hand_over()
        else:
            n = self._pending = self._pending + 1
            if n >= self.batch_size:
                self._write_group(sync=self.durability != "none")
            elif n == 1:
                self._group_start = _monotonic()
            elif _monotonic() - self._group_start >= self.max_delay:
                self._write_group(sync=self.durability != "none")
        if self.tracer is not None:
            self.tracer(f"append {full.__struct_config__.tag} {self._writer_id}#{seq}")
        return full

    def _hand_over(self) -> None:
        """On a store that uploads in the background, the line goes to it at once."""
        try:
            self.store.append(self._segment, self._chain.take())
        except StoreError as e:
            self._abandon(e)
        self._written_seq = self._seq
        if self.durability == "event":
            self._sync_written()

    def _sync_written(self) -> None:
        try:
            self.store.sync(self._segment)
        except UploadBacklogError:
            raise  # still buffered, still in order: the segment goes on
        except StoreError as e:
            self._abandon(e)
        self._synced_seq = self._written_seq

    def append_many(self, events: Iterable[E]) -> list[E]:
        """Append several events, then write the group (and fsync it unless ``none``)."""
        out = [self.append(ev) for ev in events]
        if out and self._pending:
            self._write_group(sync=self.durability != "none")
        return out

    def _write_group(self, *, sync: bool) -> None:
        if self._pending:
            data = self._chain.take()
            self._pending = 0
            try:
                self.store.append(self._segment, data)
            except StoreError as e:
                self._abandon(e)
            self._written_seq = self._seq
        if sync and self._synced_seq < self._written_seq:
            self._sync_written()

    def _abandon(self, error: StoreError) -> NoReturn:
        """Leave the segment after a failed write or fsync; raise what the caller must know.

        A failed write may leave whole lines of its group followed by a torn one (never read).
        After a failed fsync the kernel may have dropped the unwritten pages, and a second
        fsync would report success without them ("fsyncgate"), so the segment is never written
        or synced again. The next append starts a new segment under a new writer id.
        """
        writer, synced, last = self._writer_id, self._synced_seq, self._seq
        with contextlib.suppress(OSError):
            self.store.close_segment(self._segment)
        self._start()
        kept = f"events up to seq {synced} are durable (flushed)" if synced else "none is durable yet"
        doubt = f"event {last}" if last == synced + 1 else f"events {synced + 1}-{last}"
        raise StoreError(
            f"{error}. Of writer {writer}'s events, {kept}; {doubt}, appended since, may each be "
            "in the log whole or not at all. Free space or fix the file system and go on: later "
            "appends go to a new segment."
        ) from error

    def publish(self) -> int:
        """Write the pending group to the operating system (no fsync); return its last seq.

        After this, killing the process loses none of the events appended so far.
        """
        if self._pid == _PID:
            self._write_group(sync=False)
        return self._written_seq if self._pid == _PID else 0

    def flush(self) -> int:
        """Write and fsync everything appended (only write with ``durability="none"``).

        Returns the sequence number up to which events are durable.
        """
        if self._pid == _PID:
            self._write_group(sync=self.durability != "none" or self._handoff)
        return self.durable_seq

    @property
    def sealed(self) -> bool:
        """Whether ``close()`` sealed the current segment (the next append starts a new one)."""
        return self._sealed and self._pid == _PID

    def close(self) -> None:
        """Seal the segment (a last ``segment.sealed`` line), flush, release it.

        The writer may be used again: its next append starts a new segment. A writer that
        appended nothing writes nothing.
        """
        if self._pid == _PID and self._seq and not self._sealed:
            self.append(SegmentSealed())
            self.flush()
            self._sealed = True
            self.store.close_segment(self._segment)
