"""Following an event store as workers append: file events as wake-up hints, a timer as the floor.

A file event (inotify through watchfiles) only says "look now": after every wake-up the follower
re-reads every segment from its checkpoint, so nothing depends on which events arrived or how
they were grouped. File events never arrive for appends made on another host of a network file
system (NFS, Lustre), and watchfiles cannot tell such a file system apart, so the follower also
catches up every ``interval`` seconds whatever happens; ``poll=True`` uses only that timer.

``wait_until`` (behind ``RunRegistry.wait_for_run`` and ``wait_for``) and ``Follower`` (behind
``joshreg watch``) share ``Waker``. Neither knows ``RunRegistry``: they take the callables that
catch up and check, so the registry can use them.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

from joshreg.closing import Closeable
from joshreg.errors import InvalidArgumentError, LogDamageWarning, StoreError, WaitTimeoutError
from joshreg.log.codec import Problem

if TYPE_CHECKING:
    from joshreg.projection.projector import CatchUp

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_SNAPSHOT_INTERVAL",
    "WATCHED_DIRS",
    "Batch",
    "FollowSummary",
    "Follower",
    "Waker",
    "wait_until",
]

T = TypeVar("T")

#: Folders of the event store whose changes wake a follower: writer segments and label commits.
WATCHED_DIRS = ("log", "labels")
#: Seconds between catch-ups when no file event arrives (the network file system case).
DEFAULT_INTERVAL = 1.0
#: Least seconds between two snapshots; a snapshot also waits 10x its own cost.
DEFAULT_SNAPSHOT_INTERVAL = 0.2
SNAPSHOT_DUTY = 10  # at most one tenth of the time goes to copying snapshots
# watchfiles groups changes for at most DEBOUNCE_MS, yielding after STEP_MS without one: a
# write is noticed within a few steps (its defaults, 1600/50, are several times slower).
DEBOUNCE_MS = 50
STEP_MS = 10
TICK_MS = 100  # the watch thread's own timeout, so it can report that it is running


def _check_interval(name: str, value: float) -> float:
    if not value > 0:
        raise InvalidArgumentError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


class Waker(Closeable):
    """Lets a thread sleep until the event store's ``log/`` or ``labels/`` change.

    ``wait(timeout)`` returns True after a change (or ``wake()``), False after ``timeout``
    seconds. With ``poll=True``, with no store directory (``:memory:``), or when file events
    cannot be set up (``error`` says why), it only ever times out: callers must treat the
    timeout as their polling tick. A change made before ``Waker`` returns from its constructor
    may be missed; one made after is not (on a local file system).
    """

    def __init__(
        self,
        events_path: str | os.PathLike[str] | None,
        *,
        poll: bool = False,
        start_timeout: float = 2.0,
    ) -> None:
        self.root = os.path.abspath(events_path) if events_path is not None else None
        self._hint = threading.Event()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if poll or self.root is None or not os.path.isdir(self.root):
            return
        self._thread = threading.Thread(target=self._run, name="joshreg-waker", daemon=True)
        self._thread.start()
        # Ready once watchfiles yields for the first time (a change or its tick): from then on
        # its inotify watches are in place.
        if not self._ready.wait(start_timeout) and self.error is None:
            self.error = TimeoutError(f"file events for {self.root} did not start in {start_timeout} s")

    @property
    def watching(self) -> bool:
        """Whether file events wake this waker (else only its callers' timeouts do)."""
        return self._thread is not None and self.error is None and self._thread.is_alive()

    def _interesting(self, path: str) -> bool:
        rel = os.path.relpath(path, self.root)
        top = rel.split(os.sep, 1)[0]
        return top in WATCHED_DIRS or top == ".."  # outside the root (a symlink): just look

    def _run(self) -> None:
        try:
            import watchfiles  # loaded when a watch starts: the command line's help stays fast

            for changes in watchfiles.watch(
                self.root,  # type: ignore[arg-type]
                watch_filter=None,
                debounce=DEBOUNCE_MS,
                step=STEP_MS,
                rust_timeout=TICK_MS,
                yield_on_timeout=True,
                stop_event=self._stop,
                raise_interrupt=False,
            ):
                self._ready.set()
                if any(self._interesting(path) for _, path in changes):
                    self._hint.set()
        except Exception as e:  # inotify limits, a vanished directory: fall back to the timer
            self.error = e
        finally:
            self._ready.set()

    def wait(self, timeout: float) -> bool:
        """Sleep until a change or ``wake()`` (True) or for ``timeout`` seconds (False)."""
        woke = self._hint.wait(max(0.0, timeout))
        self._hint.clear()  # a change after this point wakes the next wait
        return woke

    def wake(self) -> None:
        """End the current (or next) ``wait`` now; safe from signal handlers and other threads."""
        self._hint.set()

    def close(self) -> None:
        """Stop watching; calling it again does nothing."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)


def wait_until(
    check: Callable[[], T | Literal[False] | None],
    *,
    events_path: str | os.PathLike[str] | None,
    timeout: float | None,
    interval: float = DEFAULT_INTERVAL,
    poll: bool = False,
    describe: Callable[[], str],
) -> T:
    """Call ``check`` until it returns something other than None or False, and return that.

    ``check`` is called at once, then after each change of the store and at least every
    ``interval`` seconds; it must catch up with the log itself. After ``timeout`` seconds (None:
    no limit) a ``WaitTimeoutError`` carries ``describe()``, which says what was awaited.
    """
    interval = _check_interval("interval", interval)
    if timeout is not None and timeout < 0:
        raise InvalidArgumentError(f"timeout must be at least 0 seconds (or None), got {timeout!r}")
    deadline = None if timeout is None else time.monotonic() + timeout
    value = check()
    if value is not None and value is not False:
        return value
    with Waker(events_path, poll=poll) as waker:
        while True:
            value = check()  # again: a change may have come before the waker was watching
            if value is not None and value is not False:
                return value
            left = interval if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeoutError(f"{describe()} (waited {timeout:g} s)")
            waker.wait(min(interval, left))


# --- following a registry (joshreg watch) -----------------------------------------------------


@dataclass
class Batch:
    """What one catch-up of a ``Follower`` applied, for its live line."""

    at: datetime  # naive UTC, when the catch-up committed
    events: int
    label_commits: int
    lag_ms: float | None  # from the newest applied event's clock to the commit; None: no clock
    seconds: float  # the catch-up itself
    total_events: int
    total_label_commits: int
    problems: list[Problem] = field(default_factory=list)


@dataclass
class FollowSummary:
    """What a ``Follower`` did from start to stop."""

    seconds: float = 0.0
    batches: int = 0
    events: int = 0
    label_commits: int = 0
    total_events: int = 0
    total_label_commits: int = 0
    problems: int = 0
    snapshots: int = 0
    snapshot_seconds: list[float] = field(default_factory=list)
    watching: bool = False  # whether file events were used (else only the timer)
    watch_error: str | None = None  # why file events could not be used, if they were wanted


class Follower:
    """Keeps a projection caught up with its log until ``stop()``, publishing snapshots.

    ``sync`` catches up and says what it applied (``RunRegistry.sync``); ``publish`` writes a
    snapshot and returns its cost in seconds. A snapshot follows a batch at once unless the
    last one was less than ``snapshot_interval`` seconds (or 10 times its cost) ago; then it
    waits, and the batches in between share it. ``totals`` are the events and label commits
    already applied when following starts, for the running totals. Damage found in the log is
    reported in ``Batch.problems`` (not as warnings). A ``StoreError`` (a network file system
    hiccup) goes to ``on_error`` and the next tick retries; without ``on_error`` it is raised.
    """

    def __init__(
        self,
        sync: Callable[[], CatchUp],
        *,
        events_path: str | os.PathLike[str] | None,
        interval: float = DEFAULT_INTERVAL,
        poll: bool = False,
        publish: Callable[[], float] | None = None,
        snapshot_interval: float = DEFAULT_SNAPSHOT_INTERVAL,
        totals: tuple[int, int] = (0, 0),
        on_start: Callable[[FollowSummary], None] | None = None,
        on_batch: Callable[[Batch], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.sync = sync
        self.events_path = None if events_path is None else Path(events_path)
        self.interval = _check_interval("interval", interval)
        self.poll = poll
        self.publish = publish
        self.snapshot_interval = max(0.0, float(snapshot_interval))
        self.on_start = on_start
        self.on_batch = on_batch
        self.on_error = on_error
        self.summary = FollowSummary(total_events=totals[0], total_label_commits=totals[1])
        self._stop = threading.Event()
        self._waker: Waker | None = None
        self._dirty = False
        self._next_snapshot = 0.0

    def stop(self) -> None:
        """Ask ``run`` to return after the batch in progress; safe from a signal handler.

        The wake-up is sent from a new thread: a handler runs in the main thread, which may be
        holding the waker's lock at that instant, so taking the lock there could deadlock.
        """
        self._stop.set()
        waker = self._waker
        if waker is not None:
            threading.Thread(target=waker.wake, name="joshreg-stop", daemon=True).start()

    def _snapshot(self) -> None:
        if self.publish is None:
            return
        cost = self.publish()
        self.summary.snapshots += 1
        self.summary.snapshot_seconds.append(cost)
        self._dirty = False
        self._next_snapshot = time.monotonic() + max(self.snapshot_interval, SNAPSHOT_DUTY * cost)

    def _catch_up(self) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LogDamageWarning)  # reported in the batch instead
                result = self.sync()
        except StoreError as e:
            if self.on_error is None:
                raise
            self.on_error(e)
            return
        if not (result.events or result.label_commits or result.problems):
            return
        s = self.summary
        s.batches += 1
        s.events += result.events
        s.label_commits += result.label_commits
        s.total_events += result.events
        s.total_label_commits += result.label_commits
        s.problems += len(result.problems)
        now_ns = time.time_ns()
        batch = Batch(
            at=datetime.fromtimestamp(now_ns / 1e9, tz=UTC).replace(tzinfo=None),
            events=result.events,
            label_commits=result.label_commits,
            lag_ms=(now_ns - result.newest_hlc) / 1e6 if result.newest_hlc else None,
            seconds=result.seconds,
            total_events=s.total_events,
            total_label_commits=s.total_label_commits,
            problems=list(result.problems),
        )
        self._dirty = True
        if self.on_batch is not None:
            self.on_batch(batch)

    def run(self, *, once: bool = False) -> FollowSummary:
        """Follow until ``stop()`` (or, with ``once``, catch up a single time); return the summary.

        A snapshot is published at the start (before ``on_start``), after batches (rate-limited)
        and at the end if batches came since the last one.
        """
        t0 = time.monotonic()
        self._waker = Waker(self.events_path, poll=self.poll or once)
        self.summary.watching = self._waker.watching
        if self._waker.error is not None:
            self.summary.watch_error = str(self._waker.error)
        try:
            self._snapshot()  # readers have one before the first line says where it is
            if self.on_start is not None:
                self.on_start(self.summary)
            self._catch_up()
            while not once and not self._stop.is_set():
                wait = self.interval
                if self._dirty and self.publish is not None:
                    wait = min(wait, self._next_snapshot - time.monotonic())
                self._waker.wait(wait)
                if self._stop.is_set():
                    break
                self._catch_up()
                if self._dirty and time.monotonic() >= self._next_snapshot:
                    self._snapshot()
            if self._dirty:
                self._snapshot()
        finally:
            self._waker.close()
            self.summary.seconds = time.monotonic() - t0
        return self.summary
