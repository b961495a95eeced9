"""Josh's CSV export format → a typed Arrow table, reading the file once.

No DuckDB, no log: the loader (issue 3's ``CellDataLoader``) stores the result as a
content-addressed Parquet blob and appends one event.

The format: ``step`` and ``replicate`` are required integers; ``position.x``, ``position.y``,
``position.longitude`` and ``position.latitude`` are optional numbers, stored as ``position_x``,
``position_y``, ``longitude`` and ``latitude``; every other column is a variable whose name is
kept exactly (``avg.height``). Empty cells are missing values and column order does not matter.
A variable is DOUBLE when every non-empty value in the *whole* file is a number (``NaN``,
``Infinity`` and ``-Infinity`` as Josh writes them included; upstream looked at the first 1,000
rows), VARCHAR when none is, and DOUBLE when all are empty. A column that mixes numbers and text
is refused with the line and value of the first offender: one stray ``NaN?`` must not turn a
numeric column into text for good.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from joshreg.errors import ColumnConflictError, InvalidArgumentError
from joshreg.projection.tables import CELL_DATA_CORE_COLUMNS
from joshreg.results.locations import is_object_uri, read_bytes, s3_uri
from joshreg.results.read_ahead import take_read_ahead

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["POSITION_COLUMNS", "JoshExport", "parse_josh_csv", "read_josh_csv", "to_parquet_bytes"]

POSITION_COLUMNS = {
    "position.x": "position_x",
    "position.y": "position_y",
    "position.longitude": "longitude",
    "position.latitude": "latitude",
}
_REQUIRED = ("step", "replicate")


@dataclass(frozen=True)
class JoshExport:
    """One parsed export: the typed rows, the variables' types and the source's identity
    (``source_path`` is absolute, or an ``s3://`` URI for an export in a bucket).

    ``examples`` holds, per variable, where its first value is and what it says
    (``line 2: '1.5'``), for messages about a type that clashes with the registry's column.
    ``parquet`` is ``to_parquet_bytes(table)`` when it was encoded ahead (``read_ahead``).
    """

    table: pa.Table
    variables: dict[str, str]
    source_path: str
    source_sha256: str
    examples: dict[str, str] = field(default_factory=dict)
    parquet: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def rows(self) -> int:
        return self.table.num_rows


def read_josh_csv(
    path: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
) -> JoshExport:
    """Parse a Josh CSV export, a local file or an ``s3://`` / ``minio://`` object (read with
    ``storage_options``, then the ``AWS_*`` / ``MINIO_*`` environment); raise
    ``FileNotFoundError``, ``StoreError`` for a bucket that cannot be read, or a ``ValueError``
    naming the file, the line and the column when the file is not a valid export. Inside
    ``read_ahead.reading_ahead`` a file parsed ahead and unchanged since is not read again."""
    ahead = take_read_ahead(path)
    return ahead if ahead is not None else parse_josh_csv(path, storage_options=storage_options)


def parse_josh_csv(
    path: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
) -> JoshExport:
    """``read_josh_csv`` without looking for a read ahead."""
    import pyarrow as pa

    remote = is_object_uri(path)
    source = s3_uri(os.fspath(path)) if remote else os.fspath(path)
    data = read_bytes(source, storage_options)
    digest = hashlib.sha256(data).hexdigest()
    header = _header(data, source)
    table = _parse(data, header, source)
    columns: dict[str, pa.Array] = {}
    for name in _REQUIRED:
        columns[name] = _integers(table.column(name), name, source)
    for csv_name, core in POSITION_COLUMNS.items():
        if csv_name in header:
            columns[core] = _numbers(table.column(csv_name), csv_name, source)
        else:
            columns[core] = pa.nulls(table.num_rows, pa.float64())
    variables: dict[str, str] = {}
    examples: dict[str, str] = {}
    seen: dict[str, str] = {}
    core_lower = {c.lower(): c for c in CELL_DATA_CORE_COLUMNS}
    for name in header:
        if name in _REQUIRED or name in POSITION_COLUMNS:
            continue
        low = name.lower()
        if low in core_lower:
            raise ColumnConflictError(
                f"{source}: column '{name}' clashes with the core cell_data column "
                f"'{core_lower[low]}'; rename it in the export"
            )
        if low in seen:
            raise ColumnConflictError(
                f"{source}: columns '{seen[low]}' and '{name}' differ only by case; DuckDB column "
                "names are case-insensitive, so rename one of them"
            )
        seen[low] = name
        columns[name], variables[name], examples[name] = _variable(table.column(name), name, source)
    identity = source if remote else os.path.abspath(source)
    return JoshExport(
        pa.table(columns), variables, identity, digest, {k: v for k, v in examples.items() if v}
    )


def to_parquet_bytes(table: pa.Table) -> bytes:
    """The table as one zstd-compressed Parquet file, in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", compression_level=1)
    return sink.getvalue().to_pybytes()


def _header(data: bytes, source: str) -> list[str]:
    end = data.find(b"\n")
    first = (data if end < 0 else data[:end]).rstrip(b"\r")  # not split(): it copies the rest
    if not first.strip():
        raise InvalidArgumentError(f"{source}: line 1: the file is empty or has no header row")
    try:
        header = next(csv.reader(io.StringIO(first.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as e:
        raise InvalidArgumentError(f"{source}: line 1: the header cannot be read: {e}") from e
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise InvalidArgumentError(f"{source}: line 1: duplicate column names: {', '.join(dupes)}")
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise InvalidArgumentError(
            f"{source}: a Josh export needs columns {' and '.join(_REQUIRED)}; missing "
            f"{', '.join(missing)}. Columns found: {', '.join(header) or '(none)'}"
        )
    return header


def _parse(data: bytes, header: list[str], source: str) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        return pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(use_threads=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as e:
        raise InvalidArgumentError(f"{source}: {_where(data, len(header), str(e))}") from e


def _where(data: bytes, width: int, message: str) -> str:
    """pyarrow's parse errors name no line; find the first row of the wrong width (slow, but
    only on the error path) so the user can open the file at the right place."""
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig", "replace")))
    for row in reader:
        if row and len(row) != width:
            return f"line {reader.line_num}: expected {width} fields (as in the header), found {len(row)}"
    return message.replace("CSV parse error: ", "")


# A number as Josh writes one: decimals, exponents, NaN and (-)Infinity.
_NUMBER = r"^[-+]?((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|nan|inf|infinity)$"


def _variable(col: pa.ChunkedArray, name: str, source: str) -> tuple[pa.Array, str, str]:
    """A variable column typed by the rule above, and where its first value is (or "")."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = col.combine_chunks()
    valid = pc.is_valid(values)
    if not pc.any(valid).as_py():
        return pc.cast(values, pa.float64()), "DOUBLE", ""
    first = pc.index(valid, True).as_py()
    example = f"line {first + 2}: {values[first].as_py()!r}"
    # The common case first: a cast that succeeds and yields no NaN read only spellings the
    # pattern accepts too (the cast also takes ``nan(...)``, which the pattern refuses, so a
    # column holding any NaN takes the exact path below). Four times cheaper than the pattern.
    # A cast that fails costs about 11 ms per 40,000 rows (as much as parsing the file): text
    # columns, whose first value is no number, never try it.
    doubles = None
    if re.fullmatch(_NUMBER, values[first].as_py(), re.IGNORECASE):
        with contextlib.suppress(pa.ArrowInvalid):
            doubles = pc.cast(values, pa.float64())
    if doubles is not None and not pc.any(pc.is_nan(doubles)).as_py():
        return doubles, "DOUBLE", example
    # Text columns hold few distinct values: test each distinct value once.
    distinct = pc.drop_null(pc.unique(values))
    numbers = pc.sum(pc.match_substring_regex(distinct, _NUMBER, ignore_case=True)).as_py() or 0
    if numbers == 0:
        return values, "VARCHAR", example
    if numbers == len(distinct):
        try:
            return pc.cast(values, pa.float64()), "DOUBLE", example
        except pa.ArrowInvalid:  # a spelling the pattern took for a number: find it (error path)
            for i, v in enumerate(values.to_pylist()):
                try:
                    pc.cast(pa.array([v]), pa.float64())
                except pa.ArrowInvalid:
                    raise InvalidArgumentError(
                        f"{source}: line {i + 2}: column '{name}' needs a number, found {v!r}"
                    ) from None
    numeric = pc.fill_null(pc.match_substring_regex(values, _NUMBER, ignore_case=True), False)
    text_at = pc.index(pc.and_(valid, pc.invert(numeric)), True).as_py()
    number_at = pc.index(numeric, True).as_py()
    raise InvalidArgumentError(
        f"{source}: line {text_at + 2}: column '{name}' mixes numbers and text: "
        f"{values[text_at].as_py()!r} is not a number, but line {number_at + 2} holds the number "
        f"{values[number_at].as_py()!r}. A variable holds only numbers (NaN and Infinity count) or "
        "only text; fix the file and load it again (nothing was loaded)"
    )


def _first_bad(values: pa.Array, ok: pa.Array) -> tuple[int, str]:
    import pyarrow.compute as pc

    bad = pc.and_(pc.invert(ok), pc.is_valid(values))
    index = pc.index(bad, True).as_py()
    return index, values[index].as_py()


def _numbers(col: pa.ChunkedArray, name: str, source: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    values = col.combine_chunks()
    try:
        return pc.cast(values, pa.float64())
    except pa.ArrowInvalid:
        ok = pc.match_substring_regex(values, r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
        index, value = _first_bad(values, pc.fill_null(ok, True))
        raise InvalidArgumentError(
            f"{source}: line {index + 2}: column '{name}' needs a number, found {value!r}"
        ) from None


def _integers(col: pa.ChunkedArray, name: str, source: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    values = col.combine_chunks()
    missing = pc.sum(pc.is_null(values)).as_py() or 0
    if missing:
        index = pc.index(pc.is_null(values), True).as_py()
        raise InvalidArgumentError(f"{source}: line {index + 2}: column '{name}' is empty")
    try:
        return pc.cast(values, pa.int32())
    except pa.ArrowInvalid:
        ok = pc.match_substring_regex(values, r"^\s*[-+]?\d+\s*$")
        if not pc.all(ok).as_py():
            index, value = _first_bad(values, ok)
            raise InvalidArgumentError(
                f"{source}: line {index + 2}: column '{name}' needs a whole number, found {value!r}"
            ) from None
    # Each value looks whole: find the one DuckDB's INTEGER cannot hold (the error path only).
    limit = 2**31 - 1
    for i, v in enumerate(values.to_pylist()):
        try:
            pc.cast(pa.array([v]), pa.int32())
        except pa.ArrowInvalid:
            if v.strip().lstrip("+-").isdigit() and abs(int(v)) > limit:
                raise InvalidArgumentError(
                    f"{source}: line {i + 2}: column '{name}' holds {v.strip()}, too large for a {name} "
                    f"(at most {limit:,}); check the file"
                ) from None
            raise InvalidArgumentError(
                f"{source}: line {i + 2}: column '{name}' needs a whole number, found {v!r}"
            ) from None
    return pc.cast(values, pa.int32())
