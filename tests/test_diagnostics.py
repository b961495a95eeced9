"""DiagnosticQueries over real Josh CSV exports loaded through CellDataLoader.

The data: three configurations (A: maxGrowth=1 labelled "baseline", B: maxGrowth=2 labelled
"bigger", C: maxGrowth=2 unlabelled, in a second session), two replicates each, three cells and
steps 0-2. ``avg.height = base + 10*step + cell*(replicate+1)`` with base 0/100/200, so the
spatial mean of replicate r at step s is ``base + 10*s + (r+1)``: 10s+1 and 10s+2 for A.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from joshreg import CellDataLoader, DiagnosticQueries, RunRegistry
from joshreg.results.diagnostics import DiagnosticQueries as FromModule
from joshreg.testing.registries import FakeJobConfig

H = "avg.height"
A, B, C = "aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"
BASE = {A: 0.0, B: 100.0, C: 200.0}
GROWTH = {A: 1, B: 2, C: 2}
# cell index → (position.x, position.y, longitude, latitude)
CELLS = [(0, 0, -116.0, 34.0), (1, 0, -115.0, 34.0), (2, 1, -114.0, 35.0)]
STEPS = [0, 1, 2]
BBOX = (-116.5, -114.5, 33.5, 34.5)  # keeps cells 0 and 1
STEPS_1_2 = (1, 2)

Row = tuple[int, int, int, float]  # step, replicate, cell, value
Keep = Callable[[int, int], bool]  # (step, cell) → keep the row?


def height(run_hash: str, replicate: int, step: int, cell: int) -> float:
    return BASE[run_hash] + 10 * step + cell * (replicate + 1)


def build(folder: Path, keep: Keep = lambda step, cell: True) -> RunRegistry:
    """A registry holding the sweep's exports, restricted to the rows ``keep`` accepts."""
    folder.mkdir(parents=True, exist_ok=True)
    reg = RunRegistry(":memory:")
    s1 = reg.create_session(FakeJobConfig(), session_id="s1")
    s2 = reg.create_session(FakeJobConfig(), session_id="s2")
    loader = CellDataLoader(reg)
    for run_hash, sid in ((A, s1), (B, s1), (C, s2)):
        reg.register_run(sid, run_hash, "m.josh", f"cfg {run_hash}", None, {"maxGrowth": GROWTH[run_hash]})
        for rep in (0, 1):
            lines = [
                "position.x,position.y,position.longitude,position.latitude,avg.height,status,step,replicate"
            ]
            for step in STEPS:
                for i, (x, y, lon, lat) in enumerate(CELLS):
                    if keep(step, i):
                        lines.append(f"{x},{y},{lon},{lat},{height(run_hash, rep, step, i)},ok,{step},{rep}")
            path = folder / f"{run_hash}_{rep}.csv"
            path.write_text("\n".join(lines) + "\n")
            rid = reg.start_run(run_hash, session_id=sid, replicate=rep)
            loader.load_csv(path, rid, run_hash)
    reg.label_run(A, "baseline")
    reg.label_run(B, "bigger")
    return reg


@pytest.fixture(scope="module")
def regs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunRegistry]]:
    """The full registry and three oracles holding only the rows each filter should keep."""
    root = tmp_path_factory.mktemp("diag")
    out = {
        "all": build(root / "all"),
        "bbox": build(root / "bbox", lambda step, cell: cell in (0, 1)),
        "time": build(root / "time", lambda step, cell: step in (1, 2)),
        "both": build(root / "both", lambda step, cell: cell in (0, 1) and step in (1, 2)),
    }
    yield out
    for reg in out.values():
        reg.close()


@pytest.fixture
def reg(regs: dict[str, RunRegistry]) -> RunRegistry:
    return regs["all"]


@pytest.fixture
def dq(reg: RunRegistry) -> DiagnosticQueries:
    return DiagnosticQueries(reg)


def rows(df: pd.DataFrame) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in df.itertuples(index=False)]


# --- construction ---------------------------------------------------------------------------------


def test_needs_a_registry_and_is_exported_from_the_package() -> None:
    assert FromModule is DiagnosticQueries
    with pytest.raises(TypeError, match="RunRegistry"):
        DiagnosticQueries("josh_runs.duckdb")  # type: ignore[arg-type]


# --- get_timeseries / get_comparison --------------------------------------------------------------


def test_timeseries_aggregates_cells_then_replicates(dq: DiagnosticQueries) -> None:
    df = dq.get_timeseries(H, run_hash=A)
    assert list(df.columns) == ["run_hash", "step", "mean", "std", "min", "max", "n"]
    # per replicate spatial means 10s+1 and 10s+2 → mean 10s+1.5, sample std sqrt(0.5)
    assert rows(df[["run_hash", "step", "mean", "min", "max", "n"]]) == [
        (A, 0, 1.5, 1.0, 2.0, 2),
        (A, 1, 11.5, 11.0, 12.0, 2),
        (A, 2, 21.5, 21.0, 22.0, 2),
    ]
    assert df["std"].tolist() == pytest.approx([math.sqrt(0.5)] * 3)


def test_timeseries_spatial_aggregate_comes_before_the_replicate_mean(dq: DiagnosticQueries) -> None:
    # spatial max of A at step 1: replicate 0 → 10+2 = 12, replicate 1 → 10+4 = 14
    df = dq.get_timeseries(H, run_hash=A, aggregate="max")
    assert rows(df[["step", "mean", "min", "max"]])[1] == (1, 13.0, 12.0, 14.0)
    df = dq.get_timeseries(H, run_hash=A, aggregate="SUM")  # 3*10 + (0+1+2), 3*10 + (0+2+4)
    assert rows(df[["step", "mean", "min", "max"]])[1] == (1, 34.5, 33.0, 36.0)


def test_timeseries_by_session_and_parameters(dq: DiagnosticQueries) -> None:
    every = dq.get_timeseries(H)
    assert sorted(set(every["run_hash"])) == [A, B, C]
    assert set(dq.get_timeseries(H, session_id="s2")["run_hash"]) == {C}
    assert set(dq.get_timeseries(H, session_id="s1")["run_hash"]) == {A, B}
    assert set(dq.get_timeseries(H, maxGrowth=2)["run_hash"]) == {B, C}
    assert set(dq.get_timeseries(H, session_id="s1", maxGrowth=2)["run_hash"]) == {B}
    b = dq.get_timeseries(H, maxGrowth=2, session_id="s1")
    assert b["mean"].tolist() == [101.5, 111.5, 121.5]
    assert dq.get_timeseries(H, session_id="nope").empty


def test_comparison_by_parameter_pools_every_replicate_of_the_group(dq: DiagnosticQueries) -> None:
    df = dq.get_comparison(H, group_by="maxGrowth")
    assert list(df.columns) == ["group", "step", "mean", "std", "min", "max", "n"]
    assert rows(df[["group", "step", "mean", "min", "max", "n"]]) == [
        (1.0, 0, 1.5, 1.0, 2.0, 2),
        (1.0, 1, 11.5, 11.0, 12.0, 2),
        (1.0, 2, 21.5, 21.0, 22.0, 2),
        (2.0, 0, 151.5, 101.0, 202.0, 4),
        (2.0, 1, 161.5, 111.0, 212.0, 4),
        (2.0, 2, 171.5, 121.0, 222.0, 4),
    ]
    assert df["std"].iloc[3] == pytest.approx(statistics.stdev([101, 102, 201, 202]))


def test_comparison_at_step_zero_and_by_label(dq: DiagnosticQueries) -> None:
    at0 = dq.get_comparison(H, group_by="maxGrowth", step=0)
    assert rows(at0[["group", "step", "mean", "n"]]) == [(1.0, 0, 1.5, 2), (2.0, 0, 151.5, 4)]
    by_label = dq.get_comparison(H, group_by="label", step=2, aggregate="min")
    # spatial min is cell 0: base + 20 for both replicates; C has no label
    assert rows(by_label[["group", "step", "mean", "n"]]) == [
        ("baseline", 2, 20.0, 2),
        ("bigger", 2, 120.0, 2),
    ]
    s2 = dq.get_comparison(H, group_by="maxGrowth", step=1, session_id="s2")
    assert rows(s2[["group", "mean", "n"]]) == [(2.0, 211.5, 2)]


# --- upstream's methods ---------------------------------------------------------------------------


def test_parameter_comparison_pools_cells(dq: DiagnosticQueries) -> None:
    df = dq.get_parameter_comparison(H, "maxGrowth")
    assert list(df.columns) == ["param_value", "step", "mean_value", "std_value", "n_cells"]
    assert len(df) == 6
    at1 = dq.get_parameter_comparison(H, "maxGrowth", step=1)
    # maxGrowth=1 at step 1: cells 10,11,12 (rep 0) and 10,12,14 (rep 1)
    a_vals = [10, 11, 12, 10, 12, 14]
    assert rows(at1[["param_value", "step", "mean_value", "n_cells"]]) == [
        (1.0, 1, 11.5, 6),
        (2.0, 1, 161.5, 12),
    ]
    assert at1["std_value"].iloc[0] == pytest.approx(statistics.stdev(a_vals))
    at0 = dq.get_parameter_comparison(H, "maxGrowth", step=0, aggregation="max")
    assert rows(at0[["param_value", "step", "mean_value"]]) == [(1.0, 0, 4.0), (2.0, 0, 204.0)]
    labels = dq.get_parameter_comparison(H, "label", step=0)
    assert rows(labels[["param_value", "mean_value", "n_cells"]]) == [
        ("baseline", 1.5, 6),
        ("bigger", 101.5, 6),
    ]


def test_replicate_uncertainty(dq: DiagnosticQueries) -> None:
    df = dq.get_replicate_uncertainty(H, A)
    assert list(df.columns) == ["step", "mean", "std", "ci_low", "ci_high", "n_replicates"]
    assert df["mean"].tolist() == [1.5, 11.5, 21.5]
    # z(0.95) = 1.959964; std/sqrt(n) = sqrt(0.5)/sqrt(2) = 0.5
    assert df["ci_low"].tolist() == pytest.approx([1.5 - 0.979982, 11.5 - 0.979982, 21.5 - 0.979982])
    assert df["ci_high"].iloc[0] == pytest.approx(1.5 + 0.979982)
    at0 = dq.get_replicate_uncertainty(H, A, step=0, confidence=0.5)
    assert rows(at0[["step", "mean", "n_replicates"]]) == [(0, 1.5, 2)]
    assert at0["ci_high"].iloc[0] == pytest.approx(1.5 + 0.674490 * 0.5)
    with pytest.raises(ValueError, match="confidence"):
        dq.get_replicate_uncertainty(H, A, confidence=1.0)


def test_replicate_cv(dq: DiagnosticQueries) -> None:
    # replicate 0: spatial means 1, 11, 21 (mean 11, std 10); replicate 1: 2, 12, 22
    with pytest.warns(UserWarning, match="timesteps"):
        cv = dq.get_replicate_cv(H, A)
    assert cv["replicate_cvs"] == pytest.approx([10 / 11, 10 / 12])
    assert cv["mean_cv"] == pytest.approx((10 / 11 + 10 / 12) / 2)
    assert (cv["n_replicates"], cv["n_timesteps"], cv["extinct_replicates"]) == (2, 3, [])
    with pytest.warns(UserWarning, match="timesteps"):
        late = dq.get_replicate_cv(H, A, burn_in=1)  # 11, 21 and 12, 22
    assert late["replicate_cvs"] == pytest.approx([math.sqrt(50) / 16, math.sqrt(50) / 17])
    assert late["n_timesteps"] == 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dead = dq.get_replicate_cv(H, A, extinction_threshold=11.5)
    assert any("Extinction" in str(w.message) for w in caught)
    assert dead["extinct_replicates"] == [0]
    assert dead["replicate_cvs"][0] == math.inf and dead["mean_cv"] == math.inf
    assert dq.get_replicate_cv(H, "unknown") == {
        "mean_cv": math.inf,
        "replicate_cvs": [],
        "n_replicates": 0,
        "n_timesteps": 0,
        "extinct_replicates": [],
    }


def test_cell_timeseries(dq: DiagnosticQueries) -> None:
    df = dq.get_cell_timeseries(-115.0, 34.0, H, run_hash=B)
    assert list(df.columns) == ["step", "replicate", "value", "run_hash"]
    # cell 1 of B: 100 + 10s + (r+1)
    assert rows(df) == [
        (0, 0, 101.0, B), (1, 0, 111.0, B), (2, 0, 121.0, B),
        (0, 1, 102.0, B), (1, 1, 112.0, B), (2, 1, 122.0, B),
    ]  # fmt: skip
    assert sorted(set(dq.get_cell_timeseries(-115.0, 34.0, H)["run_hash"])) == [A, B, C]
    assert dq.get_cell_timeseries(-115.05, 34.0, H, run_hash=B, tolerance=0.01).empty


def test_spatial_snapshot_and_step_zero(dq: DiagnosticQueries) -> None:
    df = dq.get_spatial_snapshot(0, H, A, replicate=1)
    assert rows(df) == [(-116.0, 34.0, 0.0), (-115.0, 34.0, 2.0), (-114.0, 35.0, 4.0)]
    assert rows(dq.get_spatial_snapshot(2, H, C)) == [
        (-116.0, 34.0, 220.0),
        (-115.0, 34.0, 221.0),
        (-114.0, 35.0, 222.0),
    ]
    assert rows(dq.get_spatial_snapshot(1, "status", A)) == [
        (-116.0, 34.0, "ok"),
        (-115.0, 34.0, "ok"),
        (-114.0, 35.0, "ok"),
    ]


def test_bbox_timeseries(dq: DiagnosticQueries) -> None:
    df = dq.get_bbox_timeseries(*BBOX, H, run_hash=A)
    assert list(df.columns) == ["step", "replicate", "run_hash", "value", "n_cells"]
    # cells 0 and 1: replicate 0 → 10s + 0.5, replicate 1 → 10s + 1
    assert rows(df) == [
        (0, 0, A, 0.5, 2), (1, 0, A, 10.5, 2), (2, 0, A, 20.5, 2),
        (0, 1, A, 1.0, 2), (1, 1, A, 11.0, 2), (2, 1, A, 21.0, 2),
    ]  # fmt: skip
    summed = dq.get_bbox_timeseries(-117, -113, 33, 36, H, aggregation="sum")
    assert len(summed) == 18
    c11 = summed[(summed.run_hash == C) & (summed.step == 1) & (summed.replicate == 1)]
    assert c11["value"].tolist() == [3 * 210 + 0 + 2 + 4]


def test_all_variables_at_step(dq: DiagnosticQueries) -> None:
    df = dq.get_all_variables_at_step(0, A, replicate=1)
    assert list(df.columns) == ["longitude", "latitude", "position_x", "position_y", H, "status"]
    assert rows(df) == [
        (-116.0, 34.0, 0.0, 0.0, 0.0, "ok"),
        (-115.0, 34.0, 1.0, 0.0, 2.0, "ok"),
        (-114.0, 35.0, 2.0, 1.0, 4.0, "ok"),
    ]
    assert dq.get_all_variables_at_step(0, A)[H].tolist() == [0.0, 1.0, 2.0]


# --- the registry's filters -----------------------------------------------------------------------

CALLS: dict[str, Callable[[DiagnosticQueries], Any]] = {
    "cell_timeseries": lambda d: d.get_cell_timeseries(-115.0, 34.0, H, run_hash=A, tolerance=1.0),
    "spatial_snapshot": lambda d: d.get_spatial_snapshot(0, H, A, replicate=1),
    "spatial_snapshot_step1": lambda d: d.get_spatial_snapshot(1, H, B),
    "parameter_comparison": lambda d: d.get_parameter_comparison(H, "maxGrowth"),
    "parameter_comparison_label": lambda d: d.get_parameter_comparison(H, "label", aggregation="max"),
    "replicate_uncertainty": lambda d: d.get_replicate_uncertainty(H, A),
    "replicate_cv": lambda d: d.get_replicate_cv(H, A),
    "bbox_timeseries": lambda d: d.get_bbox_timeseries(-117, -113, 33, 36, H),
    "all_variables_at_step": lambda d: d.get_all_variables_at_step(0, B, replicate=1),
    "all_variables_at_step2": lambda d: d.get_all_variables_at_step(2, B),
    "timeseries": lambda d: d.get_timeseries(H, aggregate="max"),
    "comparison": lambda d: d.get_comparison(H, group_by="maxGrowth"),
    "comparison_label_step": lambda d: d.get_comparison(H, group_by="label", step=0),
    "comparison_label_step2": lambda d: d.get_comparison(H, group_by="label", step=2),
}
# Asked for a step the time filter keeps: the answer must not change.
UNCHANGED = {
    ("time", "spatial_snapshot_step1"),
    ("time", "all_variables_at_step2"),
    ("time", "comparison_label_step2"),
}


def quiet(call: Callable[[DiagnosticQueries], Any], reg: RunRegistry) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # get_replicate_cv's few-timesteps warning
        return call(DiagnosticQueries(reg))


def same(got: Any, want: Any) -> bool:
    if isinstance(want, pd.DataFrame):
        try:
            assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)
        except AssertionError:
            return False
        return True
    return got == want


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize("kind", ["bbox", "time", "both"])
def test_every_method_honours_the_active_filters(regs: dict[str, RunRegistry], name: str, kind: str) -> None:
    """Under a filter, a method answers exactly as on a registry holding only the kept rows."""
    call, reg = CALLS[name], regs["all"]
    unfiltered = quiet(call, reg)
    if kind == "bbox":
        with reg.spatial_filter(bbox=BBOX):
            got = quiet(call, reg)
    elif kind == "time":
        with reg.time_filter(STEPS_1_2):
            got = quiet(call, reg)
    else:
        with reg.time_filter((0, 2)), reg.spatial_filter(bbox=BBOX), reg.time_filter(STEPS_1_2):
            got = quiet(call, reg)
    want = quiet(call, regs[kind])
    assert same(got, want)
    assert same(got, unfiltered) == ((kind, name) in UNCHANGED)
    assert same(quiet(call, reg), unfiltered)  # the filter ended with its block


def test_the_both_oracle_really_differs_from_each_single_filter(regs: dict[str, RunRegistry]) -> None:
    call = CALLS["timeseries"]
    results = [quiet(call, regs[k]) for k in ("all", "bbox", "time", "both")]
    assert all(not same(x, y) for i, x in enumerate(results) for y in results[i + 1 :])


def test_a_geojson_filter_works_like_the_equivalent_bbox(reg: RunRegistry, dq: DiagnosticQueries) -> None:
    lo_lon, hi_lon, lo_lat, hi_lat = BBOX
    ring = [[lo_lon, lo_lat], [hi_lon, lo_lat], [hi_lon, hi_lat], [lo_lon, hi_lat], [lo_lon, lo_lat]]
    with reg.spatial_filter(geojson={"type": "Polygon", "coordinates": [ring]}):
        got = dq.get_timeseries(H)
    with reg.spatial_filter(bbox=BBOX):
        want = dq.get_timeseries(H)
    assert_frame_equal(got, want)
    assert len(got) == 9


# --- bad input ------------------------------------------------------------------------------------


def test_unknown_variable_lists_the_available_ones(dq: DiagnosticQueries) -> None:
    for call in (
        lambda: dq.get_timeseries("height"),
        lambda: dq.get_comparison("height", group_by="maxGrowth"),
        lambda: dq.get_cell_timeseries(0, 0, "height"),
        lambda: dq.get_spatial_snapshot(0, "height", A),
        lambda: dq.get_parameter_comparison("height", "maxGrowth"),
        lambda: dq.get_replicate_uncertainty("height", A),
        lambda: dq.get_replicate_cv("height", A),
        lambda: dq.get_bbox_timeseries(0, 1, 0, 1, "height"),
    ):
        with pytest.raises(ValueError, match=r"'height' not found\. Available: avg\.height, status"):
            call()


def test_unknown_parameter_lists_the_available_ones(dq: DiagnosticQueries) -> None:
    with pytest.raises(ValueError, match=r"'maxgrowth' not found.*maxGrowth"):
        dq.get_parameter_comparison(H, "maxgrowth")
    with pytest.raises(ValueError, match=r"'speed' not found.*'label'.*maxGrowth"):
        dq.get_comparison(H, group_by="speed")
    with pytest.raises(ValueError, match=r"Config parameter 'speed' not found\. Available: maxGrowth"):
        dq.get_timeseries(H, speed=3)


def test_aggregations_come_from_a_whitelist(dq: DiagnosticQueries, reg: RunRegistry) -> None:
    evil = "avg); DROP TABLE cell_data; --"
    for call in (
        lambda: dq.get_timeseries(H, aggregate=evil),
        lambda: dq.get_comparison(H, group_by="label", aggregate="none"),
        lambda: dq.get_parameter_comparison(H, "maxGrowth", aggregation=evil),
        lambda: dq.get_bbox_timeseries(0, 1, 0, 1, H, aggregation="avg(x"),
    ):
        with pytest.raises(ValueError, match=r"Invalid aggregation .*Valid options: avg, count, max, mean"):
            call()
    assert reg.query("SELECT count(*) FROM cell_data").fetchone() == (54,)


def test_text_variables_are_refused_where_numbers_are_needed(dq: DiagnosticQueries) -> None:
    with pytest.raises(ValueError, match="'status' holds text"):
        dq.get_timeseries("status")
    with pytest.raises(ValueError, match="'status' holds text"):
        dq.get_parameter_comparison("status", "label")


def test_show_sql_prints_a_runnable_snippet_with_bound_values(
    dq: DiagnosticQueries, reg: RunRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    with reg.time_filter((1, 1)):
        df = dq.get_timeseries(H, run_hash="x' OR '1'='1", show_sql=True)
        assert df.empty
        df = dq.get_parameter_comparison(H, "maxGrowth", show_sql=True)
    snippet = capsys.readouterr().out.split("registry.query(")[-1]
    assert "OR '1'='1" not in snippet and "cd.step BETWEEN ? AND ?" in snippet
    again = eval("registry.query(" + snippet.strip(), {"registry": reg})
    assert_frame_equal(again, df)
    assert df["step"].tolist() == [1, 1]
