"""The demo sweep: 12 configurations recorded by 4 concurrent worker processes, labels moved."""

from __future__ import annotations

from pathlib import Path

from joshreg import RunRegistry
from joshreg.demo import MARKER, main


def test_demo_records_a_concurrent_sweep_and_a_label_history(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    out_dir.mkdir()
    (out_dir / MARKER).write_text("")
    (out_dir / "stale.txt").write_text("left over from an earlier demo")

    assert main(["--dir", str(out_dir)]) == 0
    printed = capsys.readouterr().out

    assert not (out_dir / "stale.txt").exists()
    db = out_dir / "sweep.duckdb"
    assert (out_dir / "sweep.events" / "log").is_dir()
    with RunRegistry(db) as reg:
        (session,) = reg.list_sessions()
        configs = reg.get_configs_for_session(session.session_id)
        assert len(configs) == 12
        assert reg.get_session(session.session_id).status == "completed"
        writers, starts = reg.query(
            "SELECT count(DISTINCT writer), count(*) FROM event_log WHERE type = 'run.started'"
        ).fetchone()
        assert (writers, starts) == (4, 12)
        summary = reg.get_session_summary(session.session_id)
        assert summary.runs_pending == 0
        assert summary.runs_failed >= 1
        history = reg.label_history()
        archived = [c for c in history if c.action == "archived"]
        assert len(archived) == 1
        old_baseline = archived[0].run_hash
        assert reg.resolve_label(archived[0].archived_as) == old_baseline
        assert reg.resolve_label("baseline") not in (old_baseline, reg.resolve_label("candidate"))
    for text in ("baseline", "candidate", archived[0].archived_as, str(db)):
        assert text in printed


def test_demo_refuses_to_wipe_a_directory_it_did_not_make(tmp_path: Path, capsys):
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    assert main(["--dir", str(tmp_path)]) == 2
    assert "not made by the demo" in capsys.readouterr().err
    assert precious.read_text() == "keep me"
