"""The importer's event ids derived by DuckDB equal ``event_id``'s, value for value: an import
that derives them one way must add nothing when run again the other way."""

from __future__ import annotations

import duckdb
import pytest

from joshreg.operations import joshpy_source
from joshreg.operations.joshpy_source import Source, event_id

VALUES = [
    "run-1",
    "",
    "None",
    "ünïcødé ✓ 🐢",
    "tab\tnew\nline\x1fsep",
    "quote ' and \\ backslash",
    "a" * 300,
]


def _source(sql: str) -> Source:
    con = duckdb.connect()
    con.execute("CREATE TABLE job_configs (run_hash VARCHAR)")
    con.execute(sql)
    return Source("memory", con=con, kind="tables")


@pytest.mark.parametrize("typ", ["VARCHAR", "JSON", "INTEGER", "BIGINT", "UBIGINT", "HUGEINT", "SMALLINT"])
def test_ids_made_in_sql_equal_event_id(typ: str, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _source(f"CREATE TABLE t (k INTEGER, v {typ}, w VARCHAR, stamp TIMESTAMP)")
    if typ in ("VARCHAR",):
        values: list[object] = [*VALUES, None]
    elif typ == "JSON":
        values = ['{"a": [1, 2.5, "x"]}', "[]", '"ü"', None]
    elif typ == "UBIGINT":
        values = [0, 1, 2**64 - 1, None]
    elif typ == "HUGEINT":
        values = [-(2**100), 0, 2**100, None]
    else:
        values = [-32768, -1, 0, 7, 32767, None]
    for k, v in enumerate(values):
        at = None if k % 3 == 0 else f"2026-06-01 12:00:{k % 60:02d}.123456"
        src.con.execute("INSERT INTO t VALUES (?, ?, ?, ?)", [k, v, VALUES[k % len(VALUES)], at])
    ids = (("start", "v"), ("completion", "k", "v", "stamp", "w"), ("missing", "nope"))
    columns = ("k", "v", "w", "stamp", "nope")
    with monkeypatch.context() as m:  # these are all made by DuckDB
        m.setattr(joshpy_source, "event_id", None)
        rows = src.select("t", columns, "Europe/Berlin", ("k",), ids=ids)
    plain = src.select("t", columns, "Europe/Berlin", ("k",))
    assert len(rows) == len(values)
    for row, base in zip(rows, plain, strict=True):
        assert row[: len(columns)] == base
        k, v, w, at, nope = base
        assert row[len(columns) :] == (
            event_id("start", v),
            event_id("completion", k, v, at, w),
            event_id("missing", nope),
        )


def test_ids_of_columns_whose_text_differs_from_python_are_made_in_python() -> None:
    src = _source("CREATE TABLE t (k INTEGER, d DOUBLE, b BOOLEAN, m DECIMAL(9, 2))")
    src.con.execute(
        "INSERT INTO t VALUES (1, 1.0, true, 1.50), (2, 1e20, false, NULL), (3, NULL, NULL, -2.00)"
    )
    for column in ("d", "b", "m"):
        rows = src.select("t", ("k", column), "UTC", ("k",), ids=(("x", "k", column),))
        assert [r[2] for r in rows] == [event_id("x", r[0], r[1]) for r in rows]
