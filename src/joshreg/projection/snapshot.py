"""Read-only snapshots of a registry's tables, for processes that cannot open its DuckDB file.

DuckDB lets one process hold a database file read-write and refuses every other process, even a
read-only one, while it does. A process that owns the file (``joshreg watch``, a coordinator's
``RunRegistry``) therefore publishes a copy beside it, ``sweep.snapshot.duckdb``, which any
number of readers (a notebook, R, the DuckDB CLI) open read-only at any moment.

A snapshot is written whole under a temporary name, fsynced, then renamed over the previous one:
a reader sees either the old or the new copy, never half of one, and a reader that has the old
copy open keeps reading it. The projection commits its rows and checkpoint together, so every
snapshot is a consistent state of the projection.

The owner never opens its own DuckDB file to copy it: DuckDB locks the file with POSIX ``fcntl``
locks, which the kernel drops when the process closes *any* descriptor of that file, so a copy
made in-process would let a second process open the file read-write. The bytes are copied by a
child process (``cp``) instead.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import duckdb

from joshreg.errors import JoshregError

__all__ = ["SNAPSHOT_SUFFIX", "publish_snapshot", "snapshot_path"]

SNAPSHOT_SUFFIX = ".snapshot.duckdb"


def snapshot_path(db_path: str | os.PathLike[str]) -> Path:
    """Where a registry's snapshot goes: ``sweep.duckdb`` → ``sweep.snapshot.duckdb``."""
    p = Path(db_path)
    return p.with_name((p.stem if p.suffix else p.name) + SNAPSHOT_SUFFIX)


def _fsync(path: str, *, directory: bool = False) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync a directory
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _copy_in_child(source: str | os.PathLike[str], target: Path) -> bool:
    """Copy ``source`` to ``target`` in a child process; False if there is no ``cp``."""
    cp = shutil.which("cp")
    if cp is None:
        return False
    proc = subprocess.run(
        [cp, "--", os.fspath(source), os.fspath(target)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise OSError(f"cp failed ({proc.returncode}): {proc.stderr.strip()}")
    return True


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def publish_snapshot(
    con: duckdb.DuckDBPyConnection,
    target: str | os.PathLike[str],
    *,
    source_file: str | os.PathLike[str] | None = None,
) -> float:
    """Write the database of ``con`` to ``target`` atomically; return the seconds it took.

    With ``source_file`` (the file ``con`` holds), the file is checkpointed and copied as bytes
    by a child process, the fast way. Without it (an in-memory projection), or when a
    checkpoint is impossible (another transaction of this process is open), the tables are
    copied with ``COPY FROM DATABASE``, an order of magnitude slower.
    """
    t0 = time.perf_counter()
    final = Path(target)
    if source_file is not None and final.resolve() == Path(source_file).resolve():
        raise JoshregError(f"the snapshot {final} would overwrite the registry file it copies")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        copied = False
        if source_file is not None:
            try:
                con.execute("CHECKPOINT")
            except duckdb.Error:
                pass  # e.g. a cursor of this process is mid-transaction: copy the tables instead
            else:
                copied = _copy_in_child(source_file, tmp)
        if not copied:
            current = con.execute("SELECT current_database()").fetchone()[0]
            alias = f"joshreg_snapshot_{secrets.token_hex(4)}"
            con.execute(f"ATTACH '{str(tmp).replace(chr(39), chr(39) * 2)}' AS {alias}")
            try:
                con.execute(f"COPY FROM DATABASE {_quote(current)} TO {alias}")
            finally:
                con.execute(f"DETACH {alias}")
        _fsync(str(tmp))
        os.replace(tmp, final)
        _fsync(str(final.parent), directory=True)
    except (OSError, duckdb.Error) as e:
        raise JoshregError(f"cannot publish the snapshot {final}: {e}") from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{tmp}.wal")
    return time.perf_counter() - t0
