"""Sessions: create_session, update_session_status, get_session, list_sessions, summaries."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from joshreg import DuplicateSessionError, RunRegistry, SessionNotFoundError


def test_create_session_generates_a_unique_uuid(registry, config):
    a = registry.create_session(config)
    b = registry.create_session(config)
    assert a != b
    assert uuid.UUID(a) and uuid.UUID(b)


def test_create_session_uses_an_external_id_verbatim(registry, config):
    sid = registry.create_session(config, session_id="slurm-4242")
    assert sid == "slurm-4242"
    assert registry.get_session("slurm-4242").session_id == "slurm-4242"


def test_duplicate_session_id_raises_a_value_error(registry, config):
    registry.create_session(config, session_id="dup")
    with pytest.raises(DuplicateSessionError, match="dup"):
        registry.create_session(config, session_id="dup")
    assert issubclass(DuplicateSessionError, ValueError)
    assert len(registry.list_sessions()) == 1


def test_session_records_config_fields(registry, make_config):
    cfg = make_config(simulation="Forest", template_path="tmpl/grow.jshc.j2", replicates=4)
    info = registry.get_session(registry.create_session(cfg))
    assert info.simulation == "Forest"
    assert info.experiment_name == "Forest"
    assert info.template_path == "tmpl/grow.jshc.j2"
    assert info.template_hash is None
    assert info.status == "pending"


def test_experiment_name_overrides_simulation(registry, config):
    info = registry.get_session(registry.create_session(config, experiment_name="trial 7"))
    assert (info.experiment_name, info.simulation) == ("trial 7", "Main")


def test_metadata_holds_the_job_config_dict(registry, make_config):
    cfg = make_config(replicates=3, extra={"template_vars": {"a": 1}, "seed": 9})
    info = registry.get_session(registry.create_session(cfg))
    assert info.metadata["job_config"] == cfg.to_dict()


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_metadata_holds_the_git_hash_of_the_working_directory(registry, config, tmp_path, monkeypatch):
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "commit", "-q", "--allow-empty", "-m", "start")
    monkeypatch.chdir(tmp_path)
    info = registry.get_session(registry.create_session(config))
    assert info.metadata["git_hash"] == _git(tmp_path, "rev-parse", "HEAD")[:12]


def test_metadata_git_hash_is_marked_dirty(registry, config, tmp_path, monkeypatch):
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "commit", "-q", "--allow-empty", "-m", "start")
    (tmp_path / "untracked.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    info = registry.get_session(registry.create_session(config))
    assert info.metadata["git_hash"] == _git(tmp_path, "rev-parse", "HEAD")[:12] + "+dirty"


def test_create_session_requires_to_dict(registry):
    with pytest.raises(AttributeError, match="to_dict"):
        registry.create_session(object())


def test_update_session_status(registry, session):
    registry.update_session_status(session, "running")
    assert registry.get_session(session).status == "running"
    registry.update_session_status(session, "completed")
    assert registry.get_session(session).status == "completed"


def test_update_status_of_unknown_session_names_it(registry):
    with pytest.raises(SessionNotFoundError, match="no-such-session"):
        registry.update_session_status("no-such-session", "running")


def test_get_session_unknown_is_none(registry):
    assert registry.get_session("missing") is None


def test_list_sessions_newest_first(registry, config):
    ids = [registry.create_session(config, session_id=f"s{i}") for i in range(3)]
    assert [s.session_id for s in registry.list_sessions()] == ids[::-1]


def test_list_sessions_filters_by_experiment(registry, config):
    a = registry.create_session(config, experiment_name="alpha")
    registry.create_session(config, experiment_name="beta")
    c = registry.create_session(config, experiment_name="alpha")
    assert [s.session_id for s in registry.list_sessions(experiment_name="alpha")] == [c, a]
    assert registry.list_sessions(experiment_name="gamma") == []


def test_list_sessions_limit_keeps_the_newest(registry, config):
    ids = [registry.create_session(config) for _ in range(4)]
    assert [s.session_id for s in registry.list_sessions(limit=2)] == ids[:1:-1]


def test_summary_of_unknown_session_is_none(registry):
    assert registry.get_session_summary("missing") is None


def test_summary_of_empty_session(registry, session):
    s = registry.get_session_summary(session)
    assert (s.total_jobs, s.total_replicates, s.runs_completed, s.runs_pending) == (0, 0, 0, 0)
    assert (s.experiment_name, s.simulation, s.status) == ("exp", "Main", "pending")


def test_summary_counts_configs_times_replicates(registry, make_config):
    sid = registry.create_session(make_config(replicates=5))
    for h in ("h1", "h2", "h3"):
        registry.register_run(sid, h, None, "c", None, None)
    s = registry.get_session_summary(sid)
    assert (s.total_jobs, s.total_replicates) == (3, 15)
    info = registry.get_session(sid)
    assert (info.total_jobs, info.total_replicates) == (3, 15)


def test_summary_replicates_default_to_one(registry, session, register):
    register("h1")
    register("h2")
    s = registry.get_session_summary(session)
    assert (s.total_jobs, s.total_replicates) == (2, 2)


def test_summary_counts_pooled_configs_in_each_session(registry, config, session, register):
    other = registry.create_session(config)
    register("shared")
    register("shared", session_id=other)
    register("own", session_id=other)
    assert registry.get_session_summary(session).total_jobs == 1
    assert registry.get_session_summary(other).total_jobs == 2


def test_summary_counts_runs_by_outcome(registry, session, register):
    register("h1")
    ok = registry.start_run("h1", session_id=session)
    bad = registry.start_run("h1", session_id=session)
    registry.start_run("h1", session_id=session)
    registry.complete_run(ok, 0)
    registry.complete_run(bad, 2, "boom")
    s = registry.get_session_summary(session)
    assert (s.runs_completed, s.runs_succeeded, s.runs_failed, s.runs_pending) == (2, 1, 1, 1)


def test_summary_counts_only_this_sessions_runs(registry, config, session, register):
    other = registry.create_session(config)
    register("h1")
    registry.start_run("h1", session_id=other)
    assert registry.get_session_summary(session).runs_pending == 0
    assert registry.get_session_summary(other).runs_pending == 1


def test_duplicate_id_is_refused_across_registries_sharing_a_log(db_path, tmp_path, config):
    with RunRegistry(db_path) as first:
        first.create_session(config, session_id="shared-id")
    events = db_path.with_suffix(".events")
    with (
        RunRegistry(tmp_path / "other.duckdb", events_path=events) as second,
        pytest.raises(DuplicateSessionError),
    ):
        second.create_session(config, session_id="shared-id")
