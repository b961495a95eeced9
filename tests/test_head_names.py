"""Code written against upstream joshpy's HEAD registry finds every name it imports or calls."""

from __future__ import annotations

import importlib

import pytest

from joshreg import RunRegistry
from joshreg.models import ConfigInfo

# Section 6 of the reference: the public names HEAD's joshpy.registry adds.
HEAD_NAMES = (
    "RegistryBusyError",
    "RunStatus",
    "AttributeMatch",
    "Requirement",
    "TargetDesign",
    "RequirementCoverage",
    "TargetCoverageReport",
    "OutputURI",
    "RunDetail",
    "DropSummary",
    "ConsistencyIssue",
    "REGISTRY_SYNC_TABLES",
)

# Section 1's RunRegistry methods (the S3 sync of 1b comes with the object-storage store).
HEAD_METHODS = (
    "get_run_info", "describe_labels", "describe_sessions", "describe_run", "describe_summary",
    "loaded_replicates", "drop_run", "check_consistency", "tag_by_session_id", "get_tags_by_session_id",
    "tag_by_run_id", "get_tags_by_run_id", "tag_custom", "get_custom_tags", "list_tag_keys", "find_tagged",
    "mark_run", "get_run_status", "supersede", "run_history", "set_attributes", "get_attributes",
    "list_attribute_keys", "find_by_attribute", "find_current_by_attribute", "register_design",
    "list_designs", "get_design", "delete_design", "check_design", "reset_run", "get_output_uris",
    "query_remote", "check_remote_consistency", "list_config_columns", "get_replicate_count",
)  # fmt: skip


@pytest.mark.parametrize("module", ["joshreg", "joshreg.registry"])
@pytest.mark.parametrize("name", HEAD_NAMES)
def test_each_name_has_a_twin(module: str, name: str) -> None:
    value = getattr(importlib.import_module(module), name)
    assert value is getattr(importlib.import_module("joshreg"), name)


def test_registry_sync_tables_are_parent_first() -> None:
    from joshreg import REGISTRY_SYNC_TABLES

    assert REGISTRY_SYNC_TABLES == (
        "sweep_sessions", "job_configs", "session_configs", "config_parameters", "job_runs",
        "run_outputs", "cell_data", "run_tags", "target_designs", "target_requirements",
    )  # fmt: skip


@pytest.mark.parametrize("method", HEAD_METHODS)
def test_each_method_is_on_the_registry(method: str) -> None:
    assert callable(getattr(RunRegistry, method))


def test_config_info_has_the_status_fields() -> None:
    fields = set(ConfigInfo.__dataclass_fields__)
    assert {"status", "superseded_by", "status_reason", "status_updated_at"} <= fields
    assert isinstance(ConfigInfo.effective_status, property) and isinstance(ConfigInfo.is_current, property)
