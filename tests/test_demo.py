"""The demo sweep: 12 configurations expanded from a JobConfig, run, exported and loaded by 4
concurrent worker processes, labels moved, results summarised, queried and plotted, the
baseline bottled and unbottled, two configs diffed."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from joshreg import JobConfig, RunRegistry, compute_run_hash
from joshreg.demo import GRID, JOSH_SOURCE, MARKER, MAX_GROWTH, REPLICATES, STEPS, SURVIVAL_RATE, main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
concurrent = pytest.mark.slow  # the demo's 4 worker processes race: left out by `just test-fast`


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    """One demo run (it takes seconds) over a directory an earlier demo left behind."""
    out_dir = tmp_path_factory.mktemp("demo")
    (out_dir / MARKER).write_text("")
    (out_dir / "stale.txt").write_text("left over from an earlier demo")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["--dir", str(out_dir)]) == 0
    return out_dir, printed.getvalue()


@concurrent
def test_demo_records_a_concurrent_sweep_and_a_label_history(demo):
    out_dir, printed = demo
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
    for text in ("baseline", "candidate", archived[0].archived_as, str(db), "Filtered query"):
        assert text in printed


@concurrent
def test_demo_workers_load_josh_exports_and_the_demo_plots_them(demo):
    out_dir, printed = demo
    replicates = REPLICATES
    succeeded = len(MAX_GROWTH) * len(SURVIVAL_RATE) - 1
    exports = sorted((out_dir / "exports").glob("*.csv"))
    assert len(exports) == succeeded * replicates
    header = exports[0].read_text().splitlines()[0]
    assert header.startswith("avg.height,treeCount,position.x,position.y,")
    assert header.endswith(",step,replicate")
    with RunRegistry(out_dir / "sweep.duckdb") as reg:
        writers, loads = reg.query(
            "SELECT count(DISTINCT writer), count(*) FROM event_log WHERE type = 'results.loaded'"
        ).fetchone()
        assert (writers, loads) == (4, succeeded * replicates)
        rows, runs = reg.query("SELECT count(*), count(DISTINCT run_id) FROM cell_data").fetchone()
        assert (rows, runs) == (succeeded * replicates * GRID * GRID * STEPS, succeeded)
        failed = reg.query("SELECT run_hash FROM job_runs WHERE exit_code <> 0").fetchall()
        assert reg.query(
            "SELECT count(*) FROM cell_data WHERE run_hash IN "
            "(SELECT run_hash FROM job_runs WHERE exit_code <> 0)"
        ).fetchone() == (0,)
        assert len(failed) == 1
        # The stand-in simulation depends on the parameters and on the replicate's seed.
        finals = reg.query(
            "SELECT run_hash, replicate, avg(treeCount) FROM cell_data WHERE step = ? GROUP BY ALL",
            [STEPS - 1],
        ).fetchall()
        assert len({round(v, 6) for _, _, v in finals}) > succeeded
        with reg.time_filter((STEPS - 1, STEPS - 1)):
            clause, params = reg.filter_clause("cd")
            (last,) = reg.query(f"SELECT count(*) FROM cell_data cd WHERE TRUE{clause}", params).fetchone()
        assert last * STEPS == rows
    plots = sorted((out_dir / "plots").glob("*.png"))
    assert len(plots) == 3
    for png in plots:
        assert png.read_bytes().startswith(PNG_SIGNATURE)
        assert str(png) in printed


def test_demo_refuses_to_wipe_a_directory_it_did_not_make(tmp_path: Path, capsys):
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    assert main(["--dir", str(tmp_path)]) == 2
    assert "not made by the demo" in capsys.readouterr().err
    assert precious.read_text() == "keep me"


@concurrent
def test_demo_sweep_comes_from_a_job_config_with_upstream_hashes(demo):
    out_dir, _ = demo
    with RunRegistry(out_dir / "sweep.duckdb") as reg:
        (session,) = reg.list_sessions()
        config = session.job_config
        assert isinstance(config, JobConfig)
        assert config.replicates == REPLICATES
        assert [p.name for p in config.sweep.config_parameters] == ["maxGrowth", "survivalRate"]
        source = out_dir / "models" / "main.josh"
        for cfg in reg.get_configs_for_session(session.session_id):
            # The hash is upstream's: md5 over the .josh text and the rendered config.
            assert cfg.run_hash == compute_run_hash(source, cfg.config_content, None)
            assert cfg.josh_content == JOSH_SOURCE
            assert reg.get_registered_parameters(cfg.run_hash)["maxGrowth"] in MAX_GROWTH
        # Starts and ends are recorded when they happen, so no execution has a zero duration.
        (zero,) = reg.query("SELECT count(*) FROM job_runs WHERE completed_at <= started_at").fetchone()
        assert zero == 0


@concurrent
def test_demo_bottles_the_baseline_and_diffs_two_configs(demo):
    out_dir, printed = demo
    (archive,) = (out_dir / "bottles").glob("bottle_baseline_*.tar.gz")
    assert str(archive) in printed
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        (manifest_name,) = [n for n in names if n.endswith("manifest.json")]
        manifest = json.load(tar.extractfile(manifest_name))
    assert any(n.endswith("/simulation.josh") for n in names)
    assert any(n.endswith("/run.sh") for n in names)
    assert manifest["replicates"] == REPLICATES
    assert isinstance(manifest["parameters"]["maxGrowth"], int)
    assert f"--replicates {REPLICATES}" in printed
    assert "--- baseline (" in printed and "+++ candidate (" in printed


@concurrent
def test_demo_marks_a_run_bad_tags_each_and_checks_a_design(demo):
    out_dir, printed = demo
    with RunRegistry(out_dir / "sweep.duckdb") as reg:
        (bad,) = [s for s in reg.run_statuses() if s.status is not None]
        assert bad.status == "bad" and "collapsed" in bad.reason
        assert reg.find_by_attribute("growth", "slow", current_only=False) != []
        report = reg.check_design("coverage")
        slow = next(r for r in report.requirements if r.attributes == {"growth": "slow"})
        assert (bad.run_hash, "bad") in slow.non_active_matches
    assert "Target design coverage" in printed and "UNMET" in printed
