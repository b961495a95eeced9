"""The registry facade: upstream joshpy's ``RunRegistry`` API over the log and the projection.

``RunRegistry`` (every write validated, then one event through one path; every read caught up
first), ``RegistryView`` (the registry as of a past moment, read-only) and ``RunRecorder`` (the
worker API, without DuckDB). May import everything below it: log, projection, results'
parsing, provenance and operations.
"""

from joshreg.models import (
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
from joshreg.registry.recorder import RunRecorder
from joshreg.registry.registry import RegistryClosedError, RegistryView, RunRegistry

__all__ = [
    "ColumnStats",
    "ConfigInfo",
    "ConfigSourceInfo",
    "DataSummary",
    "LabelChange",
    "RegistryClosedError",
    "RegistryView",
    "RunInfo",
    "RunRecorder",
    "RunRegistry",
    "SessionInfo",
    "SessionSummary",
    "SparsityReport",
]
