"""SQL text: quoting identifiers, writing values as literals, and binding them into a statement.

Why bind by hand: DuckDB's Python client imports pandas (slow to import) the first time any
statement is executed with parameters, to check whether a value is a DataFrame. Reads that
run on every open and every CLI listing render their few values as typed literals instead,
so ``joshreg sessions`` never pays for pandas. Values come from the caller and are quoted
here, never pasted: a string's single quotes are doubled, which is DuckDB's only escape.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime

__all__ = ["INLINE_BYTES", "INLINE_ROWS", "bind", "literal", "quote_identifier", "sql_literal"]

# Up to this many rows (and bytes of text), a statement names its values in its SQL text rather
# than scanning a registered Arrow table: DuckDB's scan of one has a fixed cost however small
# the table, a short VALUES list a fraction of it. Small catch-ups (a worker's few events) are
# the common case (figures in benchmarks/findings.md).
INLINE_ROWS = 512
INLINE_BYTES = 1 << 20


def sql_literal(text: str) -> str:
    """A string as an SQL literal (``it's`` → ``'it''s'``), for statements that bind nothing."""
    return "'" + text.replace("'", "''") + "'"


def quote_identifier(name: str) -> str:
    """Double-quote a column name for SQL, doubling embedded quotes (``a"b`` → ``"a""b"``)."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """A Python value as the SQL literal DuckDB would have bound it as.

    Strings stay untyped literals so that, like a bound parameter, they take the type of the
    column they meet; floats are typed DOUBLE, parsed from their text, never via a DECIMAL.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return f"({value})" if value < 0 else str(value)  # -x::T casts x before negating
    if isinstance(value, float):
        # Quoted, so DuckDB parses the shortest repr straight to DOUBLE: a bare 0.101483348258453
        # 47 is read as DECIMAL(18,17) first and can land one unit in the last place away; and
        # 'nan', 'inf', '-inf' parse the same way.
        return f"'{value!r}'::DOUBLE"
    if isinstance(value, str):
        return sql_literal(value)
    if isinstance(value, datetime):
        return (
            f"TIMESTAMP '{value.isoformat(sep=' ')}'"
            if value.tzinfo is None
            else (f"TIMESTAMPTZ '{value.isoformat(sep=' ')}'")
        )
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise TypeError(f"cannot write a {type(value).__name__} as an SQL literal")


# A quoted string or identifier (kept whole, so a '?' inside is not a placeholder) or a '?'.
_TOKENS = re.compile(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?)")


def bind(sql: str, params: Sequence[object]) -> str:
    """``sql`` with each ``?`` placeholder replaced by its value's literal, in order."""
    values = iter(params)
    parts = _TOKENS.split(sql)
    count = 0
    for i in range(1, len(parts), 2):
        if parts[i] == "?":
            try:
                parts[i] = literal(next(values))
            except StopIteration:
                raise ValueError(f"{len(params)} value(s) for more placeholders in: {sql}") from None
            count += 1
    if count != len(params):
        raise ValueError(f"{len(params)} value(s) for {count} placeholder(s) in: {sql}")
    return "".join(parts)
