"""Values written into SQL as literals select exactly what DuckDB's own binding selects."""

from __future__ import annotations

import math
from datetime import date, datetime

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joshreg.projection.sqltext import bind, literal, quote_identifier, sql_literal


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def _same(con: duckdb.DuckDBPyConnection, value: object, sql_type: str) -> None:
    bound = con.execute(f"SELECT ?::{sql_type}", [value]).fetchone()
    inlined = con.execute(bind(f"SELECT ?::{sql_type}", [value])).fetchone()
    assert bound is not None and inlined is not None
    if isinstance(bound[0], float) and math.isnan(bound[0]):
        assert math.isnan(inlined[0])
    else:
        assert inlined == bound


_CON = duckdb.connect()


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text_reads_back_unchanged(text: str) -> None:
    _same(_CON, text.replace("\x00", ""), "VARCHAR")


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_reads_back_as_the_same_double(value: float) -> None:
    _same(_CON, value, "DOUBLE")


@pytest.mark.parametrize(
    ("value", "sql_type"),
    [
        (None, "VARCHAR"),
        (True, "BOOLEAN"),
        (False, "BOOLEAN"),
        (0, "BIGINT"),
        (-(2**63), "BIGINT"),
        (2**63 - 1, "BIGINT"),
        (["a", "it's", None], "VARCHAR[]"),
        ([], "VARCHAR[]"),
        (None, "VARCHAR[]"),
        (datetime(2026, 1, 2, 3, 4, 5, 678901), "TIMESTAMP"),
        (date(2026, 1, 2), "DATE"),
    ],
)
def test_values_read_back_as_bound(con: duckdb.DuckDBPyConnection, value: object, sql_type: str) -> None:
    _same(con, value, sql_type)


def test_a_string_meets_a_double_column_as_a_bound_one_does(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE t (x DOUBLE)")
    con.execute("INSERT INTO t VALUES (0.5), (2)")
    sql = "SELECT count(*) FROM t WHERE x = ?"
    for value in ("0.5", 2, 0.5):
        assert con.execute(bind(sql, [value])).fetchone() == con.execute(sql, [value]).fetchone()


def test_placeholders_inside_quotes_are_left_alone() -> None:
    sql = "SELECT '?' AS \"what?\", ? AS v WHERE 'it''s ?' <> ?"
    assert bind(sql, ["a", 1]) == "SELECT '?' AS \"what?\", 'a' AS v WHERE 'it''s ?' <> 1"


def test_a_quote_in_a_value_cannot_end_the_literal(con: duckdb.DuckDBPyConnection) -> None:
    evil = "x'; DROP TABLE t; --"
    assert con.execute(bind("SELECT ?", [evil])).fetchone() == (evil,)


def test_wrong_value_counts_and_unknown_types_are_refused() -> None:
    with pytest.raises(ValueError, match="1 value"):
        bind("SELECT ?, ?", ["a"])
    with pytest.raises(ValueError, match="2 value"):
        bind("SELECT ?", ["a", "b"])
    with pytest.raises(TypeError, match="bytes"):
        literal(b"raw")


def test_quoting_helpers() -> None:
    assert sql_literal("it's") == "'it''s'"
    assert quote_identifier('a"b') == '"a""b"'
