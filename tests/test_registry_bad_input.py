"""Bad input gets a clear error and leaves nothing behind; odd strings are stored exactly."""

from __future__ import annotations

import pytest

from joshreg import ColumnConflictError, RunNotFoundError, SessionNotFoundError

NASTY = [
    "it's",
    'say "hi"',
    "back\\slash",
    "ünïcødé 🌲 森林",
    "two\nlines",
    "semi; colon",
    "x'); DROP TABLE job_configs; --",
    '" OR 1=1 --',
    "%_ wildcards",
]


def _counts(registry) -> tuple[int, int, int]:
    return registry.query(
        "SELECT (SELECT count(*) FROM job_configs), (SELECT count(*) FROM session_configs), "
        "(SELECT count(*) FROM config_parameters)"
    ).fetchone()


# --- unknown names ----------------------------------------------------------------------------


def test_start_run_with_unknown_session_names_it(registry, register):
    register("h1")
    with pytest.raises(SessionNotFoundError, match="lost-session"):
        registry.start_run("h1", session_id="lost-session")
    assert issubclass(SessionNotFoundError, KeyError)


def test_start_run_with_unknown_hash_names_it(registry, session):
    with pytest.raises(RunNotFoundError, match="deadbeef0000"):
        registry.start_run("deadbeef0000", session_id=session)


def test_register_run_in_unknown_session_names_it(registry):
    with pytest.raises(SessionNotFoundError, match="lost-session"):
        registry.register_run("lost-session", "h1", "m.josh", "c", None, None)
    assert _counts(registry) == (0, 0, 0)


def test_failed_start_run_records_nothing(registry, session):
    with pytest.raises(KeyError):
        registry.start_run("ghost", session_id=session)
    assert registry.query("SELECT count(*) FROM job_runs").fetchone() == (0,)


# --- label arguments --------------------------------------------------------------------------


def test_invalid_on_collision_is_refused(registry, register):
    register("h1")
    with pytest.raises(ValueError, match="Invalid on_collision"):
        registry.label_run("h1", "a", on_collision="rename")


def test_invalid_on_collision_is_refused_before_the_hash_is_checked(registry):
    with pytest.raises(ValueError, match="Invalid on_collision"):
        registry.label_run("ghost", "a", on_collision="bogus")


def test_force_and_on_collision_are_mutually_exclusive(registry, register):
    register("h1")
    with pytest.raises(ValueError, match="mutually exclusive"):
        registry.label_run("h1", "a", force=True, on_collision="timestamp")
    assert registry.list_labels() == []


@pytest.mark.parametrize("label", ["", None, 7])
def test_label_must_be_a_non_empty_string(registry, register, label):
    register("h1")
    with pytest.raises(ValueError, match="label"):
        registry.label_run("h1", label)
    assert registry.label_history() == []


# --- parameter names and types ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["run_hash", "RUN_HASH", "Run_Hash"])
def test_parameter_named_like_the_core_column_is_refused(registry, register, name):
    with pytest.raises(ColumnConflictError, match="run_hash") as exc:
        register("h1", **{name: 1})
    assert isinstance(exc.value, ValueError)
    assert name in str(exc.value)
    assert _counts(registry) == (0, 0, 0)


def test_parameter_differing_by_case_from_an_existing_column_is_refused(registry, register):
    register("h1", maxGrowth=1)
    with pytest.raises(ValueError) as exc:
        register("h2", maxgrowth=2)
    assert "maxGrowth" in str(exc.value) and "maxgrowth" in str(exc.value)
    assert registry.list_config_columns() == ["maxGrowth"]
    assert registry.get_config_by_hash("h2") is None


def test_parameters_differing_by_case_in_one_call_are_refused(registry, register):
    with pytest.raises(ValueError) as exc:
        register("h1", Alpha=1, alpha=2)
    assert "Alpha" in str(exc.value) and "alpha" in str(exc.value)
    assert _counts(registry) == (0, 0, 0)
    assert registry.list_config_columns() == []


@pytest.mark.parametrize(("first", "second", "have"), [(1, "forest", "DOUBLE"), ("forest", 2, "VARCHAR")])
def test_parameter_type_conflict_is_refused(registry, register, first, second, have):
    register("h1", p=first)
    with pytest.raises(ValueError, match=f"exists as {have}"):
        register("h2", p=second)


def test_type_conflict_leaves_no_trace(registry, config, session, register):
    register("h1", p=1)
    other = registry.create_session(config)
    before = _counts(registry)
    with pytest.raises(ValueError, match="exists as"):
        register("h2", session_id=other, p="text", fresh=5)
    assert _counts(registry) == before
    assert registry.get_config_by_hash("h2") is None
    assert registry.get_configs_for_session(other) == []
    assert registry.list_config_columns() == ["p"]
    assert registry.query("SELECT count(*) FROM event_log WHERE type = 'run.registered'").fetchone() == (1,)


def test_type_conflict_on_a_repeated_hash_keeps_the_first_registration(registry, config, register):
    register("h1", p=1)
    other = registry.create_session(config)
    with pytest.raises(ValueError):
        register("h1", session_id=other, p="text")
    assert registry.get_configs_for_session(other) == []
    assert registry.get_config_by_hash("h1").parameters == {"p": 1.0}


# --- odd strings are data, never SQL ----------------------------------------------------------


@pytest.mark.parametrize("text", NASTY)
def test_odd_text_is_stored_and_returned_exactly(registry, config, text):
    sid = registry.create_session(config, experiment_name=text, session_id=text)
    registry.update_session_status(sid, text)
    mappings = {text: {"path": text, "hash": ""}}
    registry.register_run(sid, text, text, text, mappings, {text: 1.5, "other": text}, josh_content=text)
    registry.label_run(text, text)
    rid = registry.start_run(text, session_id=sid, output_path=text, metadata={text: text})
    registry.complete_run(rid, 1, text)
    oid = registry.register_output(rid, text, text)

    info = registry.get_session(text)
    assert (sid, info.experiment_name, info.status) == (text, text, text)
    assert [s.session_id for s in registry.list_sessions(experiment_name=text)] == [text]
    cfg = registry.get_config_by_hash(text)
    assert (cfg.run_hash, cfg.josh_path, cfg.config_content, cfg.josh_content) == (text, text, text, text)
    assert (cfg.file_mappings, cfg.label) == (mappings, text)
    assert cfg.parameters == {text: 1.5, "other": text}
    assert registry.list_config_parameters(text) == sorted([text, "other"])
    assert [r["run_id"] for r in registry.get_runs_by_parameters(**{text: 1.5, "other": text})] == [rid]
    assert (registry.resolve_label(text), registry.list_labels()) == (text, [(text, text)])
    assert registry.label_history(label=text)[0].run_hash == text
    run = registry.get_run(rid)
    assert (run.output_path, run.error_message, run.metadata) == (text, text, {text: text})
    row = registry.query("SELECT output_type, file_path FROM run_outputs WHERE output_id = ?", [oid])
    assert row.fetchone() == (text, text)
