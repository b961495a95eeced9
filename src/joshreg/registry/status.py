"""Reading what became of runs: status, status history, run details and supersession chains.

A mixin of ``RegistryReader``, so a view as of a past moment answers them as they were then.
"""

from __future__ import annotations

from joshreg.errors import RunNotFoundError
from joshreg.models import RunDetail, RunStatus, StatusChange
from joshreg.projection import queries as q
from joshreg.projection import status_queries as sq


class StatusReads:
    """``get_run_status``, ``status_history``, ``get_run_info``, ``run_history`` and
    ``loaded_replicates``."""

    def get_run_status(self, label_or_hash: str) -> RunStatus:
        """A run's status; ``status`` None (never marked) reads as active."""
        run_hash = self.resolve_label_or_hash(label_or_hash)
        return sq.run_status(self._con(), run_hash)

    def run_statuses(self) -> list[RunStatus]:
        """Every run configuration's status, by run hash (unmarked ones with ``status`` None)."""
        self.sync()
        return sq.run_statuses(self._con())

    def status_history(self, run_hash: str | None = None) -> list[StatusChange]:
        """Every status change (of one run, or of all), oldest first: upstream keeps only the
        latest, the log keeps each with its position, time, actor, target and reason."""
        self.sync()
        if run_hash is not None:
            run_hash = q.resolve_label(self._con(), run_hash) or run_hash
        return sq.status_history(self._con(), run_hash)

    def loaded_replicates(self, run_hash: str) -> set[int]:
        """The replicate indices with results in ``cell_data`` for ``run_hash``."""
        self.sync()
        return sq.loaded_replicates(self._con(), run_hash)

    def get_run_info(self, label_or_hash: str) -> RunDetail:
        """One run whole: its configuration (status included), executions and loaded replicates."""
        run_hash = self.resolve_label_or_hash(label_or_hash)
        con = self._con()
        config = q.get_config(con, run_hash)
        if config is None:  # resolved a moment ago; gone only if the tables changed under us
            raise RunNotFoundError(f"No run found for '{label_or_hash}'")
        replicates = sq.loaded_replicates(con, run_hash)
        return RunDetail(config, q.get_runs_for_hash(con, run_hash), len(replicates), replicates)

    def run_history(self, label_or_hash: str) -> list[RunDetail]:
        """The run and every run it superseded, directly or through others, newest first.

        A run that superseded several (branches) lists each line in turn; a cycle made by
        hand-marking is followed once."""
        start = self.resolve_label_or_hash(label_or_hash)
        con = self._con()
        out: list[RunDetail] = []
        seen: set[str] = set()
        todo = [start]
        while todo:
            run_hash = todo.pop(0)
            if run_hash in seen:
                continue
            seen.add(run_hash)
            out.append(self.get_run_info(run_hash))
            todo[:0] = sq.superseded_by(con, run_hash)
        return out
