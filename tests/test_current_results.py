"""Results of bad and superseded runs leave every results query (diagnostics, discovery,
plots' data, ``cell_data_current``) unless the caller asks for all runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from joshreg import CellDataLoader, DiagnosticQueries, RunRegistry

GOOD, BAD, ORPHAN = "aaaaaaaaaaa1", "bbbbbbbbbbb2", "fffffffffff9"


@pytest.fixture
def reg(registry: RunRegistry, session: str, tmp_path: Path) -> RunRegistry:
    loader = CellDataLoader(registry)
    for h, height in ((GOOD, 1.0), (BAD, 100.0)):
        registry.register_run(session, h, None, h, None, {"maxGrowth": height})
        run = registry.start_run(h, session_id=session)
        csv = tmp_path / f"{h}.csv"
        csv.write_text(
            "position.x,position.y,position.longitude,position.latitude,height,step,replicate\n"
            + "".join(f"{x},0,-116.{x},34.0,{height},{s},0\n" for x in range(3) for s in range(2))
        )
        loader.load_csv(csv, run, h)
    registry.recorder().load_csv(csv, None, ORPHAN)  # results of a hash never registered
    registry.mark_run(BAD, "bad", reason="diverged")
    return registry


def test_diagnostics_leave_bad_runs_out_unless_asked(reg: RunRegistry) -> None:
    diag = DiagnosticQueries(reg)
    ts = diag.get_timeseries("height", run_hash=BAD)
    assert ts.empty
    means = diag.get_parameter_comparison("height", "maxGrowth")
    assert sorted(means["param_value"].unique()) == [1.0]
    with reg.all_runs():
        assert not diag.get_timeseries("height", run_hash=BAD).empty
        means = diag.get_parameter_comparison("height", "maxGrowth")
        assert sorted(means["param_value"].unique()) == [1.0, 100.0]
    reg.mark_run(BAD, "active")
    assert not diag.get_timeseries("height", run_hash=BAD).empty


def test_discovery_counts_only_current_runs(reg: RunRegistry) -> None:
    assert reg.get_data_summary().cell_data_rows == 6
    with reg.all_runs():
        assert reg.get_data_summary().cell_data_rows == 18  # the orphan's rows too
    # the filters still apply on top
    with reg.time_filter((1, 1)):
        assert reg.get_data_summary().cell_data_rows == 3


def test_cell_data_current_view_for_sql(reg: RunRegistry) -> None:
    rows = reg.query("SELECT DISTINCT run_hash FROM cell_data_current").fetchall()
    assert rows == [(GOOD,)]
    reg.supersede(BAD, GOOD)
    reg.mark_run(BAD, "active")
    rows = reg.query("SELECT DISTINCT run_hash FROM cell_data_current").fetchall()
    assert rows == [(BAD,)]


def test_as_of_reads_results_as_current_then(reg: RunRegistry) -> None:
    at = reg.status_history()[-1].position
    reg.mark_run(BAD, "active")
    with reg.as_of(at) as view:
        assert DiagnosticQueries(view).get_timeseries("height", run_hash=BAD).empty
    assert not DiagnosticQueries(reg).get_timeseries("height", run_hash=BAD).empty


def test_replicate_count_ignores_status_but_keeps_the_filters(reg: RunRegistry) -> None:
    assert reg.get_replicate_count(BAD) == 1
    assert reg.get_run_info(BAD).replicates == {0}


def test_parameter_comparison_falls_back_to_run_attributes(reg: RunRegistry) -> None:
    reg.mark_run(BAD, "active")
    reg.set_attributes(GOOD, **{"soil.type": "sand"})
    reg.set_attributes(BAD, **{"soil.type": "clay"})
    means = DiagnosticQueries(reg).get_parameter_comparison("height", "soil.type")
    assert dict(zip(means["param_value"], means["mean_value"], strict=True)) == {"clay": 100.0, "sand": 1.0}
    with pytest.raises(ValueError, match=r"run attribute \(soil\.type\)"):
        DiagnosticQueries(reg).get_parameter_comparison("height", "nothing")
