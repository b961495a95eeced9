"""A batch load hands its parsed tables to its own catch-up: the same rows, files still written."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from joshreg import CellDataLoader, RunRegistry
from joshreg.projection.handover import handed_over, handing_over
from joshreg.testing.registries import dump_tables


def _exports(folder: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        path = folder / f"e{i}.csv"
        rows = "".join(f"{s},{i},{s * 0.5 + i},{'alive' if s % 2 else 'dead'},1.5,2.5\n" for s in range(5))
        path.write_text("step,replicate,height,status,position.longitude,position.latitude\n" + rows)
        paths.append(path)
    return paths


def _load(db: Path, paths: list[Path], config: object, count_reads: list[str] | None = None) -> RunRegistry:
    reg = RunRegistry(db, enable_spatial=True)
    sid = reg.create_session(config)
    reg.register_run(sid, "h1", "m.josh", "c", None, {})
    runs = [reg.start_run("h1", session_id=sid, replicate=i) for i in range(len(paths))]
    reg.sync()
    if count_reads is not None:
        store = reg._store
        read = store.read_claim

        def counting(name: str) -> bytes | None:
            if name.startswith("blobs/"):
                count_reads.append(name)
            return read(name)

        store.read_claim = counting  # type: ignore[method-assign]
    CellDataLoader(reg).load_csv_batch([(p, r, "h1") for p, r in zip(paths, runs, strict=True)])
    return reg


def test_a_batch_load_inserts_its_tables_without_reading_its_files_back(tmp_path: Path, config) -> None:
    paths = _exports(tmp_path, 3)
    reads: list[str] = []
    reg = _load(tmp_path / "a.duckdb", paths, config, reads)
    assert reads == []
    blobs = [r[0] for r in reg.query("SELECT blob FROM events_results_loaded ORDER BY hlc").fetchall()]
    assert len(blobs) == 3
    for blob in blobs:  # every result file is written and decodes to the rows loaded
        table = pq.read_table(pa.BufferReader(reg._store.read_claim(blob)))
        assert table.num_rows == 5
    loaded = dump_tables(reg)
    reg.close()
    (tmp_path / "a.duckdb").unlink()
    rebuilt = RunRegistry(tmp_path / "a.duckdb", enable_spatial=True)  # from the files alone
    assert dump_tables(rebuilt) == loaded
    rebuilt.close()


def test_a_handover_serves_only_its_own_store(tmp_path: Path) -> None:
    store, other = object(), object()
    with handing_over(store) as handover:
        handover.put("blobs/x", pa.table({"a": [1]}))
        assert handed_over(store) is handover and handed_over(other) is None
        assert handover.get("blobs/x") is not None
    assert handed_over(store) is None and handover.get("blobs/x") is None
