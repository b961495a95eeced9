"""How the command line shows things: tables, times, durations, progress, JSON, the info page.

Text only: every function here formats data the library returned. One JSON encoder
(``emit_json``) for every ``--json``: times as ISO 8601 with ``Z`` (they are UTC).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from joshreg.registry.listings import cell_text as cell
from joshreg.registry.listings import format_time, iso_utc

if TYPE_CHECKING:
    from joshreg.models import LabelChange
    from joshreg.operations.watch import Batch, FollowSummary

__all__ = [
    "HISTORY_HEADERS",
    "INFO_RUN_HEADERS",
    "LABEL_HEADERS",
    "RUN_HEADERS",
    "SESSION_HEADERS",
    "ProgressLines",
    "emit_json",
    "format_duration",
    "format_run_info",
    "format_table",
    "format_time",
    "history_rows",
    "label_table_row",
    "run_table_row",
    "session_table_row",
    "watch_line",
    "watch_summary_line",
]

PROGRESS_AFTER_S = 1.0
PROGRESS_EVERY_S = 0.5

SESSION_HEADERS = ("SESSION", "EXPERIMENT", "STATUS", "JOBS", "RUNS (ok/fail/pend)", "CREATED")
LABEL_HEADERS = ("LABEL", "RUN_HASH", "LABELLED", "REGISTERED")
HISTORY_HEADERS = ("VERSION", "WHEN", "ACTOR", "ACTION", "LABEL", "RUN", "PREVIOUS/ARCHIVED_AS", "POSITION")
RUN_HEADERS = ("RUN_ID", "RUN_HASH", "REP", "STARTED", "DURATION", "EXIT", "ERROR")
INFO_RUN_HEADERS = ("RUN_ID", "REP", "STARTED", "DURATION", "EXIT", "OUTPUT", "ERROR")


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


def format_duration(start: datetime | None, end: datetime | None) -> str:
    """Elapsed time between two timestamps, short and readable (``0.42s``, ``3m07s``)."""
    if start is None or end is None:
        return "-"
    s = (end - start).total_seconds()
    if s < 60:
        return f"{s:.2f}s"
    m, s = divmod(round(s), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s"


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Rows as left-aligned columns under a header line; ``(none)`` when there are no rows."""
    cells = [[cell(v) for v in row] for row in rows]
    if not cells:
        return "(none)"
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for r in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


def session_table_row(r: dict[str, Any]) -> tuple[Any, ...]:
    runs = f"{r['runs_succeeded']}/{r['runs_failed']}/{r['runs_pending']}"
    return (r["session_id"], r["experiment_name"], r["status"], r["total_jobs"], runs, r["created_at"])


def _history_detail(c: LabelChange) -> str | None:
    if c.action == "archived":
        return c.archived_as
    if c.action == "released":
        return f"({c.reason})" if c.reason else None
    if c.action == "superseded":
        return f"superseded by {c.superseded_by}" + (f" ({c.reason})" if c.reason else "")
    if c.reason:  # an assignment with a reason: brought in by `joshreg import`
        return f"{c.previous_run_hash or '-'} ({c.reason})"
    return c.previous_run_hash


def history_rows(changes: Iterable[LabelChange]) -> list[tuple[Any, ...]]:
    """Label changes as rows under ``HISTORY_HEADERS`` (POSITION is what ``--as-of`` takes)."""
    return [
        (c.version, format_time(c.at), c.actor, c.action, c.label, c.run_hash, _history_detail(c), c.position)
        for c in changes
    ]


def run_table_row(r: dict[str, Any]) -> tuple[Any, ...]:
    # A run of a hash no event registers (a worker's typo, an imported orphan): `verify` names it.
    return (
        r["run_id"],
        r["run_hash"] if r["registered"] else f"{r['run_hash']} (not registered)",
        r["replicate"],
        r["started_at"],
        format_duration(r["started_at"], r["completed_at"]),
        r["exit_code"] if r["exit_code"] is not None else "running",
        r["error_message"],
    )


def _source_state(info: Any) -> str:
    """How a registered source file compares with the text the registry stored."""
    if info is None or info.path is None:
        return ""
    if not info.exists:
        return "  (file no longer exists; the registry keeps its text)"
    return "  (file unchanged)" if info.content_matches else "  (file modified since registration)"


def format_run_info(info: dict[str, Any]) -> str:
    """``run_info`` as the readable page ``joshreg info`` prints."""
    title = f"Run: {info['label']} ({info['run_hash']})" if info["label"] else f"Run: {info['run_hash']}"
    lines = [title, "=" * len(title)]
    session = info["session_id"]
    if info["experiment_name"]:
        session += f" ({info['experiment_name']})"
    lines.append(f"Session:     {session}")
    if len(info["sessions"]) > 1:
        lines.append(f"Also in:     {', '.join(s for s in info['sessions'] if s != info['session_id'])}")
    lines.append(f"Simulation:  {info['simulation'] or '-'}")
    josh = info["josh_path"] or "-"
    josh += "" if info["josh_stored"] else "  (source text not stored)"
    lines.append(f"Josh:        {josh}{_source_state(info['josh_source'])}")
    if info["config_path"]:
        lines.append(f"Config:      {info['config_path']}{_source_state(info['config_source'])}")
    lines.append(f"Registered:  {format_time(info['created_at'])}")
    lines.append(f"Status:      {status_text(info)}")
    lines.append("Parameters:" + ("" if info["parameters"] else " (none)"))
    lines += [f"  {k} = {json.dumps(v) if isinstance(v, str) else v}" for k, v in info["parameters"].items()]
    if info["attributes"]:
        lines.append("Attributes:")
        lines += [f"  {k} = {json.dumps(v)}" for k, v in info["attributes"].items()]
    lines.append("Data files:" + ("" if info["file_mappings"] else " (none)"))
    for name, f in sorted(info["file_mappings"].items()):
        digest = f.get("hash") or "missing"
        lines.append(f"  {name}: {f.get('path')}  (md5 {digest[:12]})")
    lines.append(
        f"Replicates:  {info['replicates_configured']} per execution; "
        f"{info['replicates_loaded']} with loaded results"
    )
    runs = info["runs"]
    ok = sum(r["exit_code"] == 0 for r in runs)
    failed = sum(r["exit_code"] not in (None, 0) for r in runs)
    lines.append(f"Executions:  {ok} succeeded, {failed} failed, {len(runs) - ok - failed} pending")
    if runs:
        rows = [
            (
                r["run_id"],
                r["replicate"],
                r["started_at"],
                format_duration(r["started_at"], r["completed_at"]),
                r["exit_code"] if r["exit_code"] is not None else "running",
                r["output_path"],
                r["error_message"],
            )
            for r in runs
        ]
        lines += ["", format_table(INFO_RUN_HEADERS, rows)]
    lines += ["", "Label history:"]
    lines.append(format_table(HISTORY_HEADERS, history_rows(info["label_history"])))
    if info["status_history"]:
        lines += [
            "",
            "Status history:",
            format_table(STATUS_HISTORY_HEADERS, status_rows(info["status_history"])),
        ]
    return "\n".join(lines)


def status_text(c: Any) -> str:
    """A run's status in words: ``active``, ``bad (why)``, ``superseded by H (why)``, with
    when it was set; an unmarked run is ``active``. ``c`` is a ``RunStatus`` or a run_info page."""
    if isinstance(c, dict):
        status, by, reason = c["status"], c["superseded_by"], c["status_reason"]
        at = c["status_updated_at"]
    else:
        status, by, reason, at = c.status, c.superseded_by, c.reason, c.updated_at
    if status is None:
        return "active (never marked)"
    text = status + (f" by {by}" if by else "") + (f" ({reason})" if reason else "")
    return text + f", since {format_time(at)}"


STATUS_HISTORY_HEADERS = ("WHEN", "RUN_HASH", "STATUS", "SUPERSEDED_BY", "REASON", "BY", "WHERE")


def status_rows(changes: Iterable[Any]) -> list[tuple[Any, ...]]:
    """``status_history`` entries as table rows; WHERE is the label commit or segment line."""
    return [
        (
            format_time(c.at),
            c.run_hash,
            c.status if c.status is not None else "(reset)",
            c.superseded_by,
            c.reason,
            c.actor,
            f"label commit {c.version}" if c.version is not None else f"{c.segment}:{c.line}",
        )
        for c in changes
    ]


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


def label_table_row(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["label"], r["run_hash"], r["labelled_at"], r["created_at"])
