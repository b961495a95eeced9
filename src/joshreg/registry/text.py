"""How the registry's listings read as text: tables, times, durations, the run page.

Used by ``describe_*`` (which return these texts) and by the command line, which prints them.
Formats data the library returned; reads nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from joshreg.models import LabelChange

__all__ = [
    "HISTORY_HEADERS",
    "INFO_RUN_HEADERS",
    "LABEL_HEADERS",
    "RUN_HEADERS",
    "SESSION_HEADERS",
    "STATUS_HISTORY_HEADERS",
    "cell_text",
    "format_duration",
    "format_run_info",
    "format_table",
    "format_time",
    "history_rows",
    "label_table_row",
    "run_table_row",
    "session_table_row",
    "status_rows",
    "status_text",
]


def format_time(value: datetime | None, *, millis: bool = False) -> str:
    """A UTC timestamp as ``YYYY-MM-DD HH:MM:SS`` (``.mmm`` with ``millis``); ``-`` for none."""
    if value is None:
        return "-"
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{value.microsecond // 1000:03d}" if millis else text


def cell_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


SESSION_HEADERS = ("SESSION", "EXPERIMENT", "STATUS", "JOBS", "RUNS (ok/fail/pend)", "CREATED")
LABEL_HEADERS = ("LABEL", "RUN_HASH", "LABELLED", "REGISTERED")
HISTORY_HEADERS = ("VERSION", "WHEN", "ACTOR", "ACTION", "LABEL", "RUN", "PREVIOUS/ARCHIVED_AS", "POSITION")
RUN_HEADERS = ("RUN_ID", "RUN_HASH", "REP", "STARTED", "DURATION", "EXIT", "ERROR")
INFO_RUN_HEADERS = ("RUN_ID", "REP", "STARTED", "DURATION", "EXIT", "OUTPUT", "ERROR")


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
    cells = [[cell_text(v) for v in row] for row in rows]
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


def label_table_row(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["label"], r["run_hash"], r["labelled_at"], r["created_at"])
