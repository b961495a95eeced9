"""Plots of cell_data: PNGs that open, lines and bars that follow the data and the filters."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
from matplotlib.image import imread

from joshreg import CellDataLoader, RunRegistry
from joshreg.results.plots import plot_comparison, plot_spatial, plot_timeseries

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CELLS = [(x, y) for x in range(2) for y in range(2)]
STEPS = range(4)
REPLICATES = range(2)
CONFIGS = {"h5": {"maxGrowth": 5, "site": "b"}, "h10": {"maxGrowth": 10, "site": "a"}}
# A line is named by what sets its configuration apart: the parameter values that differ.
NAMES = {"h5": "maxGrowth=5, site=b", "h10": "maxGrowth=10, site=a"}


def tree_count(growth: float, replicate: int, x: int, step: int) -> float:
    return growth * step + replicate + 2 * x


def expected(growth: float, step: int, cells: list[tuple[int, int]] = CELLS) -> tuple[float, float]:
    """Mean across replicates of the mean over cells, and the replicates' sample sd."""
    per_rep = [statistics.mean(tree_count(growth, r, x, step) for x, _ in cells) for r in REPLICATES]
    return statistics.mean(per_rep), statistics.stdev(per_rep)


def write_export(folder: Path, run_hash: str, growth: float, replicate: int) -> Path:
    lines = ["treeCount,status,position.x,position.y,position.longitude,position.latitude,step,replicate"]
    for step in STEPS:
        for x, y in CELLS:
            value = tree_count(growth, replicate, x, step)
            lines.append(f"{value},ok,{x},{y},{-116 + x * 0.5},{34 + y * 0.5},{step},{replicate}")
    path = folder / f"{run_hash}_{replicate}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def loaded(registry: RunRegistry, config, tmp_path: Path) -> RunRegistry:
    sid = registry.create_session(config)
    loader = CellDataLoader(registry)
    for h, params in CONFIGS.items():
        registry.register_run(sid, h, "m.josh", "c", None, params)
        rid = registry.start_run(h, session_id=sid)
        for r in REPLICATES:
            loader.load_csv(write_export(tmp_path, h, params["maxGrowth"], r), rid, h)
    return registry


def lines_by_label(fig) -> dict[str, tuple[list[float], list[float]]]:
    (ax, *_) = fig.axes
    return {ln.get_label(): (list(ln.get_xdata()), list(ln.get_ydata())) for ln in ax.get_lines()}


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    image = imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0  # something was drawn, not a blank canvas


def test_each_plot_writes_a_png_that_opens(loaded: RunRegistry, tmp_path: Path) -> None:
    written = [
        plot_timeseries(loaded, "treeCount", path=tmp_path / "ts.png"),
        plot_comparison(loaded, "treeCount", "maxGrowth", path=tmp_path / "cmp.png"),
        plot_comparison(loaded, "treeCount", "site", step=3, path=tmp_path / "bars.png"),
        plot_spatial(loaded, "treeCount", 2, "h5", path=tmp_path / "map.png"),
    ]
    assert written == [tmp_path / n for n in ("ts.png", "cmp.png", "bars.png", "map.png")]
    for path in written:
        assert_png(path)


def test_timeseries_is_the_mean_across_replicates_with_a_band(loaded: RunRegistry) -> None:
    fig = plot_timeseries(loaded, "treeCount")
    lines = lines_by_label(fig)
    assert set(lines) == set(NAMES.values())
    for h, params in CONFIGS.items():
        steps, means = lines[NAMES[h]]
        assert steps == list(STEPS)
        assert means == pytest.approx([expected(params["maxGrowth"], s)[0] for s in STEPS])
    band = fig.axes[0].collections[0].get_paths()[0].vertices[:, 1]
    mean, sd = expected(CONFIGS["h10"]["maxGrowth"], 3)
    assert max(band) == pytest.approx(mean + sd)
    assert len(fig.axes[0].collections) == 2


def test_timeseries_narrows_to_a_run_hash_or_a_session(loaded: RunRegistry, config) -> None:
    assert set(lines_by_label(plot_timeseries(loaded, "treeCount", run_hash="h5"))) == {"h5"}  # alone
    other = loaded.create_session(config)
    loaded.register_run(other, "h10", "m.josh", "c", None, CONFIGS["h10"])
    assert set(lines_by_label(plot_timeseries(loaded, "treeCount", session_id=other))) == {"h10"}
    loaded.label_run("h10", "baseline")
    assert set(lines_by_label(plot_timeseries(loaded, "treeCount"))) == {"baseline", NAMES["h5"]}


def test_thirty_configurations_are_thirty_distinct_lines_named_by_their_parameters(
    registry: RunRegistry, config, tmp_path: Path
) -> None:
    sid = registry.create_session(config)
    loader = CellDataLoader(registry)
    for i in range(30):
        h = f"{i:012d}"
        registry.register_run(sid, h, "m.josh", f"c{i}", None, {"maxGrowth": i, "site": "a"})
        loader.load_csv(write_export(tmp_path, h, i, 0), registry.start_run(h, session_id=sid), h)
    registry.label_run(f"{7:012d}", "baseline")
    (ax,) = plot_timeseries(registry, "treeCount").axes
    lines = ax.get_lines()
    assert len({(ln.get_color(), ln.get_linestyle(), ln.get_marker()) for ln in lines}) == 30
    names = [ln.get_label() for ln in lines]
    expected_names = {f"maxGrowth={i}" for i in range(30) if i != 7} | {"baseline"}
    assert set(names) == expected_names
    assert {t.get_text() for t in ax.get_legend().get_texts()} == expected_names


def test_the_active_filters_change_what_is_plotted(loaded: RunRegistry) -> None:
    with loaded.time_filter((1, 2)):
        steps, _ = lines_by_label(plot_timeseries(loaded, "treeCount"))[NAMES["h5"]]
    assert steps == [1, 2]
    west = [(x, y) for x, y in CELLS if x == 0]
    with loaded.spatial_filter(bbox=(-116.1, -115.9, 33.0, 35.0)):
        _, means = lines_by_label(plot_timeseries(loaded, "treeCount"))[NAMES["h5"]]
        (_, heights) = lines_by_label(plot_comparison(loaded, "treeCount", "maxGrowth"))["maxGrowth = 5"]
        spots = plot_spatial(loaded, "treeCount", 1, "h5").axes[0].collections[0].get_offsets()
    assert means == pytest.approx([expected(5, s, west)[0] for s in STEPS])
    assert heights == pytest.approx(means)
    assert sorted(map(tuple, spots.tolist())) == [(-116.0, 34.0), (-116.0, 34.5)]


def test_comparison_orders_groups_numerically_and_bars_take_a_step(loaded: RunRegistry) -> None:
    lines = lines_by_label(plot_comparison(loaded, "treeCount", "maxGrowth"))
    assert list(lines) == ["maxGrowth = 5", "maxGrowth = 10"]
    assert lines["maxGrowth = 10"][1] == pytest.approx([expected(10, s)[0] for s in STEPS])
    fig = plot_comparison(loaded, "treeCount", "site", step=0)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    assert [p.get_height() for p in ax.patches] == pytest.approx([expected(10, 0)[0], expected(5, 0)[0]])


def test_spatial_map_colours_each_cell_by_its_value(loaded: RunRegistry) -> None:
    fig = plot_spatial(loaded, "treeCount", 3, "h10", replicate=1)
    points = fig.axes[0].collections[0]
    where = [tuple(p) for p in points.get_offsets().tolist()]
    assert sorted(where) == sorted((-116 + x * 0.5, 34 + y * 0.5) for x, y in CELLS)
    values = dict(zip(where, points.get_array().tolist(), strict=True))
    assert values[(-115.5, 34.5)] == tree_count(10, 1, 1, 3)
    assert points.get_cmap().name == "viridis"
    assert len(fig.axes) == 2  # the map and its colorbar
    assert fig.axes[0].get_aspect() == 1.0


def test_unknown_names_are_refused_with_the_available_ones(loaded: RunRegistry) -> None:
    with pytest.raises(
        ValueError, match=r"Export variable 'height' not found\. Available: treeCount, status"
    ):
        plot_timeseries(loaded, "height")
    with pytest.raises(ValueError, match=r"holds text .* Numeric variables: treeCount"):
        plot_spatial(loaded, "status", 0, "h5")
    with pytest.raises(ValueError, match=r"Config parameter 'growth' not found\. Available: maxGrowth, site"):
        plot_comparison(loaded, "treeCount", "growth")
    with pytest.raises(
        ValueError, match=r"Invalid aggregation 'median'\. Valid options: max, mean, min, sum"
    ):
        plot_timeseries(loaded, "treeCount", aggregate="median")
    with pytest.raises(ValueError, match="No session found with id 'nope'"):
        plot_timeseries(loaded, "treeCount", session_id="nope")
    with pytest.raises(TypeError, match="RunRegistry"):
        plot_timeseries(loaded.conn, "treeCount")


def test_no_data_says_which_filters_were_active(loaded: RunRegistry) -> None:
    with pytest.raises(ValueError, match="no spatial_filter or time_filter is active"):
        plot_timeseries(loaded, "treeCount", run_hash="nope")
    with (
        loaded.time_filter((50, 60)),
        pytest.raises(ValueError, match=r"at step 2 with the active filters: \(step BETWEEN 50 AND 60\)"),
    ):
        plot_comparison(loaded, "treeCount", "maxGrowth", step=2)
    with (
        loaded.spatial_filter(bbox=(0, 1, 0, 1)),
        pytest.raises(ValueError, match=r"replicate=0 with the active filters: \(longitude BETWEEN 0\.0"),
    ):
        plot_spatial(loaded, "treeCount", 0, "h5")


def test_without_matplotlib_the_error_says_how_to_install_it(loaded: RunRegistry, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'joshreg\[plot\]'"):
        plot_timeseries(loaded, "treeCount")


# --- SimulationDiagnostics: upstream's plotting class over these plots -----------------------------


def test_simulation_diagnostics_filters_by_parameters_and_warns_as_upstream(loaded: RunRegistry) -> None:
    from joshreg.diagnostics import SimulationDiagnostics

    diag = SimulationDiagnostics(loaded)
    fig = diag.plot_timeseries("treeCount", maxGrowth=5)
    assert set(lines_by_label(fig)) == {"h5"}  # one configuration: no legend names needed
    with pytest.warns(UserWarning, match="Matched 2 configs"):
        fig = diag.plot_timeseries("treeCount", show_replicates=False, step_range=(1, 2))
    assert set(lines_by_label(fig)) == set(NAMES.values())
    assert all(steps == [1, 2] for steps, _ in lines_by_label(fig).values())
    assert len(fig.axes[0].collections) == 0  # no bands
    with pytest.warns(UserWarning, match="aggregate='none'"):
        fig = diag.plot_timeseries("treeCount", run_hash="h10", aggregate="none")
    assert len(fig.axes[0].get_lines()) == len(CELLS) * len(REPLICATES)
    loaded.mark_run("h10", "bad")
    with pytest.raises(ValueError, match="No data found matching filters"):
        diag.plot_timeseries("treeCount", run_hash="h10")


def test_simulation_diagnostics_refuses_as_upstream(loaded: RunRegistry) -> None:
    from joshreg.diagnostics import SimulationDiagnostics

    with pytest.raises(TypeError):
        SimulationDiagnostics(object())  # type: ignore[arg-type]
    diag = SimulationDiagnostics(loaded)
    unknown = r"Export variable 'height' not found\. Available: status, treeCount"
    with pytest.raises(ValueError, match=unknown):
        diag.plot_timeseries("height")
    with pytest.raises(ValueError, match="Config parameter 'rain' not found"):
        diag.plot_timeseries("treeCount", rain=1)
    with pytest.raises(ValueError, match="Valid options: max, mean, min, none, sum"):
        diag.plot_timeseries("treeCount", aggregate="median")
    with pytest.raises(ValueError, match="not supported"):
        diag.plot_comparison("treeCount", "maxGrowth", aggregate="none")
    with pytest.raises(ValueError, match="No spatial data found for run_hash=h5"):
        diag.plot_spatial("treeCount", step=99, run_hash="h5")
    fig = diag.plot_comparison("treeCount", "maxGrowth", step=3)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["5", "10"]
