"""Resets, drops and restores in the tables: rows leave by what the label commit names.

``reset_run`` and ``drop_run`` are label-log commits naming exactly what leaves (registrations,
executions and result loads by id, as the caller saw them); ``restore_run`` names the drop it
undoes. Nothing leaves the log. The ``removed_keys`` view (``tables.STATUS_DDL``) lists what
live resets and drops name; the public tables leave those keys out when they are filled
(``refresh.LIVE_REGISTRATION``, ``LIVE_RUN``), and ``cell_data`` here: a named result load is
never added, and rows already added are deleted when the commit arrives. Clocks decide none
of it, so a late completion of a reset execution stays out however late it comes.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import msgspec

from joshreg.errors import RemovedRunWarning
from joshreg.log.events import (
    REMOVALS,
    EventBase,
    LabelAction,
    LabelCommit,
    RunDropped,
    RunReset,
    RunRestored,
)
from joshreg.projection.sqltext import sql_literal

if TYPE_CHECKING:
    import duckdb

    from joshreg.log.codec import Problem

__all__ = ["LIVE_RESULT", "ProjectRemovals", "counted_loads", "removal_detail"]

# A result load counts unless a live reset or drop names it or its execution.
LIVE_RESULT = (
    "event_id::VARCHAR NOT IN (SELECT key FROM removed_keys WHERE kind = 'result') "
    "AND (run_id IS NULL OR run_id NOT IN (SELECT key FROM removed_keys WHERE kind = 'run_id'))"
)


def counted_loads(where: str = "true") -> str:
    """The result loads that add rows: live ones, the first of each source, run and entity type
    in log order; of those, the ones matching ``where``, in log order."""
    return (
        "SELECT run_id, run_hash, entity_type, blob, columns FROM ("
        "SELECT * FROM events_results_loaded WHERE " + LIVE_RESULT + " "
        "QUALIFY row_number() OVER (PARTITION BY source_sha256, run_id, entity_type "
        "ORDER BY hlc, writer, seq) = 1) "
        f"WHERE {where} ORDER BY hlc, writer, seq"
    )


def removal_detail(action: LabelAction) -> str | None:
    """The ``label_history.detail`` of a reset, drop or restore: what it names, as JSON."""
    if isinstance(action, RunReset):
        detail: dict[str, object] = {"run_ids": action.run_ids, "results": action.results}
    elif isinstance(action, RunDropped):
        detail = {
            "registrations": action.registrations,
            "run_ids": action.run_ids,
            "results": action.results,
        }
    elif isinstance(action, RunRestored):
        detail = {"restores": action.restores}
    else:
        return None
    return msgspec.json.encode(detail).decode()


class ProjectRemovals:
    """How resets, drops and restores reach ``cell_data``. A mixin of ``Projector``."""

    con: duckdb.DuckDBPyConnection

    def _apply_removals(self, commits: list[LabelCommit], *, rewrite: bool) -> None:
        """Delete the rows the new resets and drops name; load again what a restore brings
        back. After a merged fold started over (``rewrite``) with any of them, ``cell_data``
        is loaded afresh, since what is live may have changed anywhere."""
        actions = [a for c in commits for a in c.actions if isinstance(a, REMOVALS)]
        if not actions:
            return
        if rewrite:
            self.con.execute("DELETE FROM cell_data")
            self._load_where("true")
            return
        for a in actions:
            if isinstance(a, RunRestored):
                run_ids = self._named_run_ids(a)
                if run_ids:
                    self._load_where(f"run_id IN ({_literals(run_ids)})")
                self._reload_unbound(a.run_hash)
                continue
            if a.run_ids:
                self.con.execute(f"DELETE FROM cell_data WHERE run_id IN ({_literals(a.run_ids)})")
            if a.results:
                self._reload_unbound(a.run_hash)

    # Whether label_history holds a reset or drop: None until asked, and again whenever the
    # label rows are replaced (a rebuild, a merged fold that started over).
    _removals_seen: bool | None = None

    def _any_removals(self) -> bool:
        if self._removals_seen is None:
            row = self.con.execute(
                "SELECT 1 FROM label_history WHERE action IN ('reset', 'dropped') LIMIT 1"
            ).fetchone()
            self._removals_seen = row is not None
        return self._removals_seen

    def _warn_late_writes(self, events: list[EventBase], commits: list[LabelCommit]) -> None:
        """Warn when a batch brings events of executions an earlier reset or drop removed (a
        worker finishing late): recorded in the log, left out of the tables."""
        if any(isinstance(a, REMOVALS) for c in commits for a in c.actions):
            self._removals_seen = True
            return  # this batch's own removals name what they saw
        if not self._any_removals():
            return
        ids = {e.run_id for e in events if getattr(e, "run_id", None)}  # type: ignore[attr-defined]
        if not ids:
            return
        (late,) = self.con.execute(
            f"SELECT count(*) FROM removed_keys WHERE kind = 'run_id' AND key IN ({_literals(sorted(ids))})"
        ).fetchone()
        if late:
            warnings.warn(
                f"events of {late} execution(s) that reset_run or drop_run removed arrived (a worker "
                "finishing late); they are kept in the log and left out of the tables",
                RemovedRunWarning,
                stacklevel=4,
            )

    def _named_run_ids(self, action: RunReset | RunDropped | RunRestored) -> list[str]:
        """The executions a removal names: its own, or, for a restore, those of the drop it
        undoes (read from ``label_history``, where that drop already is)."""
        if not isinstance(action, RunRestored):
            return list(action.run_ids)
        row = self.con.execute(
            "SELECT detail FROM label_history WHERE commit_id = " + sql_literal(action.restores)
        ).fetchone()
        detail = msgspec.json.decode(row[0]) if row and row[0] else {}
        return list(detail.get("run_ids", ()))

    def _reload_unbound(self, run_hash: str) -> None:
        """The rows of ``run_hash`` loaded without an execution, again from the loads that count
        (such rows carry no trace of the load that added them)."""
        h = sql_literal(run_hash)
        self.con.execute(f"DELETE FROM cell_data WHERE run_hash = {h} AND run_id IS NULL")
        self._load_where(f"run_hash = {h} AND run_id IS NULL")

    def _load_where(self, where: str) -> None:
        rows = self.con.execute(counted_loads(where)).fetchall()
        if rows:
            problems: list[Problem] = []
            self._load_blobs(((*r[:4], msgspec.json.decode(r[4] or "{}")) for r in rows), problems)
            self._insert_problems(problems)


def _literals(values: list[str]) -> str:
    return ", ".join(sql_literal(v) for v in values)
