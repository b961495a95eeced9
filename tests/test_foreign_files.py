"""Files joshreg did not write are never changed, get no event store beside them, and get one
clear line saying what they are and what to do."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from joshpy_shapes import JoshpyRegistry, small_sweep
from joshreg import RunRecorder, RunRegistry
from joshreg.cli.app import main
from joshreg.errors import (
    ForeignDatabaseError,
    JoshregError,
    LogFormatError,
    RegistryBusyError,
    StoreMismatchError,
)
from joshreg.testing.registries import FakeJobConfig


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(params=["seed", "seed-without-keys", "head"])
def joshpy_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A joshpy registry at the seed's version (with and without its keys) and at HEAD."""
    folder = tmp_path / "old"
    folder.mkdir()
    return small_sweep(
        folder / "old.duckdb", keys=request.param != "seed-without-keys", head=request.param == "head"
    )


def test_a_joshpy_registry_is_refused_and_left_as_it_was(joshpy_file: Path) -> None:
    before = tree(joshpy_file.parent)
    with pytest.raises(ForeignDatabaseError) as info:
        RunRegistry(joshpy_file)
    message = str(info.value)
    assert "is a joshpy registry" in message and "joshreg import" in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, JoshregError)
    assert tree(joshpy_file.parent) == before  # no byte changed, no events folder made


def test_every_read_command_refuses_a_joshpy_registry_in_one_line(
    joshpy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree(joshpy_file.parent)
    for command in (
        ["sessions"],
        ["runs"],
        ["labels"],
        ["log"],
        ["info", "baseline"],
        ["verify"],
        ["rebuild"],
    ):
        code, out, err = run_cli(capsys, command[0], joshpy_file, *command[1:])
        assert code == 2, command
        assert out == ""
        assert err.count("\n") == 1 and err.startswith("joshreg: error: ") and "Traceback" not in err
        assert "joshpy registry" in err and f"joshreg import {joshpy_file}" in err
    assert tree(joshpy_file.parent) == before


def test_the_rows_of_a_joshpy_file_without_keys_survive(tmp_path: Path) -> None:
    path = small_sweep(tmp_path / "old.duckdb", keys=False)
    with duckdb.connect(str(path), read_only=True) as con:
        before = {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone() for t in ("sweep_sessions", "job_configs")
        }
    with pytest.raises(ForeignDatabaseError):
        RunRegistry(path)
    with duckdb.connect(str(path), read_only=True) as con:
        after = {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone() for t in ("sweep_sessions", "job_configs")
        }
    assert after == before and before["job_configs"] == (3,)


def test_an_unknown_duckdb_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE measurements (x DOUBLE)")
        con.execute("INSERT INTO measurements VALUES (1.5)")
    before = tree(tmp_path)
    with pytest.raises(
        ForeignDatabaseError, match=r"DuckDB file joshreg did not write \(tables: measurements"
    ):
        RunRegistry(path)
    assert tree(tmp_path) == before


def test_a_duckdb_file_with_no_tables_becomes_a_registry(tmp_path: Path) -> None:
    path = tmp_path / "blank.duckdb"
    duckdb.connect(str(path)).close()
    with RunRegistry(path) as reg:
        reg.create_session(type("C", (), {"to_dict": lambda self: {}})())
    with RunRegistry(path) as reg:
        assert len(reg.list_sessions()) == 1


def test_a_view_only_duckdb_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "views.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE VIEW v AS SELECT 1 AS x")
    with pytest.raises(ForeignDatabaseError, match="views or sequences: v"):
        RunRegistry(path)


@pytest.mark.parametrize(
    ("content", "what"),
    [(b"", "is an empty file"), (b"id,value\n1,2\n" * 50, "is not a DuckDB database")],
)
def test_a_file_that_is_not_duckdb_is_refused(tmp_path: Path, content: bytes, what: str) -> None:
    path = tmp_path / "x.duckdb"
    path.write_bytes(content)
    with pytest.raises(ForeignDatabaseError, match=what):
        RunRegistry(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.duckdb"]
    assert path.read_bytes() == content


def test_a_directory_is_refused_and_nothing_is_made_beside_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.duckdb").mkdir()
    with pytest.raises(ForeignDatabaseError, match="is a directory, not a registry file") as info:
        RunRegistry(tmp_path / "x.duckdb")
    assert "cache" not in str(info.value)
    code, _, err = run_cli(capsys, "sessions", tmp_path / "x.duckdb")
    assert code == 2 and "is a directory" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.duckdb"]


def _with_header(source: Path, target: Path, version: int, written_by: bytes) -> None:
    """A copy of ``source`` whose header claims another storage version and DuckDB release,
    with the header's checksum redone as DuckDB computes it."""
    data = bytearray(source.read_bytes())
    data[12:20] = struct.pack("<Q", version)
    data[52:84] = written_by.ljust(32, b"\0")
    total = 5381
    for (word,) in struct.iter_unpack("<Q", bytes(data[8:4096])):
        total ^= (word * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    data[0:8] = struct.pack("<Q", total)
    target.write_bytes(bytes(data))


def test_a_file_of_a_newer_duckdb_gets_the_export_command(tmp_path: Path) -> None:
    source = small_sweep(tmp_path / "seed.duckdb")
    (tmp_path / "new").mkdir()
    path = tmp_path / "new" / "old.duckdb"
    _with_header(source, path, 99, b"v2.0.1")
    with pytest.raises(ForeignDatabaseError) as info:
        RunRegistry(path)
    message = str(info.value)
    assert (
        f"was written by DuckDB v2.0.1 (storage version 99), which joshreg's DuckDB {duckdb.__version__}"
        in message
    )
    assert "EXPORT DATABASE" in message and f"joshreg import {tmp_path / 'new' / 'old-export'}" in message
    assert "\n" not in message
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["old.duckdb"]
    # The command it gives works where that DuckDB is installed: run it here on a readable copy.
    command = message.split("Where joshpy is installed, run: ", 1)[1].split(" ; then:", 1)[0]
    readable = tmp_path / "readable"
    readable.mkdir()
    shutil.copy(source, readable / "old.duckdb")
    command = command.replace(str(path), str(readable / "old.duckdb")).replace(
        str(tmp_path / "new" / "old-export"), str(readable / "old-export")
    )
    command = command.replace("python -c", f"{sys.executable} -c", 1)
    subprocess.run(command, shell=True, check=True)
    assert (readable / "old-export" / "job_configs.parquet").is_file()


def test_a_projection_of_a_newer_joshreg_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sweep.duckdb"
    RunRegistry(path).close()
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE joshreg_meta SET value = '99' WHERE key = 'projector_version'")
    before = tree(tmp_path)
    with pytest.raises(
        ForeignDatabaseError, match=r"written by a newer joshreg \(projection version 99.*upgrade joshreg"
    ):
        RunRegistry(path)
    assert tree(tmp_path) == before


def test_a_joshpy_file_with_a_pending_wal_is_refused_and_its_wal_kept(tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    jp = JoshpyRegistry(live / "old.duckdb")
    jp.con.execute("CHECKPOINT")
    jp.con.execute("SET wal_autocheckpoint = '1GB'")
    jp.create_session({}, "pending")
    (tmp_path / "copy").mkdir()
    for name in ("old.duckdb", "old.duckdb.wal"):  # the files as a crash would leave them
        shutil.copy(live / name, tmp_path / "copy" / name)
    jp.close()
    before = tree(tmp_path / "copy")
    assert "old.duckdb.wal" in before
    with pytest.raises(ForeignDatabaseError, match="joshpy registry"):
        RunRegistry(tmp_path / "copy" / "old.duckdb")
    assert tree(tmp_path / "copy") == before


def _hold(path: Path) -> subprocess.Popen[str]:
    """Another process that holds ``path`` open read-write until killed."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); "
            "print('held', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.slow  # other processes
def test_a_joshpy_file_held_by_a_running_sweep_is_busy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = small_sweep(tmp_path / "old.duckdb")
    proc = _hold(path)
    try:
        with pytest.raises(
            RegistryBusyError, match="locked by another process and is not a joshreg registry"
        ):
            RunRegistry(path)
        code, _, err = run_cli(capsys, "sessions", path)
        assert code == 2 and "locked by another process" in err
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    assert not (tmp_path / "old.events").exists()


@pytest.mark.slow  # other processes
def test_a_joshreg_registry_held_by_another_process_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "sweep.duckdb"
    with RunRegistry(path) as reg:
        reg.create_session(type("C", (), {"to_dict": lambda self: {}})(), experiment_name="held")
    proc = _hold(path)
    try:
        with RunRegistry(path) as other:
            assert other.private_projection
            assert [s.experiment_name for s in other.list_sessions()] == ["held"]
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_a_worker_does_not_make_a_store_beside_a_joshpy_file(tmp_path: Path) -> None:
    path = small_sweep(tmp_path / "old.duckdb")
    with pytest.raises(LogFormatError, match="no event store at"):
        RunRecorder(path, session_id="s")
    assert not (tmp_path / "old.events").exists()


# --- a projection and the store it was built from ------------------------------------------------


@pytest.fixture
def built(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.duckdb"
    with RunRegistry(path) as reg:
        reg.create_session(FakeJobConfig(), experiment_name="mine")
    return path


def test_a_missing_store_is_refused_instead_of_emptying_the_registry(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "typo.events"
    with pytest.raises(StoreMismatchError, match=f"not at {elsewhere} .nothing is there"):
        RunRegistry(built, events_path=elsewhere)
    assert not elsewhere.exists()
    code, _, err = run_cli(capsys, "sessions", built, "--events-path", elsewhere)
    assert code == 2 and "joshreg rebuild" in err and err.count("\n") == 1
    with RunRegistry(built) as reg:  # nothing was lost
        assert [s.experiment_name for s in reg.list_sessions()] == ["mine"]


def test_another_store_is_refused_naming_both(built: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.duckdb"
    with RunRegistry(other) as reg:
        reg.create_session(FakeJobConfig(), experiment_name="theirs")
        theirs = reg.store.store_id
    with RunRegistry(built) as reg:
        mine = reg.store.store_id
    with pytest.raises(StoreMismatchError) as info:
        RunRegistry(built, events_path=tmp_path / "other.events")
    assert f"built from event store {mine}" in str(info.value) and f"is event store {theirs}" in str(
        info.value
    )
    with RunRegistry(built) as reg:
        assert [s.experiment_name for s in reg.list_sessions()] == ["mine"]


def test_rebuild_points_a_registry_at_another_store(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.duckdb"
    with RunRegistry(other) as reg:
        reg.create_session(FakeJobConfig(), experiment_name="theirs")
    code, out, err = run_cli(capsys, "rebuild", built, "--events-path", tmp_path / "other.events")
    assert code == 0, err
    assert out.startswith("rebuilt 1 events")  # the other store's session
    with RunRegistry(built, events_path=tmp_path / "other.events") as reg:
        assert [s.experiment_name for s in reg.list_sessions()] == ["theirs"]
    with pytest.raises(StoreMismatchError):
        RunRegistry(built)  # now it is the other store's projection


def test_a_projection_older_than_store_ids_takes_its_store_s_id(built: Path, tmp_path: Path) -> None:
    with duckdb.connect(str(built)) as con:
        con.execute("DELETE FROM joshreg_meta WHERE key = 'store_id'")
    with RunRegistry(built) as reg:
        assert [s.experiment_name for s in reg.list_sessions()] == ["mine"]
    with pytest.raises(StoreMismatchError):
        RunRegistry(built, events_path=tmp_path / "fresh.events")


def test_a_folder_of_other_files_is_not_made_an_event_store(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "climate.jshd").write_text("x")
    with pytest.raises(LogFormatError, match="other files in it and no FORMAT"):
        RunRegistry(tmp_path / "sweep.duckdb", events_path=tmp_path / "data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["climate.jshd"]
