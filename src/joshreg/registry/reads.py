"""Reading sessions, configurations, executions and labels: the registry's plain lookups.

A mixin of ``RegistryReader``: every method catches up first (``sync``), then asks the
projection (``joshreg.projection.queries``); the point reads users call in loops (a session,
configuration, execution, a configuration's executions, a label) through the read model
(``_answers``, see ``registry.readmodel``), which keeps answers until the tables change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from joshreg.errors import (
    InvalidArgumentError,
    RunNotFoundError,
)
from joshreg.models import (
    ConfigInfo,
    LabelChange,
    RunInfo,
    SessionInfo,
    SessionSummary,
)
from joshreg.projection import queries as q
from joshreg.registry.readmodel import ReadModel


def _resolve(answers: ReadModel, label_or_hash: str) -> str:
    """``resolve_label_or_hash`` from answers already caught up."""
    h = answers.label_holder(label_or_hash) or label_or_hash
    if answers.config_record(h) is None:
        raise RunNotFoundError(f"No run found for '{label_or_hash}'")
    return h


class ConfigReads:
    """Sessions, configurations, executions and labels, as upstream's registry reads them."""

    def get_session(self, session_id: str) -> SessionInfo | None:
        row = self._answers().session_row(session_id)
        return None if row is None else q.session_from_row(row)

    def list_sessions(self, experiment_name: str | None = None, limit: int = 100) -> list[SessionInfo]:
        """Sessions, newest first."""
        self.sync()
        return q.list_sessions(self._con(), experiment_name, limit)

    def get_session_summary(self, session_id: str) -> SessionSummary | None:
        self.sync()
        return q.get_session_summary(self._con(), session_id)

    def get_config_by_hash(self, run_hash: str) -> ConfigInfo | None:
        record = self._answers().config_record(run_hash)
        return None if record is None else q.config_from_record(record)

    def get_configs_for_session(self, session_id: str) -> list[ConfigInfo]:
        """Every configuration registered to the session (pooled ones included), oldest first."""
        self.sync()
        return q.get_configs_for_session(self._con(), session_id)

    def resolve_label_or_hash(self, label_or_hash: str) -> str:
        """The run hash a label names, else ``label_or_hash`` itself if it is a registered hash
        (a label wins over a hash spelled the same); ``RunNotFoundError`` otherwise."""
        return _resolve(self._answers(), label_or_hash)

    def get_file_mappings(self, label_or_hash: str) -> dict[str, Path] | None:
        """Data files of a run as ``{name: Path}``; None when it has none."""
        answers = self._answers()
        record = answers.config_record(_resolve(answers, label_or_hash))
        cfg = None if record is None else q.config_from_record(record)
        if cfg is None or not cfg.file_mappings:
            return None
        return {name: Path(info["path"]) for name, info in cfg.file_mappings.items()}

    def get_registered_parameters(self, label_or_hash: str) -> dict[str, Any]:
        """A run's parameters exactly as registered (``85`` stays ``85``), sorted by name.

        ``ConfigInfo.parameters`` reads the typed table, where numbers are DOUBLE as upstream
        stores them; re-running a configuration needs the values as the user wrote them.
        """
        answers = self._answers()
        return q.parameters_from_text(answers.registered_parameters(_resolve(answers, label_or_hash))) or {}

    def get_runs_by_parameters(self, **params: Any) -> list[dict[str, Any]]:
        """Executions of configurations whose parameters equal the given values, newest first."""
        self.sync()
        con = self._con()
        known = q.config_columns(con)
        unknown = [k for k in params if k not in known]
        if unknown:
            raise InvalidArgumentError(
                f"unknown config parameter {unknown[0]!r}; known: {', '.join(known) or '(none)'}"
            )
        return q.get_runs_by_parameters(con, params)

    def get_run(self, run_id: str) -> RunInfo | None:
        row = self._answers().run_row(run_id)
        return None if row is None else q.run_from_row(row)

    def get_runs_for_hash(self, run_hash: str) -> list[RunInfo]:
        """Executions of a configuration, oldest first (``[-1]`` is the latest)."""
        return [q.run_from_row(r) for r in self._answers().run_rows_of(run_hash)]

    def resolve_run_id(self, run_hash: str, run_id: str | None = None) -> str:
        """``run_id`` if it is an execution of ``run_hash``, else the latest execution.

        An unknown ``run_id`` raises ``RunNotFoundError`` (a KeyError); one of another
        configuration ``InvalidArgumentError`` (a ValueError). Latest means started last, then
        completed last, then the greatest run id (upstream's order).
        """
        answers = self._answers()
        if run_id is not None:
            row = answers.run_row(run_id)
            owner = None if row is None else row[1]
            if owner is None:
                raise RunNotFoundError(f"No run execution found for run_id '{run_id}'")
            if owner != run_hash:
                raise InvalidArgumentError(
                    f"run_id '{run_id}' belongs to run_hash '{owner}', not '{run_hash}'"
                )
            return run_id
        latest = answers.latest_run_id(run_hash)
        if latest is None:
            raise RunNotFoundError(
                f"No run executions found for run_hash '{run_hash}'; record one with start_run"
            )
        return latest

    def list_labels(self) -> list[tuple[str, str]]:
        """``(label, run_hash)`` pairs, sorted by label."""
        self.sync()
        return q.list_labels(self._con())

    def resolve_label(self, label: str) -> str:
        h = self._answers().label_holder(label)
        if h is None:
            raise RunNotFoundError(f"No run found with label '{label}'")
        return h

    def resolve_latest(self, prefix: str) -> str:
        """The most recently registered run whose label starts with ``prefix``."""
        self.sync()
        h = q.resolve_latest(self._con(), prefix)
        if h is None:
            raise RunNotFoundError(f"No run found with a label starting with '{prefix}'")
        return h

    def label_history(self, label: str | None = None, run_hash: str | None = None) -> list[LabelChange]:
        """Every label change, oldest first: when, who, what, and who held the label before.

        ``label`` matches a change of that label (archives to that name included); ``run_hash``
        a change involving that run, as new or previous holder.
        """
        self.sync()
        return q.label_history(self._con(), label, run_hash)

    # upstream's private names, which joshpy's own sweep code calls
    _resolve_label_or_hash = resolve_label_or_hash
    _resolve_run_id_for_hash = resolve_run_id
