"""``just demo-s3``: the demo sweep on a SeaweedFS it starts, with workers that share only the
bucket, reported by a registry in a folder of its own."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import duckdb
import pytest

from joshreg.demo import GRID, MARKER, MAX_GROWTH, REPLICATES, STEPS, SURVIVAL_RATE, WORKERS
from joshreg.testing.demo_s3 import BUCKET, PREFIX, main

pytestmark = pytest.mark.slow  # a server and worker processes


def test_the_s3_demo_runs_the_sweep_with_workers_that_share_only_the_bucket(tmp_path: Path) -> None:
    out_dir = tmp_path / "demo"
    out_dir.mkdir()
    (out_dir / MARKER).write_text("")
    (out_dir / "stale.txt").write_text("left over from an earlier demo")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["--dir", str(out_dir)]) == 0
    text = printed.getvalue()
    events = f"s3://{BUCKET}/{PREFIX}"
    assert not (out_dir / "stale.txt").exists()
    for part in ("SeaweedFS at http://127.0.0.1:", "baseline", "candidate", "Filtered query", "UNMET"):
        assert part in text
    assert f"event log: {events}" in text and f"{WORKERS} worker processes recorded into the bucket" in text
    assert "any-secret" not in text  # the servers' made-up secret stays in the environment
    # No event store beside either registry: the bucket (gone with its server) held them all.
    assert not list(out_dir.rglob("*.events"))
    assert len(list((out_dir / "plots").glob("*.png"))) == 3
    assert len(list((out_dir / "bottles").glob("bottle_baseline_*.tar.gz"))) == 1

    # The reporting registry's own file still holds what it caught up from the bucket.
    succeeded = len(MAX_GROWTH) * len(SURVIVAL_RATE) - 1
    with duckdb.connect(str(out_dir / "sweep.duckdb"), read_only=True) as con:
        by_type = {
            t: (writers, n)
            for t, writers, n in con.execute(
                "SELECT type, count(DISTINCT writer), count(*) FROM event_log GROUP BY type"
            ).fetchall()
        }
        assert by_type["run.started"] == (WORKERS, 12) and by_type["run.completed"] == (WORKERS, 12)
        assert by_type["results.loaded"] == (WORKERS, succeeded * REPLICATES)
        assert by_type["session.status_changed"] == (2, 2)  # "running" when submitted, then "completed"
        rows, runs = con.execute("SELECT count(*), count(DISTINCT run_id) FROM cell_data").fetchone()
        assert (rows, runs) == (succeeded * REPLICATES * GRID * GRID * STEPS, succeeded)
        outputs = [p for (p,) in con.execute("SELECT file_path FROM run_outputs").fetchall()]
        assert len(outputs) == succeeded
        assert all(p.startswith(f"s3://{BUCKET}/exports/{PREFIX}/") for p in outputs)
