"""Verification: is every byte of a store what its writers wrote, and do the tables match it?

Replay never stops at damage: it skips what it cannot trust and goes on. ``verify_store`` is the
opposite: it reads everything once, looking for damage, and says what it found and what to do
about it. It checks

- every segment line's framing, checksum and ``p`` link (``codec.verify_lines``), and a torn
  last line, which is only damage once its writer can no longer complete it;
- every writer's sequence numbers: gaps, repeats, lines out of order, and the same events in
  two segment files (a copied file);
- every compacted segment: its Parquet gives back the bytes it was made from (their SHA-256),
  which are checked line by line like any segment; a JSONL still beside it (a compaction
  interrupted before deleting it) must be those same bytes, and is then only a warning;
- the label log and every label stream a merge imported: versions 1..N without a hole, each
  commit intact and chained to the previous;
- every result file a ``results.loaded`` event names: present, with the recorded SHA-256;
- the projection: rebuilt privately (in a bounded in-memory DuckDB database) from the log as
  the projection has read it, then every public table compared with the given connection's, as
  multisets of rows. The scan checks each chunk the rebuild's reader reads as it reads it, so
  the log is read and decoded once for both; only what the rebuild does not read is scanned
  separately.
"""

from __future__ import annotations

import time

import duckdb

from joshreg.log.labelstreams import imported_dirs
from joshreg.log.store.base import LogStore
from joshreg.operations.verify_claims import check_blobs, check_labels
from joshreg.operations.verify_log import STALE_AFTER_S, Scan, check_segments, observer
from joshreg.operations.verify_report import VerifyProblem, VerifyProgress, VerifyReport
from joshreg.operations.verify_tables import (
    Checkpoint,
    Rebuild,
    check_projection,
    projection_side,
    read_checkpoint,
)
from joshreg.projection.orphans import find_orphans

__all__ = [
    "STALE_AFTER_S",
    "VerifyProblem",
    "VerifyProgress",
    "VerifyReport",
    "verify_store",
]


def verify_store(
    store: LogStore,
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    rebuild: bool = True,
    spatial: bool = False,
    progress: VerifyProgress | None = None,
    now: float | None = None,
) -> VerifyReport:
    """Check ``store`` for damage and, with ``con``, the projection in it.

    With ``con``, segment bytes and label commits the projection has read must still exist
    (a log truncated at a line boundary or cut short by whole commits passes every checksum),
    and with ``rebuild`` every public table must equal a fresh rebuild. ``con`` must be caught
    up with the store: the rebuild reads the log only as far as the projection's checkpoint
    says it has, so writers appending meanwhile cause no false alarms. ``spatial`` rebuilds
    ``cell_data.geom`` as a registry with spatial support does.
    """
    t0 = time.perf_counter()
    report = VerifyReport(store.location)
    checkpoint = read_checkpoint(con) if con is not None else None
    scan = Scan()
    # The private rebuild runs in a thread, and the scan checks every chunk its reader reads
    # (one read and decode of the log for both); the label log is checked meanwhile. What the
    # rebuild does not read (lines after the checkpoint, compacted segments, which it loads
    # without decoding) is scanned here afterwards.
    rebuilder = (
        Rebuild(store, checkpoint, spatial, observer(scan, report))
        if rebuild and isinstance(checkpoint, Checkpoint)
        else None
    )
    try:
        labels_head = check_labels(store, report)
        for imported in imported_dirs(store):  # label streams a merge brought in
            check_labels(store, report, imported)
        # The projection's side of the table comparison, while the rebuild's reader still has
        # the first batch to read and DuckDB would otherwise idle.
        mine = projection_side(con) if rebuilder is not None and con is not None else None
        fresh = rebuilder.wait(progress) if rebuilder is not None else None
        check_segments(store, scan, report, progress, time.time() if now is None else now)
        check_blobs(store, report, scan.loads, progress)
        if con is not None and checkpoint is not None:
            check_projection(store, con, report, scan, labels_head, checkpoint, fresh, progress, mine)
        if con is not None:
            for o in find_orphans(con):
                report.add(
                    VerifyProblem("orphan", o.message, file=o.segment, line=o.line, severity="warning")
                )
    finally:
        if rebuilder is not None:
            rebuilder.close()
    for found in (report.problems, report.warnings):  # by file and line, the tables last
        found.sort(key=lambda p: (p.table is not None, p.file or "", p.line or 0))
    report.seconds = time.perf_counter() - t0
    return report
