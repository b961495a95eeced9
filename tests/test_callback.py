"""RegistryCallback: runs are recorded when they start and when they end, so durations are real."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from joshreg import (
    ConfigSweepParameter,
    ExpandedJob,
    JobConfig,
    JobExpander,
    RegistryCallback,
    RunRecorder,
    RunRegistry,
    RunResult,
    SweepConfig,
)

PAUSE = 0.05


@dataclass
class UpstreamCLIResult:
    """The shape of joshpy's CLIResult."""

    exit_code: int
    stdout: str
    stderr: str
    command: list[str]

    @property
    def success(self) -> bool:
        return self.exit_code == 0


def register(registry: RunRegistry, tmp_path: Path) -> tuple[str, list[ExpandedJob]]:
    """A session with two registered jobs of a small sweep."""
    config = JobConfig(
        template_string="growth = {{ growth }} meters",
        replicates=2,
        sweep=SweepConfig([ConfigSweepParameter("growth", [1, 2])]),
    )
    sid = registry.create_session(config)
    jobs = JobExpander().expand(config, tmp_path / "jobs").jobs
    for job in jobs:
        registry.register_run(sid, job.run_hash, None, job.config_content, None, job.parameters)
    return sid, jobs


@pytest.fixture
def sweep(registry, tmp_path):
    sid, jobs = register(registry, tmp_path)
    return RegistryCallback(registry, sid), jobs


def test_start_and_finish_record_the_real_duration(registry, sweep):
    callback, jobs = sweep
    run_id = callback.start(jobs[0])
    time.sleep(PAUSE)
    callback.finish(run_id, RunResult(0))
    run = registry.get_run(run_id)
    assert run.completed_at - run.started_at >= timedelta(seconds=PAUSE)
    assert (run.exit_code, run.error_message, run.replicate) == (0, None, 0)
    assert run.metadata == {"parameters": {"growth": 1}, "replicates": 2}
    assert run.output_path == str(jobs[0].config_path.parent)
    assert callback.run_ids == {jobs[0].run_hash: run_id}


def test_running_block_records_start_on_entry_and_end_on_finish(registry, sweep):
    callback, jobs = sweep
    with callback.running(jobs[1]) as run:
        assert registry.get_run(run.run_id).completed_at is None  # visible as running
        time.sleep(PAUSE)
        run.finish(UpstreamCLIResult(0, "done", "", ["java"]))
    info = registry.get_run(run.run_id)
    assert info.completed_at - info.started_at >= timedelta(seconds=PAUSE)
    assert info.run_hash == jobs[1].run_hash and info.exit_code == 0


def test_a_failed_result_records_its_stderr(registry, sweep):
    callback, jobs = sweep
    run_id = callback.start(jobs[0])
    callback.finish(run_id, RunResult(3, stderr="OutOfMemoryError: Java heap space"))
    run = registry.get_run(run_id)
    assert (run.exit_code, run.error_message) == (3, "OutOfMemoryError: Java heap space")
    assert registry.get_session_summary(callback.session_id).runs_failed == 1


def test_a_failure_without_stderr_still_says_what_happened(registry, sweep):
    callback, jobs = sweep
    run_id = callback.record(jobs[0], RunResult(137))
    assert registry.get_run(run_id).error_message == (
        "the run failed with exit code 137 and wrote nothing to stderr"
    )


def test_an_exception_in_the_block_completes_the_run_as_failed(registry, sweep):
    callback, jobs = sweep
    with pytest.raises(RuntimeError, match="JVM crashed"), callback.running(jobs[0]) as run:
        raise RuntimeError("JVM crashed")
    info = registry.get_run(run.run_id)
    assert (info.exit_code, info.error_message) == (-1, "the run raised RuntimeError: JVM crashed")


def test_a_block_without_finish_leaves_no_open_run(registry, sweep):
    callback, jobs = sweep
    with callback.running(jobs[0]) as run:
        pass
    info = registry.get_run(run.run_id)
    assert info.exit_code == -1 and "finish() was not called" in info.error_message


def test_record_keeps_upstreams_one_call_shape(registry, sweep):
    callback, jobs = sweep
    run_id = callback.record(jobs[1], UpstreamCLIResult(0, "", "", ["java"]))
    run = registry.get_run(run_id)
    assert run.exit_code == 0 and run.completed_at >= run.started_at
    assert run.metadata == {"parameters": {"growth": 2}, "replicates": 2}
    timed = registry.get_run(callback.record(jobs[1], RunResult(0, duration=12.5)))
    assert timed.metadata["duration_seconds"] == 12.5
    assert [r.run_id for r in registry.get_runs_for_hash(jobs[1].run_hash)] == [run_id, timed.run_id]
    assert callback.run_ids[jobs[1].run_hash] == timed.run_id


def test_bad_jobs_and_results_are_refused_before_anything_is_written(registry, sweep):
    callback, jobs = sweep
    with pytest.raises(TypeError, match="result with exit_code, success, stderr; object has no exit_code"):
        callback.record(jobs[0], object())
    with pytest.raises(TypeError, match="SimpleNamespace has no replicates, config_path"):
        callback.record(SimpleNamespace(run_hash=jobs[0].run_hash, parameters={}), RunResult(0))
    with pytest.raises(TypeError, match="has no exit_code"):
        callback.finish(callback.start(jobs[1]), SimpleNamespace(success=True, stderr=""))
    assert registry.get_runs_for_hash(jobs[0].run_hash) == []
    assert registry.get_runs_for_hash(jobs[1].run_hash)[0].completed_at is None
    with pytest.raises(TypeError, match="dict has no start_run"):
        RegistryCallback({}, "s")


def test_any_job_shaped_object_will_do(registry, sweep):
    callback, jobs = sweep
    job = SimpleNamespace(run_hash=jobs[0].run_hash, parameters={"growth": 1}, replicates=1, config_path=None)
    run = registry.get_run(callback.record(job, RunResult(0)))
    assert run.output_path is None and run.metadata == {"parameters": {"growth": 1}, "replicates": 1}


def test_a_worker_recorder_records_durations_too(tmp_path):
    db = tmp_path / "sweep.duckdb"
    with RunRegistry(db, enable_spatial=False) as registry:
        sid, jobs = register(registry, tmp_path)
        with RunRecorder(db) as recorder:
            callback = RegistryCallback(recorder, sid)
            with callback.running(jobs[0]) as run:
                time.sleep(PAUSE)
                run.finish(RunResult(2, stderr="bad config"))
        info = registry.get_run(run.run_id)
    assert info.completed_at - info.started_at >= timedelta(seconds=PAUSE)
    assert (info.exit_code, info.error_message) == (2, "bad config")
    assert info.metadata == {"parameters": {"growth": 1}, "replicates": 2}


def test_register_records_a_job_with_its_declared_attributes_in_one_event(
    registry: RunRegistry, tmp_path: Path
) -> None:
    source = tmp_path / "model.josh"
    source.write_text("start simulation Main\nend simulation\n")
    climate = tmp_path / "climate.jshd"
    climate.write_bytes(b"abc\n")
    config = JobConfig(
        template_string="growth = {{ growth }} meters",
        source_path=source,
        file_mappings={"climate": climate},
        attributes={"site": "mojave", "tier": 1},
        sweep=SweepConfig([ConfigSweepParameter("growth", [1, 2])]),
    )
    sid = registry.create_session(config)
    callback = RegistryCallback(registry, sid)
    jobs = JobExpander().expand(config, tmp_path / "jobs").jobs
    before = registry.query("SELECT count(*) FROM event_log").fetchone()[0]
    for job in jobs:
        callback.register(job)
    assert registry.query("SELECT count(*) FROM event_log").fetchone()[0] == before + len(jobs)
    for job in jobs:
        cfg = registry.get_config_by_hash(job.run_hash)
        assert cfg is not None and cfg.josh_content == source.read_text()
        assert cfg.file_mappings == {
            "climate": {"path": str(climate), "hash": "0bee89b07a248e27c83fc3d5951213c1"}
        }
        assert registry.get_attributes(job.run_hash) == {"site": "mojave", "tier": 1}
    with pytest.raises(TypeError, match="needs a RunRegistry"):
        RegistryCallback(RunRecorder(events_path=tmp_path / "w.events", session_id=sid), sid).register(
            jobs[0]
        )
