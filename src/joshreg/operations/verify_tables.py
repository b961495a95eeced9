"""Verifying the projection: a private rebuild of the log as far as the projection has read it,
in a bounded in-memory database, compared with the tables table by table.
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

import duckdb
import msgspec

from joshreg.log.labels import commit_name
from joshreg.log.reader import ChunkObserver
from joshreg.log.snapshot_store import SnapshotStore
from joshreg.log.store.base import LogStore
from joshreg.operations.verify_log import Scan
from joshreg.operations.verify_report import VerifyProblem, VerifyProgress, VerifyReport
from joshreg.projection.projector import Projector
from joshreg.projection.sqltext import quote_identifier
from joshreg.projection.tables import EVENT_TABLE_NAMES, PUBLIC_TABLES

#: The buffer pool of the private rebuild (in memory, spilling to a temporary folder beyond this).
REBUILD_MEMORY = "512MB"


SAMPLES = 3


#: Every table compared with a fresh rebuild: what a user can query, and the event tables.
_COMPARED = (*PUBLIC_TABLES, *EVENT_TABLE_NAMES)


_KEYS: dict[str, tuple[str, ...]] = {
    "sweep_sessions": ("session_id",),
    "job_configs": ("run_hash",),
    "session_configs": ("session_id", "run_hash"),
    "config_parameters": ("run_hash",),
    "job_runs": ("run_id",),
    "run_outputs": ("output_id",),
    "cell_data": ("cell_id",),
    "label_history": ("version", "idx"),
    "labels_current": ("label",),
}


@dataclass
class Checkpoint:
    """What the projection says it has read: segment byte offsets and label versions."""

    read: list[tuple[str, int, int]]  # (segment, byte offset, lines)
    labels_head: int
    imports: dict[str, int]  # imported label stream -> the version the tables hold

    def snapshot(self, store: LogStore) -> SnapshotStore:
        sizes = {segment: offset for segment, offset, _ in self.read}
        return SnapshotStore(store, sizes, self.labels_head, self.imports)


def read_checkpoint(con: duckdb.DuckDBPyConnection) -> Checkpoint | str:
    """The projection's checkpoint, or why it cannot be read."""
    try:
        read = con.execute("SELECT segment, byte_offset, line FROM joshreg_segments").fetchall()
        head = con.execute("SELECT value FROM joshreg_meta WHERE key = 'labels_head'").fetchone()
        held = con.execute("SELECT value FROM joshreg_meta WHERE key = 'label_imports'").fetchone()
    except duckdb.Error as e:
        return str(e)
    imports: dict[str, int] = msgspec.json.decode(held[0]) if held else {}
    return Checkpoint(read, int(head[0]) if head else 0, imports)


class _Stopped(Exception):
    """Raised into a private rebuild that is no longer wanted."""


class Rebuild:
    """A private rebuild of the log as a checkpoint says the projection has read it, running in
    a thread from construction until ``wait``.

    It goes to an in-memory database whose buffer pool is bounded and spills to a temporary
    folder: a DuckDB file would also compress and write every row, which cost a 10⁶-event
    verify about 20% of its time for tables that are thrown away, and an unbounded in-memory
    database would hold a second copy of the tables. The public tables that are one query over
    the event tables are views there (``Projector(materialize=False)``): the comparison reads
    each once, which costs about half of writing its rows first.
    """

    def __init__(
        self, store: LogStore, checkpoint: Checkpoint, spatial: bool, observer: ChunkObserver | None = None
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="joshreg-verify-")
        self.fresh = duckdb.connect(":memory:", config=_rebuild_config(self._tmp.name))
        self.progress: tuple[int, int] | None = None
        self.error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(
            target=self._run,
            args=(checkpoint.snapshot(store), spatial, observer),
            name="joshreg-verify-rebuild",
            daemon=True,
        )
        self._thread.start()

    def _run(self, snapshot: SnapshotStore, spatial: bool, observer: ChunkObserver | None) -> None:
        def rebuilding(done: int, total: int) -> None:
            if self._stop:
                raise _Stopped
            self.progress = (done, total)

        try:
            projector = Projector(self.fresh, snapshot, spatial=spatial, materialize=False)
            projector.reader.observer = observer
            projector.rebuild(rebuilding)
        except BaseException as e:  # handed to the waiting thread
            self.error = e

    def wait(self, progress: VerifyProgress | None) -> duckdb.DuckDBPyConnection:
        """Wait for the rebuild, passing its progress on from this thread (as ``"segments"``:
        its reading is the scan); its connection."""
        shown = None
        while True:
            self._thread.join(0.1)
            now = self.progress
            if progress and now is not None and now != shown:
                shown = now
                progress("segments", *now)
            if not self._thread.is_alive():
                break
        if self.error is not None:
            raise self.error
        # The reader is done: the comparison's scans, which also run the views' queries, get
        # every core.
        self.fresh.execute("RESET threads")
        return self.fresh

    def close(self) -> None:
        if self._thread.is_alive():  # verification failed: stop the rebuild first
            self._stop = True
            self.fresh.interrupt()
            self._thread.join()
        self.fresh.close()
        self._tmp.cleanup()


def check_projection(
    store: LogStore,
    con: duckdb.DuckDBPyConnection,
    report: VerifyReport,
    scan: Scan,
    labels_present: int,
    checkpoint: Checkpoint | str,
    fresh: duckdb.DuckDBPyConnection | None,
    progress: VerifyProgress | None,
    mine: _Projection | None,
) -> None:
    """What ``con`` has read must still be there; with ``fresh`` (a private rebuild), compare
    every public table with it (``mine``: ``con``'s side, when taken already)."""
    if isinstance(checkpoint, str):
        report.add(
            VerifyProblem(
                "projection-unreadable",
                f"the projection's checkpoint cannot be read ({checkpoint}); run `joshreg rebuild` to "
                "recreate the tables from the log",
            )
        )
        return
    _check_checkpoint(store, report, scan, checkpoint.read, checkpoint.labels_head, labels_present)
    for prefix, version in sorted(checkpoint.imports.items()):
        if version and store.read_claim(commit_name(version, prefix)) is None:
            report.add(
                VerifyProblem(
                    "label-hole",
                    f"the tables show commits up to {version} of this imported label stream, but "
                    "they are gone from the log. Restore them from a backup or merge the source "
                    "registry again; a rebuild would forget those label changes.",
                    commit_name(version, prefix),
                )
            )
    if fresh is not None:
        _compare_rebuild(con, fresh, report, progress, mine)


def _rebuild_config(tmp: str) -> dict[str, str]:
    """The private rebuild's DuckDB settings: a bounded buffer pool that spills to ``tmp``, so
    that verifying a big registry does not hold a second copy of its tables in memory; and one
    DuckDB thread, as the rebuild's reader (reading, checking, decoding) keeps another core
    busy: two took more CPU for the same wall time or longer (benchmarks/findings.md)."""
    return {"memory_limit": REBUILD_MEMORY, "temp_directory": os.path.join(tmp, "spill"), "threads": "1"}


def _compare_rebuild(
    con: duckdb.DuckDBPyConnection,
    fresh: duckdb.DuckDBPyConnection,
    report: VerifyReport,
    progress: VerifyProgress | None,
    mine: _Projection | None,
) -> None:
    """Compare every public table of ``con`` with the rebuild's in ``fresh`` (``mine``:
    ``con``'s side, when taken already)."""
    if report.problems:  # the log changed under the tables: rebuilding would lose rows
        advice = (
            "The tables were built before the log damage reported above; restore the log first, "
            "as `joshreg rebuild` would drop what only the tables still hold."
        )
    else:
        advice = (
            "The DuckDB file was changed outside joshreg (or by a joshreg bug); run `joshreg "
            "rebuild REGISTRY` to replace the tables with what the log says."
        )
    have = mine.columns if mine is not None else _columns(con)
    prints = mine.fingerprints if mine is not None else {}
    want = _columns(fresh)
    event_diffs: list[str] = []
    for i, table in enumerate(_COMPARED, 1):
        diff = _compare_table(
            con, fresh, table, have.get(table, {}), want.get(table, {}), report, prints.get(table)
        )
        if diff is not None and table in EVENT_TABLE_NAMES:
            event_diffs.append(f"{table}: {diff}" if not event_diffs else f"{table}: {diff.split(';')[0]}")
        elif diff is not None:
            report.add(
                VerifyProblem(
                    "projection-differs",
                    f"not what a fresh rebuild of the log gives: {diff}. {advice}",
                    table=table,
                )
            )
        report.tables.append(table)
        if progress:
            progress("tables", i, len(_COMPARED))
    if event_diffs:  # one problem for the events: they differ together when lines moved
        report.add(
            VerifyProblem(
                "projection-differs",
                f"the events the tables hold are not what a fresh rebuild of the log reads: "
                f"{' | '.join(event_diffs)}. {advice}",
                table="event_log",
            )
        )


def _check_checkpoint(
    store: LogStore,
    report: VerifyReport,
    scan: Scan,
    read: list[tuple[str, int, int]],
    labels_head: int,
    labels_present: int,
) -> None:
    """Segments and label commits the tables were built from must not have shrunk or gone."""
    restore = "Restore it from a backup or another copy of the store; a rebuild would lose those events."
    now = {s.name: s.size for s in store.segments()}
    for segment, offset, lines in sorted(read):
        if segment not in now:
            report.add(
                VerifyProblem(
                    "missing-segment",
                    f"the tables hold {lines} lines read from this segment, but the file is gone "
                    f"(deleted or moved). {restore}",
                    segment,
                )
            )
        elif now[segment] < offset:
            have = scan.lines.get(segment, 0)
            report.add(
                VerifyProblem(
                    "segment-shrank",
                    f"the tables hold {lines} lines ({offset} bytes) read from this segment, but it now "
                    f"has only {have} complete lines ({now[segment]} bytes): lines were removed from it "
                    f"or its end was cut off. {restore}",
                    segment,
                    have + 1,
                )
            )
    if labels_head > labels_present:
        first = labels_present + 1
        what = f"commit {first} is" if first == labels_head else f"commits {first}-{labels_head} are"
        report.add(
            VerifyProblem(
                "label-hole",
                f"the tables show label {what} gone from the log: the newest label commits were "
                "deleted. Restore them from a backup; a rebuild would forget those label changes.",
                commit_name(first),
            )
        )


@dataclass
class _Projection:
    """The projection's side of the comparison: every table's columns, and each compared
    table's fingerprint over its columns (sorted, as ``_compare_table`` takes them)."""

    columns: dict[str, dict[str, str]]
    fingerprints: dict[str, tuple[int, int]]


def projection_side(con: duckdb.DuckDBPyConnection) -> _Projection | None:
    """``con``'s side of the comparison; None when its tables cannot be read (the comparison
    then says why)."""
    try:
        have = _columns(con)
        prints = {t: _fingerprint(con, t, sorted(have[t])) for t in _COMPARED if t in have}
    except duckdb.Error:
        return None
    return _Projection(have, prints)


def _fingerprint(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> tuple[int, int]:
    """Row count and the sum of row hashes: equal for equal multisets of rows."""
    cols = ", ".join(quote_identifier(c) for c in columns)
    n, h = con.execute(f"SELECT count(*), coalesce(sum(hash({cols})), 0) FROM {table}").fetchone()
    return int(n), int(h)


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Every table's and view's columns and types (one query, not one per table)."""
    out: dict[str, dict[str, str]] = {}
    for table, column, typ in con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_catalog = current_database()"
    ).fetchall():
        out.setdefault(table, {})[column] = "DOUBLE" if typ in ("DOUBLE", "FLOAT", "REAL") else typ
    return out


def _compare_table(
    con: duckdb.DuckDBPyConnection,
    fresh: duckdb.DuckDBPyConnection,
    table: str,
    have: dict[str, str],
    want: dict[str, str],
    report: VerifyReport,
    mine: tuple[int, int] | None,
) -> str | None:
    """How ``table`` differs from the rebuild's, or None when the rows are the same multiset
    (``mine``: the projection's fingerprint, when taken already)."""
    if have != want:
        extra = sorted(set(have) - set(want))
        lost = sorted(set(want) - set(have))
        typed = sorted(c for c in set(have) & set(want) if have[c] != want[c])
        parts = [f"columns only in the projection: {', '.join(extra)}"] if extra else []
        parts += [f"columns only in a rebuild: {', '.join(lost)}"] if lost else []
        parts += [f"{c} is {have[c]}, a rebuild makes it {want[c]}" for c in typed]
        return "; ".join(parts)
    columns = sorted(have)
    if mine is None:
        mine = _fingerprint(con, table, columns)
    if mine == _fingerprint(fresh, table, columns):
        return None
    if table == "cell_data":
        rest = [c for c in columns if c != "cell_id"]
        if _fingerprint(con, table, rest) == _fingerprint(fresh, table, rest):
            report.add(
                VerifyProblem(
                    "cell-ids-differ",
                    "cell_data holds the rows a rebuild gives, but numbers some of them differently "
                    "(results loaded by several processes arrived out of clock order). Harmless "
                    "unless you kept cell_id values: a rebuild renumbers them.",
                    table=table,
                    severity="warning",
                )
            )
            return None
    return _differences(con, fresh, table, columns)


def _differences(
    con: duckdb.DuckDBPyConnection, fresh: duckdb.DuckDBPyConnection, table: str, columns: list[str]
) -> str:
    """How many rows differ each way, and a few of them (changed columns only, when paired)."""
    select = ", ".join(f"{quote_identifier(c)}::VARCHAR AS {quote_identifier(c)}" for c in columns)
    fresh.register("_projection", con.execute(f"SELECT {select} FROM {table}").to_arrow_table())
    try:
        mine = f"SELECT * FROM _projection EXCEPT ALL SELECT {select} FROM {table}"
        theirs = f"SELECT {select} FROM {table} EXCEPT ALL SELECT * FROM _projection"
        n_mine = fresh.execute(f"SELECT count(*) FROM ({mine})").fetchone()[0]
        n_theirs = fresh.execute(f"SELECT count(*) FROM ({theirs})").fetchone()[0]
        rows_mine = [dict(zip(columns, r, strict=True)) for r in fresh.execute(f"{mine} LIMIT 50").fetchall()]
        rows_theirs = [
            dict(zip(columns, r, strict=True)) for r in fresh.execute(f"{theirs} LIMIT 50").fetchall()
        ]
    finally:
        fresh.unregister("_projection")
    keys = _KEYS.get(table, ("event_id",) if "event_id" in columns else ())
    samples: list[str] = []
    unpaired = list(rows_theirs)
    for row in rows_mine:
        if len(samples) >= SAMPLES:
            break
        other = next((r for r in unpaired if keys and all(r[k] == row[k] for k in keys)), None)
        if other is not None:
            unpaired.remove(other)
            changed = ", ".join(
                f"{c} {_short(row[c])} (rebuild: {_short(other[c])})" for c in columns if row[c] != other[c]
            )
            samples.append(f"{_key(row, keys)} has {changed}")
        else:
            samples.append(f"only in the projection: {_row(row, keys)}")
    for row in unpaired[: max(0, SAMPLES - len(samples))]:
        samples.append(f"only in a rebuild: {_row(row, keys)}")
    counts = f"{n_mine} row{'s' if n_mine != 1 else ''} not in a rebuild, {n_theirs} missing"
    return f"{counts}; e.g. " + "; ".join(samples) if samples else counts


def _short(value: object, width: int = 40) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _key(row: dict[str, Any], keys: tuple[str, ...]) -> str:
    return ", ".join(f"{k}={_short(row[k])}" for k in keys) if keys else "a row"


def _row(row: dict[str, Any], keys: tuple[str, ...]) -> str:
    shown = [*keys, *(c for c in row if c not in keys)][:6]
    more = ", ..." if len(row) > len(shown) else ""
    return "{" + ", ".join(f"{c}={_short(row[c], 24)}" for c in shown) + more + "}"
