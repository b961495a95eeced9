"""What a registry path holds, found out without changing it, and whether joshreg may write it.

joshreg drops and recreates tables only in a DuckDB file it created itself (its marker table
``joshreg_meta``, written in the same transaction as its tables), a file that did not exist, or
a DuckDB file with no tables at all. Anything else (a joshpy registry, another DuckDB file, a
file DuckDB cannot read, a directory, the projection of a newer joshreg) is looked at
read-only, or not at all, and refused with one line that says what it is and what to do.
"""

from __future__ import annotations

import os
import shlex
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb

from joshreg.errors import ForeignDatabaseError, RegistryBusyError
from joshreg.projection.tables import PROJECTOR_VERSION, UPSTREAM_TABLES

__all__ = [
    "CHECKPOINT_SQL",
    "JOSHPY_TABLES",
    "MARKER_TABLE",
    "RegistryFile",
    "check_connection",
    "export_command",
    "inspect_registry_file",
    "open_registry_file",
    "read_checkpoint",
    "read_only_connection",
    "user_objects",
]

MARKER_TABLE = "joshreg_meta"
# The tables by which a joshpy registry is recognised (any two of them).
JOSHPY_TABLES = UPSTREAM_TABLES
_MAGIC = b"DUCK"

Kind = Literal["new", "empty", "joshreg", "busy"]

# The marker read with the rest of the projector's checkpoint, rows tagged by their table:
# 0 ``joshreg_meta`` (key, value), 1 ``joshreg_segments`` (segment, byte offset, line, prev),
# 2 ``joshreg_writers`` (writer, last sequence number), 3 damaged lines per file
# (``log_problems``), 4 the columns of ``config_parameters`` (name, position, type), which a
# catch-up of new registrations compares with theirs. On a freshly opened connection each
# statement costs about as much as the read a user opened the registry for, and one
# ``UNION ALL`` costs about half of the five reads. ``rowid`` because only a table has one: a
# view named like the marker fails here.
CHECKPOINT_SQL = """
SELECT 0, key, value, rowid, NULL FROM joshreg_meta
UNION ALL SELECT 1, segment, byte_offset, line, prev FROM joshreg_segments
UNION ALL SELECT 2, writer, last_seq, NULL, NULL FROM joshreg_writers
UNION ALL SELECT 3, segment, count(*), NULL, NULL FROM log_problems GROUP BY segment
UNION ALL SELECT 4, name, cid, NULL, type FROM pragma_table_info('config_parameters')
"""

CheckpointRows = list[tuple[Any, ...]]


@dataclass(frozen=True)
class RegistryFile:
    """A path joshreg may use as a registry file.

    ``new``: nothing there yet; ``empty``: a DuckDB file without tables; ``joshreg``: a
    projection joshreg wrote (``store_id`` is the event store it was built from, None for a
    projection older than store ids); ``busy``: held by another process, and the event store
    beside it says it is joshreg's.
    """

    path: str
    kind: Kind
    store_id: str | None = None
    projector_version: int | None = None
    # ``CHECKPOINT_SQL``'s rows when the file was classified through the connection the caller
    # keeps (``open_registry_file``): the projector starts from them instead of reading again.
    checkpoint: CheckpointRows | None = field(default=None, compare=False, repr=False)


def export_command(path: str, export_dir: str) -> str:
    """The command that writes ``path``'s tables as Parquet with whatever DuckDB is installed
    where it runs (joshpy's), for ``joshreg import``."""
    sql = f"EXPORT DATABASE '{export_dir.replace(chr(39), chr(39) * 2)}' (FORMAT parquet)"
    code = f"import duckdb; duckdb.connect({path!r}, read_only=True).execute({sql!r})"
    return f"python -c {shlex.quote(code)}"


def _import_advice(path: str) -> str:
    stem = os.path.splitext(os.path.basename(path))[0] or "registry"
    new = os.path.join(os.path.dirname(path), f"{stem}-joshreg.duckdb")
    command = f"joshreg import {shlex.quote(path)} --into {shlex.quote(new)}"
    return f"import it into a new joshreg registry with: {command}"


def _header(path: str) -> tuple[bytes, int, str]:
    """The magic bytes, storage version number and DuckDB version string of a file's header."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if len(head) < 20:
        return head[8:12], 0, ""
    version = struct.unpack_from("<Q", head, 12)[0]
    text = head[52:84].split(b"\0", 1)[0].decode("ascii", "replace")
    return head[8:12], version, text


def user_objects(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """The tables, views and sequences a user (or joshpy, or joshreg) made in the connection's
    own database, by kind."""
    db = "current_database()"
    tables = [
        r[0]
        for r in con.execute(
            f"SELECT table_name FROM duckdb_tables() WHERE database_name = {db} AND NOT internal ORDER BY 1"
        ).fetchall()
    ]
    views = [
        r[0]
        for r in con.execute(
            f"SELECT view_name FROM duckdb_views() WHERE database_name = {db} AND NOT internal ORDER BY 1"
        ).fetchall()
    ]
    sequences = [
        r[0]
        for r in con.execute(
            f"SELECT sequence_name FROM duckdb_sequences() WHERE database_name = {db} ORDER BY 1"
        ).fetchall()
    ]
    return {"tables": tables, "views": views, "sequences": sequences}


def _describe_foreign(path: str, tables: list[str]) -> str:
    joshpy = [t for t in JOSHPY_TABLES if t in tables]
    if len(joshpy) >= 2:
        return (
            f"{path} is a joshpy registry (tables {', '.join(joshpy)}), not a joshreg one; joshreg "
            f"never changes it. To use it with joshreg, {_import_advice(path)}"
        )
    shown = ", ".join(tables[:8]) + (", ..." if len(tables) > 8 else "")
    return (
        f"{path} is a DuckDB file joshreg did not write (tables: {shown}); joshreg never changes it. "
        "Give a registry path that does not exist yet, or a joshreg registry"
    )


def read_checkpoint(con: duckdb.DuckDBPyConnection) -> CheckpointRows:
    """``CHECKPOINT_SQL``'s rows; ``duckdb.CatalogException`` or ``duckdb.BinderException`` if
    one of its tables is missing (or is not a table)."""
    return con.execute(CHECKPOINT_SQL).fetchall()


def _marker(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, str], CheckpointRows | None] | None:
    """The rows of joshreg's marker table and, when the file has all of them, the rest of the
    checkpoint (``CHECKPOINT_SQL``); None if the current schema has no marker table.

    One statement instead of listing every object, and of reading the checkpoint after. A
    marker without the other tables (a projection older than them) is read alone. ``rowid``
    is there because only a table has one: a view of the marker's name fails here and is
    classified by the full listing."""
    try:
        rows = read_checkpoint(con)
    except (duckdb.CatalogException, duckdb.BinderException):
        pass
    else:
        return {r[1]: r[2] for r in rows if r[0] == 0}, rows
    try:
        meta = con.execute(f"SELECT key, value, rowid FROM {MARKER_TABLE}").fetchall()
    except (duckdb.CatalogException, duckdb.BinderException):
        return None
    return {key: value for key, value, _ in meta}, None


def _joshreg_file(path: str, meta: dict[str, str], checkpoint: CheckpointRows | None = None) -> RegistryFile:
    version = int(meta["projector_version"]) if "projector_version" in meta else None
    if version is not None and version > PROJECTOR_VERSION:
        raise ForeignDatabaseError(
            f"{path} was written by a newer joshreg (projection version {version}; this joshreg "
            f"reads up to {PROJECTOR_VERSION}): upgrade joshreg to open it"
        )
    return RegistryFile(path, "joshreg", meta.get("store_id") or None, version, checkpoint)


def check_connection(con: duckdb.DuckDBPyConnection, path: str | None = None) -> RegistryFile:
    """Classify the database open in ``con`` (from ``path``, by default its file); raise
    ``ForeignDatabaseError`` unless joshreg may use it. Reads only. Call it outside a
    transaction (a failed look for the marker would abort one)."""
    if path is None:
        row = con.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()
        path = (row[0] if row else None) or ":memory:"
    found = _marker(con)
    if found is not None:
        return _joshreg_file(path, *found)
    objects = user_objects(con)
    tables = objects["tables"]
    if MARKER_TABLE in tables:  # in another schema than the current one
        return _joshreg_file(path, dict(con.execute(f"SELECT key, value FROM {MARKER_TABLE}").fetchall()))
    if tables:
        raise ForeignDatabaseError(_describe_foreign(path, tables))
    if objects["views"] or objects["sequences"]:
        names = [*objects["views"], *objects["sequences"]]
        raise ForeignDatabaseError(
            f"{path} is a DuckDB file joshreg did not write (views or sequences: {', '.join(names[:8])}); "
            "joshreg never changes it. Give a registry path that does not exist yet, or a joshreg registry"
        )
    return RegistryFile(path, "empty")


def inspect_registry_file(path: str, *, store_exists: bool) -> RegistryFile:
    """What ``path`` holds, opened read-only or not at all; raise when joshreg may not use it.

    ``store_exists`` says whether the registry's event store is already there: a file held by
    another process is a joshreg registry in use (``busy``) only if its store is.
    """
    if not os.path.lexists(path):
        return RegistryFile(path, "new")
    if os.path.isdir(path):
        raise ForeignDatabaseError(
            f"{path} is a directory, not a registry file; give the path of a .duckdb file (a new one "
            "is created if it does not exist)"
        )
    try:
        con = read_only_connection(path)
    except RegistryBusyError:
        if store_exists:
            return RegistryFile(path, "busy")
        raise RegistryBusyError(
            f"{path} is locked by another process and is not a joshreg registry (it has no event "
            "store beside it). If a joshpy sweep is writing it, wait until it finishes, then "
            f"{_import_advice(path)}"
        ) from None
    try:
        return check_connection(con, path)
    finally:
        con.close()


def open_registry_file(
    path: str, *, store_exists: bool
) -> tuple[RegistryFile, duckdb.DuckDBPyConnection | None]:
    """``inspect_registry_file``, opening a file joshreg may write only once where that is safe.

    A file this very DuckDB version wrote, with no ``.wal`` beside it, is opened read-write at
    once and classified through that connection, which is returned with the answer (the caller
    owns it; closed here if the file is refused). Such an open changes nothing in a file that is
    only read: nothing to replay, no storage to upgrade, and DuckDB writes nothing on closing a
    database nothing was written to (``tests/test_foreign_files.py`` checks the bytes). Every
    other file (another version's, one with a ``.wal``, one held by a process) is looked at
    read-only first, as ``inspect_registry_file`` does, and the connection is None: half the
    cost of reopening a small registry was opening its file twice.
    """
    if not _same_duckdb_no_wal(path):
        return inspect_registry_file(path, store_exists=store_exists), None
    try:
        con = duckdb.connect(path)
    except (duckdb.IOException, duckdb.ConnectionException):  # held by a process, or in this one
        return inspect_registry_file(path, store_exists=store_exists), None
    try:
        return check_connection(con, path), con
    except BaseException:
        con.close()
        raise


def _same_duckdb_no_wal(path: str) -> bool:
    """Whether ``path`` is a regular file that this DuckDB version wrote, with no ``.wal``."""
    try:
        if not os.path.isfile(path) or os.path.lexists(path + ".wal"):
            return False
        magic, _, written_by = _header(path)
    except OSError:
        return False
    return magic == _MAGIC and written_by == f"v{duckdb.__version__}"


def read_only_connection(path: str) -> duckdb.DuckDBPyConnection:
    """A read-only DuckDB connection to the file at ``path``, which is left untouched (its
    ``.wal`` included). ``ForeignDatabaseError`` for a file DuckDB cannot read (saying how to
    export one of a newer DuckDB), ``RegistryBusyError`` when another process holds it."""
    try:
        magic, version, written_by = _header(path)
    except OSError as e:
        raise ForeignDatabaseError(f"cannot read {path}: {e.strerror or e}") from e
    if magic != _MAGIC:
        what = "an empty file" if os.path.getsize(path) == 0 else "not a DuckDB database"
        raise ForeignDatabaseError(
            f"{path} is {what}, so it is neither a joshreg nor a joshpy registry; give another path "
            "(a new registry file is created if the path does not exist)"
        )
    try:
        return duckdb.connect(path, read_only=True)
    except duckdb.ConnectionException:
        # Open in this process already (another registry, or the user's own connection): look
        # through that same database instead; looking changes nothing.
        return duckdb.connect(path)
    except duckdb.IOException as e:
        text = str(e)
        if "lock" in text.lower():
            raise RegistryBusyError(
                f"{path} is locked by another process (a running sweep?); try again once it has "
                "finished, or use a copy of the file"
            ) from None
        if "version number" in text:
            raise ForeignDatabaseError(_newer_duckdb(path, version, written_by)) from None
        raise ForeignDatabaseError(f"DuckDB cannot read {path}: {text.splitlines()[0]}") from None


def _newer_duckdb(path: str, version: int, written_by: str) -> str:
    by = f"DuckDB {written_by}" if written_by else "a newer DuckDB"
    export_dir = os.path.splitext(path)[0] + "-export"
    return (
        f"{path} was written by {by} (storage version {version}), which joshreg's DuckDB "
        f"{duckdb.__version__} cannot read. Where joshpy is installed, run: "
        f"{export_command(path, export_dir)} ; then: joshreg import {shlex.quote(export_dir)} "
        "--into NEW.duckdb"
    )
