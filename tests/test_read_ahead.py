"""A batch parses its next files in a thread: what it loads and raises stays as without."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from joshreg import CellDataLoader, RunRegistry
from joshreg.results import read_ahead
from joshreg.results.josh_csv import read_josh_csv, to_parquet_bytes


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_a_file_read_ahead_is_taken_with_its_result_file_encoded(tmp_path: Path) -> None:
    a = write(tmp_path, "a.csv", "step,replicate,x\n0,0,1.5\n")
    b = write(tmp_path, "b.csv", "step,replicate,x\n0,1,2.5\n")
    with read_ahead.reading_ahead([a, b]):
        first = read_josh_csv(a)
        second = read_josh_csv(b)
    assert first.parquet == to_parquet_bytes(first.table)  # encoded ahead, the same bytes
    assert second.table.column("x").to_pylist() == [2.5]
    assert first == read_josh_csv(a) and first.source_sha256 == read_josh_csv(a).source_sha256


def test_a_file_changed_after_it_was_read_ahead_is_read_again(tmp_path: Path) -> None:
    a = write(tmp_path, "a.csv", "step,replicate,x\n0,0,1\n")
    b = write(tmp_path, "b.csv", "step,replicate,x\n0,0,1\n")
    with read_ahead.reading_ahead([a, b]):
        read_josh_csv(a)
        ahead = read_ahead._current.get()
        assert ahead is not None
        ahead._ahead[0][1].result()  # b has been read ahead
        b.write_text("step,replicate,x\n0,0,7\n1,0,8\n")
        os.utime(b, ns=(1, 1))  # a different modification time even on a coarse clock
        export = read_josh_csv(b)
    assert export.table.column("x").to_pylist() == [7.0, 8.0]
    assert export.parquet is None  # not the one read ahead


def test_files_asked_out_of_order_are_read_in_their_turn(tmp_path: Path) -> None:
    a = write(tmp_path, "a.csv", "step,replicate,x\n0,0,1\n")
    b = write(tmp_path, "b.csv", "step,replicate,x\n0,0,2\n")
    with read_ahead.reading_ahead([a, b]):
        assert read_josh_csv(b).table.column("x").to_pylist() == [2.0]
        assert read_josh_csv(a).table.column("x").to_pylist() == [1.0]


def test_a_bad_file_in_a_batch_fails_in_its_turn_after_the_files_before_it(tmp_path: Path, config) -> None:
    good = write(tmp_path, "good.csv", "step,replicate,x\n0,0,1\n")
    bad = write(tmp_path, "bad.csv", "step,replicate,x\n0,0,1\n1,0,2,3\n")
    after = write(tmp_path, "after.csv", "step,replicate,x\n0,1,1\n")
    with RunRegistry(tmp_path / "r.duckdb") as reg:
        sid = reg.create_session(config)
        reg.register_run(sid, "h1", "m.josh", "c", None, {})
        rids = [reg.start_run("h1", session_id=sid) for _ in range(3)]
        with pytest.raises(ValueError, match=r"bad\.csv: line 3: expected 3 fields"):
            CellDataLoader(reg).load_csv_batch(
                [(good, rids[0], "h1"), (bad, rids[1], "h1"), (after, rids[2], "h1")]
            )
        assert reg.query("SELECT run_id FROM cell_data").fetchall() == [(rids[0],)]


def test_outside_a_batch_nothing_is_read_ahead(tmp_path: Path) -> None:
    a = write(tmp_path, "a.csv", "step,replicate,x\n0,0,1\n")
    assert read_ahead.take_read_ahead(a) is None and read_josh_csv(a).parquet is None
