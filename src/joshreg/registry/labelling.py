"""Labels and statuses: naming a run, marking it active, bad or superseded.

A mixin of ``RunRegistry``. A label move is one commit of the label log (planned by
``log/labelplan``); a supersede that takes a label away is one commit too, so the label and the
status change together or not at all, also under a race. Any other status change is one
``run.status_changed`` event through the recorder. The latest change of a run, by (clock,
writer, sequence) across both, is its status; every change stays in ``status_history``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from joshreg.errors import InvalidArgumentError, LabelConflictError
from joshreg.log.events import LabelAction, LabelSuperseded, RunStatusChanged
from joshreg.log.labelplan import plan_assignment
from joshreg.log.labels import LabelLog, LabelState, Plan
from joshreg.log.labelstreams import LabelStreams
from joshreg.models import RUN_STATUSES
from joshreg.projection import queries as q

ON_COLLISION = ("timestamp", "supersede")


class RegistryLabelling:
    """``label_run``, ``mark_run`` and ``supersede``."""

    def _label_log(self) -> LabelLog:
        if self._labels is None:
            self._labels = LabelLog(self._store, clock=self._writer.clock, writer=self._writer.writer_id)
        return self._labels

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
        run_hash = self.resolve_label_or_hash(run_hash_or_label)
        by = None if superseded_by is None else self.resolve_label_or_hash(superseded_by)
        if by == run_hash:
            raise InvalidArgumentError(f"run {run_hash} cannot supersede itself")
        self._append(RunStatusChanged(run_hash=run_hash, status=status, superseded_by=by, reason=reason))

    def supersede(self, run_hash: str, replaces: str, reason: str | None = None) -> None:
        """Mark ``replaces`` superseded by ``run_hash`` and take its label away, in one commit
        of the label log (both accept a run hash or a label)."""
        new = self.resolve_label_or_hash(run_hash)
        old = self.resolve_label_or_hash(replaces)
        if new == old:
            raise InvalidArgumentError(f"run {new} cannot supersede itself")

        def plan(state: LabelState) -> list[LabelAction]:
            held = state.label_of.get(old)
            return [LabelSuperseded(label=held, run_hash=old, superseded_by=new, reason=reason)]

        self._commit_labels(plan)
