"""The importer reads cell_data in a thread of its own while it builds the other events: an
import that fails first leaves no read running and no result file written."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from joshpy_shapes import small_sweep
from joshreg import RunRegistry
from joshreg.operations import joshpy_import


def test_a_failed_import_stops_its_cell_read_and_writes_no_result_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = small_sweep(tmp_path / "old.duckdb")

    def fail(self: object) -> None:
        raise RuntimeError("stop here")

    monkeypatch.setattr(joshpy_import._Importer, "runs", fail)
    with RunRegistry(tmp_path / "new.duckdb") as reg, pytest.raises(RuntimeError, match="stop here"):
        reg.import_joshpy(source, source_timezone="UTC")
    assert not [t for t in threading.enumerate() if t.name == "joshreg-import-cells"]
    assert not list((tmp_path / "new.events").rglob("*.parquet"))
    monkeypatch.undo()
    with RunRegistry(tmp_path / "new.duckdb") as reg:  # and the import can be run again
        report = reg.import_joshpy(source, source_timezone="UTC")
        assert report.added["result_rows"] == reg.query("SELECT count(*) FROM cell_data").fetchone()[0] > 0
    assert list((tmp_path / "new.events").rglob("*.parquet"))  # where the first looked


def test_the_import_rebuild_takes_the_imported_tables_and_gets_the_rows_of_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """import_joshpy's rebuild inserts the result tables the importer just wrote instead of
    reading its own files back; a rebuild from those files gives the very same rows."""
    from joshreg.log.store.local import LocalStore

    source = small_sweep(tmp_path / "old.duckdb")
    reads: list[str] = []
    read_claim = LocalStore.read_claim

    def counted(self: LocalStore, name: str) -> bytes | None:
        if name.startswith("blobs/"):
            reads.append(name)
        return read_claim(self, name)

    monkeypatch.setattr(LocalStore, "read_claim", counted)
    with RunRegistry(tmp_path / "handed.duckdb") as reg:
        reg.import_joshpy(source, source_timezone="UTC")
        assert reads == []
        handed = reg.query("SELECT * EXCLUDE (geom) FROM cell_data ORDER BY cell_id").fetchall()
    assert handed
    (tmp_path / "handed.duckdb").unlink()
    with RunRegistry(tmp_path / "handed.duckdb") as reg:  # rebuilt from the files alone
        assert reg.query("SELECT * EXCLUDE (geom) FROM cell_data ORDER BY cell_id").fetchall() == handed
    assert reads
