"""Run configurations: register_run, pooling, typed parameters, lookups and discovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from joshreg import RunNotFoundError
from joshreg.projection.sqltext import quote_identifier


def _column_types(registry) -> dict[str, str]:
    rows = registry.query(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'config_parameters' AND column_name <> 'run_hash'"
    ).fetchall()
    return dict(rows)


def test_register_run_stores_the_configuration(registry, session):
    mappings = {"soil": {"path": "/data/soil.tif", "hash": "abc"}}
    registry.register_run(session, "h1", "m.josh", "a = 1", mappings, {"a": 1}, josh_content="start")
    cfg = registry.get_config_by_hash("h1")
    assert (cfg.run_hash, cfg.session_id, cfg.josh_path) == ("h1", session, "m.josh")
    assert (cfg.config_content, cfg.josh_content, cfg.file_mappings) == ("a = 1", "start", mappings)
    assert cfg.parameters == {"a": 1.0}
    assert cfg.label is None


def test_get_config_by_unknown_hash_is_none(registry):
    assert registry.get_config_by_hash("nope") is None


def test_empty_file_mappings_read_back_as_none(registry, session):
    registry.register_run(session, "h1", "m.josh", "c", {}, None)
    assert registry.get_config_by_hash("h1").file_mappings is None


def test_config_without_parameters_has_a_parameter_row(registry, session):
    registry.register_run(session, "h1", "m.josh", "c", None, None)
    assert registry.query("SELECT run_hash FROM config_parameters").fetchall() == [("h1",)]
    assert registry.get_config_by_hash("h1").parameters == {}


def test_repeated_hash_keeps_its_first_registration(registry, session, register):
    registry.register_run(session, "h1", "first.josh", "first", None, {"x": 1})
    registry.register_run(session, "h1", "second.josh", "second", None, {"x": 2, "y": "new"})
    cfg = registry.get_config_by_hash("h1")
    assert (cfg.josh_path, cfg.config_content, cfg.parameters) == ("first.josh", "first", {"x": 1.0})
    assert registry.query("SELECT count(*) FROM job_configs").fetchone() == (1,)


def test_pooling_links_a_hash_to_every_session(registry, config, session, register):
    other = registry.create_session(config)
    register("shared")
    register("shared", session_id=other)
    links = registry.query("SELECT session_id FROM session_configs WHERE run_hash = 'shared'").fetchall()
    assert sorted(r[0] for r in links) == sorted([session, other])


def test_pooled_config_is_listed_in_each_session_with_its_first_session(registry, config, session, register):
    other = registry.create_session(config)
    register("shared", x=1)
    register("own", session_id=other, x=2)
    register("shared", session_id=other)
    configs = registry.get_configs_for_session(other)
    assert sorted(c.run_hash for c in configs) == ["own", "shared"]
    assert {c.run_hash: c.session_id for c in configs}["shared"] == session
    assert [c.run_hash for c in registry.get_configs_for_session(session)] == ["shared"]


def test_configs_for_session_in_registration_order(registry, session, register):
    for h in ("c", "a", "b"):
        register(h)
    assert [c.run_hash for c in registry.get_configs_for_session(session)] == ["c", "a", "b"]


def test_configs_for_unknown_session_is_empty(registry):
    assert registry.get_configs_for_session("missing") == []


TYPING = {  # value given -> (column type, value read back), upstream's rules
    "int": (85, "DOUBLE", 85.0),
    "float": (2.5, "DOUBLE", 2.5),
    "true": (True, "VARCHAR", "true"),
    "false": (False, "VARCHAR", "false"),
    "numeric_str": ("10", "DOUBLE", 10.0),
    "exp_str": ("-1e3", "DOUBLE", -1000.0),
    "mixed_str": ("10abc", "VARCHAR", "10abc"),
    "empty_str": ("", "VARCHAR", ""),
    "word": ("forest", "VARCHAR", "forest"),
}


def test_parameter_columns_are_typed_like_upstream(registry, register):
    register("h1", **{name: value for name, (value, _, _) in TYPING.items()})
    assert _column_types(registry) == {name: t for name, (_, t, _) in TYPING.items()}
    names = list(TYPING)
    row = registry.query(
        f"SELECT {', '.join(map(quote_identifier, names))} FROM config_parameters"
    ).fetchone()
    stored = dict(zip(names, row, strict=True))
    expected = {name: back for name, (_, _, back) in TYPING.items()}
    assert stored == expected
    assert {n: type(v) for n, v in stored.items()} == {n: type(v) for n, v in expected.items()}


def test_none_parameter_makes_a_varchar_column_holding_null(registry, register):
    register("h1", p=None)
    assert _column_types(registry) == {"p": "VARCHAR"}
    assert registry.query("SELECT p FROM config_parameters").fetchone() == (None,)
    assert registry.get_config_by_hash("h1").parameters == {}


def test_parameters_are_sorted_and_omit_nulls(registry, register):
    register("h1", zeta=1, alpha="a")
    register("h2", beta=2)
    assert list(registry.get_config_by_hash("h1").parameters) == ["alpha", "zeta"]
    assert registry.get_config_by_hash("h2").parameters == {"beta": 2.0}


def test_unusual_parameter_names_are_kept_exactly(registry, register):
    register("h1", **{"avg.height": 1, "tree-count": 2, "with space": 3})
    assert registry.list_config_columns() == ["avg.height", "tree-count", "with space"]
    assert registry.query('SELECT "avg.height" FROM config_parameters').fetchone() == (1.0,)


def test_get_file_mappings_by_hash(registry, session):
    mappings = {"soil": {"path": "/d/soil.tif", "hash": "1"}, "rain": {"path": "r.nc", "hash": ""}}
    registry.register_run(session, "h1", "m.josh", "c", mappings, None)
    assert registry.get_file_mappings("h1") == {"soil": Path("/d/soil.tif"), "rain": Path("r.nc")}


def test_get_file_mappings_by_label(registry, session):
    registry.register_run(session, "h1", "m.josh", "c", {"soil": {"path": "s.tif", "hash": ""}}, None)
    registry.label_run("h1", "best")
    assert registry.get_file_mappings("best") == {"soil": Path("s.tif")}


def test_get_file_mappings_none_when_the_run_has_none(registry, register):
    register("h1")
    assert registry.get_file_mappings("h1") is None


def test_get_file_mappings_unknown_raises_key_error(registry):
    with pytest.raises(KeyError, match="ghost"):
        registry.get_file_mappings("ghost")
    assert issubclass(RunNotFoundError, KeyError)


def test_runs_by_parameters_without_filters_returns_every_run(registry, config, session, register):
    other = registry.create_session(config)
    register("h1", x=1)
    register("h2", session_id=other, x=2)
    first = registry.start_run("h1", session_id=session)
    second = registry.start_run("h2", session_id=other)
    runs = registry.get_runs_by_parameters()
    assert [r["run_id"] for r in runs] == [second, first]
    assert runs[0]["parameters"] == {"x": 2.0}


def test_runs_by_parameters_filters_on_every_given_value(registry, session, register):
    register("h1", x=1, kind="a")
    register("h2", x=1, kind="b")
    register("h3", x=2, kind="a")
    runs = {h: registry.start_run(h, session_id=session) for h in ("h1", "h2", "h3")}
    assert [r["run_id"] for r in registry.get_runs_by_parameters(x=1, kind="a")] == [runs["h1"]]
    assert {r["run_hash"] for r in registry.get_runs_by_parameters(x=1)} == {"h1", "h2"}
    assert registry.get_runs_by_parameters(x=3) == []


def test_runs_by_parameters_coerces_like_duckdb_and_never_matches_null(registry, session, register):
    register("h1", x=1, note=None)
    rid = registry.start_run("h1", session_id=session)
    assert [r["run_id"] for r in registry.get_runs_by_parameters(x="1")] == [rid]
    assert registry.get_runs_by_parameters(note=None) == []


def test_runs_by_parameters_result_fields(registry, session, register):
    register("h1", x=1)
    rid = registry.start_run("h1", session_id=session, output_path="/out")
    registry.complete_run(rid, 0)
    (row,) = registry.get_runs_by_parameters(x=1.0)
    assert set(row) == {
        "run_id",
        "run_hash",
        "replicate",
        "started_at",
        "completed_at",
        "exit_code",
        "output_path",
        "error_message",
        "parameters",
    }
    assert (row["run_hash"], row["exit_code"], row["output_path"]) == ("h1", 0, "/out")


def test_runs_by_unknown_parameter_raises_value_error(registry, register):
    register("h1", x=1)
    with pytest.raises(ValueError, match="nope"):
        registry.get_runs_by_parameters(nope=1)


def test_list_config_columns_sorted(registry, register):
    assert registry.list_config_columns() == []
    register("h1", b=1, a="x")
    register("h2", c=True)
    assert registry.list_config_columns() == ["a", "b", "c"]


def test_list_config_parameters_for_a_session(registry, config, session, register):
    other = registry.create_session(config)
    register("h1", a=1)
    register("h2", session_id=other, b=2)
    register("h1", session_id=other)
    assert registry.list_config_parameters() == ["a", "b"]
    assert registry.list_config_parameters(session) == ["a"]
    assert registry.list_config_parameters(other) == ["a", "b"]


def test_list_parameters_is_a_deprecated_alias(registry, session, register):
    register("h1", a=1)
    with pytest.warns(DeprecationWarning, match="list_config_parameters"):
        names = registry.list_parameters(session)
    assert names == ["a"]


def test_export_results_df_flattens_parameters(registry, session, register):
    register("h1", x=1, kind="a")
    rid = registry.start_run("h1", session_id=session, replicate=2)
    registry.complete_run(rid, 0)
    df = registry.export_results_df(session)
    base = ["run_id", "run_hash", "replicate", "started_at", "completed_at", "exit_code"]
    assert list(df.columns)[:6] == base
    assert {"output_path", "error_message", "x", "kind"} <= set(df.columns)
    row = df.iloc[0]
    assert (row["run_id"], row["replicate"], row["x"], row["kind"]) == (rid, 2, 1.0, "a")


def test_export_results_df_only_has_this_sessions_runs(registry, config, session, register):
    other = registry.create_session(config)
    register("h1")
    registry.start_run("h1", session_id=session)
    registry.start_run("h1", session_id=other)
    registry.start_run("h1", session_id=other)
    assert len(registry.export_results_df(session)) == 1
    assert len(registry.export_results_df(other)) == 2


def test_export_results_df_of_a_session_without_runs_is_empty(registry, session, register):
    register("h1", x=1)
    df = registry.export_results_df(session)
    assert df.empty
    assert list(df.columns) == []
