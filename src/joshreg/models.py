"""What the read API returns: upstream joshpy's dataclasses, field for field, plus LabelChange.

Plain dataclasses so that code written against upstream (attribute access, ``asdict``, equality)
keeps working. The same convention holds across joshreg: what a call hands back (reports,
summaries, infos) is a dataclass; msgspec Structs are the log's records (events, label commits,
cursors), encoded and decoded by the million, and the debug parser's lines for the same reason.
``tests/test_layers.py`` keeps it so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from joshreg.provenance.jobs import JobConfig

__all__ = [
    "RUN_STATUSES",
    "SPARSITY_WARN_COLUMN_NULL_PERCENT",
    "SPARSITY_WARN_MIN_ROWS",
    "SPARSITY_WARN_MIN_SPARSE_COLUMNS",
    "AttributeMatch",
    "ColumnStats",
    "ConfigInfo",
    "ConfigSourceInfo",
    "ConsistencyIssue",
    "DataSummary",
    "DropSummary",
    "LabelChange",
    "OutputURI",
    "Requirement",
    "RequirementCoverage",
    "RunDetail",
    "RunInfo",
    "RunStatus",
    "SessionInfo",
    "SessionSummary",
    "SparsityReport",
    "StatusChange",
    "TargetCoverageReport",
    "TargetDesign",
]

# Upstream's sparsity thresholds. Module globals that users may change (set them on
# ``joshreg.models``); they are read when a report is made or asked ``should_warn``.
SPARSITY_WARN_COLUMN_NULL_PERCENT = 50  # a column is sparse when more than this % is NULL
SPARSITY_WARN_MIN_SPARSE_COLUMNS = 2  # warn only when at least this many columns are sparse
SPARSITY_WARN_MIN_ROWS = 1000  # and the table has at least this many rows


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

    @property
    def job_config(self) -> JobConfig | None:
        """The session's ``JobConfig``, rebuilt from ``metadata["job_config"]`` (None if absent).

        Lets you expand the jobs of an old session again: ``JobExpander().expand(info.job_config)``.
        """
        data = (self.metadata or {}).get("job_config")
        return JobConfig.from_dict(data) if isinstance(data, dict) else None


class _Marked:
    """``effective_status`` and ``is_current`` of anything with a run's ``status``."""

    status: str | None

    @property
    def effective_status(self) -> str:
        """The status, with an unmarked run (``status`` None) read as ``active``."""
        return self.status or "active"

    @property
    def is_current(self) -> bool:
        """Whether the run counts: neither superseded nor marked bad."""
        return self.effective_status == "active"


@dataclass
class ConfigInfo(_Marked):
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
    status: str | None = None
    superseded_by: str | None = None
    status_reason: str | None = None
    status_updated_at: datetime | None = None


#: The statuses a run may be marked with (``mark_run``); unmarked reads as ``active``.
RUN_STATUSES = ("active", "superseded", "bad")


@dataclass
class RunStatus(_Marked):
    """A run configuration's status (``get_run_status``); ``status`` None means never marked."""

    run_hash: str
    status: str | None = None
    superseded_by: str | None = None
    reason: str | None = None
    updated_at: datetime | None = None


@dataclass
class StatusChange:
    """One status change of a run, as kept forever in the log (``status_history``).

    ``status`` None is a reset (``reset_run``). A change made by a label commit
    (``supersede``, ``label_run(on_collision="supersede")``) has the commit's ``version``; one
    made by an event has its ``segment`` and ``line``. ``position`` is its clock value:
    ``registry.as_of(position)`` shows the registry just after it.
    """

    at: datetime
    actor: str
    run_hash: str
    status: str | None
    superseded_by: str | None
    reason: str | None
    position: int
    version: int | None = None
    segment: str | None = None
    line: int | None = None


@dataclass
class ConfigSourceInfo:
    """Where a run's source file is and whether it still holds the text the registry stored.

    ``path`` is None when the run has no known source file (a templated config, no
    ``josh_path``); ``exists`` is False when the file is gone or unreadable.
    """

    path: Path | None
    exists: bool
    content_matches: bool


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
class RunDetail:
    """One run configuration whole (``get_run_info``): its config, its executions, and the
    replicate indices whose results are loaded."""

    config: ConfigInfo
    runs: list[RunInfo]
    replicate_count: int
    replicates: set[int]

    @property
    def run_hash(self) -> str:
        return self.config.run_hash

    @property
    def label(self) -> str | None:
        return self.config.label

    @property
    def parameters(self) -> dict[str, Any]:
        return self.config.parameters

    @property
    def succeeded(self) -> int:
        """Executions that completed with exit code 0."""
        return sum(1 for r in self.runs if r.exit_code == 0)

    @property
    def failed(self) -> int:
        """Executions that completed with another exit code."""
        return sum(1 for r in self.runs if r.exit_code is not None and r.exit_code != 0)

    @property
    def pending(self) -> int:
        """Executions started but not completed."""
        return sum(1 for r in self.runs if r.exit_code is None)


@dataclass
class AttributeMatch:
    """A run whose attribute matched (``find_current_by_attribute``), with its label and all of
    its attributes."""

    run_hash: str
    label: str | None
    attributes: dict[str, Any]


@dataclass
class Requirement:
    """A standing expectation: at least ``min_active`` active runs whose attributes include
    ``attributes`` (every key, with a matching value)."""

    attributes: dict[str, Any]
    min_active: int = 1


@dataclass
class TargetDesign:
    """A named set of requirements: what a complete experiment holds (``check_design``)."""

    name: str
    requirements: list[Requirement]


@dataclass
class RequirementCoverage:
    """How far one requirement is met: the active runs that match it, and the runs that match
    but do not count (``(run_hash, status)``, bad or superseded)."""

    attributes: dict[str, Any]
    min_active: int
    active_run_hashes: list[str]
    non_active_matches: list[tuple[str, str]]

    @property
    def found(self) -> int:
        return len(self.active_run_hashes)

    @property
    def satisfied(self) -> bool:
        return self.found >= self.min_active


@dataclass
class TargetCoverageReport:
    """Every requirement of a design with its coverage (``check_design``)."""

    design_name: str
    requirements: list[RequirementCoverage]

    @property
    def complete(self) -> bool:
        return all(r.satisfied for r in self.requirements)

    @property
    def unmet(self) -> list[RequirementCoverage]:
        return [r for r in self.requirements if not r.satisfied]


@dataclass
class ConsistencyIssue:
    """One finding of ``check_consistency``: ``kind`` (``data_without_config``,
    ``orphan_cell_data``, ``duplicate_replicate``: errors; ``ran_not_ingested``,
    ``orphan_event``: warnings), the run it concerns, and what was found."""

    kind: str
    run_hash: str | None
    detail: str
    severity: str = "error"


@dataclass
class OutputURI:
    """One registered export file of a run (``get_output_uris``); ``replicate`` is read from
    the file name (its last number), None when it carries none."""

    run_hash: str
    label: str | None
    replicate: int | None
    uri: str


@dataclass
class DropSummary:
    """What ``drop_run`` or ``reset_run`` took (or, with ``dry_run``, would take) out of the
    tables: rows per table, and the label a drop freed."""

    run_hash: str
    label: str | None
    rows: dict[str, int]
    total: int


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

    ``action`` is ``assigned``, ``released`` (taken away by ``force=True``, because the run
    was given another label, or by a conflicting label of a merged registry: ``reason`` says
    ``force``, ``relabel`` or ``merge``) or ``archived`` (renamed to ``archived_as`` by
    ``on_collision="timestamp"``) or ``superseded`` (taken away by ``supersede`` or
    ``on_collision="supersede"``, which marked ``run_hash`` superseded by ``superseded_by``;
    ``label`` is None when it held none). ``previous_run_hash`` is the run that held ``label`` just
    before an assignment. ``version`` is the number of the change's commit in the label log
    (after a merge, in the order of every merged label log, see ``joshreg.labelstreams``);
    ``position`` is its log position (its clock value): ``registry.as_of(position)`` shows the
    registry just after the change.
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
    position: int = 0
    superseded_by: str | None = None


@dataclass
class ColumnStats:
    """How many of ``cell_data``'s rows leave one variable column NULL."""

    name: str
    dtype: str
    total_rows: int
    null_count: int

    @property
    def null_percent(self) -> float:
        """Percentage of NULLs (0-100); 0.0 for an empty table."""
        if self.total_rows == 0:
            return 0.0
        return self.null_count / self.total_rows * 100


@dataclass
class SparsityReport:
    """NULL counts of every variable column: mixing simulations in one registry shows up here."""

    total_rows: int
    column_stats: list[ColumnStats]
    threshold_percent: float = SPARSITY_WARN_COLUMN_NULL_PERCENT

    @property
    def sparse_columns(self) -> list[ColumnStats]:
        """Columns with more than ``threshold_percent`` NULLs."""
        return [c for c in self.column_stats if c.null_percent > self.threshold_percent]

    @property
    def should_warn(self) -> bool:
        """Enough rows and enough sparse columns to be worth a warning (thresholds read now)."""
        return (
            self.total_rows >= SPARSITY_WARN_MIN_ROWS
            and len(self.sparse_columns) >= SPARSITY_WARN_MIN_SPARSE_COLUMNS
        )

    def __str__(self) -> str:
        sparse = self.sparse_columns
        if not sparse:
            return f"No sparse columns (threshold: {self.threshold_percent}% NULL)"
        lines = [f"SparsityWarning: {len(sparse)} columns are >{self.threshold_percent}% NULL:"]
        lines += [
            f"  - {c.name}: {c.null_percent:.1f}% NULL ({c.null_count:,}/{c.total_rows:,})" for c in sparse
        ]
        lines.append("")
        lines.append(
            "Consider removing unused columns or using a separate registry for different simulations."
        )
        return "\n".join(lines)


@dataclass
class DataSummary:
    """What the registry (or one session) holds: the first thing to look at after a sweep."""

    sessions: int
    configs: int
    runs: int
    cell_data_rows: int
    variables: list[str]
    entity_types: list[str]
    step_range: tuple[int, int] | None
    replicate_range: tuple[int, int] | None
    spatial_extent: dict[str, tuple[float, float]] | None
    parameters: list[str]

    def __str__(self) -> str:
        def listed(names: list[str]) -> str:
            return ", ".join(names) if names else "(none)"

        lines = [
            "Registry Data Summary",
            "=" * 40,
            f"Sessions: {self.sessions}",
            f"Configs:  {self.configs}",
            f"Runs:     {self.runs}",
            f"Rows:     {self.cell_data_rows:,}",
            "",
            f"Variables: {listed(self.variables)}",
            f"Entity types: {listed(self.entity_types)}",
            f"Parameters: {listed(self.parameters)}",
        ]
        if self.step_range:
            lines.append(f"Steps: {self.step_range[0]} - {self.step_range[1]}")
        if self.replicate_range:
            lines.append(f"Replicates: {self.replicate_range[0]} - {self.replicate_range[1]}")
        if self.spatial_extent:
            lon, lat = self.spatial_extent.get("lon"), self.spatial_extent.get("lat")
            if lon and lat:
                lines.append(
                    f"Spatial extent: lon [{lon[0]:.2f}, {lon[1]:.2f}], lat [{lat[0]:.2f}, {lat[1]:.2f}]"
                )
        return "\n".join(lines)
