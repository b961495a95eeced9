"""Sweeps across hosts: worker processes that share only a bucket (no file system), killed
ones among them, registries on other "hosts" (own folders and DuckDB files) that agree; a label
race decided by put-if-absent; a connection cut mid-write that loses and doubles nothing.
Against a real SeaweedFS on loopback (and moto for the race)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from joshreg import RunRecorder, RunRegistry
from joshreg.testing.registries import FakeJobConfig
from joshreg.testing.servers import SECRET_ACCESS_KEY, S3Server

pytestmark = pytest.mark.slow  # servers and real processes

WORKERS, RUNS = 16, 3

WORKER = """
import sys, time
from joshreg import RunRecorder
events, session, me, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rec = RunRecorder(events_path=events, session_id=session)
for i in range(runs):
    run_id = rec.start_run(f"{me:06d}{i:06d}")
    rec.complete_run(run_id, 0)
    rec.flush()
    print(run_id, flush=True)
if me % 4 == 0:
    time.sleep(600)  # killed here, after its flushes, before it could close
rec.close()
"""


def worker_env(endpoint: str, home: Path) -> dict[str, str]:
    """Only the URL's settings and a folder of its own: nothing shared with other processes."""
    home.mkdir(parents=True, exist_ok=True)
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "LANG", "SYSTEMROOT")}
    return {**keep, **S3Server(endpoint).environ(), "HOME": str(home), "TMPDIR": str(home)}


def snapshot(reg: RunRegistry) -> list[tuple]:
    return reg.query(
        "SELECT r.run_id, r.run_hash, r.exit_code, count(*) OVER (PARTITION BY r.run_id) "
        "FROM job_runs r ORDER BY r.run_id"
    ).fetchall()


def test_workers_that_share_only_a_bucket_are_seen_exactly_once_by_every_host(
    s3_endpoint: str, tmp_path: Path, use_s3_server: Callable[[str], None]
) -> None:
    use_s3_server(s3_endpoint)
    events = f"s3://sweeps/{tmp_path.name}/sweep"
    hashes = [f"{me:06d}{i:06d}" for me in range(WORKERS) for i in range(RUNS)]
    with RunRegistry(tmp_path / "laptop" / "sweep.duckdb", events_path=events, enable_spatial=False) as reg:
        sid = reg.create_session(FakeJobConfig(), session_id="s1")
        for h in hashes:
            reg.register_run(sid, h, None, h, None, {"me": int(h[:6])})
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, events, "s1", str(me), str(RUNS)],
            cwd=tmp_path / f"node{me}",
            env=worker_env(s3_endpoint, tmp_path / f"node{me}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me in range(WORKERS)
        if (tmp_path / f"node{me}").mkdir() is None
    ]
    flushed: dict[int, list[str]] = {}
    try:
        for me, proc in enumerate(procs):
            assert proc.stdout is not None
            flushed[me] = [proc.stdout.readline().strip() for _ in range(RUNS)]
            if me % 4 == 0:
                proc.send_signal(signal.SIGKILL)  # after its flushes, before close()
        for me, proc in enumerate(procs):
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == (-signal.SIGKILL if me % 4 == 0 else 0), err
            assert SECRET_ACCESS_KEY not in err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    expected = sorted(run_id for runs in flushed.values() for run_id in runs)
    assert len(set(expected)) == WORKERS * RUNS
    hosts = []
    for host in ("host-a", "host-b"):
        with RunRegistry(tmp_path / host / "sweep.duckdb", events_path=events, enable_spatial=False) as reg:
            rows = snapshot(reg)
            assert sorted(r[0] for r in rows) == expected  # every flushed run, once
            assert {r[2] for r in rows} == {0} and {r[3] for r in rows} == {1}
            hosts.append(rows)
    assert hosts[0] == hosts[1]


RACER = """
import os, sys, time
from joshreg import RunRegistry
from joshreg.errors import LabelConflictError
db, events, run_hash, go = sys.argv[1:5]
with RunRegistry(db, events_path=events, enable_spatial=False) as reg:
    while not os.path.exists(go):
        time.sleep(0.005)
    try:
        reg.label_run(run_hash, "best")
        print("ok")
    except LabelConflictError as e:
        print("conflict", e)
"""


def test_a_label_race_on_s3_has_exactly_one_winner(
    each_s3_endpoint: str, tmp_path: Path, use_s3_server: Callable[[str], None]
) -> None:
    use_s3_server(each_s3_endpoint)
    events = f"s3://sweeps/{tmp_path.name}/race"
    hashes = [f"{c * 11}{i}" for i, c in enumerate("defgh")]
    with RunRegistry(tmp_path / "main.duckdb", events_path=events, enable_spatial=False) as reg:
        sid = reg.create_session(FakeJobConfig())
        for h in hashes:
            reg.register_run(sid, h, None, h, None, {})
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path / f"r{i}.duckdb"), events, h, str(go)],
            env=worker_env(each_s3_endpoint, tmp_path / f"racer{i}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, h in enumerate(hashes)
    ]
    time.sleep(3)  # all opened and waiting
    go.touch()
    outcomes = {}
    for h, proc in zip(hashes, procs, strict=True):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outcomes[h] = out.strip()
    winners = [h for h, o in outcomes.items() if o == "ok"]
    assert len(winners) == 1, outcomes
    assert all(o.startswith("conflict") and winners[0] in o for h, o in outcomes.items() if h != winners[0])
    with RunRegistry(tmp_path / "main.duckdb", events_path=events, enable_spatial=False) as reg:
        assert reg.resolve_label("best") == winners[0]
        assert [c.run_hash for c in reg.label_history(label="best")] == [winners[0]]


def test_a_connection_cut_mid_write_loses_and_doubles_nothing(
    s3_endpoint: str, tmp_path: Path, use_s3_server: Callable[[str], None]
) -> None:
    from joshreg.testing.proxy import cuttable_proxy

    use_s3_server(s3_endpoint)  # the recorder goes through the proxy (storage_options win)
    events = f"s3://sweeps/{tmp_path.name}/cut"
    with cuttable_proxy(s3_endpoint) as proxy:
        options = {"endpoint_url": proxy.endpoint}
        rec = RunRecorder(events_path=events, session_id="s1", storage_options=options)
        ids = []
        for i in range(400):
            if i == 100:
                proxy.cut()  # mid-stream: uploads fail, appends keep going into the buffer
            if i == 300:
                uploads = rec.store._uploads  # type: ignore[attr-defined]
                deadline = time.monotonic() + 30
                while uploads.error is None:  # the cut really made uploads fail
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                assert "cannot reach" in str(uploads.error)
                proxy.restore()
            ids.append(rec.start_run(f"{i:012d}"))
        rec.flush()  # everything goes up once the link is back
        rec.close()
    with RunRegistry(tmp_path / "reader.duckdb", events_path=events, enable_spatial=False) as reg:
        seen = [r for (r,) in reg.query("SELECT run_id FROM job_runs ORDER BY started_at").fetchall()]
        assert sorted(seen) == sorted(ids) and len(set(seen)) == len(seen)
        report = reg.verify()
        assert report.ok, report


def test_a_registry_lists_at_most_every_refresh_interval_and_sees_its_own_writes(
    s3_endpoint: str, tmp_path: Path, use_s3_server: Callable[[str], None]
) -> None:
    use_s3_server(s3_endpoint)
    events = f"s3://sweeps/{tmp_path.name}/refresh"
    with RunRegistry(tmp_path / "a.duckdb", events_path=events, refresh_interval=30) as reg:
        sid = reg.create_session(FakeJobConfig(), session_id="s1")
        store = reg._store
        lists = store.requests["list"]  # type: ignore[attr-defined]
        for i in range(20):  # writes and point reads in a loop
            reg.register_run(sid, f"{i:012d}", None, "x", None, {})
            assert reg.get_config_by_hash(f"{i:012d}") is not None  # its own write, at once
        assert store.requests["list"] == lists  # type: ignore[attr-defined]
        with RunRecorder(events_path=events, session_id="s1") as other:
            other.start_run(f"{0:012d}")
        assert reg.get_runs_for_hash(f"{0:012d}") == []  # another's write waits for the interval
    with RunRegistry(tmp_path / "a.duckdb", events_path=events, refresh_interval=0) as reg:
        assert len(reg.get_runs_for_hash(f"{0:012d}")) == 1
