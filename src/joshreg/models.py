"""What the read API returns: upstream joshpy's dataclasses, field for field, plus LabelChange.

Plain dataclasses so that code written against upstream (attribute access, ``asdict``,
equality) keeps working. Imports nothing from joshreg.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["ConfigInfo", "LabelChange", "RunInfo", "SessionInfo", "SessionSummary"]


@dataclass
class SessionInfo:
    """One sweep session (a row of ``sweep_sessions``)."""

    session_id: str
    experiment_name: str | None
    created_at: datetime
    template_path: str | None
    template_hash: str | None
    simulation: str | None
    total_jobs: int | None
    total_replicates: int | None
    status: str
    metadata: dict[str, Any] | None


@dataclass
class ConfigInfo:
    """One run configuration, identified by its content hash."""

    run_hash: str
    session_id: str
    josh_path: str | None
    josh_content: str | None
    config_content: str
    file_mappings: dict[str, dict[str, str]] | None
    parameters: dict[str, Any]
    label: str | None
    created_at: datetime


@dataclass
class RunInfo:
    """One run execution (a CLI invocation of a configuration)."""

    run_id: str
    run_hash: str
    replicate: int
    started_at: datetime | None
    completed_at: datetime | None
    exit_code: int | None
    output_path: str | None
    error_message: str | None
    metadata: dict[str, Any] | None


@dataclass
class SessionSummary:
    """Counts for one session.

    Unlike upstream, ``total_jobs`` is the number of configurations registered to the session
    and ``total_replicates`` the number of replicate simulations they ask for
    (configurations × the session's ``replicates``).
    """

    session_id: str
    experiment_name: str | None
    simulation: str | None
    status: str
    total_jobs: int
    total_replicates: int
    runs_completed: int
    runs_succeeded: int
    runs_failed: int
    runs_pending: int


@dataclass
class LabelChange:
    """One change to a label, as kept forever in the label log.

    ``action`` is ``assigned``, ``released`` (taken away by ``force=True`` or because the run
    was given another label) or ``archived`` (renamed to ``archived_as`` by
    ``on_collision="timestamp"``). ``previous_run_hash`` is the run that held ``label`` just
    before an assignment. ``version`` is the label log position of the change.
    """

    version: int
    at: datetime
    actor: str
    action: str
    label: str
    run_hash: str
    previous_run_hash: str | None = None
    archived_as: str | None = None
    reason: str | None = None
