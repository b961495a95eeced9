"""Attributes and tags (run_tags): merge-updates as events, matching by JSON type, scopes,
currency, history through as_of, rebuilds and merges."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from joshreg import AttributeMatch, RunRegistry, merge_stores
from joshreg.errors import InvalidArgumentError, ReadOnlyRegistryError, RunNotFoundError, SessionNotFoundError
from joshreg.projection.sqltext import INLINE_ROWS
from joshreg.testing.registries import FakeJobConfig

A, B, C = "aaaaaaaaaaa1", "bbbbbbbbbbb2", "ccccccccccc3"


@pytest.fixture
def reg(registry: RunRegistry, register) -> RunRegistry:
    for h in (A, B, C):
        register(h, x=1.0)
    return registry


def test_set_attributes_merges_like_dict_update(reg: RunRegistry) -> None:
    assert reg.get_attributes(A) == {}
    reg.set_attributes(A, site="mojave", n=1)
    reg.set_attributes(A, n=2, note=None)
    assert reg.get_attributes(A) == {"site": "mojave", "n": 2, "note": None}
    assert reg.list_attribute_keys() == ["n", "note", "site"]
    row = reg.query("SELECT scope, key, updated_at FROM run_tags").fetchall()
    assert [(s, k) for s, k, _ in row] == [("run_hash", A)] and row[0][2] is not None


def test_refusals(reg: RunRegistry, session: str) -> None:
    with pytest.raises(RunNotFoundError):
        reg.set_attributes("eeeeeeeeeee5", site="x")
    with pytest.raises(InvalidArgumentError, match="no tags given"):
        reg.set_attributes(A)
    with pytest.raises(SessionNotFoundError):
        reg.tag_by_session_id("no-such-session", owner="x")
    with pytest.raises(RunNotFoundError):
        reg.tag_by_run_id("no-such-run", node="n1")
    for scope in ("run_hash", "session_id", "run_id"):
        with pytest.raises(InvalidArgumentError, match="registry's own"):
            reg.tag_custom("k", scope=scope, a=1)
    assert reg.query("SELECT count(*) FROM run_tags").fetchone() == (0,)


def test_values_match_by_json_type(reg: RunRegistry) -> None:
    reg.set_attributes(A, n=1, flag=True, label_like="1")
    reg.set_attributes(B, n=1.0, flag=1)
    reg.set_attributes(C, n="1", flag="true")
    assert reg.find_by_attribute("n", 1) == [A, B]  # 1 matches 1.0
    assert reg.find_by_attribute("n", "1") == [C]  # text matches text only
    assert reg.find_by_attribute("flag", True) == [A]  # true is not 1 and not "true"
    assert reg.find_by_attribute("flag", 1) == [B]
    assert reg.find_by_attribute("missing", 1) == []


def test_keys_with_dots_quotes_and_dollars_are_plain_names(reg: RunRegistry) -> None:
    odd = {"a.b": 1, 'x"y': 2, "$.n": 3, "it's": 4}
    reg.set_attributes(A, **odd)
    assert reg.get_attributes(A) == odd
    for key, value in odd.items():
        assert reg.find_by_attribute(key, value) == [A], key
    assert reg.find_by_attribute("a", 1) == []  # 'a.b' is one name, not a path


def test_lists_and_objects_match_element_by_element(reg: RunRegistry) -> None:
    reg.set_attributes(A, grid={"x": 1, "y": [2, 3.5]})
    assert reg.find_by_attribute("grid", {"y": [2.0, 3.5], "x": 1.0}) == [A]
    assert reg.find_by_attribute("grid", {"x": 1}) == []


def test_current_only_hides_bad_and_superseded_runs(reg: RunRegistry) -> None:
    for h in (A, B, C):
        reg.set_attributes(h, site="mojave")
    reg.label_run(A, "best")
    reg.mark_run(B, "bad")
    reg.supersede(A, C)
    assert reg.find_by_attribute("site", "mojave") == [A]
    assert reg.find_by_attribute("site", "mojave", current_only=False) == [A, B, C]
    assert reg.find_current_by_attribute("site", "mojave") == [AttributeMatch(A, "best", {"site": "mojave"})]
    assert reg.find_tagged("site", "mojave") == [A, B, C]  # no currency filter


def test_session_run_and_custom_scopes(reg: RunRegistry, session: str) -> None:
    run_id = reg.start_run(A, session_id=session)
    reg.tag_by_session_id(session, owner="ana", batch=3)
    reg.tag_by_run_id(run_id, node="n07")
    reg.tag_custom("mojave", scope="site", elevation=900)
    reg.tag_custom("mojave", scope="site", dry=True)
    assert reg.get_tags_by_session_id(session) == {"owner": "ana", "batch": 3}
    assert reg.get_tags_by_run_id(run_id) == {"node": "n07"}
    assert reg.get_custom_tags("mojave", scope="site") == {"elevation": 900, "dry": True}
    assert reg.get_custom_tags("mojave", scope="region") == {}
    assert reg.list_tag_keys(scope="site") == ["dry", "elevation"]
    assert reg.find_tagged("owner", "ana", scope="session_id") == [session]
    assert reg.list_attribute_keys() == []  # other scopes are not attributes


def test_values_that_are_not_json_are_kept_as_text(reg: RunRegistry) -> None:
    reg.set_attributes(A, path=Path("/data/x.csv"))
    assert reg.get_attributes(A) == {"path": "/data/x.csv"}


def test_as_of_shows_tags_as_they_were_and_refuses_writes(reg: RunRegistry) -> None:
    reg.set_attributes(A, n=1)
    at = reg.query("SELECT max(hlc) FROM events_tags_set").fetchone()[0]
    reg.set_attributes(A, n=2, extra=True)
    with reg.as_of(at) as view:
        assert view.get_attributes(A) == {"n": 1}
        assert view.find_by_attribute("n", 2) == []
        with pytest.raises(ReadOnlyRegistryError):
            view.set_attributes(A, n=3)
        with pytest.raises(ReadOnlyRegistryError):
            view.tag_custom("k", scope="site", a=1)
    assert reg.get_attributes(A) == {"n": 2, "extra": True}


def test_tags_survive_a_rebuild(db_path: Path) -> None:
    with RunRegistry(db_path) as reg:
        sid = reg.create_session(FakeJobConfig())
        reg.register_run(sid, A, None, "a", None, {})
        reg.set_attributes(A, n=1, site="x")
        reg.set_attributes(A, n=2)
        reg.tag_custom("k", scope="s", v=[1, 2])
        want = reg.query("SELECT scope, key, tags FROM run_tags ORDER BY ALL").fetchall()
    with RunRegistry(db_path, rebuild=True) as reg:
        assert reg.query("SELECT scope, key, tags FROM run_tags ORDER BY ALL").fetchall() == want
        assert reg.get_attributes(A) == {"n": 2, "site": "x"}


def test_merged_copies_take_each_tag_from_its_latest_change(tmp_path: Path) -> None:
    """Upstream's merge never updates a row it has; the log keeps every change, so both copies
    end with each tag's latest value whichever way they are merged."""
    with RunRegistry(tmp_path / "base.duckdb") as reg:
        sid = reg.create_session(FakeJobConfig())
        reg.register_run(sid, A, None, "a", None, {})
        reg.set_attributes(A, site="x", n=0)
    paths = []
    for name in ("left", "right"):
        shutil.copytree(tmp_path / "base.events", tmp_path / f"{name}.events")
        paths.append(tmp_path / f"{name}.duckdb")
    with RunRegistry(paths[0]) as left:
        left.set_attributes(A, n=1, left=True)
    with RunRegistry(paths[1]) as right:
        right.set_attributes(A, n=2, right=True)  # later
    merge_stores([paths[1]], paths[0])
    merge_stores([paths[0]], paths[1])
    for path in paths:
        with RunRegistry(path) as reg:
            assert reg.get_attributes(A) == {"site": "x", "n": 2, "left": True, "right": True}, path


def test_register_run_carries_declared_attributes_in_one_event(reg: RunRegistry, session: str) -> None:
    before = reg.query("SELECT count(*) FROM event_log").fetchone()[0]
    reg.register_run(session, "eeeeeeeeeee5", None, "e", None, {}, attributes={"site": "mojave", "tier": 1})
    assert reg.query("SELECT count(*) FROM event_log").fetchone()[0] == before + 1
    assert reg.get_attributes("eeeeeeeeeee5") == {"site": "mojave", "tier": 1}
    reg.set_attributes("eeeeeeeeeee5", tier=2)
    assert reg.get_attributes("eeeeeeeeeee5") == {"site": "mojave", "tier": 2}
    assert reg.find_by_attribute("site", "mojave") == ["eeeeeeeeeee5"]


def test_a_catch_up_with_more_keys_than_are_inlined(registry: RunRegistry, session: str) -> None:
    """Past INLINE_ROWS affected keys the refresh goes through Arrow; both ways agree."""
    hashes = [f"{i:012x}" for i in range(INLINE_ROWS + 20)]
    for h in hashes:
        registry.register_run(session, h, None, h, None, {})
    for h in hashes:
        registry.set_attributes(h, n=1)
    assert registry.find_by_attribute("n", 1) == hashes
    for h in hashes:
        registry.set_attributes(h, n=2)
    registry.tag_custom("x", scope="site", a=1)
    assert registry.find_by_attribute("n", 2) == hashes
