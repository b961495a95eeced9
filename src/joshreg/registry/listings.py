"""What the registry's listings show: sessions with their counts, labels with their dates,
executions, the log as a timeline, and everything about one configuration.

Plain data (dicts, ``LogEntry``) built from the registry's read API, for the ``RunRegistry``
methods that return them (``sessions_overview``, ``labels_overview``, ``runs_overview``,
``timeline``, ``run_overview``) and the command line that prints them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from joshreg.log.events import event_types
from joshreg.projection.sqltext import bind
from joshreg.registry.text import cell_text, format_time

if TYPE_CHECKING:
    from joshreg.registry.reader import RegistryReader as RunRegistry

__all__ = [
    "LOG_TYPES",
    "LogEntry",
    "iso_utc",
    "label_rows",
    "log_entries",
    "matches_type",
    "run_info",
    "run_rows",
    "session_rows",
]


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


def run_rows(
    reg: RunRegistry, session_id: str | None = None, run_hash: str | None = None
) -> list[dict[str, Any]]:
    """Executions, oldest first, optionally of one session and/or one configuration."""
    rows = reg.query(
        bind(
            "SELECT run_id, r.run_hash, r.session_id, replicate, started_at, completed_at, exit_code, "
            "error_message, output_path, c.run_hash IS NOT NULL AS registered "
            "FROM job_runs r LEFT JOIN (SELECT run_hash FROM job_configs) c USING (run_hash) "
            "WHERE (?::VARCHAR IS NULL OR r.session_id = ?) AND (?::VARCHAR IS NULL OR r.run_hash = ?) "
            "ORDER BY started_at, run_id",
            [session_id, session_id, run_hash, run_hash],
        )
    )
    names = [d[0] for d in rows.description]
    return [dict(zip(names, r, strict=True)) for r in rows.fetchall()]


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
            "at": iso_utc(self.at),
            "hlc": self.hlc,
            "position": self.hlc,
            "actor": self.actor,
            "type": self.type,
            **self.fields,
        }


def _field(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}:{cell_text(v)}" for k, v in value.items())
    text = cell_text(value)
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


def matches_type(wanted: str | None, kind: str) -> bool:
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
            if not matches_type(type, kind):
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
        if not matches_type(type, kind):
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


def run_info(reg: RunRegistry, label_or_hash: str) -> dict[str, Any]:
    """Everything ``joshreg info`` shows about one configuration, as plain data."""
    run_hash = reg.resolve_label_or_hash(label_or_hash)
    cfg = reg.get_config_by_hash(run_hash)
    assert cfg is not None  # resolve_label_or_hash raised otherwise
    session = reg.get_session(cfg.session_id)
    job_config = (session.metadata or {}).get("job_config") or {} if session else {}
    sessions = [
        r[0]
        for r in reg.query(
            bind(
                "SELECT session_id FROM session_configs WHERE run_hash = ? ORDER BY created_at, session_id",
                [run_hash],
            )
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
        "status": cfg.status,
        "superseded_by": cfg.superseded_by,
        "status_reason": cfg.status_reason,
        "status_updated_at": cfg.status_updated_at,
        "status_history": reg.status_history(run_hash),
        "attributes": reg.get_attributes(run_hash),
    }


def iso_utc(value: datetime) -> str:
    """A registry time (naive UTC) as ISO 8601 with its zone, for machine-readable output."""
    return value.isoformat() + "Z" if value.tzinfo is None else value.isoformat()
