"""Two registries open on one DuckDB file in one process (a notebook cell run twice, a helper
that opens its own): they share the tables, so each catch-up must apply only what the other
has not, and neither may answer from what the tables said before the other's catch-up."""

from __future__ import annotations

from pathlib import Path

from joshreg import RunRegistry
from joshreg.testing.registries import FakeJobConfig


def test_two_registries_on_one_file_apply_each_event_once_and_see_each_others_writes(tmp_path: Path) -> None:
    a = RunRegistry(tmp_path / "sweep.duckdb")
    b = RunRegistry(tmp_path / "sweep.duckdb")
    try:
        assert b.get_config_by_hash("aaaaaaaaaaa1") is None  # b's read model holds "none" now
        sid = a.create_session(FakeJobConfig(), session_id="s1")
        a.register_run(sid, "aaaaaaaaaaa1", None, "x", None, {})
        assert b.get_config_by_hash("aaaaaaaaaaa1") is not None
        b.register_run(sid, "bbbbbbbbbbb2", None, "y", None, {})
        assert a.get_config_by_hash("bbbbbbbbbbb2") is not None
        run = a.start_run("aaaaaaaaaaa1", session_id=sid)
        b.complete_run(run, 0)
        a.label_run("aaaaaaaaaaa1", "best")
        for reg in (a, b, a):
            assert [r.exit_code for r in reg.get_runs_for_hash("aaaaaaaaaaa1")] == [0]
            assert reg.resolve_label("best") == "aaaaaaaaaaa1"
        total, distinct = a.query("SELECT count(*), count(DISTINCT event_id) FROM event_log").fetchone()
        assert total == distinct == 5
        assert a.query("SELECT count(*) FROM label_history").fetchone()[0] == 1
    finally:
        a.close()
        b.close()
    with RunRegistry(tmp_path / "sweep.duckdb") as again:  # and the checkpoint is one a rebuild agrees with
        kept = again.query("SELECT count(*) FROM event_log").fetchone()[0]
        again.rebuild()
        assert again.query("SELECT count(*) FROM event_log").fetchone()[0] == kept == 5
