"""Identity and time for events: UUIDv7 ids, a hybrid logical clock, writer ids and actors.

Clocks only order events for display, audit and as-of queries; no correctness decision in
joshreg depends on two hosts agreeing on the time. Standard library only.
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime

__all__ = [
    "HybridClock",
    "actor",
    "hlc_to_datetime",
    "new_writer_id",
    "uuid7",
    "writer_origin",
    "writer_running_here",
]


_prefix: list[object] = [-1, ""]  # (unix ms, "xxxxxxxx-xxxx-7xxx-") cached per millisecond
_tails: list[str] = []  # random "Vxxx-xxxxxxxxxxxx" ends of ids, drawn from the OS in bulk
_TAILS = 512  # ids per draw: 4 KiB of randomness
_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))  # the top bits of rand_b: 0b10


def _after_fork() -> None:
    _prefix[0] = -1
    _tails.clear()  # a child must not reuse its parent's random bits


os.register_at_fork(after_in_child=_after_fork)


def _draw_tails() -> None:
    raw = bytearray(os.urandom(8 * _TAILS))
    raw[::8] = raw[::8].translate(_VARIANT)
    _tails[:] = [raw[k : k + 8].hex("-", 6) for k in range(0, 8 * _TAILS, 8)]


def _new_prefix(ms: int) -> None:
    _prefix[0] = ms
    _prefix[1] = f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-7{os.urandom(2).hex()[:3]}-"


def uuid7(unix_ms: int | None = None) -> str:
    """Return a time-ordered UUIDv7 (RFC 9562) as its 36-character string.

    Python 3.11 has no ``uuid.uuid7``. Ids are minted for every event, so this is on the
    writer's hot path: the time part (with ``rand_a``) is formatted once per millisecond, and
    the variant with the 62 bits of ``rand_b`` are formatted 512 at a time from one
    ``os.urandom`` draw (drawn again after fork), so an id costs a pop and a concatenation.
    """
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    if _prefix[0] != ms:
        _new_prefix(ms)
    try:
        tail = _tails.pop()
    except IndexError:
        _draw_tails()
        tail = _tails.pop()
    return _prefix[1] + tail  # type: ignore[operator]


class HybridClock:
    """A hybrid logical clock in nanoseconds: never goes backwards, even if the wall clock does.

    ``observe`` folds in a time seen in the log so that an event written in reaction to another
    is ordered after it, whatever the hosts' clocks say.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = 0

    def now(self) -> int:
        t = time.time_ns()
        last = self._last + 1
        self._last = t if t > last else last
        return self._last

    def stamp(self, _time_ns: Callable[[], int] = time.time_ns) -> tuple[int, str]:
        """``now()`` and a new UUIDv7 of its millisecond (``uuid7(hlc // 1_000_000)``).

        One call instead of two for every event the writer appends: a Python call costs as
        much here as the id's bits.
        """
        t = _time_ns()
        last = self._last + 1
        hlc = self._last = t if t > last else last
        ms = hlc // 1_000_000
        if _prefix[0] != ms:
            _new_prefix(ms)
        try:
            tail = _tails.pop()
        except IndexError:
            _draw_tails()
            tail = _tails.pop()
        return hlc, _prefix[1] + tail  # type: ignore[operator]

    def observe(self, hlc: int) -> None:
        if hlc > self._last:
            self._last = hlc


def hlc_to_datetime(hlc: int) -> datetime:
    """The naive UTC datetime of a clock value (microsecond precision, like DuckDB's TIMESTAMP)."""
    return datetime.fromtimestamp(hlc // 1000 / 1_000_000, tz=UTC).replace(tzinfo=None)


def new_writer_id() -> str:
    """A writer id that is unique without coordination and says where its events came from."""
    host = socket.gethostname().split(".")[0] or "host"
    host = "".join(c if c.isalnum() or c == "-" else "-" for c in host)[:32]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{host}-{os.getpid()}-{secrets.token_hex(3)}"


def writer_origin(writer_id: str) -> tuple[str, int] | None:
    """Host and pid of a writer id (``<stamp>-<host>-<pid>-<hex>``); None for other names."""
    head, _, rest = writer_id.partition("-")
    parts = rest.rsplit("-", 2)
    if not head or len(parts) != 3 or not parts[1].isdigit() or not parts[0]:
        return None
    return parts[0], int(parts[1])


def writer_running_here(writer_id: str) -> bool | None:
    """Whether the process that owns ``writer_id`` still runs: True or False when it ran on this
    host, None when that cannot be told (another host, or a name that is not a writer id).

    This process counts as running, and so does a process of another user; a pid reused by an
    unrelated process makes a dead writer look alive, which errs on the safe side.
    """
    origin = writer_origin(writer_id)
    if origin is None or origin[0] != _LOCAL_HOST:
        return None
    pid = origin[1]
    if pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: it exists
        return True
    return True


def actor() -> str:
    """``user@host`` of this process, for the audit trail."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


_LOCAL_HOST = (writer_origin(new_writer_id()) or ("", 0))[0]
