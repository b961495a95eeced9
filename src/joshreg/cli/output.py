"""What only the command line shows: progress, live watch lines, and one JSON encoder
(``emit_json``) for every ``--json``: times as ISO 8601 with ``Z`` (they are UTC). Tables and
the run page are the registry's texts (``registry.text``), which ``describe_*`` return too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from joshreg.registry.listings import iso_utc
from joshreg.registry.text import format_time

if TYPE_CHECKING:
    from joshreg.operations.watch import Batch, FollowSummary

__all__ = ["ProgressLines", "emit_json", "watch_line", "watch_summary_line"]

PROGRESS_AFTER_S = 1.0
PROGRESS_EVERY_S = 0.5


class ProgressLines:
    """Progress of long work on stderr: nothing in its first second, then a line at most every
    half second, never the same line twice."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.t0 = time.monotonic()
        self.last_at = 0.0
        self.last_line = ""

    def __call__(self, line: str) -> None:
        now = time.monotonic()
        if (
            now - self.t0 < PROGRESS_AFTER_S
            or now - self.last_at < PROGRESS_EVERY_S
            or line == self.last_line
        ):
            return
        self.last_at, self.last_line = now, line
        self.err.write(f"joshreg: {line}\n")
        self.err.flush()


def watch_line(b: Batch) -> str:
    """One live line of ``joshreg watch``: what a catch-up applied, its lag, the running totals."""
    lag = "-" if b.lag_ms is None else f"{b.lag_ms:.0f} ms"
    line = (
        f"{format_time(b.at, millis=True)}  +{b.events} events  +{b.label_commits} label commits  "
        f"lag {lag}  total {b.total_events} events, {b.total_label_commits} label commits"
    )
    if b.problems:
        line += f"  ({len(b.problems)} damaged line(s), see stderr)"
    return line


def watch_summary_line(s: FollowSummary, snapshot: Path | None) -> str:
    """The last line of ``joshreg watch``."""
    line = (
        f"stopped after {s.seconds:.1f} s: {s.batches} batches, +{s.events} events, "
        f"+{s.label_commits} label commits; total {s.total_events} events, "
        f"{s.total_label_commits} label commits"
    )
    if snapshot is not None and s.snapshot_seconds:
        ms = sorted(1000 * x for x in s.snapshot_seconds)
        line += (
            f"; {s.snapshots} snapshots to {snapshot} (median {ms[len(ms) // 2]:.0f} ms, max {ms[-1]:.0f} ms)"
        )
    if s.problems:
        line += f"; {s.problems} problems in the log"
    return line


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    return str(value)


def emit_json(rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    for r in rows:
        out.write(json.dumps(r, default=_json_default) + "\n")
