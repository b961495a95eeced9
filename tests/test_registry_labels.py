"""Labels: label_run (plain, relabel, force, timestamp archive), resolution and label history."""

from __future__ import annotations

import re

import pytest

from joshreg import LabelConflictError
from joshreg.log.clock import actor


@pytest.fixture
def runs(register) -> tuple[str, str, str]:
    return register("h1"), register("h2"), register("h3")


def _archive_name(registry, run_hash: str, label: str) -> str:
    created = registry.get_config_by_hash(run_hash).created_at
    return f"{label}_{created:%Y%m%d_%H%M%S}"


def test_label_run_assigns_the_label(registry, runs):
    registry.label_run("h1", "baseline")
    assert registry.resolve_label("baseline") == "h1"
    assert registry.get_config_by_hash("h1").label == "baseline"


def test_relabelling_with_the_same_label_is_a_no_op(registry, runs):
    registry.label_run("h1", "baseline")
    registry.label_run("h1", "baseline")
    assert registry.list_labels() == [("baseline", "h1")]
    assert len(registry.label_history()) == 1


def test_a_run_holds_one_label_so_a_new_one_replaces_it(registry, runs):
    registry.label_run("h1", "first")
    registry.label_run("h1", "second")
    assert registry.list_labels() == [("second", "h1")]
    with pytest.raises(KeyError):
        registry.resolve_label("first")


def test_label_held_by_another_run_raises_conflict(registry, runs):
    registry.label_run("h1", "baseline")
    with pytest.raises(LabelConflictError, match="already assigned") as exc:
        registry.label_run("h2", "baseline")
    assert isinstance(exc.value, ValueError)
    assert "h1" in str(exc.value)
    assert registry.resolve_label("baseline") == "h1"
    assert registry.get_config_by_hash("h2").label is None


def test_force_moves_the_label(registry, runs):
    registry.label_run("h1", "baseline")
    registry.label_run("h2", "baseline", force=True)
    assert registry.list_labels() == [("baseline", "h2")]
    assert registry.get_config_by_hash("h1").label is None


def test_timestamp_collision_archives_the_old_holder(registry, runs):
    registry.label_run("h1", "baseline")
    registry.label_run("h2", "baseline", on_collision="timestamp")
    archived = registry.get_config_by_hash("h1").label
    assert re.fullmatch(r"baseline_\d{8}_\d{6}", archived)
    assert archived == _archive_name(registry, "h1", "baseline")
    assert registry.resolve_label("baseline") == "h2"
    assert registry.resolve_label(archived) == "h1"


def test_timestamp_archive_name_gets_a_suffix_when_taken(registry, runs):
    registry.label_run("h1", "baseline")
    taken = _archive_name(registry, "h1", "baseline")
    registry.label_run("h3", taken)
    registry.label_run("h2", "baseline", on_collision="timestamp")
    assert registry.get_config_by_hash("h1").label == f"{taken}_2"
    assert registry.resolve_label(taken) == "h3"


def test_timestamp_collision_without_a_holder_just_assigns(registry, runs):
    registry.label_run("h1", "baseline", on_collision="timestamp")
    assert registry.list_labels() == [("baseline", "h1")]


def test_list_labels_sorted_by_label(registry, runs):
    registry.label_run("h2", "zeta")
    registry.label_run("h3", "alpha")
    registry.label_run("h1", "mid")
    assert registry.list_labels() == [("alpha", "h3"), ("mid", "h1"), ("zeta", "h2")]


def test_resolve_unknown_label_raises_key_error(registry, runs):
    with pytest.raises(KeyError, match="nothing"):
        registry.resolve_label("nothing")


def test_resolve_latest_picks_the_newest_registration(registry, runs):
    registry.label_run("h3", "exp-c")
    registry.label_run("h1", "exp-a")
    registry.label_run("h2", "other")
    assert registry.resolve_latest("exp-") == "h3"
    with pytest.raises(KeyError):
        registry.resolve_latest("zzz")


def test_label_on_unknown_hash_raises_key_error(registry, runs):
    with pytest.raises(KeyError, match="ghost"):
        registry.label_run("ghost", "baseline")


def test_history_records_an_assignment_with_actor(registry, runs):
    registry.label_run("h1", "baseline")
    (change,) = registry.label_history()
    assert (change.action, change.label, change.run_hash, change.previous_run_hash) == (
        "assigned",
        "baseline",
        "h1",
        None,
    )
    assert change.actor == actor()
    assert change.at is not None


def test_history_keeps_the_holder_that_force_released(registry, runs):
    registry.label_run("h1", "baseline")
    registry.label_run("h2", "baseline", force=True)
    changes = registry.label_history(label="baseline")
    assert [(c.action, c.run_hash, c.previous_run_hash, c.reason) for c in changes] == [
        ("assigned", "h1", None, None),
        ("released", "h1", None, "force"),
        ("assigned", "h2", "h1", None),
    ]
    assert {c.actor for c in changes} == {actor()}


def test_history_records_archives(registry, runs):
    registry.label_run("h1", "baseline")
    registry.label_run("h2", "baseline", on_collision="timestamp")
    archived = registry.get_config_by_hash("h1").label
    actions = [(c.action, c.run_hash, c.archived_as) for c in registry.label_history(label="baseline")]
    assert actions == [("assigned", "h1", None), ("archived", "h1", archived), ("assigned", "h2", None)]
    assert [c.action for c in registry.label_history(label=archived)] == ["archived"]


def test_history_records_relabel_releases(registry, runs):
    registry.label_run("h1", "first")
    registry.label_run("h1", "second")
    assert [(c.action, c.label, c.reason) for c in registry.label_history(run_hash="h1")] == [
        ("assigned", "first", None),
        ("released", "first", "relabel"),
        ("assigned", "second", None),
    ]


def test_history_by_run_includes_changes_where_it_was_the_previous_holder(registry, runs):
    registry.label_run("h1", "baseline")
    registry.label_run("h3", "other")
    registry.label_run("h2", "baseline", force=True)
    changes = registry.label_history(run_hash="h1")
    assert [(c.action, c.run_hash) for c in changes] == [
        ("assigned", "h1"),
        ("released", "h1"),
        ("assigned", "h2"),
    ]


def test_history_forgets_nothing_a_label_pointed_to(registry, runs):
    registry.label_run("h1", "best")
    registry.label_run("h2", "best", force=True)
    registry.label_run("h3", "best", force=True)
    registry.label_run("h1", "best", force=True)
    holders = [c.run_hash for c in registry.label_history(label="best") if c.action == "assigned"]
    assert holders == ["h1", "h2", "h3", "h1"]
    versions = [c.version for c in registry.label_history()]
    assert versions == sorted(versions)


def test_history_filters_combine(registry, runs):
    registry.label_run("h1", "a")
    registry.label_run("h2", "b")
    assert [c.label for c in registry.label_history(label="a", run_hash="h1")] == ["a"]
    assert registry.label_history(label="a", run_hash="h2") == []
