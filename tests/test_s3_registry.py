"""A registry whose event store is on object storage: real servers (SeaweedFS and moto), a
registry and worker processes recording to s3://, the tables caught up and rebuilt from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from joshreg import RunRecorder, RunRegistry
from joshreg.errors import LogFormatError
from joshreg.log.store import open_store, store_exists_at
from joshreg.testing.registries import FakeJobConfig
from joshreg.testing.servers import SECRET_ACCESS_KEY

pytestmark = pytest.mark.slow  # a server


@pytest.fixture
def endpoint(each_s3_endpoint: str) -> str:
    """Each test runs against SeaweedFS and against moto (both signed in with any key)."""
    return each_s3_endpoint


WORKER = """
import sys
from joshreg import RunRecorder
events, session, run_hash = sys.argv[1:4]
with RunRecorder(events_path=events, session_id=session) as rec:
    rec.complete_run(rec.start_run(run_hash), 0)
"""


def test_a_registry_and_workers_record_to_s3(endpoint: str, tmp_path: Path, use_s3_server) -> None:
    use_s3_server(endpoint)
    events = f"s3://sweeps/{tmp_path.name}/exp1"
    db = tmp_path / "sweep.duckdb"
    with RunRegistry(db, events_path=events) as reg:
        sid = reg.create_session(FakeJobConfig(), session_id="s1")
        for h in ("aaaaaaaaaaa1", "bbbbbbbbbbb2"):
            reg.register_run(sid, h, None, h, None, {"g": 1.0})
        reg.label_run("aaaaaaaaaaa1", "best")
    for h in ("aaaaaaaaaaa1", "bbbbbbbbbbb2"):  # workers that share no file system with it
        done = subprocess.run(
            [sys.executable, "-c", WORKER, events, "s1", h], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert SECRET_ACCESS_KEY not in done.stderr
    with RunRegistry(db, events_path=events) as reg:
        runs = [r for h in ("aaaaaaaaaaa1", "bbbbbbbbbbb2") for r in reg.get_runs_for_hash(h)]
        assert [r.exit_code for r in runs] == [0, 0]
        assert reg.resolve_label("best") == "aaaaaaaaaaa1"
        reg.mark_run("bbbbbbbbbbb2", "bad")
        want = reg.query("SELECT * FROM job_runs ORDER BY run_id").fetchall()
    db.unlink()
    with RunRegistry(db, events_path=events) as reg:  # everything comes back from the bucket
        assert reg.query("SELECT * FROM job_runs ORDER BY run_id").fetchall() == want
        assert reg.get_run_status("bbbbbbbbbbb2").status == "bad"
        assert reg.verify().ok


def test_storage_options_win_and_a_missing_store_is_named(endpoint: str, tmp_path: Path) -> None:
    options = {"endpoint_url": endpoint, "aws_access_key_id": "k", "aws_secret_access_key": "s"}
    events = f"s3://sweeps/{tmp_path.name}/other"
    assert not store_exists_at(events, options)
    with pytest.raises(LogFormatError, match=f"no joshreg event store at {events}"):
        open_store(events, create=False, storage_options=options)
    with RunRegistry(tmp_path / "r.duckdb", events_path=events, storage_options=options) as reg:
        reg.create_session(FakeJobConfig(), session_id="s")
    assert store_exists_at(events, options)
    with RunRecorder(events_path=events, storage_options=options, session_id="s") as rec:
        assert (
            rec.store.location == events
            and rec.store.store_id == open_store(events, storage_options=options).store_id
        )


def test_the_command_line_reads_an_s3_store(endpoint: str, tmp_path: Path, use_s3_server, capsys) -> None:
    from joshreg.cli.app import main

    use_s3_server(endpoint)
    events = f"s3://sweeps/{tmp_path.name}/cli"
    db = tmp_path / "sweep.duckdb"
    with RunRegistry(db, events_path=events) as reg:
        sid = reg.create_session(FakeJobConfig(), experiment_name="from-the-bucket", session_id="s1")
        reg.register_run(sid, "aaaaaaaaaaa1", None, "a", None, {})
    db.unlink()
    assert main(["sessions", str(db), "--events-path", events]) == 0
    assert "from-the-bucket" in capsys.readouterr().out
    assert main(["rebuild", str(db), "--events-path", events]) == 0
    assert main(["watch", str(db), "--events-path", events, "--once", "--interval", "0.5"]) == 0  # by polling
    assert main(["verify", str(db), "--events-path", events]) == 0
    assert (
        main(["sessions", str(tmp_path / "none.duckdb"), "--events-path", f"s3://sweeps/{tmp_path.name}/no"])
        == 2
    )
    err = capsys.readouterr().err
    assert "no registry" in err and SECRET_ACCESS_KEY not in err


def test_compaction_verify_and_merge_work_on_s3(endpoint: str, tmp_path: Path, use_s3_server) -> None:
    from joshreg import merge_stores

    use_s3_server(endpoint)
    events = f"s3://sweeps/{tmp_path.name}/c"
    db = tmp_path / "sweep.duckdb"
    with RunRegistry(db, events_path=events) as reg:
        sid = reg.create_session(FakeJobConfig(), session_id="s1")
        for i in range(5):
            reg.register_run(sid, f"{i:012x}", None, f"c{i}", None, {"g": float(i)})
        reg.label_run(f"{0:012x}", "best")
    with RunRecorder(events_path=events, session_id="s1") as rec:
        rec.complete_run(rec.start_run(f"{1:012x}"), 0)
    with RunRegistry(db, events_path=events) as reg:
        before = reg.query("SELECT * FROM job_configs ORDER BY run_hash").fetchall()
        report = reg.compact(abandoned_after=0, min_bytes=0)
        assert report.compacted, report
        reg.rebuild()
        assert reg.query("SELECT * FROM job_configs ORDER BY run_hash").fetchall() == before
        assert reg.verify().ok
    local = tmp_path / "local.duckdb"
    merge_stores([events], local)  # from the bucket into a registry on this disk
    with RunRegistry(local) as reg:
        assert reg.query("SELECT * FROM job_configs ORDER BY run_hash").fetchall() == before
