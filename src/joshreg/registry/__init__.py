"""The registry facade: upstream joshpy's ``RunRegistry`` API over the log and the projection.

``RunRegistry`` (every write validated, then one event through one path; every read caught up
first), ``RegistryView`` (the registry as of a past moment, read-only), both built on the shared
read base ``RegistryReader``, and ``RunRecorder`` (the worker API, without DuckDB). One module
per area: ``reads``, ``status``, ``tags``, ``designs``, ``consistency``, ``outputs``,
``inspecting``, ``discovering`` (reads), ``writes``, ``labelling`` (labels, statuses, reset and
drop), ``maintenance`` (whole-registry operations), ``listings`` and ``text`` (what the command
line prints, as data and as text). May import
everything below it: log, projection, results' parsing, provenance and operations.

Names load on first use, so importing a light module of this package (``listings``) does not
open DuckDB.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from joshreg.errors import RegistryBusyError, RegistryClosedError
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
    from joshreg.operations.publish import open_s3_registries
    from joshreg.projection.tables import REGISTRY_SYNC_TABLES
    from joshreg.registry.reader import RegistryReader
    from joshreg.registry.recorder import RunRecorder
    from joshreg.registry.registry import RunRegistry
    from joshreg.registry.view import RegistryView

#: Where each name of this package lives (``joshreg`` re-exports them all).
LAZY_EXPORTS = {
    "RegistryClosedError": "joshreg.errors",
    "RegistryBusyError": "joshreg.errors",
    "ColumnStats": "joshreg.models",
    "ConfigInfo": "joshreg.models",
    "ConfigSourceInfo": "joshreg.models",
    "DataSummary": "joshreg.models",
    "LabelChange": "joshreg.models",
    "REGISTRY_SYNC_TABLES": "joshreg.projection.tables",
    "OutputURI": "joshreg.models",
    "ConsistencyIssue": "joshreg.models",
    "DropSummary": "joshreg.models",
    "Requirement": "joshreg.models",
    "RequirementCoverage": "joshreg.models",
    "TargetCoverageReport": "joshreg.models",
    "TargetDesign": "joshreg.models",
    "AttributeMatch": "joshreg.models",
    "RunDetail": "joshreg.models",
    "RunStatus": "joshreg.models",
    "StatusChange": "joshreg.models",
    "RUN_STATUSES": "joshreg.models",
    "RunInfo": "joshreg.models",
    "SessionInfo": "joshreg.models",
    "SessionSummary": "joshreg.models",
    "SparsityReport": "joshreg.models",
    "RegistryReader": "joshreg.registry.reader",
    "RunRecorder": "joshreg.registry.recorder",
    "RunRegistry": "joshreg.registry.registry",
    "RegistryView": "joshreg.registry.view",
    "open_s3_registries": "joshreg.operations.publish",
}

__all__ = [
    "REGISTRY_SYNC_TABLES",
    "RUN_STATUSES",
    "AttributeMatch",
    "ColumnStats",
    "ConfigInfo",
    "ConfigSourceInfo",
    "ConsistencyIssue",
    "DataSummary",
    "DropSummary",
    "LabelChange",
    "OutputURI",
    "RegistryBusyError",
    "RegistryClosedError",
    "RegistryReader",
    "RegistryView",
    "Requirement",
    "RequirementCoverage",
    "RunDetail",
    "RunInfo",
    "RunRecorder",
    "RunRegistry",
    "RunStatus",
    "SessionInfo",
    "SessionSummary",
    "SparsityReport",
    "StatusChange",
    "TargetCoverageReport",
    "TargetDesign",
    "open_s3_registries",
]


def __getattr__(name: str) -> Any:
    module = LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'joshreg.registry' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return [*__all__, *globals()]
