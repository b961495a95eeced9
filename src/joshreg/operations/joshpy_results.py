"""Importing joshpy's ``cell_data`` (one result file per execution, written in threads) and its
labels (one label commit).
"""

from __future__ import annotations

import hashlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from joshreg.log.events import (
    LabelAction,
    LabelAssigned,
    ResultsLoaded,
)
from joshreg.log.labels import LabelLog, LabelState
from joshreg.operations.joshpy_source import POSITIONS, event_id
from joshreg.projection.sqltext import quote_identifier
from joshreg.results.josh_csv import to_parquet_bytes

if TYPE_CHECKING:
    import pyarrow as pa


class ImportResults:
    """The results and labels of an import. A mixin of the importer."""

    def results(self) -> None:
        import pyarrow as pa

        src, con = self.src, self.tgt.con
        if not src.has("cell_data"):
            return
        columns = src.tables["cell_data"]
        variables, types = self.cell_types
        rows = con.execute(
            "SELECT run_id, run_hash, entity_type, max(import_through) FROM events_results_loaded "
            "WHERE import_through IS NOT NULL GROUP BY ALL"
        ).fetchall()
        through = pa.table(
            [pa.array([r[i] for r in rows], pa.string()) for i in range(3)]
            + [pa.array([r[3] for r in rows], pa.int64())],
            names=["run_id", "run_hash", "entity_type", "through"],
        )

        def cast(c: str) -> str:
            q = quote_identifier(c)
            return f"CAST(c.{q} AS {'DOUBLE' if types[c] == 'DOUBLE' else 'VARCHAR'}) AS {q}"

        positions = ", ".join(
            f"CAST(c.{p} AS DOUBLE) AS {p}" if p in columns else f"CAST(NULL AS DOUBLE) AS {p}"
            for p in POSITIONS
        )
        values = "".join(", " + cast(c) for c in variables)
        entity = "coalesce(c.entity_type, 'patch')" if "entity_type" in columns else "'patch'"
        # The rows after those an earlier import of this source brought in, per run and type.
        new = f"""
            SELECT c.cell_id, c.run_id, c.run_hash, {entity} AS entity_type,
                   CAST(c.step AS INTEGER) AS step, CAST(c.replicate AS INTEGER) AS replicate,
                   {positions}{values}, c.cell_id <= coalesce(t.through, -1) AS seen
            FROM cell_data c LEFT JOIN _through t
              ON t.run_id IS NOT DISTINCT FROM c.run_id AND t.run_hash IS NOT DISTINCT FROM c.run_hash
             AND t.entity_type = {entity}"""
        order = "ORDER BY run_id NULLS FIRST, run_hash NULLS FIRST, entity_type"
        src.con.register("_through", through)
        try:
            groups = src.con.execute(
                f"SELECT run_id, run_hash, entity_type, count(*), max(cell_id) FROM ({new}) "
                f"WHERE NOT seen GROUP BY ALL {order}"
            ).fetchall()
            self.present["result_rows"] += src.con.execute(
                f"SELECT count(*) FROM ({new}) WHERE seen"
            ).fetchone()[0]
            reader = None
            if not self.dry_run:
                reader = src.con.execute(
                    f"SELECT * EXCLUDE (seen) FROM ({new}) WHERE NOT seen {order}, cell_id"
                ).to_arrow_reader(1 << 16)
            pending: list[pa.RecordBatch] = []
            buffered = 0
            # Result files are written and claimed in threads (Parquet encoding, hashing and
            # fsync release the GIL); their events follow in the source's order.
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="joshreg-import") as pool:
                ahead: deque[tuple[tuple[Any, ...], Future[tuple[str, str]] | None]] = deque()
                for i, (rid, h, etype, n, last) in enumerate(groups):
                    rows = None
                    if reader is not None:
                        while buffered < n:
                            batch = reader.read_next_batch()
                            pending.append(batch)
                            buffered += batch.num_rows
                        table = pa.Table.from_batches(pending)
                        rows, pending, buffered = table.slice(0, n), table.slice(n).to_batches(), buffered - n
                        rows = rows.drop_columns(["cell_id", "run_id", "run_hash", "entity_type"])
                    if h in self.bad_hashes or rid in self.skipped_runs:
                        continue
                    blob = None if rows is None else pool.submit(self._write_blob, rows)
                    ahead.append(((rid, h, etype, n, types, last), blob))
                    if len(ahead) >= 16:
                        self._record_results(*ahead.popleft())
                    if i % 100 == 0:
                        self._say("results", i, len(groups))
                while ahead:
                    self._record_results(*ahead.popleft())
        finally:
            src.con.unregister("_through")
        if groups:
            self.report.differences.append(
                "cell_data.cell_id is renumbered in the order joshreg loads the rows"
            )

    def _write_blob(self, rows: pa.Table) -> tuple[str, str]:
        """One execution's rows as a content-addressed result file; its name and SHA-256."""
        blob = to_parquet_bytes(rows)
        sha = hashlib.sha256(blob).hexdigest()
        name = f"blobs/{sha[:2]}/{sha}.parquet"
        self.tgt.store.claim(name, blob)
        return name, sha

    def _record_results(self, group: tuple[Any, ...], blob: Future[tuple[str, str]] | None) -> None:
        """The event of one execution's result file, once the file is durable."""
        run_id, run_hash, entity_type, n, types, last = group
        self.added["result_files"] += 1
        self.added["result_rows"] += n
        if blob is None:  # a dry run
            return
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
