"""Reading Josh CSV exports: types from the whole file, exact names, errors that point."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from joshreg import ColumnConflictError
from joshreg.results.josh_csv import read_josh_csv, to_parquet_bytes


def write(tmp_path: Path, text: str, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_josh_export_becomes_typed_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "position.x,step,avg.height,replicate,position.longitude,position.latitude,status\n"
        "1.5,0,2.25,0,-116.1,33.9,alive\n"
        "2.5,1,,0,-116.2,34.0,\n",
    )
    export = read_josh_csv(path)
    assert export.variables == {"avg.height": "DOUBLE", "status": "VARCHAR"}
    assert export.table.column_names == [
        "step", "replicate", "position_x", "position_y", "longitude", "latitude", "avg.height", "status",
    ]  # fmt: skip
    rows = export.table.to_pylist()
    assert rows[0] == {
        "step": 0, "replicate": 0, "position_x": 1.5, "position_y": None, "longitude": -116.1,
        "latitude": 33.9, "avg.height": 2.25, "status": "alive",
    }  # fmt: skip
    assert (rows[1]["avg.height"], rows[1]["status"]) == (None, None)
    assert export.rows == 2 and len(export.source_sha256) == 64


def test_types_are_decided_by_the_whole_file_not_a_sample(tmp_path: Path) -> None:
    lines = ["step,replicate,kind"] + [f"{i},0,oak" for i in range(5000)] + ["5000,0,pine"]
    export = read_josh_csv(write(tmp_path, "\n".join(lines) + "\n"))
    assert export.variables == {"kind": "VARCHAR"}
    lines = ["step,replicate,count"] + [f"{i},0,{i}" for i in range(5000)] + ["5000,0,many"]
    with pytest.raises(ValueError, match=r"line 5002: column 'count' mixes numbers and text: 'many'"):
        read_josh_csv(write(tmp_path, "\n".join(lines) + "\n"))


def test_nan_and_infinity_as_josh_writes_them_are_numbers(tmp_path: Path) -> None:
    export = read_josh_csv(
        write(tmp_path, "step,replicate,x\n0,0,NaN\n1,0,Infinity\n2,0,-Infinity\n3,0,2.5\n")
    )
    assert export.variables == {"x": "DOUBLE"}
    values = export.table.column("x").to_pylist()
    assert values[1:] == [float("inf"), float("-inf"), 2.5] and values[0] != values[0]


def test_one_bad_value_in_a_numeric_column_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "step,replicate,height\n0,0,1.5\n1,0,NaN?\n2,0,2\n")
    with pytest.raises(
        ValueError,
        match=r"export\.csv: line 3: column 'height' mixes numbers and text: 'NaN\?' is not a number, "
        r"but line 2 holds the number '1\.5'",
    ):
        read_josh_csv(path)


def test_a_step_too_large_says_so(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"line 3: column 'step' holds 99999999999, too large for a step"):
        read_josh_csv(write(tmp_path, "step,replicate\n0,0\n99999999999,0\n"))


def test_an_all_empty_variable_is_double_and_negative_steps_parse(tmp_path: Path) -> None:
    export = read_josh_csv(write(tmp_path, "step,replicate,empty\n-5,0,\n-4,1,\n"))
    assert export.variables == {"empty": "DOUBLE"}
    assert export.table.column("step").to_pylist() == [-5, -4]


def test_missing_step_or_replicate_lists_the_columns_found(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing replicate\. Columns found: step, x"):
        read_josh_csv(write(tmp_path, "step,x\n0,1\n"))


def test_a_malformed_row_names_the_file_and_line_once(tmp_path: Path) -> None:
    path = write(tmp_path, "step,replicate,x\n0,0,1\n1,0,2\n2,0,3,4\n")
    with pytest.raises(ValueError) as info:
        read_josh_csv(path)
    assert str(info.value) == f"{path}: line 4: expected 3 fields (as in the header), found 4"


def test_a_non_integer_step_names_line_column_and_value(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"line 3: column 'step' needs a whole number, found '1\.5'"):
        read_josh_csv(write(tmp_path, "step,replicate\n0,0\n1.5,0\n"))


def test_a_non_numeric_position_names_line_column_and_value(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"line 2: column 'position.x' needs a number, found 'left'"):
        read_josh_csv(write(tmp_path, "step,replicate,position.x\n0,0,left\n"))


@pytest.mark.parametrize("name", ["longitude", "Run_Hash", "geom"])
def test_a_variable_named_like_a_core_column_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ColumnConflictError, match=f"'{name}' clashes with the core"):
        read_josh_csv(write(tmp_path, f"step,replicate,{name}\n0,0,1\n"))


def test_variables_differing_only_by_case_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ColumnConflictError, match="'treeCount' and 'treecount' differ only by case"):
        read_josh_csv(write(tmp_path, "step,replicate,treeCount,treecount\n0,0,1,2\n"))


def test_a_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_josh_csv(tmp_path / "nope.csv")


def test_paths_with_quotes_and_spaces_work(tmp_path: Path) -> None:
    path = write(tmp_path, "step,replicate,x\n0,0,1\n", name='it\'s a "run" 1.csv')
    assert read_josh_csv(path).rows == 1


def test_parquet_bytes_round_trip_and_are_deterministic(tmp_path: Path) -> None:
    export = read_josh_csv(write(tmp_path, "step,replicate,avg.height\n0,0,1.5\n1,0,2\n"))
    blob = to_parquet_bytes(export.table)
    assert blob == to_parquet_bytes(export.table)
    assert pq.read_table(io.BytesIO(blob)).equals(export.table)


def test_a_nan_spelling_josh_does_not_write_is_text_even_beside_numbers(tmp_path: Path) -> None:
    """The fast numeric check (a cast) takes ``nan(1)`` for NaN; the rule does not."""
    with pytest.raises(ValueError, match=r"line 3: column 'x' mixes numbers and text: 'nan\(1\)'"):
        read_josh_csv(write(tmp_path, "step,replicate,x\n0,0,1.5\n1,0,nan(1)\n"))
    export = read_josh_csv(write(tmp_path, "step,replicate,x\n0,0,NaN\n1,0,2\n"))
    assert export.variables == {"x": "DOUBLE"}
