"""Run status and supersession: mark_run, supersede, label_run(on_collision="supersede"),
get_run_status, status_history, run_history, and the status fields of ConfigInfo."""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path

import pytest

from joshreg import RunRegistry, merge_stores
from joshreg.errors import InvalidArgumentError, ReadOnlyRegistryError, RunNotFoundError
from joshreg.testing.registries import FakeJobConfig, dump_tables

A, B, C, D = "aaaaaaaaaaa1", "bbbbbbbbbbb2", "ccccccccccc3", "ddddddddddd4"


@pytest.fixture
def reg(registry: RunRegistry, register) -> RunRegistry:
    for h in (A, B, C, D):
        register(h, x=1.0)
    return registry


# --- mark_run -------------------------------------------------------------------------------------


def test_unmarked_runs_read_as_active(reg: RunRegistry) -> None:
    status = reg.get_run_status(A)
    assert (status.status, status.superseded_by, status.effective_status, status.is_current) == (
        None,
        None,
        "active",
        True,
    )
    cfg = reg.get_config_by_hash(A)
    assert cfg is not None and cfg.status is None and cfg.is_current


def test_mark_bad_then_active_again(reg: RunRegistry) -> None:
    reg.mark_run(A, "bad", reason="NaN heights")
    cfg = reg.get_config_by_hash(A)
    assert cfg is not None
    assert (cfg.status, cfg.status_reason, cfg.effective_status, cfg.is_current) == (
        "bad",
        "NaN heights",
        "bad",
        False,
    )
    assert cfg.status_updated_at is not None
    reg.mark_run(A, "superseded", superseded_by=B)
    assert reg.get_run_status(A).superseded_by == B
    reg.mark_run(A, "active")
    status = reg.get_run_status(A)
    assert (status.status, status.superseded_by, status.is_current) == ("active", None, True)


def test_mark_run_accepts_a_label_for_either_run(reg: RunRegistry) -> None:
    reg.label_run(A, "old")
    reg.label_run(B, "new")
    reg.mark_run("old", "superseded", superseded_by="new")
    assert reg.get_run_status(A).superseded_by == B
    assert reg.resolve_label("old") == A  # mark_run leaves labels alone


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((A, "retired"), {}, InvalidArgumentError, "active, superseded, bad"),
        ((A, "superseded"), {}, InvalidArgumentError, "needs superseded_by"),
        ((A, "bad"), {"superseded_by": B}, InvalidArgumentError, "superseded_by goes with"),
        ((A, "superseded"), {"superseded_by": A}, InvalidArgumentError, "cannot supersede itself"),
        ((A, "superseded"), {"superseded_by": "eeeeeeeeeee5"}, KeyError, "eeeeeeeeeee5"),
        (("eeeeeeeeeee5", "bad"), {}, RunNotFoundError, "eeeeeeeeeee5"),
    ],
)
def test_mark_run_refuses_what_upstream_refuses(
    reg: RunRegistry, args: tuple[str, str], kwargs: dict[str, str], error: type[Exception], match: str
) -> None:
    before = len(reg.status_history())
    with pytest.raises(error, match=match):
        reg.mark_run(*args, **kwargs)
    assert len(reg.status_history()) == before  # a refused call records nothing
    if error is InvalidArgumentError:
        assert issubclass(error, ValueError)


# --- supersede and label_run(on_collision="supersede") -----------------------------------------------


def test_label_collision_supersede_moves_label_and_status_in_one_commit(reg: RunRegistry) -> None:
    reg.label_run(A, "best")
    reg.label_run(B, "best", on_collision="supersede", reason="recalibrated")
    assert reg.resolve_label("best") == B
    old = reg.get_config_by_hash(A)
    assert old is not None
    assert (old.label, old.status, old.superseded_by, old.status_reason) == (
        None,
        "superseded",
        B,
        "recalibrated",
    )
    new = reg.get_config_by_hash(B)
    assert new is not None and new.is_current
    changes = [c for c in reg.label_history() if c.version == reg.label_history()[-1].version]
    assert [(c.action, c.run_hash) for c in changes] == [("superseded", A), ("assigned", B)]
    assert changes[0].superseded_by == B and changes[0].reason == "recalibrated"
    (status_change,) = reg.status_history(A)
    assert status_change.version == changes[0].version  # the same label commit


def test_force_and_timestamp_leave_the_status_alone(reg: RunRegistry) -> None:
    reg.label_run(A, "best")
    reg.label_run(B, "best", force=True)
    reg.label_run(C, "best", on_collision="timestamp")
    assert reg.get_run_status(A).status is None
    assert reg.get_run_status(B).status is None
    assert reg.status_history() == []


def test_unknown_on_collision_names_both_choices(reg: RunRegistry) -> None:
    with pytest.raises(InvalidArgumentError, match=r"'supersede'.*'timestamp'"):
        reg.label_run(A, "best", on_collision="overwrite")


def test_supersede_takes_the_label_away(reg: RunRegistry) -> None:
    reg.label_run(A, "v1")
    reg.supersede(B, A, reason="v2 model")
    assert reg.list_labels() == []
    status = reg.get_run_status("aaaaaaaaaaa1")
    assert (status.status, status.superseded_by, status.reason) == ("superseded", B, "v2 model")
    released = reg.label_history(label="v1")[-1]
    assert (released.action, released.run_hash, released.superseded_by) == ("superseded", A, B)


def test_supersede_of_an_unlabelled_run_still_records_the_status(reg: RunRegistry) -> None:
    reg.supersede(B, A)
    assert reg.get_run_status(A).status == "superseded"
    assert reg.label_history()[-1].label is None


def test_supersede_refuses_itself_and_unknown_runs(reg: RunRegistry) -> None:
    with pytest.raises(InvalidArgumentError, match="itself"):
        reg.supersede(A, A)
    with pytest.raises(KeyError):
        reg.supersede(A, "eeeeeeeeeee5")


# --- ordering, history, time travel ----------------------------------------------------------------


def test_the_latest_change_wins_across_events_and_label_commits(reg: RunRegistry) -> None:
    reg.mark_run(A, "bad")  # an event
    reg.supersede(B, A)  # a label commit, later
    assert reg.get_run_status(A).status == "superseded"
    reg.mark_run(A, "active")  # an event, later still
    assert reg.get_run_status(A).status == "active"
    history = reg.status_history(A)
    assert [c.status for c in history] == ["bad", "superseded", "active"]
    assert [c.position for c in history] == sorted(c.position for c in history)
    assert history[0].segment is not None and history[0].line is not None
    assert history[1].version is not None and history[1].segment is None
    assert all(c.actor for c in history)


def test_status_history_of_every_run_and_by_label(reg: RunRegistry) -> None:
    reg.label_run(C, "third")
    reg.mark_run(A, "bad")
    reg.mark_run(C, "bad", reason="drift")
    assert [c.run_hash for c in reg.status_history()] == [A, C]
    assert [c.reason for c in reg.status_history("third")] == ["drift"]


def test_as_of_shows_statuses_as_they_were(reg: RunRegistry) -> None:
    reg.mark_run(A, "bad")
    first = reg.status_history()[-1].position
    reg.mark_run(A, "active")
    with reg.as_of(first) as view:
        assert view.get_run_status(A).status == "bad"
        assert [c.status for c in view.status_history(A)] == ["bad"]
        with pytest.raises(ReadOnlyRegistryError):
            view.mark_run(A, "bad")
        with pytest.raises(ReadOnlyRegistryError):
            view.supersede(B, A)
    assert reg.get_run_status(A).status == "active"


def test_run_history_follows_supersession_newest_first(reg: RunRegistry) -> None:
    reg.label_run(A, "best")
    reg.label_run(B, "best", on_collision="supersede")
    reg.label_run(C, "best", on_collision="supersede")
    reg.supersede(C, D)  # a branch: C replaced B and D
    chain = [d.run_hash for d in reg.run_history("best")]
    assert chain[0] == C and set(chain) == {A, B, C, D}
    assert chain.index(B) < chain.index(A)  # A reached through B
    detail = reg.run_history(C)[0]
    assert detail.label == "best" and detail.config.is_current
    assert [d.run_hash for d in reg.run_history(A)] == [A]


def _statuses(reg: RunRegistry, sid: str) -> list[tuple[str, str | None, str | None, str | None]]:
    configs = reg.get_configs_for_session(sid)
    return [(c.run_hash, c.status, c.superseded_by, c.status_reason) for c in configs]


def test_statuses_survive_a_rebuild_and_a_reopen(db_path: Path) -> None:
    with RunRegistry(db_path) as reg:
        sid = reg.create_session(FakeJobConfig())
        for h in (A, B):
            reg.register_run(sid, h, None, h, None, {})
        reg.label_run(A, "best")
        reg.label_run(B, "best", on_collision="supersede", reason="r")
        reg.mark_run(B, "bad")
        want = [
            (c.run_hash, c.status, c.superseded_by, c.status_reason) for c in reg.get_configs_for_session(sid)
        ]
    with RunRegistry(db_path) as reg:
        got = [
            (c.run_hash, c.status, c.superseded_by, c.status_reason) for c in reg.get_configs_for_session(sid)
        ]
        assert got == want
        reg.rebuild()
        got = [
            (c.run_hash, c.status, c.superseded_by, c.status_reason) for c in reg.get_configs_for_session(sid)
        ]
        assert got == want == [(A, "superseded", B, "r"), (B, "bad", None, None)]


def test_merged_registries_agree_on_the_latest_status(tmp_path: Path) -> None:
    """Two copies mark the same run; after merging either way, the later mark (by clock) holds."""
    base = tmp_path / "base.duckdb"
    with RunRegistry(base) as reg:
        sid = reg.create_session(FakeJobConfig(), session_id="s")
        for h in (A, B):
            reg.register_run(sid, h, None, h, None, {})
    copies = []
    for name in ("left", "right"):
        target = tmp_path / f"{name}.duckdb"
        shutil.copytree(tmp_path / "base.events", tmp_path / f"{name}.events")
        copies.append(target)
    with RunRegistry(copies[0]) as left:
        left.mark_run(A, "bad", reason="left")
    with RunRegistry(copies[1]) as right:
        right.supersede(B, A, reason="right")  # later: a label commit
    merge_stores([copies[1]], copies[0])
    merge_stores([copies[0]], copies[1])
    for path in copies:
        with RunRegistry(path) as reg:
            status = reg.get_run_status(A)
            assert (status.status, status.reason) == ("superseded", "right"), path
            assert [c.reason for c in reg.status_history(A)] == ["left", "right"]


# --- a race ---------------------------------------------------------------------------------------


def _take_label(db: str, run_hash: str, go: multiprocessing.synchronize.Event) -> None:
    go.wait()
    with RunRegistry(db, enable_spatial=False) as reg:
        reg.label_run(run_hash, "best", on_collision="supersede", reason=run_hash)


@pytest.mark.slow
def test_racing_supersedes_leave_one_holder_and_every_other_superseded(tmp_path: Path) -> None:
    db = tmp_path / "race.duckdb"
    hashes = [f"{i:012x}" for i in range(4)]
    with RunRegistry(db, enable_spatial=False) as reg:
        sid = reg.create_session(FakeJobConfig())
        for h in hashes:
            reg.register_run(sid, h, None, h, None, {})
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    procs = [ctx.Process(target=_take_label, args=(str(db), h, go)) for h in hashes]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    with RunRegistry(db, enable_spatial=False) as reg:
        holder = reg.resolve_label("best")
        configs = {c.run_hash: c for c in reg.get_configs_for_session(sid)}
        assert configs[holder].is_current
        others = [h for h in hashes if h != holder]
        # every run that held the label and lost it was superseded by the next holder, in the
        # same commit that moved the label: each displaced holder is superseded exactly once
        commits = [c for c in reg.label_history() if c.action == "superseded"]
        assert sorted(c.run_hash for c in commits) == sorted(others)
        for c in commits:
            assert configs[c.run_hash].status == "superseded"
            assert configs[c.run_hash].superseded_by == c.superseded_by
            same = [x for x in reg.label_history() if x.version == c.version]
            assert [x.action for x in same] == ["superseded", "assigned"]


def test_merging_two_supersedes_of_one_label_gives_one_answer_both_ways(tmp_path: Path) -> None:
    """Both copies moved ``best`` off A with a supersede; merged, in either order, one run holds it,
    every run that lost it is superseded, and both copies have the same tables."""
    base = tmp_path / "base.duckdb"
    with RunRegistry(base) as reg:
        sid = reg.create_session(FakeJobConfig(), session_id="s")
        for h in (A, B, C):
            reg.register_run(sid, h, None, h, None, {})
        reg.label_run(A, "best")
    paths = {}
    for name, new in (("left", B), ("right", C)):
        shutil.copytree(tmp_path / "base.events", tmp_path / f"{name}.events")
        paths[name] = tmp_path / f"{name}.duckdb"
        with RunRegistry(paths[name]) as reg:
            reg.label_run(new, "best", on_collision="supersede", reason=name)
    merge_stores([paths["right"]], paths["left"])
    merge_stores([paths["left"]], paths["right"])
    seen = []
    for path in paths.values():
        with RunRegistry(path) as reg:
            holder = reg.resolve_label("best")
            configs = {c.run_hash: c for c in reg.get_configs_for_session(sid)}
            assert holder in (B, C) and configs[holder].is_current
            for h in {A, B, C} - {holder}:
                assert configs[h].status == "superseded" and configs[h].label is None, h
            seen.append(dump_tables(reg, ("job_configs", "labels_current")))
    assert seen[0] == seen[1]
