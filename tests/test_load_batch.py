"""A batch of Josh exports loads as the same files loaded one at a time would, with the tables
caught up a million rows at a time instead of after every file."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from joshreg import CellDataLoader, DuplicateLoadWarning, RunRegistry, SparsityWarning
from joshreg.errors import InvalidArgumentError, RunNotFoundError
from joshreg.registry import writes


def export(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def setup(reg: RunRegistry, config: object, runs: int = 3) -> list[tuple[str, str]]:
    """(run_id, run_hash) pairs over two configurations."""
    sid = reg.create_session(config)
    for h in ("h1", "h2"):
        reg.register_run(sid, h, "m.josh", "c", None, {"p": 1})
    return [(reg.start_run(h, session_id=sid), h) for h in ("h1", "h2", "h1")[:runs]]


def cells(reg: RunRegistry) -> list[tuple[object, ...]]:
    return reg.query("SELECT * EXCLUDE (geom) FROM cell_data ORDER BY cell_id").fetchall()


def files(folder: Path) -> list[Path]:
    return [export(folder, f"r{i}.csv", f"step,replicate,x\n0,{i},{i}\n1,{i},{i + 0.5}\n") for i in range(3)]


def test_a_batch_fills_the_table_as_loads_one_at_a_time_do(tmp_path: Path, config) -> None:
    paths = files(tmp_path)
    with RunRegistry(tmp_path / "one.duckdb") as one, RunRegistry(tmp_path / "batch.duckdb") as batch:
        for (rid, h), p in zip(setup(one, config), paths, strict=True):
            CellDataLoader(one).load_csv(p, rid, h)
        runs = setup(batch, config)
        assert CellDataLoader(batch).load_csv_batch([(p, *r) for p, r in zip(paths, runs, strict=True)]) == 6
        assert [r[2:] for r in cells(one)] == [r[2:] for r in cells(batch)]
        assert [r[0] for r in cells(batch)] == list(range(1, 7))


def test_the_same_file_twice_in_a_batch_counts_once_and_says_so(registry, config, tmp_path: Path) -> None:
    (rid, h), *_ = setup(registry, config)
    p = files(tmp_path)[0]
    with pytest.warns(DuplicateLoadWarning):
        assert CellDataLoader(registry).load_csv_batch([(p, rid, h), (p, rid, h)]) == 2
    assert registry.query("SELECT count(*) FROM cell_data").fetchone() == (2,)


def test_a_run_of_another_configuration_stops_the_batch_there(registry, config, tmp_path: Path) -> None:
    runs = setup(registry, config)
    paths = files(tmp_path)
    with pytest.raises(InvalidArgumentError, match="is an execution of run hash 'h2'"):
        CellDataLoader(registry).load_csv_batch(
            [(paths[0], *runs[0]), (paths[1], runs[1][0], "h1"), (paths[2], *runs[2])]
        )
    assert registry.query("SELECT DISTINCT run_id FROM cell_data").fetchall() == [(runs[0][0],)]


def test_a_run_started_after_the_batch_began_is_asked_for_in_its_turn(
    registry, config, tmp_path: Path
) -> None:
    runs = setup(registry, config, runs=1)
    paths = files(tmp_path)
    sid = registry.list_sessions()[0].session_id

    def start_one(done: int, total: int) -> None:
        if done == 1:
            later.append(registry.start_run("h2", session_id=sid))

    later: list[str] = []
    items = iter([(paths[0], *runs[0])])
    loader = CellDataLoader(registry)
    loader.load_csv_batch(items, progress=start_one)
    assert loader.load_csv_batch([(paths[1], later[0], "h2")]) == 2
    with pytest.raises(RunNotFoundError):
        loader.load_csv_batch([(paths[2], "no-such-run", "h2")])


def test_a_malformed_item_stops_the_batch_in_its_turn(registry, config, tmp_path: Path) -> None:
    runs = setup(registry, config)
    paths = files(tmp_path)
    with pytest.raises(InvalidArgumentError, match="item 1 is not"):
        CellDataLoader(registry).load_csv_batch([(paths[0], *runs[0]), (paths[1],)])  # type: ignore[list-item]
    assert registry.query("SELECT count(*) FROM cell_data").fetchone() == (2,)


def test_a_big_batch_catches_up_on_the_way(registry, config, tmp_path: Path, monkeypatch) -> None:
    runs = setup(registry, config)
    syncs: list[int] = []
    real = registry.sync

    def counting():
        syncs.append(1)
        return real()

    monkeypatch.setattr(writes, "SYNC_EVERY_ROWS", 3)
    monkeypatch.setattr(registry, "sync", counting)
    paths = files(tmp_path)
    assert CellDataLoader(registry).load_csv_batch([(p, *r) for p, r in zip(paths, runs, strict=True)]) == 6
    assert len(syncs) >= 3  # the start, after the second file (4 rows), the end
    assert registry.query("SELECT count(*) FROM cell_data").fetchone() == (6,)


def test_the_sparsity_check_runs_once_at_the_end(registry, config, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("joshreg.models.SPARSITY_WARN_MIN_ROWS", 1)
    runs = setup(registry, config)
    paths = [export(tmp_path, f"v{i}.csv", f"step,replicate,v{i}\n0,0,1\n") for i in range(3)]
    with pytest.warns(SparsityWarning) as caught:
        CellDataLoader(registry).load_csv_batch([(p, *r) for p, r in zip(paths, runs, strict=True)])
    assert len([w for w in caught if w.category is SparsityWarning]) == 1


def test_one_file_into_an_empty_table_is_not_checked(registry, config, tmp_path: Path) -> None:
    runs = setup(registry, config)
    p = export(tmp_path, "a.csv", "step,replicate,a,b\n0,0,1,\n1,0,2,\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert CellDataLoader(registry).load_csv_batch([(p, *runs[0])]) == 2
