"""joshreg: an event-sourced run registry for Josh simulation sweeps.

``RunRegistry`` keeps upstream joshpy's API; underneath, every change is an event appended to a
log and the DuckDB tables are projections of it. ``RunRecorder`` lets worker processes record
runs without opening DuckDB.

Names load on first use (a module ``__getattr__``): ``import joshreg`` costs no DuckDB, Arrow
or pandas import, so the command line and worker processes start fast. The errors, which import
nothing, are loaded at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from joshreg.errors import (
    BottleError,
    ColumnConflictError,
    ConsistencyError,
    DebugParseWarning,
    DuplicateLoadWarning,
    DuplicateSessionError,
    ForeignDatabaseError,
    IdeUnavailableError,
    ImportConflictWarning,
    InvalidArgumentError,
    JoshregError,
    JoshregWarning,
    LabelConflictError,
    LogDamageError,
    LogDamageWarning,
    LogFormatError,
    NoDebugOutputError,
    NotFoundError,
    ReadOnlyRegistryError,
    RegistryBusyError,
    RegistryClosedError,
    RemoteUnavailableError,
    RemovedRunWarning,
    RunNotFoundError,
    SessionNotFoundError,
    SourceNotStoredError,
    SparsityWarning,
    SpatialUnavailableError,
    StoreError,
    StoreMismatchError,
    UnsafeBottleError,
    UploadBacklogError,
    WaitTimeoutError,
)
from joshreg.registry import LAZY_EXPORTS

if TYPE_CHECKING:
    from joshreg.models import (
        AttributeMatch,
        ColumnStats,
        ConfigInfo,
        ConfigSourceInfo,
        ConsistencyIssue,
        DataSummary,
        DropSummary,
        LabelChange,
        OutputURI,
        Requirement,
        RequirementCoverage,
        RunDetail,
        RunInfo,
        RunStatus,
        SessionInfo,
        SessionSummary,
        SparsityReport,
        StatusChange,
        TargetCoverageReport,
        TargetDesign,
    )
    from joshreg.operations.compaction import (
        CompactionReport,
    )
    from joshreg.operations.joshpy_import import (
        ImportReport,
    )
    from joshreg.operations.merge import (
        MergeReport,
        merge_stores,
    )
    from joshreg.operations.publish import open_s3_registries
    from joshreg.operations.verify import (
        VerifyProblem,
        VerifyReport,
    )
    from joshreg.projection.tables import REGISTRY_SYNC_TABLES
    from joshreg.provenance.bottle import (
        BottleSpec,
        unbottle,
    )
    from joshreg.provenance.callback import (
        RegistryCallback,
        RunResult,
    )
    from joshreg.provenance.debug import (
        DebugMessage,
        DebugMessageStore,
        load_debug_file,
    )
    from joshreg.provenance.jobs import (
        CompoundSweepParameter,
        ConfigSweepParameter,
        ExpandedJob,
        FileSweepParameter,
        JobConfig,
        JobExpander,
        JobSet,
        SweepConfig,
        compute_run_hash,
    )
    from joshreg.registry.reader import RegistryReader
    from joshreg.registry.recorder import (
        RunRecorder,
    )
    from joshreg.registry.registry import RunRegistry
    from joshreg.registry.view import RegistryView
    from joshreg.results.cell_data import CellDataLoader
    from joshreg.results.diagnostics import (
        DiagnosticQueries,
    )

__version__ = "0.1.0"

# Where each lazily loaded name lives.
_LAZY: dict[str, str] = {
    **LAZY_EXPORTS,  # the registry package's names: its facade and result types
    "CompactionReport": "joshreg.operations.compaction",
    "MergeReport": "joshreg.operations.merge",
    "merge_stores": "joshreg.operations.merge",
    "VerifyProblem": "joshreg.operations.verify",
    "VerifyReport": "joshreg.operations.verify",
    "ImportReport": "joshreg.operations.joshpy_import",
    "BottleSpec": "joshreg.provenance.bottle",
    "unbottle": "joshreg.provenance.bottle",
    "RegistryCallback": "joshreg.provenance.callback",
    "RunResult": "joshreg.provenance.callback",
    "DebugMessage": "joshreg.provenance.debug",
    "DebugMessageStore": "joshreg.provenance.debug",
    "load_debug_file": "joshreg.provenance.debug",
    "CompoundSweepParameter": "joshreg.provenance.jobs",
    "ConfigSweepParameter": "joshreg.provenance.jobs",
    "ExpandedJob": "joshreg.provenance.jobs",
    "FileSweepParameter": "joshreg.provenance.jobs",
    "JobConfig": "joshreg.provenance.jobs",
    "JobExpander": "joshreg.provenance.jobs",
    "JobSet": "joshreg.provenance.jobs",
    "SweepConfig": "joshreg.provenance.jobs",
    "compute_run_hash": "joshreg.provenance.jobs",
    "CellDataLoader": "joshreg.results.cell_data",
    "DiagnosticQueries": "joshreg.results.diagnostics",
}

__all__ = [
    "REGISTRY_SYNC_TABLES",
    "RUN_STATUSES",
    "AttributeMatch",
    "BottleError",
    "BottleSpec",
    "CellDataLoader",
    "ColumnConflictError",
    "ColumnStats",
    "CompactionReport",
    "CompoundSweepParameter",
    "ConfigInfo",
    "ConfigSourceInfo",
    "ConfigSweepParameter",
    "ConsistencyError",
    "ConsistencyIssue",
    "DataSummary",
    "DebugMessage",
    "DebugMessageStore",
    "DebugParseWarning",
    "DiagnosticQueries",
    "DropSummary",
    "DuplicateLoadWarning",
    "DuplicateSessionError",
    "ExpandedJob",
    "FileSweepParameter",
    "ForeignDatabaseError",
    "IdeUnavailableError",
    "ImportConflictWarning",
    "ImportReport",
    "InvalidArgumentError",
    "JobConfig",
    "JobExpander",
    "JobSet",
    "JoshregError",
    "JoshregWarning",
    "LabelChange",
    "LabelConflictError",
    "LogDamageError",
    "LogDamageWarning",
    "LogFormatError",
    "MergeReport",
    "NoDebugOutputError",
    "NotFoundError",
    "OutputURI",
    "ReadOnlyRegistryError",
    "RegistryBusyError",
    "RegistryCallback",
    "RegistryClosedError",
    "RegistryReader",
    "RegistryView",
    "RemoteUnavailableError",
    "RemovedRunWarning",
    "Requirement",
    "RequirementCoverage",
    "RunDetail",
    "RunInfo",
    "RunNotFoundError",
    "RunRecorder",
    "RunRegistry",
    "RunResult",
    "RunStatus",
    "SessionInfo",
    "SessionNotFoundError",
    "SessionSummary",
    "SourceNotStoredError",
    "SparsityReport",
    "SparsityWarning",
    "SpatialUnavailableError",
    "StatusChange",
    "StoreError",
    "StoreMismatchError",
    "SweepConfig",
    "TargetCoverageReport",
    "TargetDesign",
    "UnsafeBottleError",
    "UploadBacklogError",
    "VerifyProblem",
    "VerifyReport",
    "WaitTimeoutError",
    "__version__",
    "compute_run_hash",
    "load_debug_file",
    "merge_stores",
    "open_s3_registries",
    "unbottle",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'joshreg' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return __all__
