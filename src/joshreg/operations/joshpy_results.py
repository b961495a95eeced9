"""Importing joshpy's ``cell_data`` (one result file per execution, written in threads) and its
labels (one label commit).
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from joshreg.log.events import (
    LabelAction,
    LabelAssigned,
    ResultsLoaded,
)
from joshreg.log.labels import LabelLog, LabelState
from joshreg.operations.joshpy_source import POSITIONS, event_id
from joshreg.projection.handover import handed_over
from joshreg.projection.sqltext import quote_identifier
from joshreg.results.josh_csv import to_parquet_bytes

if TYPE_CHECKING:
    import pyarrow as pa

    from joshreg.operations.joshpy_source import Source


# Result files are written in this many threads, up to BLOB_WINDOW ahead of their events: the
# writes' fsyncs wait on the disk, so more threads than cores keep the cores busy.
BLOB_THREADS = 4
BLOB_WINDOW = 32
# At most this much of the imported rows (Arrow bytes) is handed to a projection that follows
# on the same thread (see handed_over); the rest is read back from the result files.
HANDOVER_BYTES = 512 << 20


def _entity(columns: dict[str, str]) -> str:
    """The SQL of a source row's entity type (joshpy's older tables have none: patches)."""
    return "coalesce(c.entity_type, 'patch')" if "entity_type" in columns else "'patch'"


def _slices(
    reader: pa.RecordBatchReader, first: pa.RecordBatch | None, sizes: list[int]
) -> Iterator[pa.Table]:
    """The reader's rows (``first`` read already) cut into consecutive tables of ``sizes`` rows."""
    import pyarrow as pa

    from joshreg.errors import ConsistencyError

    pending: list[pa.RecordBatch] = [] if first is None else [first]
    buffered = sum(b.num_rows for b in pending)
    for n in sizes:
        while buffered < n:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                raise ConsistencyError(
                    "the source's cell_data changed while it was imported; import it again"
                ) from None
            pending.append(batch)
            buffered += batch.num_rows
        table = pa.Table.from_batches(pending)
        yield table.slice(0, n)
        pending, buffered = table.slice(n).to_batches(), buffered - n


class CellRead:
    """The source's ``cell_data`` rows that no earlier import brought in, counted per run, run
    hash and entity type, and sorted group by group in cell_id order, by DuckDB in a thread of
    its own (on a cursor of its own) while the importer builds the other events: DuckDB works
    without the GIL, so the sort, most of the reading, costs the import no time of its own.

    ``before`` maps (run id, run hash, entity type) to the last cell_id an earlier import of
    this source brought in; ``columns`` is the SQL of the columns of a result file.
    """

    def __init__(
        self, src: Source, before: dict[tuple[Any, Any, Any], int], columns: str, *, rows: bool
    ) -> None:
        self.counted: list[tuple[Any, ...]] = []
        self.reader: pa.RecordBatchReader | None = None
        self.first: pa.RecordBatch | None = None
        self._error: BaseException | None = None
        self._cur = src.con.cursor()
        self._entity = _entity(src.tables["cell_data"])
        self._thread = threading.Thread(
            target=self._run, args=(before, columns, rows), name="joshreg-import-cells", daemon=True
        )
        self._thread.start()

    def _run(self, before: dict[tuple[Any, Any, Any], int], columns: str, rows: bool) -> None:
        import pyarrow as pa

        try:
            cur, entity = self._cur, self._entity
            keys = list(before)
            through = pa.table(
                [pa.array([k[i] for k in keys], pa.string()) for i in range(3)]
                + [pa.array(list(before.values()), pa.int64())],
                names=["run_id", "run_hash", "entity_type", "through"],
            )
            cur.register("_through", through)
            # One scan: per group, how many rows an earlier import brought in (seen) and how
            # many came after them (a row without a cell_id is neither).
            self.counted = cur.execute(
                f"""SELECT c.run_id, c.run_hash, {entity} AS entity_type,
                           c.cell_id <= coalesce(t.through, -1) AS seen, count(*), max(c.cell_id)
                FROM cell_data c LEFT JOIN _through t
                  ON t.run_id IS NOT DISTINCT FROM c.run_id AND t.run_hash IS NOT DISTINCT FROM c.run_hash
                 AND t.entity_type = {entity}
                GROUP BY ALL ORDER BY run_id NULLS FIRST, run_hash NULLS FIRST, entity_type"""
            ).fetchall()
            groups = [r for r in self.counted if r[3] is False]
            if not rows or not groups:
                return
            # Sorted by each group's number (one integer) rather than by its key's three texts.
            cur.register(
                "_groups",
                pa.table(
                    {
                        "run_id": pa.array([g[0] for g in groups]),  # the source's own types
                        "run_hash": pa.array([g[1] for g in groups]),
                        "entity_type": pa.array([g[2] for g in groups]),
                        "g": pa.array(range(len(groups)), pa.int64()),
                        "through": pa.array([before.get(g[:3], -1) for g in groups], pa.int64()),
                    }
                ),
            )
            self.reader = cur.execute(
                f"""SELECT {columns}
                FROM cell_data c JOIN _groups k
                  ON k.run_id IS NOT DISTINCT FROM c.run_id AND k.run_hash IS NOT DISTINCT FROM c.run_hash
                 AND k.entity_type = {entity}
                WHERE c.cell_id > k.through
                ORDER BY k.g, c.cell_id"""
            ).to_arrow_reader(1 << 16)
            self.first = self.reader.read_next_batch()  # the sort happens here
        except BaseException as e:  # handed to the importer's thread by result()
            self._error = e

    def result(self) -> CellRead:
        """Wait for the counts and the first rows; raise what the thread raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self

    def close(self) -> None:
        """Stop a read the import no longer wants (it failed first), then release the cursor."""
        if self._thread.is_alive():
            self._cur.interrupt()
        self._thread.join()
        self._cur.close()


class ImportResults:
    """The results and labels of an import. A mixin of the importer."""

    _cells: CellRead | None = None

    def start_results(self) -> None:
        """Start reading the source's new ``cell_data`` rows (see ``CellRead``); ``check``
        has chosen their columns' types."""
        src, con = self.src, self.tgt.con
        if not src.has("cell_data"):
            return
        columns = src.tables["cell_data"]
        variables, types = self.cell_types

        def cast(c: str) -> str:
            q = quote_identifier(c)
            return f"CAST(c.{q} AS {'DOUBLE' if types[c] == 'DOUBLE' else 'VARCHAR'}) AS {q}"

        positions = ", ".join(
            f"CAST(c.{p} AS DOUBLE) AS {p}" if p in columns else f"CAST(NULL AS DOUBLE) AS {p}"
            for p in POSITIONS
        )
        values = "".join(", " + cast(c) for c in variables)
        selected = (
            f"CAST(c.step AS INTEGER) AS step, CAST(c.replicate AS INTEGER) AS replicate, {positions}{values}"
        )
        before = {
            (r[0], r[1], r[2]): r[3]
            for r in con.execute(
                "SELECT run_id, run_hash, entity_type, max(import_through) FROM events_results_loaded "
                "WHERE import_through IS NOT NULL GROUP BY ALL"
            ).fetchall()
        }
        self._cells = CellRead(src, before, selected, rows=not self.dry_run)

    def stop_results(self) -> None:
        """Release what ``start_results`` holds (after the import or its failure)."""
        if self._cells is not None:
            self._cells.close()

    def results(self) -> None:
        """One result file per execution's new rows, their events in the groups' order."""
        if self._cells is None:
            return
        cells = self._cells.result()
        types = self.cell_types[1]
        self.present["result_rows"] += sum(r[4] for r in cells.counted if r[3] is True)
        groups = [(r[0], r[1], r[2], r[4], r[5]) for r in cells.counted if r[3] is False]
        if groups:
            self.report.differences.append(
                "cell_data.cell_id is renumbered in the order joshreg loads the rows"
            )
        if self.dry_run:
            for g in groups:
                if g[1] not in self.bad_hashes and g[0] not in self.skipped_runs:
                    self._record_results((*g[:4], types, g[4]), None)
            return
        if not groups:
            return
        assert cells.reader is not None
        sizes = [g[3] for g in groups]
        # A caller that projects on this thread right after (handing_over) takes the tables
        # instead of reading back the files they were encoded into, up to HANDOVER_BYTES.
        handover = handed_over(self.tgt.store)
        room = HANDOVER_BYTES

        def record(group: tuple[Any, ...], blob: Future[tuple[str, str]], rows: pa.Table) -> None:
            nonlocal room
            name = self._record_results(group, blob)
            if handover is not None and name is not None and rows.nbytes <= room:
                handover.put(name, rows)
                room -= rows.nbytes

        # Result files are written and claimed in threads (Parquet encoding, hashing, writing
        # and fsync release the GIL); their events follow in the groups' order.
        with ThreadPoolExecutor(max_workers=BLOB_THREADS, thread_name_prefix="joshreg-import") as pool:
            ahead: deque[tuple[tuple[Any, ...], Future[tuple[str, str]], pa.Table]] = deque()
            for i, (g, rows) in enumerate(
                zip(groups, _slices(cells.reader, cells.first, sizes), strict=True)
            ):
                if g[1] in self.bad_hashes or g[0] in self.skipped_runs:
                    continue  # a conflicting run's rows: read, never written
                ahead.append(((*g[:4], types, g[4]), pool.submit(self._write_blob, rows), rows))
                if len(ahead) >= BLOB_WINDOW:
                    record(*ahead.popleft())
                if i % 100 == 0:
                    self._say("results", i, len(groups))
            while ahead:
                record(*ahead.popleft())

    def _write_blob(self, rows: pa.Table) -> tuple[str, str]:
        """One execution's rows as a content-addressed result file; its name and SHA-256."""
        blob = to_parquet_bytes(rows)
        sha = hashlib.sha256(blob).hexdigest()
        name = f"blobs/{sha[:2]}/{sha}.parquet"
        self.tgt.store.claim(name, blob)
        return name, sha

    def _record_results(self, group: tuple[Any, ...], blob: Future[tuple[str, str]] | None) -> str | None:
        """The event of one execution's result file, once the file is durable; its name."""
        run_id, run_hash, entity_type, n, types, last = group
        self.added["result_files"] += 1
        self.added["result_rows"] += n
        if blob is None:  # a dry run
            return None
        name, sha = blob.result()
        self._append(
            ResultsLoaded(
                event_id=event_id("results", run_id, run_hash, entity_type, last),
                run_id=run_id,
                run_hash=run_hash,
                entity_type=entity_type,
                blob=name,
                blob_sha256=sha,
                source_path=f"{self.src.path}::cell_data",
                source_sha256=sha,
                row_count=n,
                columns=types,
                import_through=last,
            )
        )
        return name

    def labels(self) -> None:
        holders: dict[str, list[str]] = {}
        for h, label in self.src.select("job_configs", ("run_hash", "label"), self.tz, ("run_hash",)):
            if label is not None:
                holders.setdefault(label, []).append(h)
        wanted: dict[str, str] = {}
        for label, hashes in sorted(holders.items()):
            # The most recently registered holder keeps a label joshpy let several runs hold.
            hashes.sort(key=lambda h: (self.config_time.get(h) or 0, h))
            keep = hashes[-1]
            if len(hashes) > 1:
                self.report.differences.append(
                    f"label {label!r} was held by {len(hashes)} runs ({', '.join(hashes)}); it stays with "
                    f"the most recently registered, {keep}"
                )
            if keep in self.bad_hashes:
                self.report.conflicts.append(
                    f"label {label!r}: its run {keep} conflicts (see above); left out"
                )
                continue
            wanted[label] = keep
        conflicts: list[str] = []

        def plan(state: LabelState) -> list[LabelAction]:
            conflicts.clear()
            actions: list[LabelAction] = []
            present = 0
            for label, h in wanted.items():
                if state.holder.get(label) == h:
                    present += 1
                    continue
                if label in state.holder:
                    conflicts.append(
                        f"label {label!r} is held by {state.holder[label]} in the registry; kept that"
                    )
                elif h in state.label_of:
                    conflicts.append(
                        f"run {h} holds label {state.label_of[h]!r} in the registry; {label!r} was left out"
                    )
                else:
                    actions.append(LabelAssigned(label=label, run_hash=h, reason="imported"))
            self.present["labels"] = present
            return actions

        if self.tgt.labels is None:  # a dry run: plan against the current state only
            log = LabelLog(self.tgt.store)
            log.refresh()
            n = len(plan(log.state))
        else:
            commit = self.tgt.labels.commit(plan)
            n = len(commit.actions) if commit is not None else 0
        self.report.conflicts.extend(conflicts)
        if n:
            self.added["labels"] = n
