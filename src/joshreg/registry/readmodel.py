"""The point reads' read model: answers kept in dicts for as long as the tables stay as they were.

DuckDB answers even a primary-key lookup in 0.3-1 ms from Python (parsing, planning, converting
the result); a dict answers in a microsecond. A registry's reads catch up with the log first,
and its projector counts every change it makes to the tables (``TrackedProjector.generation``):
the model compares that count at each read and starts empty when it moved, so an answer kept
here is never older than the catch-up before it (read-your-writes and every other process's
writes once caught up, exactly as without it). Raw SQL through the registry (``query``,
``conn``) empties it too, in case it wrote.

Answers are kept as the rows DuckDB returned (tuples of immutable values); each call builds a
new dataclass from them, so a caller who changes what it got changes nothing here.

Each kind fills one key at a time (the same query as without the model) until misses suggest a
loop over many keys: once ``misses * ROWS_PER_MISS`` reaches the table's row count (at most
``MAX_ROWS``), one query loads the whole table, and a key missing then is known to be absent.
So a loop that alternates writes and reads costs what it did, and a loop of reads over a small
or medium table costs one scan plus a dict lookup a call.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import duckdb

from joshreg.projection import queries as q

__all__ = ["ReadModel"]

#: Misses of one kind before the model asks how big its table is.
FIRST_COUNT_AFTER = 4
#: Load a whole table once the misses since the last change, times this, reach its rows: a
#: point query costs about as much as converting 256 rows in a scan.
ROWS_PER_MISS = 256
#: Larger tables are only ever read a key at a time.
MAX_ROWS = 250_000
#: Answers kept a key at a time, at most (then forgotten together, and kept again).
MAX_KEPT = 250_000

_ABSENT = object()


class _Kind:
    """The answers of one kind of read, by key."""

    __slots__ = ("answers", "complete", "count", "every", "misses", "one", "rows")

    def __init__(
        self,
        one: Callable[[Any], Any],
        every: Callable[[], dict[Any, Any]],
        count: Callable[[], int],
    ) -> None:
        self.one, self.every, self.count = one, every, count
        self.answers: dict[Any, Any] = {}
        self.complete = False
        self.misses = 0
        self.rows: int | None = None

    def get(self, key: Hashable, absent: Any) -> Any:
        found = self.answers.get(key, _ABSENT)
        if found is not _ABSENT:
            return found
        if self.complete:
            return absent
        self.misses += 1
        if self.misses >= FIRST_COUNT_AFTER:
            if self.rows is None:
                self.rows = self.count()
            if self.rows <= MAX_ROWS and self.misses * ROWS_PER_MISS >= self.rows:
                self.answers = self.every()
                self.complete = True
                return self.answers.get(key, absent)
        if len(self.answers) >= MAX_KEPT:
            self.answers.clear()
        found = self.answers[key] = self.one(key)
        return found


class ReadModel:
    """Point reads of one projection, answered from dicts between its changes."""

    def __init__(self) -> None:
        self.generation: int | None = None
        self._kinds: dict[str, _Kind] = {}
        self._con: duckdb.DuckDBPyConnection | None = None

    def clear(self) -> None:
        """Forget every answer (the tables changed, or may have)."""
        self._kinds.clear()
        self.generation = None

    def use(self, con: duckdb.DuckDBPyConnection, generation: int) -> ReadModel:
        """Ready to answer from ``con``'s tables, which are at ``generation``: emptied first if
        they changed since the answers kept were read."""
        if generation != self.generation or con is not self._con:
            self.clear()
            self.generation, self._con = generation, con
        return self

    def _kind(self, name: str) -> _Kind:
        kind = self._kinds.get(name)
        if kind is None:
            kind = self._kinds[name] = self._make(name)
        return kind

    def _count(self, table: str) -> Callable[[], int]:
        return lambda: self._db().execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]

    def _db(self) -> duckdb.DuckDBPyConnection:
        assert self._con is not None
        return self._con

    def _make(self, name: str) -> _Kind:
        db = self._db
        if name == "session":
            return _Kind(
                lambda k: next(iter(q.session_rows(db(), k)), None),
                lambda: {r[0]: r for r in q.session_rows(db())},
                self._count("sweep_sessions"),
            )
        if name == "config":
            return _Kind(
                lambda k: next(iter(q.config_records(db(), k)), None),
                lambda: {r[0][0]: r for r in q.config_records(db())},
                self._count("job_configs"),
            )
        if name == "label":
            return _Kind(
                lambda k: q.resolve_label(db(), k),
                lambda: q.label_holders(db()),
                self._count("job_configs"),
            )
        if name == "run":
            return _Kind(
                lambda k: next(iter(q.run_rows(db(), k)), None),
                lambda: {r[0]: r for r in q.run_rows(db())},
                self._count("job_runs"),
            )
        if name == "runs_of":
            return _Kind(
                lambda k: tuple(q.runs_by_hash(db(), k)[k]),
                lambda: {h: tuple(rows) for h, rows in q.runs_by_hash(db()).items()},
                self._count("job_runs"),
            )
        if name == "latest":
            return _Kind(
                lambda k: q.latest_run_id(db(), k),
                lambda: q.latest_run_ids(db()),
                self._count("job_runs"),
            )
        if name == "registered":  # event rows with JSON bodies: a key at a time, never all
            return _Kind(
                lambda k: q.registered_parameters_text(db(), k),
                dict,
                lambda: MAX_ROWS + 1,  # never loaded whole
            )
        raise KeyError(name)

    # --- the reads ------------------------------------------------------------------------------

    def session_row(self, session_id: str) -> tuple[Any, ...] | None:
        return self._kind("session").get(session_id, None)

    def config_record(self, run_hash: str) -> q.ConfigRecord | None:
        return self._kind("config").get(run_hash, None)

    def label_holder(self, label: str) -> str | None:
        return self._kind("label").get(label, None)

    def run_row(self, run_id: str) -> tuple[Any, ...] | None:
        return self._kind("run").get(run_id, None)

    def run_rows_of(self, run_hash: str) -> tuple[tuple[Any, ...], ...]:
        return self._kind("runs_of").get(run_hash, ())

    def latest_run_id(self, run_hash: str) -> str | None:
        return self._kind("latest").get(run_hash, None)

    def registered_parameters(self, run_hash: str) -> tuple[str | None] | None:
        return self._kind("registered").get(run_hash, None)
