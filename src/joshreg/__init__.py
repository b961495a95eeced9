"""joshreg: an event-sourced run registry for Josh simulation sweeps.

``RunRegistry`` keeps upstream joshpy's API; underneath, every change is an event appended to a
log and the DuckDB tables are projections of it. ``RunRecorder`` lets worker processes record
runs without opening DuckDB.
"""

from __future__ import annotations

from .bottle import BottleSpec, unbottle
from .callback import RegistryCallback, RunResult
from .cell_data import CellDataLoader, DuplicateLoadWarning, SparsityWarning
from .compaction import CompactionReport
from .debug import DebugMessage, DebugMessageStore, load_debug_file
from .diagnostics import DiagnosticQueries
from .errors import (
    BottleError,
    ColumnConflictError,
    DebugParseWarning,
    DuplicateSessionError,
    IdeUnavailableError,
    InvalidArgumentError,
    JoshregError,
    LabelConflictError,
    LogDamageError,
    LogDamageWarning,
    LogFormatError,
    NoDebugOutputError,
    NotFoundError,
    ReadOnlyRegistryError,
    RunNotFoundError,
    SessionNotFoundError,
    SourceNotStoredError,
    SpatialUnavailableError,
    StoreError,
    UnsafeBottleError,
    WaitTimeoutError,
)
from .jobs import (
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
from .merge import MergeReport, merge_stores
from .models import (
    ColumnStats,
    ConfigInfo,
    ConfigSourceInfo,
    DataSummary,
    LabelChange,
    RunInfo,
    SessionInfo,
    SessionSummary,
    SparsityReport,
)
from .recorder import RunRecorder
from .registry import RegistryClosedError, RegistryView, RunRegistry
from .verify import VerifyProblem, VerifyReport

__version__ = "0.1.0"

__all__ = [
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
    "DataSummary",
    "DebugMessage",
    "DebugMessageStore",
    "DebugParseWarning",
    "DiagnosticQueries",
    "DuplicateLoadWarning",
    "DuplicateSessionError",
    "ExpandedJob",
    "FileSweepParameter",
    "IdeUnavailableError",
    "InvalidArgumentError",
    "JobConfig",
    "JobExpander",
    "JobSet",
    "JoshregError",
    "LabelChange",
    "LabelConflictError",
    "LogDamageError",
    "LogDamageWarning",
    "LogFormatError",
    "MergeReport",
    "NoDebugOutputError",
    "NotFoundError",
    "ReadOnlyRegistryError",
    "RegistryCallback",
    "RegistryClosedError",
    "RegistryView",
    "RunInfo",
    "RunNotFoundError",
    "RunRecorder",
    "RunRegistry",
    "RunResult",
    "SessionInfo",
    "SessionNotFoundError",
    "SessionSummary",
    "SourceNotStoredError",
    "SparsityReport",
    "SparsityWarning",
    "SpatialUnavailableError",
    "StoreError",
    "SweepConfig",
    "UnsafeBottleError",
    "VerifyProblem",
    "VerifyReport",
    "WaitTimeoutError",
    "__version__",
    "compute_run_hash",
    "load_debug_file",
    "merge_stores",
    "unbottle",
]


def __dir__() -> list[str]:
    return __all__
