"""Identity and time for events: UUIDv7 ids, a hybrid logical clock, writer ids and actors.

Clocks only order events for display, audit and as-of queries; no correctness decision in
joshreg depends on two hosts agreeing on the time. Standard library only.
"""

from __future__ import annotations

import getpass
import os
import random
import secrets
import socket
import time
from datetime import UTC, datetime

__all__ = ["HybridClock", "actor", "hlc_to_datetime", "new_writer_id", "uuid7"]

_rand = random.Random(secrets.randbits(64))
# A forked child must not repeat its parent's ids.
os.register_at_fork(after_in_child=lambda: _rand.seed(secrets.randbits(64)))

_HEX = "0123456789abcdef"


def uuid7(unix_ms: int | None = None) -> str:
    """Return a time-ordered UUIDv7 (RFC 9562) as its 36-character string.

    Python 3.11 has no ``uuid.uuid7``; the 74 random bits come from a per-process generator
    seeded from the OS (reseeded after fork), which is plenty for uniqueness and much cheaper
    than a system call per id.
    """
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    r = _rand.getrandbits(74)
    value = (ms << 80) | (0x7 << 76) | ((r >> 62) << 64) | (0b10 << 62) | (r & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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


def actor() -> str:
    """``user@host`` of this process, for the audit trail."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"
