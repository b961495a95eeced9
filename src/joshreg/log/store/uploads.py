"""Background uploads of a writer's appended lines to object storage (the ``batch`` flusher).

On a local disk an append costs a ``write``; on object storage each durable batch is one PUT,
which takes milliseconds. So appends go into this process's buffer and return at once, and one
background thread per store turns the buffer into chunk objects:

- a chunk goes up when ``max_lines`` lines (256) are waiting, or ``max_delay`` (50 ms) after
  the oldest waiting line was appended, or at once when someone waits in ``wait_uploaded``
  (``flush()``, ``close()``, ``durability="event"``); so a lone ``start_run`` does not wait for
  the next write, and a process killed with ``SIGKILL`` loses at most the last 50 ms;
- one upload per segment is in flight at a time, so chunks appear in offset order (a reader
  never sees chunk k+1 before chunk k) and lines appended meanwhile go into the next chunk;
- a chunk's name is fixed before its first attempt; a failed upload is retried under the same
  name with backoff (from 50 ms to ``MAX_BACKOFF_S``) until it succeeds, and a retry refused as
  "already exists" is compared byte for byte (``put_chunk`` does that);
- during an outage appends keep succeeding into the buffer up to ``max_buffer`` bytes (64 MiB
  by default), then ``UploadBacklogError`` refuses the next append (nothing already buffered is
  dropped), naming what has gone wrong.

The thread is a daemon; ``flush``/``close`` (and the writers' exit hook) wait for it. A forked
child starts empty: its parent uploads what the parent appended.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from joshreg.errors import StoreError, UploadBacklogError

__all__ = ["MAX_BACKOFF_S", "OwnSegment", "UploadBacklogError", "Uploads"]

MAX_BACKOFF_S = 5.0
_FIRST_BACKOFF_S = 0.05
#: Recent own chunks kept in memory, so a process reads back its own writes without a GET.
_RECENT_BYTES = 8 << 20

_all: weakref.WeakSet[Uploads] = weakref.WeakSet()


@atexit.register
def _upload_all() -> None:
    """At exit, upload what waits (the writers' exit hook flushes theirs first; this catches a
    writer dropped without ``close``), and say what could not go up."""
    for uploads in list(_all):
        if uploads.mine() and uploads.buffered():
            try:
                uploads.close()
            except StoreError as e:
                sys.stderr.write(f"joshreg: at exit, events could not be uploaded: {e}\n")


@dataclass
class OwnSegment:
    """A segment this process appends to: what is uploaded, in flight and waiting."""

    name: str
    uploaded: int = 0  # bytes in chunk objects, from offset 0
    in_flight: bytes = b""
    waiting: list[bytes] = field(default_factory=list)
    waiting_bytes: int = 0
    waiting_lines: int = 0
    oldest: float = 0.0  # monotonic time the oldest waiting line was appended
    recent: dict[int, bytes] = field(default_factory=dict)  # offset -> uploaded chunk bytes
    recent_bytes: int = 0

    @property
    def size(self) -> int:
        return self.uploaded + len(self.in_flight) + self.waiting_bytes

    def remember(self, offset: int, data: bytes) -> None:
        self.recent[offset] = data
        self.recent_bytes += len(data)
        while self.recent_bytes > _RECENT_BYTES and len(self.recent) > 1:
            first = min(self.recent)
            self.recent_bytes -= len(self.recent.pop(first))

    def local_bytes(self, offset: int, end: int) -> bytes | None:
        """Bytes ``[offset, end)`` if this process still holds them all, else None."""
        pieces: list[tuple[int, bytes]] = sorted(self.recent.items())
        pieces.append((self.uploaded, self.in_flight + b"".join(self.waiting)))
        out: list[bytes] = []
        at = offset
        for start, data in pieces:
            if start + len(data) <= at or not data:
                continue
            if start > at:
                return None
            out.append(data[at - start : end - start])
            at = min(end, start + len(data))
            if at >= end:
                break
        return b"".join(out) if at >= end else None


class Uploads:
    """The buffer and the uploading thread of one store. ``name_for(segment, offset)`` names a
    chunk (once: its retries keep the name); ``put_chunk(name, data)`` uploads it, safe to
    retry, raising ``StoreError`` (with ``permanent`` set when waiting will not help)."""

    def __init__(
        self,
        name_for: Callable[[str, int], str],
        put_chunk: Callable[[str, bytes], None],
        location: str,
        *,
        max_lines: int = 256,
        max_delay: float = 0.05,
        max_buffer: int = 64 << 20,
        flush_timeout: float = 120.0,
        on_uploaded: Callable[[str, int, int, str], None] | None = None,
    ) -> None:
        self.name_for = name_for
        self.put_chunk = put_chunk
        self.location = location
        self.max_lines = max_lines
        self.max_delay = max_delay
        self.max_buffer = max_buffer
        self.flush_timeout = flush_timeout
        self.on_uploaded = on_uploaded
        self.own: dict[str, OwnSegment] = {}
        self.error: StoreError | None = None  # the last failure, cleared by a success
        self.error_since = 0.0
        self.permanent = False  # the last failure will not go away by waiting (access, bucket)
        self._cond = threading.Condition()
        self._urgent: set[str] = set()
        self._pid = -1
        self._thread: threading.Thread | None = None
        self._closing = False
        self._buffered = 0
        _all.add(self)

    # --- the writer's side --------------------------------------------------------------------

    def _forked(self) -> None:
        """In a forked child start empty, with a new lock (the parent's thread, which may have
        held the old one, does not exist here); the parent uploads what it appended."""
        if self._pid != os.getpid():
            self._cond = threading.Condition()
            self.own, self._urgent, self.error, self._thread = {}, set(), None, None
            self._pid, self._buffered = os.getpid(), 0

    def _alive(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="joshreg-uploads", daemon=True)
            self._thread.start()

    def mine(self) -> bool:
        """Whether ``own`` describes this process (not a parent before a fork)."""
        return self._pid == os.getpid()

    def segment(self, name: str, start: int) -> OwnSegment:
        """This process's state of ``name`` (which continues after ``start`` bytes)."""
        own = self.own.get(name)
        if own is None:
            own = self.own[name] = OwnSegment(name, uploaded=start)
        return own

    def buffered(self) -> int:
        """Bytes appended and not yet uploaded (kept as a running count: asked per event)."""
        return self._buffered

    def check_room(self) -> None:
        """Raise ``UploadBacklogError`` once ``max_buffer`` bytes wait. The writer asks before it
        makes an event; ``append`` never refuses, since an event that has its envelope (its
        sequence number, its link in the chain) must reach the log."""
        if self._pid == os.getpid() and self.buffered() >= self.max_buffer:
            waited = time.monotonic() - self.error_since if self.error is not None else 0.0
            cause = f": {self.error}" if self.error is not None else " (it answers too slowly)"
            raise UploadBacklogError(
                f"{self.buffered() >> 20} MiB of events wait in this process for the event store at "
                f"{self.location}, the most it holds, after {waited:.0f} s without a successful "
                f"upload{cause}. Nothing is lost while the process lives: they go up when the store "
                "answers; this write was refused, retry it later or call flush() to wait"
            )

    def append(self, name: str, start: int, data: bytes) -> None:
        """Buffer ``data`` (whole lines) for ``name``; returns at once."""
        self._forked()
        with self._cond:
            self._alive()
            own = self.segment(name, start)
            if not own.waiting:
                own.oldest = time.monotonic()
                self._cond.notify()
            own.waiting.append(data)
            own.waiting_bytes += len(data)
            self._buffered += len(data)
            own.waiting_lines += data.count(b"\n")
            if own.waiting_lines >= self.max_lines:
                self._cond.notify()

    def wait_uploaded(self, name: str, timeout: float) -> None:
        """Return once everything appended to ``name`` so far is in chunk objects."""
        with self._cond:
            own = self.own.get(name)
            if own is None or self._pid != os.getpid():
                return
            target = own.size
            if own.uploaded >= target:
                return
            self._urgent.add(name)
            self._cond.notify_all()
            deadline = time.monotonic() + timeout
            while own.uploaded < target:
                if self.error is not None and self.permanent:
                    break  # a failure that waiting will not cure (access, bucket): say so now
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
            if own.uploaded >= target:
                return
            missing = target - own.uploaded
            raise UploadBacklogError(
                f"{missing} bytes of events appended to {name} are not in the event store at "
                f"{self.location} yet: {self.error or 'the uploads did not finish in time'}. They "
                "wait in this process's memory and go up when the store answers; call flush() "
                "again, and keep the process alive until it returns"
            )

    def forget(self, name: str) -> None:
        """Stop tracking ``name`` once nothing of it waits (a closed segment)."""
        with self._cond:
            own = self.own.get(name)
            if own is not None and not own.in_flight and not own.waiting:
                del self.own[name]

    def close(self, timeout: float | None = None) -> None:
        """Upload what waits (as long as ``timeout``, by default ``flush_timeout``), then stop
        the thread. Raises
        ``UploadBacklogError`` if something could not go up: the thread goes on trying, and
        closing again waits again."""
        for name in list(self.own):
            self.wait_uploaded(name, self.flush_timeout if timeout is None else timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout=1.0)
        self._thread, self._closing = None, False

    # --- the thread ---------------------------------------------------------------------------

    def _next(self) -> OwnSegment | None:
        """The segment whose chunk is due now, or None after waiting for one (or closing)."""
        while not self._closing:
            now = time.monotonic()
            due: float | None = None
            for own in self.own.values():
                if not own.waiting or own.in_flight:
                    continue
                if own.name in self._urgent or own.waiting_lines >= self.max_lines:
                    return own
                when = own.oldest + self.max_delay
                if when <= now:
                    return own
                due = when if due is None else min(due, when)
            self._cond.wait(None if due is None else due - now)
        return None

    def _run(self) -> None:
        while True:
            with self._cond:
                own = self._next()
                if own is None:
                    return
                data = own.in_flight = b"".join(own.waiting)
                own.waiting, own.waiting_bytes, own.waiting_lines = [], 0, 0
                offset = own.uploaded
            name = self._upload(own.name, offset, data)
            with self._cond:
                own.uploaded += len(data)
                own.in_flight = b""
                self._buffered -= len(data)
                own.remember(offset, data)
                if own.uploaded >= own.size:
                    self._urgent.discard(own.name)
                self._cond.notify_all()
            if self.on_uploaded is not None:
                self.on_uploaded(own.name, offset, len(data), name)

    def _upload(self, segment: str, offset: int, data: bytes) -> str:
        """Upload one chunk, retrying with backoff until it is in; never gives up while the
        process lives (``wait_uploaded`` and ``check_room`` report the trouble)."""
        backoff = _FIRST_BACKOFF_S
        name = self.name_for(segment, offset)
        while True:
            try:
                self.put_chunk(name, data)
            except StoreError as e:
                with self._cond:
                    if self.error is None:
                        self.error_since = time.monotonic()
                    self.error, self.permanent = e, bool(getattr(e, "permanent", False))
                    self._cond.notify_all()
                    self._cond.wait(backoff)  # close() and new waiters do not cut it short
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                continue
            with self._cond:
                self.error, self.permanent = None, False
            return name
