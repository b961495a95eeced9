"""Reading ``run_tags``: one key's tags, a scope's tag names, and matches by JSON value.

Matching happens here in Python on decoded JSON, by JSON type: numbers numerically (1 matches
1.0), text only text (``"1"`` never matches 1), ``True`` only true (never 1). Tag names are
looked up in decoded objects, so no name is ever put into a JSON path or SQL text.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from typing import Any

import duckdb

from joshreg.projection.sqltext import bind

__all__ = ["find", "json_key", "same_json", "tag_names", "tags_of"]


def tags_of(con: duckdb.DuckDBPyConnection, scope: str, key: str) -> dict[str, Any]:
    row = con.execute(bind("SELECT tags FROM run_tags WHERE scope = ? AND key = ?", [scope, key])).fetchone()
    return json.loads(row[0]) if row else {}


def tag_names(con: duckdb.DuckDBPyConnection, scope: str) -> list[str]:
    """Every tag name used in ``scope``, sorted."""
    rows = con.execute(bind("SELECT tags FROM run_tags WHERE scope = ?", [scope])).fetchall()
    return sorted({name for (text,) in rows for name in json.loads(text)})


def find(
    con: duckdb.DuckDBPyConnection, scope: str, name: str, value: Any, *, current_only: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    """``(key, tags)`` of every key in ``scope`` whose tag ``name`` equals ``value``, sorted by
    key; ``current_only`` (scope ``run_hash``) keeps runs neither superseded nor bad."""
    sql = "SELECT t.key, t.tags FROM run_tags t "
    if current_only:
        sql += (
            "JOIN job_configs jc ON jc.run_hash = t.key "
            "WHERE coalesce(jc.status, 'active') = 'active' AND t.scope = ?"
        )
    else:
        sql += "WHERE t.scope = ?"
    out = []
    for key, text in con.execute(bind(sql + " ORDER BY t.key", [scope])).fetchall():
        tags = json.loads(text)
        if name in tags and same_json(tags[name], value):
            out.append((key, tags))
    return out


def json_key(value: Any) -> Hashable:
    """A hashable stand-in for a JSON value under the matching rule: equal keys exactly when
    the values match (booleans only booleans, numbers numerically, lists and objects by
    element), so matches can be looked up in a dict."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", float(value))
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z",)
    if isinstance(value, (list, tuple)):
        return ("l", tuple(json_key(v) for v in value))
    if isinstance(value, dict):
        return ("o", tuple(sorted((str(k), json_key(v)) for k, v in value.items())))
    return ("s", str(value))


def same_json(a: Any, b: Any) -> bool:
    """Whether two JSON values match (see ``json_key``)."""
    return json_key(a) == json_key(b)
