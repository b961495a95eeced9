"""The ``joshreg`` command line: look at a registry and rebuild it from its log.

Imports ``registry``, ``recorder``, ``sources``, ``errors``, ``models`` (level 6 of the
ladder). A command parses its arguments, asks the library once, and formats the answer;
library errors become one line on stderr (``joshreg: error: ...``) and exit status 2, problems
found in the log (or differences found by ``diff``) exit status 1. Every command opens the
registry like any other process: if a running sweep holds the DuckDB file, the command reads a
private projection of the same log instead of failing.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from joshreg.errors import (
    DebugParseWarning,
    InvalidArgumentError,
    JoshregError,
    LogDamageWarning,
    NotFoundError,
)
from joshreg.log.events import event_types
from joshreg.log.names import default_events_path
from joshreg.models import LabelChange
from joshreg.operations.compaction import ABANDONED_AFTER_S, MIN_BYTES
from joshreg.operations.merge import event_store_path, merge_stores
from joshreg.operations.watch import (
    DEFAULT_INTERVAL,
    DEFAULT_SNAPSHOT_INTERVAL,
    Batch,
    Follower,
    FollowSummary,
)
from joshreg.projection.snapshot import snapshot_path
from joshreg.projection.timetravel import Moment, describe, parse_when
from joshreg.provenance.bottle import unbottle
from joshreg.provenance.debug import DebugMessageStore, format_message, format_summary, format_trace
from joshreg.provenance.sources import IDE_COMMANDS, make_output_dir
from joshreg.registry.registry import RunRegistry

__all__ = [
    "LogEntry",
    "format_duration",
    "format_table",
    "format_time",
    "history_rows",
    "label_rows",
    "log_entries",
    "main",
    "run_rows",
    "run_table_row",
    "session_rows",
    "session_table_row",
]

EXIT_OK, EXIT_PROBLEMS, EXIT_ERROR = 0, 1, 2
EXIT_DIFFERENT = 1  # `joshreg diff` found differences, as diff(1) says
# Progress lines of a rebuild start after this many seconds, so short rebuilds stay quiet.
PROGRESS_AFTER_S = 1.0
PROGRESS_EVERY_S = 0.5


# --- formatting ---------------------------------------------------------------------------------


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


def format_time(value: datetime | None, *, millis: bool = False) -> str:
    """A UTC timestamp as ``YYYY-MM-DD HH:MM:SS`` (``.mmm`` with ``millis``); ``-`` for none."""
    if value is None:
        return "-"
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{value.microsecond // 1000:03d}" if millis else text


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


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Rows as left-aligned columns under a header line; ``(none)`` when there are no rows."""
    cells = [[_cell(v) for v in row] for row in rows]
    if not cells:
        return "(none)"
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for r in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


# --- what each read command shows ---------------------------------------------------------------

SESSION_HEADERS = ("SESSION", "EXPERIMENT", "STATUS", "JOBS", "RUNS (ok/fail/pend)", "CREATED")
LABEL_HEADERS = ("LABEL", "RUN_HASH", "LABELLED", "REGISTERED")
HISTORY_HEADERS = ("VERSION", "WHEN", "ACTOR", "ACTION", "LABEL", "RUN", "PREVIOUS/ARCHIVED_AS", "POSITION")
RUN_HEADERS = ("RUN_ID", "RUN_HASH", "REP", "STARTED", "DURATION", "EXIT", "ERROR")


def session_rows(reg: RunRegistry) -> list[dict[str, Any]]:
    """Every session, newest first, with its run counts."""
    out = []
    for s in reg.list_sessions(limit=2**31 - 1):
        summary = reg.get_session_summary(s.session_id)
        if summary is None:  # cannot happen: sessions are never deleted
            continue
        out.append(
            {
                "session_id": s.session_id,
                "experiment_name": s.experiment_name,
                "status": s.status,
                "total_jobs": summary.total_jobs,
                "runs_succeeded": summary.runs_succeeded,
                "runs_failed": summary.runs_failed,
                "runs_pending": summary.runs_pending,
                "created_at": s.created_at,
            }
        )
    return out


def session_table_row(r: dict[str, Any]) -> tuple[Any, ...]:
    runs = f"{r['runs_succeeded']}/{r['runs_failed']}/{r['runs_pending']}"
    return (r["session_id"], r["experiment_name"], r["status"], r["total_jobs"], runs, r["created_at"])


def label_rows(reg: RunRegistry, label: str | None = None) -> list[dict[str, Any]]:
    """Current labels, sorted: when each was given to its run (``labelled_at``), and when that
    run's configuration was registered (``created_at``, as upstream's ``job_configs`` has it)."""
    given: dict[tuple[str, str], datetime] = {}
    for c in reg.label_history():  # oldest first: the last change that gave a label counts
        if c.action == "assigned":
            given[(c.label, c.run_hash)] = c.at
        elif c.action == "archived" and c.archived_as:
            given[(c.archived_as, c.run_hash)] = c.at
    out = []
    for name, run_hash in reg.list_labels():
        if label is not None and name != label:
            continue
        cfg = reg.get_config_by_hash(run_hash)
        out.append(
            {
                "label": name,
                "run_hash": run_hash,
                "labelled_at": given.get((name, run_hash)),
                "created_at": cfg.created_at if cfg else None,
            }
        )
    return out


def _history_detail(c: LabelChange) -> str | None:
    if c.action == "archived":
        return c.archived_as
    if c.action == "released":
        return f"({c.reason})" if c.reason else None
    if c.reason:  # an assignment with a reason: brought in by `joshreg import`
        return f"{c.previous_run_hash or '-'} ({c.reason})"
    return c.previous_run_hash


def history_rows(changes: Iterable[LabelChange]) -> list[tuple[Any, ...]]:
    """Label changes as rows under ``HISTORY_HEADERS`` (POSITION is what ``--as-of`` takes)."""
    return [
        (c.version, format_time(c.at), c.actor, c.action, c.label, c.run_hash, _history_detail(c), c.position)
        for c in changes
    ]


def run_rows(
    reg: RunRegistry, session_id: str | None = None, run_hash: str | None = None
) -> list[dict[str, Any]]:
    """Executions, oldest first, optionally of one session and/or one configuration."""
    rows = reg.query(
        "SELECT run_id, r.run_hash, r.session_id, replicate, started_at, completed_at, exit_code, "
        "error_message, output_path, c.run_hash IS NOT NULL AS registered "
        "FROM job_runs r LEFT JOIN (SELECT run_hash FROM job_configs) c USING (run_hash) "
        "WHERE (?::VARCHAR IS NULL OR r.session_id = ?) AND (?::VARCHAR IS NULL OR r.run_hash = ?) "
        "ORDER BY started_at, run_id",
        [session_id, session_id, run_hash, run_hash],
    )
    names = [d[0] for d in rows.description]
    return [dict(zip(names, r, strict=True)) for r in rows.fetchall()]


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


# --- the log ------------------------------------------------------------------------------------


@dataclass
class LogEntry:
    """One line of ``joshreg log``: a segment event or one action of a label commit.

    ``hlc`` is the entry's log position: ``--as-of`` (``registry.as_of``) with it shows the
    registry just after this entry; lines show it last, as ``@<position>``.
    """

    hlc: int
    order: tuple[Any, ...]
    at: datetime
    actor: str
    type: str
    fields: dict[str, Any]

    def line(self) -> str:
        keys = " ".join(f"{k}={_field(v)}" for k, v in self.fields.items() if v is not None)
        head = f"{format_time(self.at, millis=True)}  {self.actor}  {self.type}  {keys}".rstrip()
        return f"{head}  @{self.hlc}"

    def to_json(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "hlc": self.hlc,
            "position": self.hlc,
            "actor": self.actor,
            "type": self.type,
            **self.fields,
        }


def _field(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}:{_cell(v)}" for k, v in value.items())
    text = _cell(value)
    return json.dumps(text) if (" " in text or not text) else text


# Which fields of an event body a log line shows, in order, per event type.
_EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "session.created": ("session_id", "experiment_name", "simulation", "replicates"),
    "session.status_changed": ("session_id", "status"),
    "run.registered": ("run_hash", "session_id", "parameters"),
    "run.started": ("run_id", "run_hash", "session_id", "replicate"),
    "run.completed": ("run_id", "exit_code", "error_message"),
    "output.registered": ("run_id", "output_type", "file_path"),
    "results.loaded": ("run_id", "run_hash", "source_path", "row_count", "entity_type"),
    "registry.imported": ("source", "source_kind", "source_timezone", "counts"),
}
# What ``--type`` matches: every event type and label action, and their prefixes.
LOG_TYPES = (*sorted(event_types()), "label.archived", "label.assigned", "label.released")
_ENVELOPE = ("event_id", "writer", "seq", "hlc", "actor", "v", "type", "p", "c")


def _matches_type(wanted: str | None, kind: str) -> bool:
    return wanted is None or kind == wanted or kind.startswith(wanted + ".")


def log_entries(
    reg: RunRegistry,
    *,
    type: str | None = None,
    run: str | None = None,
    session_id: str | None = None,
    label: str | None = None,
    full: bool = False,
) -> list[LogEntry]:
    """Events and label changes in log order (clock, then writer and sequence), filtered.

    ``run`` is a run id, a run hash or a current label (a hash also selects the events of its
    executions);
    ``session_id`` selects the session's events, its executions' events and label changes of
    its configurations; ``label`` selects only changes of that label. ``full`` keeps every
    field of each event, not just the key ones.
    """
    run_ids: set[str] = set()
    if run is not None:
        run = dict(reg.list_labels()).get(run, run)
        run_ids = {r["run_id"] for r in run_rows(reg, run_hash=run)} | {run}
    session_runs: set[str] = set()
    session_hashes: set[str] = set()
    if session_id is not None:
        session_runs = {r["run_id"] for r in run_rows(reg, session_id=session_id)}
        session_hashes = {c.run_hash for c in reg.get_configs_for_session(session_id)}

    entries: list[LogEntry] = []
    if label is None:
        cur = reg.query(
            "SELECT hlc, writer, seq, recorded_at, actor, type, session_id, run_hash, run_id, body "
            "FROM event_log ORDER BY hlc, writer, seq"
        )
        for hlc, writer, seq, at, actor, kind, sid, rhash, rid, body in cur.fetchall():
            if not _matches_type(type, kind):
                continue
            if run is not None and not (rhash == run or rid in run_ids):
                continue
            if session_id is not None and not (sid == session_id or rid in session_runs):
                continue
            data = json.loads(body)
            if full:
                fields = {k: v for k, v in data.items() if k not in _ENVELOPE}
                fields.update(writer=writer, seq=seq)
            else:
                fields = {k: data.get(k) for k in _EVENT_FIELDS.get(kind, ())}
                fields["writer"] = writer
            entries.append(LogEntry(hlc, (hlc, 0, writer, seq), at, actor, kind, fields))

    cur = reg.query(
        "SELECT hlc, version, idx, changed_at, actor, action, label, run_hash, previous_run_hash, "
        "archived_as, reason, writer FROM label_history ORDER BY version, idx"
    )
    for hlc, version, idx, at, actor, action, name, rhash, prev, archived, reason, writer in cur.fetchall():
        kind = f"label.{action}"
        if not _matches_type(type, kind):
            continue
        if label is not None and label not in (name, archived):
            continue
        if run is not None and run not in (rhash, prev):
            continue
        if session_id is not None and not ({rhash, prev} & session_hashes):
            continue
        fields = {
            "label": name,
            "run_hash": rhash,
            "previous_run_hash": prev,
            "archived_as": archived,
            "reason": reason,
            "version": version,
            "writer": writer,
        }
        entries.append(LogEntry(hlc, (hlc, 1, version, idx), at, actor, kind, fields))
    entries.sort(key=lambda e: e.order)
    return entries


# --- commands -----------------------------------------------------------------------------------


def _open(args: argparse.Namespace) -> RunRegistry:
    """Open an existing registry; refuse a path with neither a database file nor a log.

    With ``--as-of`` it is a read-only view as of then, and the live registry is closed at once.
    """
    db = Path(args.registry)
    events = Path(args.events_path) if args.events_path else Path(default_events_path(db))
    if not db.exists() and not events.exists():
        raise JoshregError(f"no registry at {db}: neither {db} nor its log {events}/ exists")
    reg = RunRegistry(db, events_path=events)
    when = getattr(args, "as_of", None)
    if when is None:
        return reg
    with reg:
        return reg.as_of(when)


def _emit_json(rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    for r in rows:
        out.write(json.dumps(r, default=_json_default) + "\n")


def _iso(value: datetime) -> str:
    # Timestamps are naive UTC throughout the registry; say so in machine-readable output.
    return value.isoformat() + "Z" if value.tzinfo is None else value.isoformat()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    return str(value)


def cmd_rebuild(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    say = ProgressLines(err)

    def progress(done: int, total: int) -> None:
        pct = 100.0 * done / total if total else 100.0
        say(f"rebuilding: {done / 1e6:.2f} of {total / 1e6:.2f} MB read ({pct:.0f}%)")

    db = Path(args.registry)
    events = Path(args.events_path) if args.events_path else Path(default_events_path(db))
    if not db.exists() and not events.exists():
        raise JoshregError(f"no registry at {db}: neither {db} nor its log {events}/ exists")
    # Rebuilding at open is also the explicit way to point the file at another event store.
    with RunRegistry(db, events_path=events, rebuild=True, progress=progress) as reg:
        if reg.private_projection:
            err.write(
                f"joshreg: note: {reg.db_path} is held by another process; rebuilt a private "
                "in-memory projection only, the file was not changed\n"
            )
        result = reg.opened
    out.write(
        f"rebuilt {result.events} events, {result.label_commits} label commits in {result.seconds:.2f} s\n"
    )
    for p in result.problems:
        err.write(f"joshreg: problem: {p}\n")
    return EXIT_PROBLEMS if result.problems else EXIT_OK


def cmd_verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Report on stdout; exit 0 when the store is sound, 1 when damage was found."""
    say = ProgressLines(err)

    def progress(phase: str, done: int, total: int) -> None:
        pct = 100.0 * done / total if total else 100.0
        if phase in ("segments", "rebuild"):
            amount = f"{done / 1e6:.2f} of {total / 1e6:.2f} MB"
        else:
            amount = f"{done} of {total}"
        say(f"verifying {phase}: {amount} ({pct:.0f}%)")

    with _open(args) as reg:
        report = reg.verify(rebuild_check=not args.no_rebuild_check, progress=progress)
    if args.json:
        _emit_json([report.to_dict()], out)
    else:
        out.write(f"{report}\n")
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def cmd_compact(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Report on stdout; exit 0 when every finished segment was compacted (or left alone), 1 when
    a segment could not be compacted safely."""
    with _open(args) as reg:
        report = reg.compact(
            abandoned_after=args.abandoned_after, min_bytes=args.min_bytes, dry_run=args.dry_run
        )
    if args.json:
        _emit_json([report.to_dict()], out)
    else:
        out.write(f"{report}\n")
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def cmd_log(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.type is not None and not any(_matches_type(args.type, t) for t in LOG_TYPES):
        raise JoshregError(f"unknown event type {args.type!r}; the types are: {', '.join(LOG_TYPES)}")
    with _open(args) as reg:
        entries = log_entries(
            reg, type=args.type, run=args.run, session_id=args.session, label=args.label, full=args.json
        )
    if args.limit is not None:
        entries = entries[len(entries) - args.limit :] if args.limit < len(entries) else entries
    if args.json:
        _emit_json((e.to_json() for e in entries), out)
    elif entries:
        out.write("\n".join(e.line() for e in entries) + "\n")
    else:
        out.write("(no entries)\n")
    return EXIT_OK


def cmd_labels(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _open(args) as reg:
        if args.history:
            changes = reg.label_history(label=args.label)
            if args.json:
                _emit_json(({**c.__dict__} for c in changes), out)
            else:
                out.write(format_table(HISTORY_HEADERS, history_rows(changes)) + "\n")
            return EXIT_OK
        rows = label_rows(reg, args.label)
    if args.json:
        _emit_json(rows, out)
    else:
        table = [(r["label"], r["run_hash"], r["labelled_at"], r["created_at"]) for r in rows]
        out.write(format_table(LABEL_HEADERS, table) + "\n")
    return EXIT_OK


def cmd_sessions(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _open(args) as reg:
        rows = session_rows(reg)
    if args.json:
        _emit_json(rows, out)
    else:
        out.write(format_table(SESSION_HEADERS, [session_table_row(r) for r in rows]) + "\n")
    return EXIT_OK


def cmd_runs(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _open(args) as reg:
        if args.session is not None and reg.get_session(args.session) is None:
            raise JoshregError(f"no session with id '{args.session}'; see `joshreg sessions {args.registry}`")
        run_hash = args.hash
        if (
            run_hash is not None
            and reg.get_config_by_hash(run_hash) is None
            and not reg.get_runs_for_hash(run_hash)
        ):
            # Accept a label too, as the library's label-or-hash methods do.
            run_hash = dict(reg.list_labels()).get(run_hash)
            if run_hash is None:
                raise JoshregError(f"no run configuration with hash or label '{args.hash}'")
        rows = run_rows(reg, args.session, run_hash)
    if args.json:
        _emit_json(rows, out)
    else:
        out.write(format_table(RUN_HEADERS, [run_table_row(r) for r in rows]) + "\n")
    return EXIT_OK


def _debug_entity(store: DebugMessageStore, prefix: str) -> str:
    """The one entity id ``prefix`` names, or an error listing what it could have meant."""
    eid = store.resolve_entity_id(prefix)
    if eid is not None:
        return eid
    found = store.entity_ids_with_prefix(prefix)
    if found:
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise InvalidArgumentError(
            f"entity id prefix '{prefix}' matches {len(found)} entities ({shown}); give more digits"
        )
    sample = ", ".join(store.entity_ids()[:3]) or "none"
    raise NotFoundError(f"no entity '{prefix}' in this debug output (ids look like: {sample})")


def cmd_debug(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _open(args) as reg:
        run_hash = reg._resolve_label_or_hash(args.run)
        run_id = reg._resolve_run_id_for_hash(run_hash, args.run_id)
        files = reg.get_debug_output_files(run_hash, run_id=run_id, entity_types=args.entity_type)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DebugParseWarning)
            store = reg.load_debug(run_hash, run_id=run_id, entity_types=args.entity_type)
    for w in caught:
        if issubclass(w.category, DebugParseWarning):
            err.write(f"joshreg: warning: {w.message}\n")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    entity = _debug_entity(store, args.entity) if args.entity is not None else None
    filtered = args.step is not None or args.grep is not None
    if entity is not None and not filtered and not args.summary:
        messages = store.trace(entity)  # a trace reads by step, whatever the file order
    else:
        messages = store.filter(step=args.step, entity_id=entity, content_contains=args.grep)
    if args.summary:
        whole = entity is None and not filtered
        summary = (store if whole else DebugMessageStore(messages, store.parse_errors)).summary()
        if args.json:
            record = {"run_hash": run_hash, "run_id": run_id, "files": [str(f) for f in files]}
            _emit_json([{**record, **summary.__dict__}], out)
        else:
            head = f"Debug output of {args.run}" + (f" ({run_hash})" if args.run != run_hash else "")
            lines = [head, f"Execution:     {run_id}"]
            lines += [f"{'Files:' if i == 0 else '':<15}{f}" for i, f in enumerate(files)]
            out.write("\n".join(lines) + "\n" + format_summary(summary) + "\n")
        return EXIT_OK
    shown = messages if args.limit is None else messages[: args.limit]
    try:
        if args.json:
            _emit_json((m.to_dict() for m in shown), out)
        elif entity is not None and not filtered:
            out.write(f"Trace of {entity} ({len(messages)} messages)\n")
            out.write(format_trace(shown) + "\n")
        elif shown:
            for i in range(0, len(shown), 10_000):  # millions of lines: never one giant string
                out.write("".join(format_message(m) + "\n" for m in shown[i : i + 10_000]))
        else:
            out.write("(no matching messages)\n")
        if len(shown) < len(messages) and not args.json:
            out.write(f"... {len(messages) - len(shown)} more messages (raise --limit to see them)\n")
        out.flush()
    except BrokenPipeError:
        # `joshreg debug ... | head`: the reader has all it wanted. Point stdout at /dev/null so
        # the interpreter's final flush does not report the closed pipe.
        if out is sys.__stdout__:
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    return EXIT_OK


INFO_RUN_HEADERS = ("RUN_ID", "REP", "STARTED", "DURATION", "EXIT", "OUTPUT", "ERROR")


def _source_state(info: Any) -> str:
    """How a registered source file compares with the text the registry stored."""
    if info is None or info.path is None:
        return ""
    if not info.exists:
        return "  (file no longer exists; the registry keeps its text)"
    return "  (file unchanged)" if info.content_matches else "  (file modified since registration)"


def run_info(reg: RunRegistry, label_or_hash: str) -> dict[str, Any]:
    """Everything ``joshreg info`` shows about one configuration, as plain data."""
    run_hash = reg._resolve_label_or_hash(label_or_hash)
    cfg = reg.get_config_by_hash(run_hash)
    assert cfg is not None  # _resolve_label_or_hash raised otherwise
    session = reg.get_session(cfg.session_id)
    job_config = (session.metadata or {}).get("job_config") or {} if session else {}
    sessions = [
        r[0]
        for r in reg.query(
            "SELECT session_id FROM session_configs WHERE run_hash = ? ORDER BY created_at, session_id",
            [run_hash],
        ).fetchall()
    ]
    resolve_josh = getattr(reg, "resolve_josh_source", None)
    resolve_config = getattr(reg, "resolve_config_source", None)
    return {
        "run_hash": run_hash,
        "label": cfg.label,
        "session_id": cfg.session_id,
        "sessions": sessions,
        "experiment_name": session.experiment_name if session else None,
        "simulation": session.simulation if session else None,
        "created_at": cfg.created_at,
        "josh_path": cfg.josh_path,
        "josh_stored": cfg.josh_content is not None,
        "josh_source": resolve_josh(run_hash) if resolve_josh else None,
        "config_path": job_config.get("config_path"),
        "config_source": resolve_config(run_hash) if resolve_config else None,
        "parameters": reg.get_registered_parameters(run_hash),
        "file_mappings": cfg.file_mappings or {},
        "replicates_configured": job_config.get("replicates", 1),
        "replicates_loaded": reg.get_replicate_count(run_hash),
        "runs": run_rows(reg, run_hash=run_hash),
        "label_history": reg.label_history(run_hash=run_hash),
    }


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
    lines.append("Parameters:" + ("" if info["parameters"] else " (none)"))
    lines += [f"  {k} = {json.dumps(v) if isinstance(v, str) else v}" for k, v in info["parameters"].items()]
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
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _open(args) as reg:
        try:
            info = run_info(reg, args.run)
        except NotFoundError:
            if getattr(args, "as_of", None) is None:
                raise
            raise JoshregError(_not_yet(args, reg)) from None
    if args.json:
        info["label_history"] = [c.__dict__ for c in info["label_history"]]
        for key in ("josh_source", "config_source"):
            src = info[key]
            info[key] = (
                None
                if src is None
                else {"path": src.path, "exists": src.exists, "matches": src.content_matches}
            )
        _emit_json([info], out)
    else:
        out.write(format_run_info(info) + "\n")
    return EXIT_OK


def _not_yet(args: argparse.Namespace, view: RunRegistry) -> str:
    """Why a run is missing from a view as of the past: did it exist later, and since when?"""
    moment = describe(view.when, view.position)  # type: ignore[attr-defined]
    live = argparse.Namespace(**{**vars(args), "as_of": None})
    with _open(live) as reg:
        run_hash = dict(reg.list_labels()).get(args.run, args.run)
        cfg = reg.get_config_by_hash(run_hash)
    if cfg is None:
        return f"No run found for '{args.run}', neither as of {moment} nor now"
    if run_hash != args.run and view.get_config_by_hash(run_hash) is not None:
        return (
            f"label '{args.run}' named no run yet as of {moment}; it names {run_hash} now, which "
            f"existed then: ask for `info {run_hash}`"
        )
    since = f" at {format_time(cfg.created_at)} UTC" if cfg.created_at else " later"
    return f"run '{args.run}' did not exist yet as of {moment}: it was registered{since}"


# --- stored sources -----------------------------------------------------------------------------


def cmd_diff(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Like diff(1): the unified diff on stdout, exit 0 when equal and 1 when they differ."""
    with _open(args) as reg:
        if args.ide is not None:
            compare = reg.compare_josh if args.josh else reg.compare_configs
            p1, p2 = compare(args.a, args.b, ide=args.ide)
            if args.json:
                _emit_json([{"a": str(p1), "b": str(p2), "ide": args.ide}], out)
            else:
                out.write(f"opened in {args.ide}:\n  {p1}\n  {p2}\n")
            return EXIT_OK
        diff = reg.diff_josh if args.josh else reg.diff_configs
        text = diff(args.a, args.b, context=args.context)
    if args.json:
        kind = "josh" if args.josh else "config"
        _emit_json([{"a": args.a, "b": args.b, "kind": kind, "identical": not text, "diff": text}], out)
    else:
        out.write(text)
    return EXIT_OK if not text else EXIT_DIFFERENT


def cmd_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _open(args) as reg:
        # The Josh source first: a run without it then fails before any file is written.
        exports = {"josh": reg.export_josh, "config": reg.export_config}
        kinds = [k for k in ("josh", "config") if args.what in (k, "both")]
        directory = args.output_dir if args.output_dir is not None else make_output_dir(None)
        try:
            paths = {k: exports[k](args.run, directory) for k in kinds}
        except BaseException:
            if args.output_dir is None:
                directory.rmdir()  # the temporary directory is still empty: leave nothing behind
            raise
    ordered = [(k, paths[k]) for k in ("config", "josh") if k in paths]
    if args.json:
        _emit_json(({"run": args.run, "kind": k, "path": str(p)} for k, p in ordered), out)
    else:
        out.write("".join(f"{p}\n" for _, p in ordered))
    return EXIT_OK


# --- bottles ------------------------------------------------------------------------------------


def cmd_bottle(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _open(args) as reg:
        try:
            archive = reg.bottle(args.run, args.output_dir, omit_jshd=args.omit_jshd)
        except FileNotFoundError as e:  # a data file is gone: one line, like other errors
            raise JoshregError(str(e)) from e
    if args.json:
        _emit_json([{"run": args.run, "archive": str(archive), "omit_jshd": args.omit_jshd}], out)
    else:
        out.write(f"{archive}\n")
    return EXIT_OK


def cmd_unbottle(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        jobs = unbottle(args.archive, args.extract_dir, args.data_dir, args.run_hash)
    except FileNotFoundError as e:
        raise JoshregError(str(e)) from e
    records = [
        {
            "directory": str(Path(job.config_path).parent),
            "simulation": job.simulation,
            "replicates": job.replicates,
            "source_path": None if job.source_path is None else str(job.source_path),
            "config_path": str(job.config_path),
            "file_mappings": {k: str(v) for k, v in sorted(job.file_mappings.items())},
        }
        for job in jobs
    ]
    if args.json:
        _emit_json(records, out)
        return EXIT_OK
    for r in records:
        lines = [f"unbottled to {r['directory']}"]
        lines.append(f"  simulation:  {r['simulation']} ({r['replicates']} replicate(s))")
        lines.append(f"  josh:        {r['source_path'] or '-'}")
        lines.append(f"  config:      {r['config_path']}")
        lines += [f"  data {name}:  {path}" for name, path in r["file_mappings"].items()]
        run_sh = Path(r["directory"]) / "run.sh"
        if run_sh.is_file():
            lines.append(
                f"run it with:  cd {shlex.quote(r['directory'])} && ./run.sh /path/to/joshsim-fat.jar"
            )
        out.write("\n".join(lines) + "\n")
    return EXIT_OK


def cmd_merge(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    reports = merge_stores(args.sources, args.into)
    target = Path(args.into)
    caught = None
    if event_store_path(target) != os.fspath(target):  # a registry file: bring its tables up to date
        with RunRegistry(target) as reg:
            caught = reg.sync()
    problems = [p for r in reports for p in r.problems]
    if args.json:
        _emit_json([r.to_dict() for r in reports], out)
    else:
        for r in reports:
            out.write(("merged " if r.changed else "") + r.summary() + "\n")
        if caught is not None:
            out.write(f"{target}: tables up to date\n")
    for p in problems:
        err.write(f"joshreg: problem: {p}\n")
    return EXIT_PROBLEMS if problems else EXIT_OK


def cmd_import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Import a joshpy registry; a dry run into a registry that does not exist yet writes nothing."""
    source, into = Path(args.source), Path(args.into)
    if into.exists() and source.exists() and into.resolve() == source.resolve():
        raise JoshregError(f"{into} is the source itself; give a new file with --into")
    say = ProgressLines(err)

    def progress(phase: str, done: int, total: int) -> None:
        say(f"importing {phase}: {done} of {total}")

    events = Path(args.events_path) if args.events_path else Path(default_events_path(into))
    dry_into_nothing = args.dry_run and not into.exists() and not events.exists()
    target = RunRegistry(":memory:") if dry_into_nothing else RunRegistry(into, events_path=events)
    with target as reg:
        report = reg.import_joshpy(
            source, source_timezone=args.source_timezone, dry_run=args.dry_run, progress=progress
        )
        if not args.dry_run:
            summary = reg.get_data_summary()
    if args.json:
        _emit_json([{**report.to_dict(), "into": str(into)}], out)
    else:
        out.write(report.summary() + "\n")
        if not args.dry_run:
            out.write(
                f"{into} now holds {summary.sessions} sessions, {summary.configs} configurations, "
                f"{summary.runs} executions and {summary.cell_data_rows} result rows\n"
            )
    return EXIT_OK


# --- watch --------------------------------------------------------------------------------------


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


def cmd_watch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Follow the log until SIGINT/SIGTERM (or once); exit 0, or 1 when damage was found."""
    state: dict[str, Any] = {"stop": False, "follower": None}

    def on_signal(signum: int, frame: Any) -> None:
        state["stop"] = True
        if state["follower"] is not None:
            state["follower"].stop()

    saved: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            saved[sig] = signal.signal(sig, on_signal)
    try:
        with _open(args) as reg:
            snap = None if args.no_snapshot else Path(args.snapshot or snapshot_path(reg.db_path))
            if reg.private_projection:
                err.write(
                    f"joshreg: note: {reg.db_path} is held by another process; following the log in a "
                    "private in-memory projection (the file is not updated"
                    + (", the snapshot is)\n" if snap else ")\n")
                )
            # Events in the tables so far (as CatchUp counts them: control records are not).
            events, commits = reg.query(
                "SELECT (SELECT count(*) FROM event_log), "
                "(SELECT coalesce(max(version), 0) FROM label_history)"
            ).fetchone()

            def on_start(s: FollowSummary) -> None:
                if args.json:
                    head = {
                        "watching": str(reg.db_path),
                        "events_path": reg.events_path,
                        "file_events": s.watching,
                        "interval": args.interval,
                        "snapshot": None if snap is None else str(snap),
                        "total_events": s.total_events,
                        "total_label_commits": s.total_label_commits,
                    }
                    _emit_json([head], out)
                else:
                    how = "file events and a catch-up" if s.watching else "a catch-up"
                    how = "catching up once" if args.once else f"{how} every {args.interval:g} s"
                    why = f" (no file events: {s.watch_error})" if s.watch_error else ""
                    out.write(
                        f"watching {reg.db_path} (log {reg.events_path}): {how}{why}; "
                        f"{s.total_events} events, {s.total_label_commits} label commits so far"
                        + (f"; snapshot for readers: {snap}" if snap else "")
                        + "\n"
                    )
                out.flush()

            def on_batch(b: Batch) -> None:
                if args.json:
                    record = {k: v for k, v in b.__dict__.items() if k != "problems"}
                    _emit_json([{**record, "problems": [str(p) for p in b.problems]}], out)
                else:
                    out.write(watch_line(b) + "\n")
                for p in b.problems:
                    err.write(f"joshreg: problem: {p}\n")
                out.flush()

            def on_error(e: Exception) -> None:
                err.write(f"joshreg: warning: {e}; trying again in {args.interval:g} s\n")
                err.flush()

            follower = Follower(
                reg.sync,
                events_path=reg.events_path,
                interval=args.interval,
                poll=args.poll,
                publish=(lambda: reg._publish_snapshot(snap)) if snap else None,
                snapshot_interval=args.snapshot_interval,
                totals=(events, commits),
                on_start=on_start,
                on_batch=on_batch,
                on_error=on_error,
            )
            state["follower"] = follower
            if state["stop"]:
                follower.stop()
            summary = follower.run(once=args.once)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    if args.json:
        record = {k: v for k, v in summary.__dict__.items() if k != "snapshot_seconds"}
        ms = sorted(summary.snapshot_seconds)
        record["snapshot_median_s"] = ms[len(ms) // 2] if ms else None
        _emit_json([{"stopped": True, **record, "snapshot": None if snap is None else str(snap)}], out)
    else:
        out.write(watch_summary_line(summary, snap) + "\n")
    out.flush()
    return EXIT_PROBLEMS if summary.problems else EXIT_OK


# --- the parser ---------------------------------------------------------------------------------

Command = Callable[[argparse.Namespace, TextIO, TextIO], int]

_COMMANDS: dict[str, tuple[Command, str, str]] = {
    "rebuild": (
        cmd_rebuild,
        "Drop the registry's tables and replay its whole event log into them.",
        """
        The DuckDB file is a cache of the log: rebuilding gives the same tables an up-to-date
        registry has. Damaged log lines are reported (segment:line) and skipped; the exit status
        is then 1.

        example:
          joshreg rebuild demo-output/sweep.duckdb
        """,
    ),
    "import": (
        cmd_import,
        "Import a registry joshpy wrote (its DuckDB file, or its tables as Parquet) into a joshreg registry.",
        """
        SOURCE is read-only: nothing in it changes. It is a joshpy registry file that this
        joshreg's DuckDB can read, or a folder of its tables as Parquet: EXPORT DATABASE
        'dir' (FORMAT parquet) from any DuckDB, or push_to_s3's <table>.parquet layout.
        Sessions, configurations, executions, outputs, labels and cell_data become events in
        TARGET's log (created if missing; it may hold other registries already). Importing
        again adds only what SOURCE gained since. joshpy's naive local times are read in
        --source-timezone (default: this machine's zone) and kept in UTC. The summary lists
        what was added, what TARGET already held, every conflict (kept TARGET's) and every
        difference from SOURCE. --dry-run counts without writing.

        examples:
          joshreg import old.duckdb --into sweep.duckdb
          joshreg import old-export/ --into sweep.duckdb --source-timezone America/Los_Angeles
          joshreg import old.duckdb --into sweep.duckdb --dry-run --json
        """,
    ),
    "verify": (
        cmd_verify,
        "Check the event log, label log and result files for damage, and the tables against a rebuild.",
        """
        Checks every segment line's checksum and hash chain (edited, deleted, moved, glued or
        truncated lines), each writer's sequence numbers (gaps, repeats, copied segments), the
        label log (no missing or edited commit), every result file (present, with its recorded
        SHA-256), and, unless --no-rebuild-check, that every table equals a fresh rebuild of
        the log. Each problem names its kind, the file (relative to the event store) and line,
        and what to do. A torn last line that a running writer may still finish is a warning.
        Exit status: 0 sound, 1 problems found, 2 usage error.

        examples:
          joshreg verify demo-output/sweep.duckdb
          joshreg verify demo-output/sweep.duckdb --no-rebuild-check --json
        """,
    ),
    "compact": (
        cmd_compact,
        "Rewrite finished log segments as Parquet (smaller, faster rebuilds) and delete their JSONL.",
        """
        A segment is finished when its writer closed it (sealed), or when its writer ran on this
        host, has exited, and the file has not changed for --abandoned-after seconds. Live
        segments, unsealed ones from other hosts and small ones (--min-bytes) are left
        alone. Each Parquet file is
        durable before its JSONL is deleted, and holds the JSONL's exact bytes, so the tables do
        not change and a crash at any point loses and duplicates nothing (run it again to
        finish). Safe while writers and readers run. Exit status: 0 done, 1 a segment could not
        be compacted safely (it keeps its JSONL), 2 usage error.

        examples:
          joshreg compact demo-output/sweep.duckdb
          joshreg compact demo-output/sweep.duckdb --dry-run --abandoned-after 600
        """,
    ),
    "log": (
        cmd_log,
        "Show the event log and label changes in log order, one line each.",
        """
        Times are UTC. --type takes a full type (run.started) or a prefix (run, label).
        --run takes a run id, a run hash or a label; a hash also shows its executions' events.

        examples:
          joshreg log demo-output/sweep.duckdb --type run.completed
          joshreg log demo-output/sweep.duckdb --label baseline
          joshreg log demo-output/sweep.duckdb --limit 5 --json
        """,
    ),
    "labels": (
        cmd_labels,
        "Show the current labels, or with --history every label change ever made.",
        """
        examples:
          joshreg labels demo-output/sweep.duckdb
          joshreg labels demo-output/sweep.duckdb --history --label baseline
        """,
    ),
    "sessions": (
        cmd_sessions,
        "Show every sweep session with its configurations and run counts.",
        """
        RUNS counts executions that succeeded / failed / have not completed.

        example:
          joshreg sessions demo-output/sweep.duckdb
        """,
    ),
    "info": (
        cmd_info,
        "Show one run configuration: parameters, sources, replicates, executions, label history.",
        """
        RUN is a label or a run hash (a label wins when both match). Parameters are shown as
        they were registered (85, not 85.0).

        examples:
          joshreg info demo-output/sweep.duckdb baseline
          joshreg info demo-output/sweep.duckdb 3f2a9c41d07e --json
        """,
    ),
    "debug": (
        cmd_debug,
        "Show a run's Josh debug output: messages, an entity's trace, or a summary.",
        """
        RUN is a label or a run hash; the debug files are the debug.<type> outputs registered
        for its latest execution (--run-id for another). Messages print one per line in Josh's
        own format; --step, --entity and --grep narrow them (all must match). --entity alone
        shows that entity's trace, step by step; an id prefix is enough when it is unique.
        Spin-up steps are negative: --step -1.

        examples:
          joshreg debug demo-output/sweep.duckdb baseline --summary
          joshreg debug demo-output/sweep.duckdb baseline --entity-type organism --step 3
          joshreg debug demo-output/sweep.duckdb baseline --entity 3fa2 --grep height
        """,
    ),
    "runs": (
        cmd_runs,
        "Show run executions with their durations and exit codes.",
        """
        --hash also accepts a label.

        examples:
          joshreg runs demo-output/sweep.duckdb
          joshreg runs demo-output/sweep.duckdb --hash baseline
        """,
    ),
    "diff": (
        cmd_diff,
        "Show how two runs' stored configs (or Josh sources, --josh) differ, as a unified diff.",
        """
        A and B are labels or run hashes (a label wins when both match). The text compared is
        what the registry stored at registration, not today's files. The exit status is 0 when
        they are identical and 1 when they differ, as with diff(1). --ide opens both side by
        side in VS Code or Cursor instead: the real source file while it still matches,
        otherwise a read-only export.

        examples:
          joshreg diff demo-output/sweep.duckdb baseline candidate
          joshreg diff demo-output/sweep.duckdb baseline candidate --josh --context 0
          joshreg diff demo-output/sweep.duckdb baseline candidate --ide vscode
        """,
    ),
    "export": (
        cmd_export,
        "Write a run's stored config (and/or Josh source) to read-only files and print their paths.",
        """
        RUN is a label or a run hash; the files are named after it (baseline.jshc,
        baseline.josh) and start with a READ-ONLY header naming the run: they show what was
        run, editing them changes nothing. Without -o they go to a new temporary directory;
        an earlier export of the same name in DIR is replaced.

        examples:
          joshreg export demo-output/sweep.duckdb baseline
          joshreg export demo-output/sweep.duckdb baseline --both -o exports/
        """,
    ),
    "bottle": (
        cmd_bottle,
        "Pack a run into a self-contained .tar.gz that re-runs it with Java and the Josh jar.",
        """
        RUN is a label or a run hash. The archive holds the stored Josh source and config, the
        data files (not with --omit-jshd), run.sh and manifest.json (provenance and the run's
        events); its path is printed. Inside: ./run.sh /path/to/joshsim-fat.jar

        examples:
          joshreg bottle demo-output/sweep.duckdb baseline
          joshreg bottle demo-output/sweep.duckdb 3f2a9c41d07e -o bottles/ --omit-jshd
        """,
    ),
    "unbottle": (
        cmd_unbottle,
        "Extract a bottle safely and show what it holds and how to run it (no registry needed).",
        """
        Every member is checked before anything is written: an archive with absolute paths,
        '..', links or devices is refused. Without -d it goes to a new temporary directory.
        --data-dir points the data files at your own copy (for bottles made with --omit-jshd).

        examples:
          joshreg unbottle bottles/bottle_baseline_3f2a9c41d07e_20260101_120000.tar.gz -d rerun/
          joshreg unbottle bottle.tar.gz --data-dir /data/josh --json
        """,
    ),
    "merge": (
        cmd_merge,
        "Merge other registries into TARGET: the union of their event logs, labels and results.",
        """
        SOURCE and TARGET are registry files (sweep.duckdb, the log beside it) or event store
        folders; TARGET is created if missing. Only what TARGET lacks is copied: log segments,
        label commits, result files, session ids. Merging again, or in another order, gives the
        same tables. A label given to different runs in different registries goes to the later
        assignment (by the registries' clocks); the run that held it is released with reason
        'merge', and both assignments stay in the label history. Prints what each SOURCE added;
        damage found on the way goes to stderr with exit status 1.

        examples:
          joshreg merge laptop.duckdb cluster.duckdb --into combined.duckdb
          joshreg merge /scratch/sweep.events --into sweep.duckdb --json
        """,
    ),
    "watch": (
        cmd_watch,
        "Keep the DuckDB file caught up while workers append, printing a line per batch applied.",
        """
        Wakes on file events in the log (and label log) and also catches up every --interval
        seconds, since file events never arrive for writes made on another host of a network
        file system (--poll uses only the timer). Each line: time (UTC), events and label
        commits applied, lag from the newest event's clock to now, running totals. Damaged log
        lines go to stderr. After each batch (at most every --snapshot-interval seconds) it
        publishes a read-only copy, REGISTRY with .snapshot.duckdb, that other processes open
        while this one holds the file: duckdb.connect(path, read_only=True). Ctrl-C or SIGTERM
        stops it with a summary line; exit status 1 if damage was found.

        examples:
          joshreg watch demo-output/sweep.duckdb
          joshreg watch /scratch/sweep.duckdb --events-path /shared/sweep.events --poll --interval 2
          joshreg watch demo-output/sweep.duckdb --once --json
        """,
    ),
}


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 0, got {text!r}")
    return n


def _seconds(text: str) -> float:
    try:
        s = float(text)
    except ValueError:
        s = -1.0
    if not 0 < s < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return s


def _when(text: str) -> Moment:
    try:
        return parse_when(text)
    except InvalidArgumentError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# Read commands that can show the registry as it was: --as-of comes from one parent parser.
_AS_OF_COMMANDS = frozenset(
    {"log", "labels", "sessions", "runs", "info", "diff", "export", "debug", "bottle"}
)


def build_parser() -> argparse.ArgumentParser:
    """The ``joshreg`` parser with one subcommand per entry of ``_COMMANDS``."""
    parser = argparse.ArgumentParser(
        prog="joshreg",
        description="Inspect and rebuild a joshreg run registry (an event-sourced joshpy RunRegistry).",
        epilog=textwrap.dedent(
            """
            example:
              joshreg sessions demo-output/sweep.duckdb

            Run `joshreg COMMAND --help` for each command's options.
            """
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("registry", metavar="REGISTRY", help="the registry's DuckDB file, e.g. sweep.duckdb")
    common.add_argument(
        "--events-path",
        metavar="DIR",
        help="the registry's event store, if not beside the file (default: REGISTRY with .events)",
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print one JSON object per line")
    as_of = argparse.ArgumentParser(add_help=False)
    as_of.add_argument(
        "--as-of",
        metavar="WHEN",
        type=_when,
        help="show the registry as it was then: an ISO time such as 2026-07-29T18:00 (UTC unless "
        "it has a zone) or a log position (the @number of `joshreg log`, POSITION of --history)",
    )

    for name, (func, summary, epilog) in _COMMANDS.items():
        parents = [common] if name == "rebuild" else [common, as_json]
        if name == "unbottle":
            parents = [as_json]  # works on an archive, not on a registry
        elif name in ("merge", "import"):
            parents = [as_json]  # SOURCE... --into TARGET
        if name in _AS_OF_COMMANDS:
            parents = [*parents, as_of]
        p = sub.add_parser(
            name,
            parents=parents,
            help=summary,
            description=summary,
            epilog=textwrap.dedent(epilog),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(func=func)
        if name == "verify":
            p.add_argument(
                "--no-rebuild-check",
                action="store_true",
                help="skip comparing the tables with a fresh rebuild (faster on big registries)",
            )
        elif name == "compact":
            p.add_argument(
                "--abandoned-after",
                metavar="SECONDS",
                type=_count,
                default=int(ABANDONED_AFTER_S),
                help="compact an unsealed segment of an exited local writer once untouched this long "
                f"(default: {int(ABANDONED_AFTER_S)})",
            )
            p.add_argument(
                "--min-bytes",
                metavar="N",
                type=_count,
                default=MIN_BYTES,
                help=f"leave smaller segments as JSONL: Parquet would not shrink them (default: {MIN_BYTES})",
            )
            p.add_argument("--dry-run", action="store_true", help="only say what would be compacted")
        elif name == "log":
            p.add_argument("--type", metavar="T", help="only events of this type or type prefix")
            p.add_argument("--run", metavar="RUN", help="only events of this run id, run hash or label")
            p.add_argument("--session", metavar="ID", help="only events of this session")
            p.add_argument("--label", metavar="L", help="only changes of this label")
            p.add_argument("--limit", metavar="N", type=_count, help="only the N most recent entries")
        elif name == "debug":
            p.add_argument("run", metavar="RUN", help="a label or run hash")
            p.add_argument("--run-id", metavar="ID", help="this execution instead of the latest")
            p.add_argument(
                "--entity-type",
                metavar="T",
                action="append",
                help="only the debug files of this entity type (organism, patch, ...); repeat for more",
            )
            p.add_argument("--step", metavar="N", type=int, help="only messages of step N")
            p.add_argument("--entity", metavar="ID-PREFIX", help="only this entity (id or unique prefix)")
            p.add_argument("--grep", metavar="TEXT", help="only messages whose text contains TEXT")
            p.add_argument("--summary", action="store_true", help="counts per step, type and entity instead")
            p.add_argument("--limit", metavar="N", type=_count, help="print at most N messages")
        elif name == "info":
            p.add_argument("run", metavar="RUN", help="a label or run hash")
        elif name == "labels":
            p.add_argument("--history", action="store_true", help="every label change, oldest first")
            p.add_argument("--label", metavar="L", help="only this label")
        elif name == "runs":
            p.add_argument("--session", metavar="ID", help="only executions of this session")
            p.add_argument("--hash", metavar="H", help="only executions of this run hash (or label)")
        elif name == "diff":
            p.add_argument("a", metavar="A", help="a label or run hash (the old side)")
            p.add_argument("b", metavar="B", help="a label or run hash (the new side)")
            p.add_argument("--josh", action="store_true", help="compare the Josh sources, not the configs")
            p.add_argument(
                "--context", metavar="N", type=_count, default=3, help="lines of context (default: 3)"
            )
            p.add_argument(
                "--ide", choices=sorted(IDE_COMMANDS), help="open both side by side in this IDE instead"
            )
        elif name == "export":
            p.add_argument("run", metavar="RUN", help="a label or run hash")
            what = p.add_mutually_exclusive_group()
            for flag, kind, text in (
                ("--config", "config", "the .jshc config (the default)"),
                ("--josh", "josh", "the .josh source"),
                ("--both", "both", "both files"),
            ):
                what.add_argument(flag, dest="what", action="store_const", const=kind, help=text)
            p.set_defaults(what="config")
            p.add_argument(
                "-o", "--output-dir", metavar="DIR", type=Path, help="where to write (default: a temp dir)"
            )
        elif name == "bottle":
            p.add_argument("run", metavar="RUN", help="a label or run hash")
            p.add_argument(
                "-o",
                "--output-dir",
                metavar="DIR",
                type=Path,
                default=Path("bottles"),
                help="where to write the archive (default: bottles)",
            )
            p.add_argument("--omit-jshd", action="store_true", help="leave the data files out")
        elif name == "merge":
            p.add_argument(
                "sources", metavar="SOURCE", nargs="+", help="a registry file or event store folder to merge"
            )
            p.add_argument(
                "--into",
                metavar="TARGET",
                required=True,
                help="the registry (file or event store) to merge into",
            )
        elif name == "import":
            p.add_argument(
                "source",
                metavar="SOURCE",
                help="a joshpy registry file, or a folder of its tables as Parquet",
            )
            p.add_argument(
                "--into", metavar="TARGET", required=True, help="the joshreg registry file to import into"
            )
            p.add_argument("--events-path", metavar="DIR", help="TARGET's event store, if not beside it")
            p.add_argument(
                "--source-timezone",
                metavar="TZ",
                help="the zone of SOURCE's naive times, e.g. Europe/Berlin (default: this machine's)",
            )
            p.add_argument(
                "--dry-run", action="store_true", help="count what would be imported; write nothing"
            )
        elif name == "unbottle":
            p.add_argument("archive", metavar="ARCHIVE", type=Path, help="a bottle (.tar.gz)")
            p.add_argument(
                "-d", "--extract-dir", metavar="DIR", type=Path, help="where to extract (default: a temp dir)"
            )
            p.add_argument("--data-dir", metavar="DIR", type=Path, help="take the data files from here")
            p.add_argument("--run-hash", metavar="H", help="only this run of a sweep bottle")
        elif name == "watch":
            p.add_argument(
                "--interval",
                metavar="S",
                type=_seconds,
                default=DEFAULT_INTERVAL,
                help=f"catch up at least every S seconds (default: {DEFAULT_INTERVAL:g})",
            )
            p.add_argument("--poll", action="store_true", help="no file events, only the timer (NFS, Lustre)")
            p.add_argument("--once", action="store_true", help="catch up and publish once, then exit")
            p.add_argument(
                "--snapshot",
                metavar="PATH",
                type=Path,
                help="where to publish the snapshot (default: REGISTRY with .snapshot.duckdb)",
            )
            p.add_argument("--no-snapshot", action="store_true", help="publish no snapshot")
            p.add_argument(
                "--snapshot-interval",
                metavar="S",
                type=_seconds,
                default=DEFAULT_SNAPSHOT_INTERVAL,
                help=f"publish at most every S seconds (default: {DEFAULT_SNAPSHOT_INTERVAL:g})",
            )
    return parser


def _message(e: BaseException) -> str:
    # KeyError's str() quotes its argument; show the sentence itself.
    if isinstance(e, KeyError) and e.args:
        return str(e.args[0])
    return str(e)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``joshreg`` command; return its exit status (0 ok, 1 problems found, 2 error)."""
    args = build_parser().parse_args(argv)
    out, err = sys.stdout, sys.stderr
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LogDamageWarning)
        try:
            status = args.func(args, out, err)
        except (JoshregError, KeyError, ValueError) as e:
            err.write(f"joshreg: error: {_message(e)}\n")
            status = EXIT_ERROR
    for w in caught:
        if issubclass(w.category, LogDamageWarning):
            err.write(f"joshreg: warning: {w.message}\n")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return status
