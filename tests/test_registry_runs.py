"""Run executions and outputs: start_run, complete_run, get_run, get_runs_for_hash, register_output."""

from __future__ import annotations

import pytest

from joshreg import RunNotFoundError


@pytest.fixture
def h1(register) -> str:
    return register("h1", x=1)


def test_start_run_records_a_started_execution(registry, session, h1):
    rid = registry.start_run(h1, session_id=session, replicate=3, output_path="/out/job", metadata={"k": 1})
    run = registry.get_run(rid)
    assert (run.run_id, run.run_hash, run.replicate, run.output_path) == (rid, h1, 3, "/out/job")
    assert run.metadata == {"k": 1}
    assert run.started_at is not None
    assert (run.completed_at, run.exit_code, run.error_message) == (None, None, None)


def test_start_run_records_the_launching_session(registry, config, session, h1):
    other = registry.create_session(config)
    rid = registry.start_run(h1, session_id=other)
    assert registry.query("SELECT session_id FROM job_runs WHERE run_id = ?", [rid]).fetchone() == (other,)


def test_start_run_session_id_is_keyword_only(registry, session, h1):
    with pytest.raises(TypeError):
        registry.start_run(h1, session)


def test_empty_run_metadata_reads_back_as_none(registry, session, h1):
    rid = registry.start_run(h1, session_id=session, metadata={})
    assert registry.get_run(rid).metadata is None


def test_run_ids_are_unique(registry, session, h1):
    ids = {registry.start_run(h1, session_id=session) for _ in range(3)}
    assert len(ids) == 3


def test_complete_run_records_the_result(registry, session, h1):
    rid = registry.start_run(h1, session_id=session)
    registry.complete_run(rid, 1, "out of memory")
    run = registry.get_run(rid)
    assert (run.exit_code, run.error_message) == (1, "out of memory")
    assert run.completed_at >= run.started_at


def test_completing_twice_last_wins(registry, session, h1):
    rid = registry.start_run(h1, session_id=session)
    registry.complete_run(rid, 1, "first try failed")
    registry.complete_run(rid, 0)
    run = registry.get_run(rid)
    assert (run.exit_code, run.error_message) == (0, None)


def test_complete_unknown_run_names_it(registry):
    with pytest.raises(RunNotFoundError, match="run-that-never-was"):
        registry.complete_run("run-that-never-was", 0)


def test_get_run_unknown_is_none(registry):
    assert registry.get_run("missing") is None


def test_runs_for_hash_oldest_first(registry, session, register, h1):
    register("h2")
    ids = [registry.start_run(h1, session_id=session) for _ in range(3)]
    registry.start_run("h2", session_id=session)
    assert [r.run_id for r in registry.get_runs_for_hash(h1)] == ids
    assert registry.get_runs_for_hash("missing") == []


def test_register_output_records_the_file(registry, session, h1):
    rid = registry.start_run(h1, session_id=session)
    oid = registry.register_output(rid, "export.patch", "/out/patch_0.csv", file_size=120, row_count=7)
    row = registry.query(
        "SELECT run_id, output_type, file_path, file_size, row_count FROM run_outputs WHERE output_id = ?",
        [oid],
    ).fetchone()
    assert row == (rid, "export.patch", "/out/patch_0.csv", 120, 7)


def test_register_output_does_not_deduplicate(registry, session, h1):
    rid = registry.start_run(h1, session_id=session)
    a = registry.register_output(rid, "csv", "/o.csv")
    b = registry.register_output(rid, "csv", "/o.csv")
    assert a != b
    assert registry.query("SELECT count(*) FROM run_outputs").fetchone() == (2,)


def test_register_output_for_unknown_run_names_it(registry):
    with pytest.raises(RunNotFoundError, match="ghost-run"):
        registry.register_output("ghost-run", "csv", "/o.csv")


def test_in_process_recorder_is_visible_to_reads(registry, session, h1):
    rec = registry.recorder(session_id=session)
    rid = rec.start_run(h1)
    rec.complete_run(rid, 0)
    rec.register_output(rid, "log", "/log.txt")
    assert registry.get_run(rid).exit_code == 0
    assert registry.query("SELECT file_path FROM run_outputs").fetchall() == [("/log.txt",)]
