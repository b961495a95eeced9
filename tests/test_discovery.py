"""Discovery over loaded results: replicates, variables, entity types, sparsity, data summary.

Every test loads real Josh CSV exports through CellDataLoader, so the answers come from the
projected ``cell_data`` exactly as a user's would.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from joshreg import (
    CellDataLoader,
    ColumnStats,
    DataSummary,
    DuplicateLoadWarning,
    RunRegistry,
    SparsityReport,
    SparsityWarning,
    models,
)
from joshreg.results import discovery


@dataclass
class Sweep:
    """A registry with two sessions that pool one configuration, and a way to load exports."""

    reg: RunRegistry
    folder: Path
    a: str
    b: str
    runs: dict[str, str]
    files: int = 0

    def csv(self, header: list[str], rows: list[list[Any]]) -> Path:
        self.files += 1
        path = self.folder / f"export_{self.files}.csv"
        lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in r) for r in rows]
        path.write_text("\n".join(lines) + "\n")
        return path

    def load(
        self, run: str | None, run_hash: str, header: list[str], rows: list[list[Any]], entity: str = "patch"
    ) -> int:
        """Load an export for execution ``run`` (a key of ``runs``; None for no run id)."""
        run_id = None if run is None else self.runs[run]
        path = self.csv(header, rows)
        return CellDataLoader(self.reg).load_csv(path, run_id, run_hash, entity_type=entity)


@pytest.fixture
def sweep(registry: RunRegistry, make_config: Callable[..., Any], tmp_path: Path) -> Sweep:
    """Session A registers h1 and h2, session B registers h2 (pooled) and h3.

    Executions: a1 (h1 in A), a2 (h2 in A), b2 (h2 in B), b3 (h3 in B).
    """
    a = registry.create_session(make_config(replicates=2), experiment_name="A", session_id="sess-a")
    b = registry.create_session(make_config(), experiment_name="B", session_id="sess-b")
    registry.register_run(a, "h1", "m.josh", "g=1", None, {"maxGrowth": 1.0, "mode": "fast"})
    registry.register_run(a, "h2", "m.josh", "g=2", None, {"maxGrowth": 2.0})
    registry.register_run(b, "h2", "m.josh", "g=2", None, {"maxGrowth": 2.0})
    registry.register_run(b, "h3", "m.josh", "s=3", None, {"seedRate": 3.0})
    runs = {
        "a1": registry.start_run("h1", session_id=a),
        "a2": registry.start_run("h2", session_id=a),
        "b2": registry.start_run("h2", session_id=b),
        "b3": registry.start_run("h3", session_id=b),
    }
    return Sweep(registry, tmp_path, a, b, runs)


POS = ["step", "replicate", "position.longitude", "position.latitude"]


class CountingCon:
    """A connection that counts the statements run through it."""

    def __init__(self, con: Any) -> None:
        self.con = con
        self.statements = 0

    def execute(self, sql: str, params: list[Any] | None = None) -> Any:
        self.statements += 1
        return self.con.execute(sql, params or [])


# --- get_replicate_count ------------------------------------------------------------------------


def test_replicate_count_is_zero_without_data(sweep: Sweep) -> None:
    assert sweep.reg.get_replicate_count("h1") == 0
    assert sweep.reg.get_replicate_count("no-such-hash") == 0


def test_replicate_count_counts_distinct_replicate_indices(sweep: Sweep) -> None:
    reg = sweep.reg
    sweep.load("a2", "h2", ["step", "replicate", "v"], [[0, 0, 1], [1, 0, 2], [0, 1, 3]])
    assert reg.get_replicate_count("h2") == 2
    # Another execution restarting at replicate 0 adds no index (upstream HEAD: the index is the
    # identity; upstream's seed counted (run id, replicate) pairs and said 3 here).
    sweep.load("b2", "h2", ["step", "replicate", "v"], [[0, 0, 5], [1, 0, 6]])
    assert reg.get_replicate_count("h2") == 2
    sweep.load("b2", "h2", ["step", "replicate", "v"], [[2, 2, 7]])
    assert reg.get_replicate_count("h2") == 3
    assert reg.get_replicate_count("h1") == 0
    assert reg.loaded_replicates("h2") == {0, 1, 2}


def test_reloading_the_same_file_does_not_inflate_the_count(sweep: Sweep) -> None:
    path = sweep.csv(["step", "replicate", "v"], [[0, 0, 1], [0, 1, 2]])
    loader = CellDataLoader(sweep.reg)
    loader.load_csv(path, sweep.runs["a1"], "h1")
    with pytest.warns(DuplicateLoadWarning):
        loader.load_csv(path, sweep.runs["a1"], "h1")
    assert sweep.reg.get_replicate_count("h1") == 2


def test_rows_without_run_id_count_by_their_index_too(sweep: Sweep) -> None:
    sweep.load(None, "h1", ["step", "replicate", "v"], [[0, r, r] for r in range(5)])
    assert sweep.reg.get_replicate_count("h1") == 5
    sweep.load("a1", "h1", ["step", "replicate", "v"], [[0, 0, 1], [0, 5, 1]])
    assert sweep.reg.get_replicate_count("h1") == 6


def test_replicate_count_honours_the_time_filter(sweep: Sweep) -> None:
    sweep.load("a1", "h1", ["step", "replicate", "v"], [[0, 0, 1], [5, 1, 2], [9, 2, 3]])
    with sweep.reg.time_filter(step_range=(4, 10)):
        assert sweep.reg.get_replicate_count("h1") == 2
    assert sweep.reg.get_replicate_count("h1") == 3


# --- variables and entity types -----------------------------------------------------------------


def test_variable_columns_are_sorted_without_core_columns(sweep: Sweep) -> None:
    reg = sweep.reg
    assert reg.list_variable_columns() == []
    assert reg.list_export_variables() == []
    sweep.load("a1", "h1", [*POS, "treeCount", "avg.height", "status"], [[0, 0, -116, 34, 3, 1.5, "ok"]])
    assert reg.list_variable_columns() == ["avg.height", "status", "treeCount"]
    assert reg.list_export_variables() == reg.list_variable_columns()


def load_pooled(sweep: Sweep) -> None:
    """h1 (A only) has a.x and common; h3 (B only) b.y and common; h2 (pooled) was loaded under
    B's execution and has pooled.z; `empty` exists but only h3's rows leave it NULL."""
    sweep.load("a1", "h1", ["step", "replicate", "a.x", "common"], [[0, 0, 1, 1], [1, 0, 2, 2]])
    sweep.load("b3", "h3", ["step", "replicate", "b.y", "common", "empty"], [[0, 0, 1, 1, None]])
    sweep.load("b2", "h2", ["step", "replicate", "pooled.z"], [[0, 0, 7]], entity="organism")


def test_export_variables_of_a_session_are_those_with_values_in_its_data(sweep: Sweep) -> None:
    load_pooled(sweep)
    reg = sweep.reg
    everything = ["a.x", "b.y", "common", "empty", "pooled.z"]
    assert reg.list_variable_columns() == everything
    assert reg.list_export_variables() == everything
    # h2 is pooled: data loaded under session B's execution counts for session A too.
    assert reg.list_export_variables(sweep.a) == ["a.x", "common", "pooled.z"]
    assert reg.list_export_variables(sweep.b) == ["b.y", "common", "pooled.z"]
    assert reg.list_export_variables("no-such-session") == []
    assert reg.list_export_variables("") == everything


def test_export_variables_of_a_session_take_one_query_whatever_the_column_count(sweep: Sweep) -> None:
    load_pooled(sweep)
    counts = []
    for expected in (["a.x", "common", "pooled.z"], ["a.x", "common", "pooled.z", "x1", "x2", "x3"]):
        counting = CountingCon(sweep.reg.conn)
        assert discovery.export_variables(counting, sweep.a) == expected  # type: ignore[arg-type]
        counts.append(counting.statements)
        if len(counts) == 1:
            sweep.load("a1", "h1", ["step", "replicate", "x1", "x2", "x3", "x4"], [[3, 0, 1, 2, 3, None]])
    assert counts == [2, 2]  # the column list, then one query for every column


def test_export_variables_honour_the_filters(sweep: Sweep) -> None:
    load_pooled(sweep)
    with sweep.reg.time_filter(step_range=(1, 1)):
        assert sweep.reg.list_export_variables(sweep.a) == ["a.x", "common"]
        assert sweep.reg.list_export_variables(sweep.b) == []


def test_list_variables_is_a_deprecated_alias(sweep: Sweep) -> None:
    load_pooled(sweep)
    with pytest.warns(DeprecationWarning, match="list_export_variables"):
        assert sweep.reg.list_variables(sweep.b) == ["b.y", "common", "pooled.z"]
    with pytest.warns(DeprecationWarning):
        assert sweep.reg.list_variables() == sweep.reg.list_variable_columns()


def test_entity_types_overall_and_per_session(sweep: Sweep) -> None:
    reg = sweep.reg
    assert reg.list_entity_types() == []
    load_pooled(sweep)
    sweep.load("a1", "h1", ["step", "replicate", "a.x"], [[9, 0, 1]], entity="agent")
    assert reg.list_entity_types() == ["agent", "organism", "patch"]
    assert reg.list_entity_types(sweep.a) == ["agent", "organism", "patch"]
    assert reg.list_entity_types(sweep.b) == ["organism", "patch"]
    assert reg.list_entity_types("no-such-session") == []
    assert reg.list_entity_types("") == reg.list_entity_types()
    with reg.time_filter(step_range=(9, 9)):
        assert reg.list_entity_types() == ["agent"]


# --- sparsity -----------------------------------------------------------------------------------


def test_an_empty_table_is_not_sparse(sweep: Sweep) -> None:
    report = sweep.reg.check_sparsity()
    assert (report.total_rows, report.column_stats, report.sparse_columns) == (0, [], [])
    assert not report.should_warn
    assert str(report) == "No sparse columns (threshold: 50% NULL)"


def load_sparse(sweep: Sweep) -> None:
    """4 rows: `a` is set in 1 (75% NULL), `b` in 3 (25% NULL), `label` (text) in 2 (50%)."""
    sweep.load("a1", "h1", ["step", "replicate", "a", "label"], [[0, 0, 1.5, "x"]])
    sweep.load(
        "b3", "h3", ["step", "replicate", "b", "label"], [[0, 0, 1, "y"], [1, 0, 2, None], [2, 0, 3, None]]
    )


def test_check_sparsity_counts_nulls_per_variable_column(sweep: Sweep) -> None:
    load_sparse(sweep)
    report = sweep.reg.check_sparsity()
    assert report.total_rows == 4
    assert report.threshold_percent == 50
    assert report.column_stats == [
        ColumnStats("a", "DOUBLE", 4, 3),
        ColumnStats("b", "DOUBLE", 4, 1),
        ColumnStats("label", "VARCHAR", 4, 2),
    ]
    assert [c.null_percent for c in report.column_stats] == [75.0, 25.0, 50.0]
    assert [c.name for c in report.sparse_columns] == ["a"]  # 50% is not more than 50%
    assert not report.should_warn
    assert str(report) == (
        "SparsityWarning: 1 columns are >50% NULL:\n"
        "  - a: 75.0% NULL (3/4)\n"
        "\n"
        "Consider removing unused columns or using a separate registry for different simulations."
    )


def test_check_sparsity_takes_one_query_whatever_the_column_count(sweep: Sweep) -> None:
    load_sparse(sweep)
    counts = []
    for columns in (3, 6):
        counting = CountingCon(sweep.reg.conn)
        assert len(discovery.check_sparsity(counting).column_stats) == columns  # type: ignore[arg-type]
        counts.append(counting.statements)
        if len(counts) == 1:
            sweep.load("a1", "h1", ["step", "replicate", "y1", "y2", "y3"], [[5, 0, 1, 2, 3]])
    assert counts == [2, 2]  # the column list, then one query for every column


def test_sparsity_thresholds_are_read_at_call_time(sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    load_sparse(sweep)
    monkeypatch.setattr(models, "SPARSITY_WARN_COLUMN_NULL_PERCENT", 20)
    report = sweep.reg.check_sparsity()
    assert report.threshold_percent == 20
    assert [c.name for c in report.sparse_columns] == ["a", "b", "label"]
    assert str(report).splitlines()[0] == "SparsityWarning: 3 columns are >20% NULL:"
    assert not report.should_warn  # 4 rows < 1000
    monkeypatch.setattr(models, "SPARSITY_WARN_MIN_ROWS", 4)
    assert report.should_warn  # the same report: should_warn reads the constants when asked
    monkeypatch.setattr(models, "SPARSITY_WARN_MIN_SPARSE_COLUMNS", 4)
    assert not report.should_warn
    monkeypatch.undo()
    assert sweep.reg.check_sparsity().threshold_percent == 50


def test_check_sparsity_honours_the_filters(sweep: Sweep) -> None:
    load_sparse(sweep)
    with sweep.reg.time_filter(step_range=(1, 2)):
        report = sweep.reg.check_sparsity()
    assert report.total_rows == 2
    assert [(c.name, c.null_count) for c in report.column_stats] == [("a", 2), ("b", 0), ("label", 2)]


def test_the_report_text_uses_thousands_separators() -> None:
    report = SparsityReport(12000, [ColumnStats("soil.moisture", "DOUBLE", 12000, 9000)])
    assert "  - soil.moisture: 75.0% NULL (9,000/12,000)" in str(report).splitlines()


def wide_rows(n: int, width: int, start_step: int = 0) -> list[list[Any]]:
    return [[start_step + i, 0, *([i] * width)] for i in range(n)]


def test_a_load_that_leaves_cell_data_sparse_warns(sweep: Sweep) -> None:
    # 500 rows of one simulation (a, b), then 700 of another (c, d): 1,200 rows, a and b 58% NULL.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sweep.load("a1", "h1", ["step", "replicate", "a", "b"], wide_rows(500, 2))
    with pytest.warns(SparsityWarning) as caught:
        sweep.load("b3", "h3", ["step", "replicate", "c", "d"], wide_rows(700, 2))
    assert len(caught) == 1
    assert issubclass(SparsityWarning, UserWarning)
    text = str(caught[0].message)
    assert text == str(sweep.reg.check_sparsity())
    assert text.startswith("SparsityWarning: 2 columns are >50% NULL:\n  - a: 58.3% NULL (700/1,200)")


def test_no_sparsity_warning_below_the_thresholds_or_into_an_empty_table(
    sweep: Sweep, monkeypatch: pytest.MonkeyPatch
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # The first load is never checked, even though x and y are mostly empty.
        sweep.load("a1", "h1", ["step", "replicate", "x", "y"], [[i, 0, None, None] for i in range(1100)])
        assert sweep.reg.check_sparsity().should_warn
        # Now x, y and z are sparse: three columns, fewer than the (raised) minimum of four.
        monkeypatch.setattr(models, "SPARSITY_WARN_MIN_SPARSE_COLUMNS", 4)
        sweep.load("b3", "h3", ["step", "replicate", "z"], [[0, 0, 1]])
    monkeypatch.setattr(models, "SPARSITY_WARN_MIN_SPARSE_COLUMNS", 3)
    with pytest.warns(SparsityWarning, match=r"x: 100\.0% NULL \(1,102/1,102\)"):
        sweep.load("b3", "h3", ["step", "replicate", "z"], [[1, 0, 2]])


# --- get_data_summary ---------------------------------------------------------------------------


def test_data_summary_of_an_empty_registry() -> None:
    with RunRegistry(":memory:", enable_spatial=False) as reg:
        summary = reg.get_data_summary()
    assert summary == DataSummary(0, 0, 0, 0, [], [], None, None, None, [])
    assert str(summary) == (
        "Registry Data Summary\n" + "=" * 40 + "\nSessions: 0\nConfigs:  0\nRuns:     0\nRows:     0\n\n"
        "Variables: (none)\nEntity types: (none)\nParameters: (none)"
    )


def load_summary_data(sweep: Sweep) -> None:
    sweep.load("a1", "h1", [*POS, "avg.height"], [[0, 0, -116.123, 34.5, 1], [3, 1, -115.5, 35.25, 2]])
    sweep.load(
        "b3", "h3", [*POS, "seeds"], [[1, 4, -117.0, 33.0, 9], [7, 0, None, None, 8]], entity="organism"
    )


def test_data_summary_of_the_whole_registry(sweep: Sweep) -> None:
    load_summary_data(sweep)
    summary = sweep.reg.get_data_summary()
    assert summary == DataSummary(
        sessions=2,
        configs=3,
        runs=4,
        cell_data_rows=4,
        variables=["avg.height", "seeds"],
        entity_types=["organism", "patch"],
        step_range=(0, 7),
        replicate_range=(0, 4),
        spatial_extent={"lon": (-117.0, -115.5), "lat": (33.0, 35.25)},
        parameters=["maxGrowth", "mode", "seedRate"],
    )
    assert str(summary) == "\n".join(
        [
            "Registry Data Summary",
            "=" * 40,
            "Sessions: 2",
            "Configs:  3",
            "Runs:     4",
            "Rows:     4",
            "",
            "Variables: avg.height, seeds",
            "Entity types: organism, patch",
            "Parameters: maxGrowth, mode, seedRate",
            "Steps: 0 - 7",
            "Replicates: 0 - 4",
            "Spatial extent: lon [-117.00, -115.50], lat [33.00, 35.25]",
        ]
    )
    assert sweep.reg.get_data_summary("") == summary


def test_data_summary_of_one_session(sweep: Sweep) -> None:
    load_summary_data(sweep)
    summary = sweep.reg.get_data_summary(sweep.a)
    assert summary == DataSummary(
        sessions=1,
        configs=2,
        runs=2,
        cell_data_rows=2,
        variables=["avg.height"],
        entity_types=["patch"],
        step_range=(0, 3),
        replicate_range=(0, 1),
        spatial_extent={"lon": (-116.123, -115.5), "lat": (34.5, 35.25)},
        parameters=["maxGrowth", "mode"],
    )
    assert "Spatial extent: lon [-116.12, -115.50], lat [34.50, 35.25]" in str(summary).splitlines()
    b = sweep.reg.get_data_summary(sweep.b)
    assert (b.configs, b.runs, b.cell_data_rows, b.parameters) == (2, 2, 2, ["maxGrowth", "seedRate"])
    # Rows without coordinates do not widen the extent.
    assert b.spatial_extent == {"lon": (-117.0, -117.0), "lat": (33.0, 33.0)}


def test_data_summary_of_an_unknown_session_is_empty(sweep: Sweep) -> None:
    load_summary_data(sweep)
    summary = sweep.reg.get_data_summary("no-such-session")
    assert summary == DataSummary(0, 0, 0, 0, [], [], None, None, None, [])  # upstream said sessions=1
    assert "Sessions: 0" in str(summary).splitlines()


def test_data_summary_honours_the_filters(sweep: Sweep) -> None:
    load_summary_data(sweep)
    with sweep.reg.time_filter(step_range=(1, 7)), sweep.reg.spatial_filter(bbox=(-118, -115, 32, 36)):
        summary = sweep.reg.get_data_summary()
    assert (summary.cell_data_rows, summary.step_range, summary.entity_types) == (
        2,
        (1, 3),
        ["organism", "patch"],
    )
    assert summary.spatial_extent == {"lon": (-117.0, -115.5), "lat": (33.0, 35.25)}


def test_data_summary_text_without_ranges_and_with_big_counts() -> None:
    summary = DataSummary(1, 2, 3, 10000, ["a"], ["patch"], None, None, None, ["p"])
    lines = str(summary).splitlines()
    assert "Rows:     10,000" in lines
    assert lines[-3:] == ["Variables: a", "Entity types: patch", "Parameters: p"]
    assert not any(line.startswith(("Steps", "Replicates", "Spatial")) for line in lines)
