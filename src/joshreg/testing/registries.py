"""Looking at registries in tests: their tables as comparable data, and a job config to start one.

For joshreg's own tests and for tests of code built on joshreg (a sweep runner, a notebook
helper): ``dump_tables`` gives every row of the public tables as plain, sorted data, so two
registries built differently (recorded, rebuilt, imported, merged) compare with ``==``;
``table_differences`` says how two of them differ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

from joshreg.projection.tables import PUBLIC_TABLES
from joshreg.registry.reader import RegistryReader

__all__ = ["PUBLIC_TABLES", "FakeJobConfig", "dump_table", "dump_tables", "table_differences"]


@dataclass
class FakeJobConfig:
    """The few attributes of joshpy's ``JobConfig`` that ``create_session`` reads."""

    simulation: str = "Main"
    template_path: str | None = "sweep.jshc.j2"
    replicates: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"template_path": self.template_path, **self.extra}
        if self.simulation != "Main":
            out["simulation"] = self.simulation
        if self.replicates != 1:
            out["replicates"] = self.replicates
        return out


def _connection(source: RegistryReader | duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    if isinstance(source, RegistryReader):
        con = source.conn
        if con is None:
            raise ValueError("the registry is closed")
        return con
    return source


def dump_table(
    source: RegistryReader | duckdb.DuckDBPyConnection, table: str, *, skip: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """Every row of ``table`` as a dict by column name (JSON parsed, ``skip`` columns left out),
    sorted: order of rows and columns, and JSON formatting, do not matter."""
    con = _connection(source)
    cols = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = ? AND table_schema = current_schema() ORDER BY column_name",
        [table],
    ).fetchall()
    keep = [(c, t) for c, t in cols if c not in skip]
    names = ", ".join('"' + c.replace('"', '""') + '"' for c, _ in keep)
    rows = []
    for values in con.execute(f"SELECT {names} FROM {table}").fetchall():
        row = {}
        for (name, typ), value in zip(keep, values, strict=True):
            row[name] = json.loads(value) if typ == "JSON" and value is not None else value
        rows.append(row)
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def dump_tables(
    source: RegistryReader | duckdb.DuckDBPyConnection,
    tables: tuple[str, ...] = PUBLIC_TABLES,
    *,
    skip: dict[str, frozenset[str]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """``dump_table`` of each of ``tables``; ``skip`` leaves columns out per table."""
    return {t: dump_table(source, t, skip=(skip or {}).get(t, frozenset())) for t in tables}


def table_differences(
    a: dict[str, list[dict[str, Any]]], b: dict[str, list[dict[str, Any]]], *, limit: int = 3
) -> list[str]:
    """How two ``dump_tables`` differ, a line per table (empty when they are equal)."""
    out = []
    for table in sorted(set(a) | set(b)):
        left, right = a.get(table, []), b.get(table, [])
        if left == right:
            continue
        only_a = [r for r in left if r not in right][:limit]
        only_b = [r for r in right if r not in left][:limit]
        out.append(
            f"{table}: {len(left)} rows against {len(right)}; "
            f"only in the first {only_a}; only in the second {only_b}"
        )
    return out
