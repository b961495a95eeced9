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


_HEX = "0123456789abcdef"


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
_prefix: list[object] = [-1, ""]  # (unix ms, "xxxxxxxx-xxxx-7xxx-") cached per millisecond
_pool: list[object] = ["", 0]  # random hex digits drawn from the OS in bulk, and the next index


def _after_fork() -> None:
    _prefix[0] = -1
    _pool[0], _pool[1] = "", 0  # a child must not reuse its parent's random digits


os.register_at_fork(after_in_child=_after_fork)


def uuid7(unix_ms: int | None = None) -> str:
    """Return a time-ordered UUIDv7 (RFC 9562) as its 36-character string.

    Python 3.11 has no ``uuid.uuid7``. Ids are minted for every event, so this is on the
    writer's hot path: the time part is formatted once per millisecond and the 74 random bits
    are sliced from hex digits drawn from ``os.urandom`` 4 KiB at a time (refilled after fork).
    """
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    if _prefix[0] != ms:
        _prefix[0] = ms
        _prefix[1] = f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-7{os.urandom(2).hex()[:3]}-"
    digits: str = _pool[0]  # type: ignore[assignment]
    i: int = _pool[1]  # type: ignore[assignment]
    if i + 16 > len(digits):
        digits = _pool[0] = os.urandom(4096).hex()
        i = 0
    _pool[1] = i + 16
    return f"{_prefix[1]}{_VARIANT[digits[i]]}{digits[i + 1 : i + 4]}-{digits[i + 4 : i + 16]}"


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
