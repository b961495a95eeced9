"""joshreg: an event-sourced run registry for Josh simulation sweeps.

``RunRegistry`` keeps upstream joshpy's API; underneath, every change is an event appended to a
log and the DuckDB tables are projections of it. ``RunRecorder`` lets worker processes record
runs without opening DuckDB.
"""

from __future__ import annotations

from .cell_data import CellDataLoader, DuplicateLoadWarning, SparsityWarning
from .diagnostics import DiagnosticQueries
from .errors import (
    ColumnConflictError,
    DuplicateSessionError,
    InvalidArgumentError,
    JoshregError,
    LabelConflictError,
    LogDamageError,
    LogDamageWarning,
    LogFormatError,
    NotFoundError,
    RunNotFoundError,
    SessionNotFoundError,
    SpatialUnavailableError,
    StoreError,
)
from .models import (
    ColumnStats,
    ConfigInfo,
    DataSummary,
    LabelChange,
    RunInfo,
    SessionInfo,
    SessionSummary,
    SparsityReport,
)
from .recorder import RunRecorder
from .registry import RegistryClosedError, RunRegistry

__version__ = "0.1.0"

__all__ = [
    "CellDataLoader",
    "ColumnConflictError",
    "ColumnStats",
    "ConfigInfo",
    "DataSummary",
    "DiagnosticQueries",
    "DuplicateLoadWarning",
    "DuplicateSessionError",
    "InvalidArgumentError",
    "JoshregError",
    "LabelChange",
    "LabelConflictError",
    "LogDamageError",
    "LogDamageWarning",
    "LogFormatError",
    "NotFoundError",
    "RegistryClosedError",
    "RunInfo",
    "RunNotFoundError",
    "RunRecorder",
    "RunRegistry",
    "SessionInfo",
    "SessionNotFoundError",
    "SessionSummary",
    "SparsityReport",
    "SparsityWarning",
    "SpatialUnavailableError",
    "StoreError",
    "__version__",
]


def __dir__() -> list[str]:
    return __all__
