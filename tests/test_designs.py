"""Target designs: registering, replacing, deleting (as events), and checking coverage."""

from __future__ import annotations

from pathlib import Path

import pytest

from joshreg import Requirement, RunRegistry, TargetDesign
from joshreg.errors import InvalidArgumentError, NotFoundError, ReadOnlyRegistryError
from joshreg.testing.registries import FakeJobConfig

RUNS = {
    "aaaaaaaaaaa1": {"site": "mojave", "scenario": "dry", "n": 1},
    "bbbbbbbbbbb2": {"site": "mojave", "scenario": "dry", "n": 2.0},
    "ccccccccccc3": {"site": "mojave", "scenario": "wet"},
    "ddddddddddd4": {"site": "sonoran", "scenario": "dry"},
}


@pytest.fixture
def reg(registry: RunRegistry, register) -> RunRegistry:
    for h, attrs in RUNS.items():
        register(h)
        registry.set_attributes(h, **attrs)
    return registry


DESIGN = TargetDesign(
    "coverage",
    [
        Requirement({"site": "mojave", "scenario": "dry"}, min_active=2),
        Requirement({"site": "sonoran"}),
        Requirement({"site": "chihuahuan"}),
    ],
)


def test_register_list_get_and_replace_wholesale(reg: RunRegistry) -> None:
    reg.register_design(DESIGN)
    assert reg.list_designs() == [
        TargetDesign(
            "coverage",
            [
                Requirement({"scenario": "dry", "site": "mojave"}, 2),
                Requirement({"site": "chihuahuan"}, 1),
                Requirement({"site": "sonoran"}, 1),
            ],
        )
    ]
    reg.register_design(TargetDesign("coverage", [Requirement({"site": "mojave"}, 3)]))
    assert reg.get_design("coverage") == TargetDesign("coverage", [Requirement({"site": "mojave"}, 3)])
    assert reg.get_design("nothing") is None
    (stored,) = reg.query("SELECT attributes FROM target_requirements").fetchall()
    assert stored == ('{"site":"mojave"}',)


def test_attributes_are_stored_with_sorted_keys(reg: RunRegistry) -> None:
    reg.register_design(TargetDesign("d", [Requirement({"z": 1, "a": 2})]))
    assert reg.query("SELECT attributes FROM target_requirements").fetchone() == ('{"a":2,"z":1}',)


def test_check_counts_only_active_runs_and_lists_the_others(reg: RunRegistry) -> None:
    reg.register_design(DESIGN)
    report = reg.check_design("coverage")
    assert not report.complete
    dry, chihuahuan, sonoran = report.requirements  # in the order of their attributes' JSON
    assert dry.active_run_hashes == ["aaaaaaaaaaa1", "bbbbbbbbbbb2"] and dry.satisfied
    assert sonoran.found == 1 and sonoran.satisfied
    assert chihuahuan.found == 0 and report.unmet == [chihuahuan]
    reg.mark_run("bbbbbbbbbbb2", "bad")
    dry = reg.check_design("coverage").requirements[0]
    assert dry.active_run_hashes == ["aaaaaaaaaaa1"] and not dry.satisfied
    assert dry.non_active_matches == [("bbbbbbbbbbb2", "bad")]


def test_values_match_by_json_type_in_designs_too(reg: RunRegistry) -> None:
    report = reg.check_design(TargetDesign("n", [Requirement({"n": 2}), Requirement({"n": "2"})]))
    assert [r.active_run_hashes for r in report.requirements] == [["bbbbbbbbbbb2"], []]


def test_check_an_unregistered_design_and_an_unknown_name(reg: RunRegistry) -> None:
    assert reg.check_design(TargetDesign("adhoc", [Requirement({"scenario": "wet"})])).complete
    with pytest.raises(NotFoundError, match="list_designs"):
        reg.check_design("nothing")
    assert reg.list_designs() == []  # checking never registers


@pytest.mark.parametrize(
    ("design", "match"),
    [
        (TargetDesign("", [Requirement({"a": 1})]), "non-empty name"),
        (TargetDesign("d", []), "no requirements"),
        (TargetDesign("d", [Requirement({})]), "no attributes"),
        (TargetDesign("d", [Requirement({"a": 1}, min_active=0)]), "at least 1"),
        (TargetDesign("d", [Requirement({"a": 1}), Requirement({"a": 1.0})]), "twice"),
    ],
)
def test_refusals(reg: RunRegistry, design: TargetDesign, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        reg.register_design(design)
    assert reg.list_designs() == []


def test_delete_and_register_again(reg: RunRegistry) -> None:
    assert reg.delete_design("coverage") is False
    reg.register_design(DESIGN)
    assert reg.delete_design("coverage") is True
    assert reg.list_designs() == [] and reg.query("SELECT count(*) FROM target_requirements").fetchone() == (
        0,
    )
    reg.register_design(TargetDesign("coverage", [Requirement({"site": "sonoran"})]))
    assert [d.name for d in reg.list_designs()] == ["coverage"]


def test_history_through_as_of_and_rebuild(db_path: Path) -> None:
    with RunRegistry(db_path) as reg:
        reg.create_session(FakeJobConfig())
        reg.register_design(DESIGN)
        at = reg.query("SELECT max(hlc) FROM event_log").fetchone()[0]
        reg.delete_design("coverage")
        with reg.as_of(at) as view:
            assert [d.name for d in view.list_designs()] == ["coverage"]
            with pytest.raises(ReadOnlyRegistryError):
                view.register_design(DESIGN)
            with pytest.raises(ReadOnlyRegistryError):
                view.delete_design("coverage")
        reg.register_design(TargetDesign("other", [Requirement({"a": 1}, 2)]))
        want = reg.list_designs()
    with RunRegistry(db_path, rebuild=True) as reg:
        assert reg.list_designs() == want == [TargetDesign("other", [Requirement({"a": 1}, 2)])]


def test_designs_merge_by_their_latest_change(tmp_path: Path) -> None:
    import shutil

    from joshreg import merge_stores

    with RunRegistry(tmp_path / "base.duckdb") as reg:
        reg.register_design(TargetDesign("cov", [Requirement({"site": "a"})]))
    paths = []
    for name in ("left", "right"):
        shutil.copytree(tmp_path / "base.events", tmp_path / f"{name}.events")
        paths.append(tmp_path / f"{name}.duckdb")
    with RunRegistry(paths[0]) as reg:
        reg.delete_design("cov")
    with RunRegistry(paths[1]) as reg:  # later: the registration wins
        reg.register_design(TargetDesign("cov", [Requirement({"site": "b"}, 2)]))
    merge_stores([paths[1]], paths[0])
    merge_stores([paths[0]], paths[1])
    for path in paths:
        with RunRegistry(path) as reg:
            assert reg.list_designs() == [TargetDesign("cov", [Requirement({"site": "b"}, 2)])], path
