"""Time travel: log positions, and a projection of the log up to one of them.

A position is a hybrid-logical-clock value (``hlc``: nanoseconds since the Unix epoch, bumped by
one when the wall clock stands still or goes back). Every event and every label commit already
carries one, so positions order the whole log with the time embedded, and position ``P`` means
"every event and label commit with ``hlc <= P``". A datetime ``T`` (naive means UTC) is the
largest position whose time, at the microsecond precision the tables show (``recorded_at``,
``changed_at``, ``created_at``), is at most ``T``.

Label commits are ordered by their version, not by clock; but a committer reads the label log to
its head and folds each commit's ``hlc`` into its clock before it stamps the next commit, so
version ``n + 1`` always has a larger ``hlc`` than version ``n``, and ``hlc <= P`` selects a
prefix of the versions. Should a log ever break that (label logs merged from several stores),
the rule stays the same: the label commits as of ``P`` are those with ``hlc <= P``.

As with any clock, a position says when the registry *learned* a fact: a writer whose clock runs
behind stamps its events earlier than a reader may have seen them.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import duckdb

from joshreg.errors import InvalidArgumentError
from joshreg.log.clock import hlc_to_datetime
from joshreg.log.codec import Problem
from joshreg.log.store.base import LogStore
from joshreg.projection.projector import Projector
from joshreg.projection.tables import EVENT_TABLES

__all__ = ["Moment", "describe", "parse_when", "project_as_of", "to_position"]

Moment = datetime | int
"""What ``as_of`` accepts: a datetime (naive means UTC) or a log position."""

_EPOCH = datetime(1970, 1, 1)
_MICRO = timedelta(microseconds=1)


def _naive_utc(when: datetime) -> datetime:
    return when if when.tzinfo is None else when.astimezone(UTC).replace(tzinfo=None)


def to_position(when: Moment | str) -> int:
    """The log position of ``when``: an int is one already; a datetime (or ISO text, see
    ``parse_when``) is the last position at or before it."""
    if isinstance(when, str):
        when = parse_when(when)
    if isinstance(when, bool) or not isinstance(when, (int, datetime)):
        raise InvalidArgumentError(
            f"as_of needs a datetime or a log position (an int), got {type(when).__name__} {when!r}"
        )
    if isinstance(when, int):
        if when < 0:
            raise InvalidArgumentError(f"a log position is at least 0, got {when}")
        return when
    micros = (_naive_utc(when) - _EPOCH) // _MICRO
    return micros * 1000 + 999


def parse_when(text: str) -> Moment:
    """``2026-07-29T18:00`` (seconds, fraction and timezone optional; naive means UTC; a space
    may replace the ``T``; a date alone is its midnight) or a log position (digits, optionally
    after ``@``, as ``joshreg log`` prints it)."""
    s = text.strip()
    digits = s.removeprefix("@")
    if digits.isdigit():
        return int(digits)
    try:
        return datetime.fromisoformat(s)
    except ValueError:
        raise InvalidArgumentError(
            f"cannot read {text!r} as a time or a log position: give an ISO date and time such as "
            "2026-07-29T18:00 (UTC unless it has a zone, e.g. +02:00) or a position such as "
            "1785348000123456789 (from `joshreg log` or label_history)"
        ) from None


def describe(when: Moment, position: int) -> str:
    """``when`` for messages and ``repr``: the time asked for, or the position and its time."""
    if isinstance(when, datetime):
        return f"{_naive_utc(when).isoformat(sep=' ')} UTC"
    return f"log position {position} ({hlc_to_datetime(position).isoformat(sep=' ')} UTC)"


def project_as_of(
    source: duckdb.DuckDBPyConnection,
    store: LogStore,
    position: int,
    *,
    spatial: bool = False,
) -> tuple[duckdb.DuckDBPyConnection, Projector, list[Problem]]:
    """A new in-memory DuckDB whose tables are those of the log up to ``position``.

    The typed event tables and ``label_history`` of ``source`` (a caught-up projection) are
    copied through Arrow, filtered by ``hlc``, and projected by a full refresh; result rows come
    from the immutable result files in ``store``. Nothing is decoded from the log again, so this
    costs a scan of the projection, not a replay. Returns the connection, its projector and any
    damaged result files.
    """
    con = duckdb.connect(":memory:")
    try:
        # A view is built once and thrown away: checkpointing its in-memory tables after each
        # big insert costs a sixth of the CPU time and gains nothing.
        con.execute("SET checkpoint_threshold = '1TB'")
        projector = Projector(con, store, spatial=spatial)
        tables = [table for table, _ in EVENT_TABLES.values()] + ["label_history"]
        # One table per thread: inserting an Arrow stream is single-threaded per statement,
        # and copying is about half the time a view takes.
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            for done in [pool.submit(_copy_rows, source, con, t, position) for t in tables]:
                done.result()
        problems = projector.project_tables()
    except BaseException:
        con.close()
        raise
    return con, projector, problems


def _copy_rows(
    source: duckdb.DuckDBPyConnection, target: duckdb.DuckDBPyConnection, table: str, position: int
) -> None:
    """Copy the rows of ``table`` with ``hlc <= position``; each call uses its own cursors."""
    src, dst = source.cursor(), target.cursor()
    try:
        # UUIDs cross as 16 bytes, not as text to format and parse again.
        src.execute("SET SESSION arrow_lossless_conversion = true")
        rows = src.execute(f"SELECT * FROM {table} WHERE hlc <= ?", [position]).arrow()
        dst.register("_as_of_rows", rows)
        dst.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _as_of_rows")
    finally:
        src.close()
        dst.close()
