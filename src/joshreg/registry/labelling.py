"""Labels and statuses: naming a run, marking it active, bad or superseded.

A mixin of ``RunRegistry``. A label move is one commit of the label log (planned by
``log/labelplan``); a supersede that takes a label away is one commit too, so the label and the
status change together or not at all, also under a race. Any other status change is one
``run.status_changed`` event through the recorder. The latest change of a run, by (clock,
writer, sequence) across both, is its status; every change stays in ``status_history``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from joshreg.errors import InvalidArgumentError, LabelConflictError, RunNotFoundError
from joshreg.log.events import (
    LabelAction,
    LabelSuperseded,
    RunDropped,
    RunReset,
    RunRestored,
    RunStatusChanged,
)
from joshreg.log.labelplan import plan_assignment
from joshreg.log.labels import LabelLog, LabelState, Plan
from joshreg.log.labelstreams import LabelStreams
from joshreg.models import RUN_STATUSES, DropSummary
from joshreg.projection import queries as q
from joshreg.projection.refresh import LIVE_REGISTRATION
from joshreg.projection.removals import LIVE_RESULT
from joshreg.projection.sqltext import bind

ON_COLLISION = ("timestamp", "supersede")


class RegistryLabelling:
    """``label_run``, ``mark_run``, ``supersede``, ``reset_run``, ``drop_run``, ``restore_run``."""

    def _label_log(self) -> LabelLog:
        if self._labels is None:
            self._labels = LabelLog(self._store, clock=self._writer.clock, writer=self._writer.writer_id)
        return self._labels

    def _resolve_quickly(self, label_or_hash: str) -> str:
        """``resolve_label_or_hash`` without a catch-up when the answer is known here: a label
        in the label log (refreshed: one read past its head), else a hash this registry has
        seen. A loop of ``mark_run`` calls then costs an append each, not a catch-up each."""
        log = self._label_log()
        log.refresh()
        if self._label_streams is None or self._label_streams.own is not log:
            self._label_streams = LabelStreams(self._store, own=log)
        holder = self._label_streams.view(log.state).holder.get(label_or_hash)
        if holder is not None:
            return holder
        if self._known("hash", label_or_hash):
            return label_or_hash
        return self.resolve_label_or_hash(label_or_hash)  # raises, saying what is missing

    def _commit_labels(self, plan: Plan) -> None:
        """Claim the next label commit with ``plan``'s actions; after a merge, planned against
        every label stream's fold, not this store's alone."""
        log = self._label_log()
        if self._label_streams is None or self._label_streams.own is not log:
            self._label_streams = LabelStreams(self._store, own=log)
        streams = self._label_streams
        log.commit(lambda own: plan(streams.view(own)))

    def label_run(
        self,
        run_hash: str,
        label: str,
        force: bool = False,
        on_collision: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Give ``run_hash`` the label ``label``.

        A label names one run and a run holds one label. If another run holds ``label``:
        ``force=True`` takes it away (its status untouched); ``on_collision="supersede"`` takes
        it away and marks that run superseded by ``run_hash`` for ``reason``, in the same
        commit; ``on_collision="timestamp"`` renames the holder's label to
        ``<label>_<YYYYmmdd_HHMMSS>`` (its registration time; ``_2``, ``_3`` if taken);
        otherwise ``LabelConflictError`` (a ``ValueError``) says who holds it. Every change is
        kept in ``label_history``. Concurrent callers are ordered by the label log.
        """
        if force and on_collision is not None:
            raise InvalidArgumentError("force and on_collision are mutually exclusive; pass one")
        if on_collision is not None and on_collision not in ON_COLLISION:
            raise InvalidArgumentError(
                f"Invalid on_collision {on_collision!r}; choose 'supersede' (mark the holder "
                "superseded) or 'timestamp' (rename the holder's label)"
            )
        if not isinstance(label, str) or not label:
            raise InvalidArgumentError(f"a label must be a non-empty string, got {label!r}")
        self._require_hash(run_hash)
        con = self._con()

        def plan(state: LabelState) -> list[LabelAction]:
            holder = state.holder.get(label)
            if holder not in (None, run_hash) and not force and on_collision is None:
                raise LabelConflictError(
                    f"Label '{label}' is already assigned to run {holder} (label log version "
                    f"{state.version}). Use force=True to move it to {run_hash}, "
                    "on_collision='supersede' to mark the holder superseded by it, or "
                    "on_collision='timestamp' to archive the holder's label"
                )
            displace = "force" if force else "supersede" if on_collision == "supersede" else "archive"
            return plan_assignment(
                state, label, run_hash, displace=displace, archive_base=archive_base, reason=reason
            )

        def archive_base(holder: str) -> str:
            when = q.created_at(con, holder) or datetime.now(UTC).replace(tzinfo=None)
            return f"{label}_{when:%Y%m%d_%H%M%S}"

        self._commit_labels(plan)

    def mark_run(
        self,
        run_hash_or_label: str,
        status: str,
        *,
        superseded_by: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Mark a run ``active``, ``bad`` or ``superseded`` (by ``superseded_by``, a run hash or
        label), for ``reason``. Marking it ``active`` again clears the link. Its label stays;
        ``supersede`` also takes the label away. Every mark is kept in ``status_history``."""
        if status not in RUN_STATUSES:
            raise InvalidArgumentError(
                f"Invalid status {status!r}; valid statuses: {', '.join(RUN_STATUSES)}"
            )
        if status == "superseded" and superseded_by is None:
            raise InvalidArgumentError(
                "status='superseded' needs superseded_by=<the run hash or label that replaces it>"
            )
        if status != "superseded" and superseded_by is not None:
            raise InvalidArgumentError(
                f"superseded_by goes with status='superseded' only, not with {status!r}"
            )
        run_hash = self._resolve_quickly(run_hash_or_label)
        by = None if superseded_by is None else self._resolve_quickly(superseded_by)
        if by == run_hash:
            raise InvalidArgumentError(f"run {run_hash} cannot supersede itself")
        self._append(RunStatusChanged(run_hash=run_hash, status=status, superseded_by=by, reason=reason))

    def supersede(self, run_hash: str, replaces: str, reason: str | None = None) -> None:
        """Mark ``replaces`` superseded by ``run_hash`` and take its label away, in one commit
        of the label log (both accept a run hash or a label)."""
        new = self._resolve_quickly(run_hash)
        old = self._resolve_quickly(replaces)
        if new == old:
            raise InvalidArgumentError(f"run {new} cannot supersede itself")

        def plan(state: LabelState) -> list[LabelAction]:
            held = state.label_of.get(old)
            return [LabelSuperseded(label=held, run_hash=old, superseded_by=new, reason=reason)]

        self._commit_labels(plan)

    # --- reset, drop, restore: rows leave the tables by what one label commit names ---------

    def reset_run(
        self, label_or_hash: str, *, reason: str | None = None, dry_run: bool = False
    ) -> DropSummary:
        """Take a run's executions, outputs and results out of the tables and clear its status,
        keeping its configuration: the redo before running it again. One label commit names
        exactly the executions and result loads this registry sees now; a worker that finishes
        one of them later is recorded and left out. Nothing leaves the log (``as_of`` before the
        reset still shows them). ``dry_run`` only counts."""
        run_hash = self.resolve_label_or_hash(label_or_hash)
        run_ids, results, rows = self._named_rows(run_hash)
        summary = DropSummary(run_hash, None, rows, sum(rows.values()))
        if not dry_run:
            action = RunReset(run_hash=run_hash, run_ids=run_ids, results=results, reason=reason)
            self._commit_labels(lambda state: [action])
            self._forget_known()
        return summary

    def drop_run(
        self, label_or_hash: str, *, reason: str | None = None, dry_run: bool = False
    ) -> DropSummary:
        """Take everything about a run hash out of the tables (configuration, parameters,
        session links, executions, outputs, results; the session stays) and free its label, in
        one label commit. Nothing leaves the log: the hash can be registered again, and
        ``restore_run`` undoes the drop. ``dry_run`` only counts."""
        run_hash = self.resolve_label_or_hash(label_or_hash)
        run_ids, results, rows = self._named_rows(run_hash)
        con = self._con()
        registrations = [
            r[0]
            for r in con.execute(
                bind(
                    "SELECT event_id::VARCHAR FROM events_run_registered "
                    f"WHERE run_hash = ?{LIVE_REGISTRATION}",
                    [run_hash],
                )
            ).fetchall()
        ]
        for table in ("config_parameters", "session_configs", "job_configs"):
            (rows[table],) = con.execute(
                bind(f"SELECT count(*) FROM {table} WHERE run_hash = ?", [run_hash])
            ).fetchone()
        label = next((lbl for lbl, h in q.list_labels(con) if h == run_hash), None)
        summary = DropSummary(run_hash, label, rows, sum(rows.values()))
        if dry_run:
            return summary

        def plan(state: LabelState) -> list[LabelAction]:
            summary.label = state.label_of.get(run_hash)
            return [
                RunDropped(
                    run_hash=run_hash,
                    label=summary.label,
                    registrations=registrations,
                    run_ids=run_ids,
                    results=results,
                    reason=reason,
                )
            ]

        self._commit_labels(plan)
        self._forget_known()
        return summary

    def restore_run(self, run_hash: str, *, reason: str | None = None) -> None:
        """Undo the latest drop of ``run_hash`` still in force: what it took out of the tables
        comes back (its label does not; give it again with ``label_run``)."""
        self.sync()
        row = (
            self._con()
            .execute(
                bind(
                    "SELECT commit_id FROM label_history WHERE action = 'dropped' AND run_hash = ? "
                    "AND commit_id NOT IN (SELECT detail ->> 'restores' FROM label_history "
                    "WHERE action = 'restored' AND (detail ->> 'restores') IS NOT NULL) "
                    "ORDER BY version DESC LIMIT 1",
                    [run_hash],
                )
            )
            .fetchone()
        )
        if row is None:
            raise RunNotFoundError(
                f"No drop of run {run_hash} to undo; label_history(run_hash=...) shows what happened to it"
            )
        action = RunRestored(run_hash=run_hash, restores=row[0], reason=reason)
        self._commit_labels(lambda state: [action])
        self._forget_known()

    def _named_rows(self, run_hash: str) -> tuple[list[str], list[str], dict[str, int]]:
        """The live executions and result loads of ``run_hash`` (what a reset or drop names),
        and how many rows of each results table they hold."""
        self.sync()
        con = self._con()
        run_ids = [
            r[0]
            for r in con.execute(
                bind("SELECT run_id FROM job_runs WHERE run_hash = ? ORDER BY run_id", [run_hash])
            ).fetchall()
        ]
        results = [
            r[0]
            for r in con.execute(
                bind(
                    "SELECT event_id::VARCHAR FROM events_results_loaded "
                    f"WHERE run_hash = ? AND {LIVE_RESULT}",
                    [run_hash],
                )
            ).fetchall()
        ]
        ids = bind("(SELECT unnest(?::VARCHAR[]))", [run_ids])
        (cells,) = con.execute(
            bind(
                f"SELECT count(*) FROM cell_data WHERE run_hash = ? AND (run_id IN {ids} OR run_id IS NULL)",
                [run_hash],
            )
        ).fetchone()
        (outputs,) = con.execute(f"SELECT count(*) FROM run_outputs WHERE run_id IN {ids}").fetchone()
        return run_ids, results, {"cell_data": cells, "run_outputs": outputs, "job_runs": len(run_ids)}
