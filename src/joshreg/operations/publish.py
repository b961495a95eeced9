"""Upstream joshpy's registry sync over S3: the projected tables published as Parquet in its
layout, such a layout read back as an import, and several published registries side by side.

Upstream shares a registry by copying whole tables to ``s3://bucket/run-registries/<name>/
<table>.parquet`` (``push_to_s3``), pulling them back (``pull_from_s3``) and reading several at
once (``open_s3_registries``). joshreg publishes the same files, so upstream's readers see a
joshreg registry; but a publication is a copy for readers, never the truth: pulling one imports
its rows as events (the importer of upstream registries, with event ids derived from the rows'
keys), so pulling twice adds nothing and nothing is ever overwritten. The event log itself is
shared through ``events_path="s3://..."``, not through these files, and a publication must not
land inside an event store, whose prefix holds only the log's own objects.

Every ``s3://`` access goes through DuckDB's httpfs with a temporary secret from the one
settings resolver (``storage_options``, then ``AWS_*``, then ``MINIO_*``); upstream's
``endpoint``/``access_key``/``secret_key``/``use_ssl`` arguments go over ``storage_options`` as
for ``query_remote``. Files joshreg writes carry the key-value metadata ``joshreg_timezone =
UTC``: its tables hold UTC times, while upstream's hold naive local ones.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from joshreg.errors import InvalidArgumentError, NotFoundError, StoreError
from joshreg.log.store.s3options import split_s3_url
from joshreg.operations.joshpy_source import Source
from joshreg.projection.httpfs import use_s3
from joshreg.projection.sqltext import quote_identifier, sql_literal
from joshreg.projection.tables import REGISTRY_SYNC_TABLES
from joshreg.results.locations import upstream_storage_options

__all__ = [
    "DEFAULT_ROOT",
    "TIMEZONE_KEY",
    "PulledTables",
    "default_prefix",
    "open_s3_registries",
    "publish_tables",
    "pulled_tables",
    "sync_tables",
]

#: Where upstream publishes a registry by default: ``run-registries/<db file stem>``.
DEFAULT_ROOT = "run-registries"
#: The Parquet key-value metadata joshreg writes: the zone of the file's naive timestamps.
TIMEZONE_KEY = "joshreg_timezone"


def _check_location(bucket: str, prefix: str) -> tuple[str, str]:
    bucket = (bucket or "").strip()
    if not bucket or "/" in bucket or bucket.startswith("s3:"):
        raise InvalidArgumentError(f"bucket must be a bucket name such as 'sweeps', not {bucket!r}")
    clean = prefix.strip().strip("/")
    if not clean or any(part in ("", ".", "..") for part in clean.split("/")):
        raise InvalidArgumentError(
            f"prefix must be a path inside the bucket such as 'run-registries/sweep', not {prefix!r}"
        )
    return bucket, clean


def default_prefix(db_path: str | os.PathLike[str]) -> str:
    """``run-registries/<db file stem>``, as upstream names a registry's publication. A
    ``:memory:`` registry has no name, so it needs an explicit prefix (checked before any
    credential is looked at, as upstream does)."""
    if os.fspath(db_path) == ":memory:":
        raise InvalidArgumentError(
            "a ':memory:' registry has no file name to publish under; pass prefix= "
            "(for example prefix='run-registries/my-sweep')"
        )
    return f"{DEFAULT_ROOT}/{Path(db_path).stem}"


def sync_tables(tables: Iterable[str] | None) -> list[str]:
    """The tables asked for, in upstream's parent-first order; a name upstream does not sync
    is refused."""
    if tables is None:
        return list(REGISTRY_SYNC_TABLES)
    wanted = [tables] if isinstance(tables, str) else list(tables)
    unknown = [t for t in wanted if t not in REGISTRY_SYNC_TABLES]
    if unknown:
        raise InvalidArgumentError(
            f"unknown table {unknown[0]!r} for the registry sync; the tables are "
            + ", ".join(REGISTRY_SYNC_TABLES)
        )
    return [t for t in REGISTRY_SYNC_TABLES if t in wanted]


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [""])[0]


def _listing(con: duckdb.DuckDBPyConnection, pattern: str) -> list[str]:
    try:
        return [r[0] for r in con.execute(f"SELECT file FROM glob({sql_literal(pattern)})").fetchall()]
    except duckdb.Error as e:
        raise StoreError(f"cannot list {pattern}: {_first_line(e)}") from None


def _event_store_at(con: duckdb.DuckDBPyConnection, bucket: str, prefix: str) -> bool:
    """Whether ``s3://bucket/prefix`` is an event store (its ``FORMAT`` object is there). The
    last letter is a character class because httpfs hands back a pattern without wildcards
    unlisted, as if it existed."""
    base = f"s3://{bucket}/{prefix}/" if prefix else f"s3://{bucket}/"
    if not _listing(con, base + "FORMA[T]"):
        return False
    try:
        text = con.execute(f"SELECT content FROM read_text({sql_literal(base + 'FORMAT')})").fetchone()
    except duckdb.Error:
        return True  # unreadable: treat it as a store, the safe side for a refusal
    return text is None or "joshreg-events" in str(text[0])


def _refuse_inside_event_store(
    con: duckdb.DuckDBPyConnection, bucket: str, prefix: str, events_path: str | None
) -> None:
    """Refuse a publication inside an event store: the registry's own (by its path) or any
    other (an ancestor prefix holding a store's ``FORMAT``)."""
    where = f"s3://{bucket}/{prefix}"
    advice = f"publish under another prefix (the default is {DEFAULT_ROOT}/<registry name>)"
    if events_path and events_path.startswith("s3://"):
        own_bucket, own_prefix = split_s3_url(events_path)
        own_prefix = own_prefix.strip("/")
        if own_bucket == bucket and (not own_prefix or f"{prefix}/".startswith(f"{own_prefix}/")):
            raise InvalidArgumentError(
                f"push_to_s3 refused: {where} is inside this registry's event store {events_path}; {advice}"
            )
    parts = prefix.split("/")
    for depth in range(len(parts) + 1):
        ancestor = "/".join(parts[:depth])
        if _event_store_at(con, bucket, ancestor):
            store = f"s3://{bucket}/{ancestor}".rstrip("/")
            raise InvalidArgumentError(
                f"push_to_s3 refused: {where} is inside the event store {store}; {advice}"
            )


def publish_tables(
    con: duckdb.DuckDBPyConnection,
    *,
    bucket: str,
    prefix: str,
    tables: Iterable[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    events_path: str | None = None,
) -> str:
    """Write each table of ``con`` to ``s3://bucket/prefix/<table>.parquet`` (replacing what is
    there, as upstream does) and return ``s3://bucket/prefix``. The names and arguments are
    checked before credentials are resolved; the prefix is checked against event stores
    before anything is written."""
    bucket, prefix = _check_location(bucket, prefix)
    names = sync_tables(tables)
    use_s3(con, storage_options)
    _refuse_inside_event_store(con, bucket, prefix, events_path)
    for table in names:
        url = f"s3://{bucket}/{prefix}/{table}.parquet"
        try:
            con.execute(
                f"COPY (SELECT * FROM main.{quote_identifier(table)}) TO {sql_literal(url)} "
                f"(FORMAT parquet, KV_METADATA {{{TIMEZONE_KEY}: 'UTC'}})"
            )
        except duckdb.Error as e:
            raise StoreError(f"cannot publish {table} to {url}: {_first_line(e)}") from None
    return f"s3://{bucket}/{prefix}"


class PulledTables:
    """A publication's tables copied into a private DuckDB file (one download per table, however
    often the importer reads them), as a ``Source`` the importer takes, with the zone of their
    times when every file says it (joshreg's) and None otherwise (upstream's local times)."""

    def __init__(self, source: Source, timezone: str | None, tables: list[str]) -> None:
        self.source = source
        self.timezone = timezone
        self.tables = tables


@contextlib.contextmanager
def pulled_tables(
    *,
    bucket: str,
    prefix: str,
    tables: Iterable[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Iterator[PulledTables]:
    """The ``<table>.parquet`` files under ``s3://bucket/prefix``, copied into a temporary
    DuckDB file removed on exit. A prefix holding an event store, or nothing, is refused."""
    bucket, prefix = _check_location(bucket, prefix)
    wanted = None if tables is None else set(sync_tables(tables))
    where = f"s3://{bucket}/{prefix}"
    with tempfile.TemporaryDirectory(prefix="joshreg-pull-") as folder:
        con = duckdb.connect(os.path.join(folder, "pulled.duckdb"))
        try:
            use_s3(con, storage_options)
            if _event_store_at(con, bucket, prefix):
                raise InvalidArgumentError(
                    f"{where} is a joshreg event store, not a published registry; open it with "
                    f"RunRegistry(..., events_path={where!r}) or add it with merge_from"
                )
            files = {
                url.rsplit("/", 1)[1][: -len(".parquet")]: url for url in _listing(con, f"{where}/*.parquet")
            }
            if wanted is not None:
                files = {t: u for t, u in files.items() if t in wanted}
            if not files:
                raise InvalidArgumentError(
                    f"nothing to pull at {where}: no <table>.parquet files there"
                    + (f" of {', '.join(sorted(wanted))}" if wanted else "")
                    + "; check the bucket and prefix (push_to_s3 writes run-registries/<name>)"
                )
            zones: dict[str, str] = {}
            for table, url in sorted(files.items()):
                try:
                    name, read = quote_identifier(table), sql_literal(url)
                    con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet({read})")
                    zones.update(
                        con.execute(
                            f"SELECT file_name, decode(value) FROM parquet_kv_metadata({sql_literal(url)}) "
                            f"WHERE decode(key) = {sql_literal(TIMEZONE_KEY)}"
                        ).fetchall()
                    )
                except duckdb.Error as e:
                    raise StoreError(f"cannot read {url}: {_first_line(e)}") from None
            found = set(zones.values())
            timezone = found.pop() if len(zones) == len(files) and len(found) == 1 else None
            source = Source(where, con=con, kind="parquet on s3")
            yield PulledTables(source, timezone, sorted(files))
        finally:
            con.close()


@contextlib.contextmanager
def open_s3_registries(
    names: Sequence[str],
    *,
    bucket: str,
    prefix_template: str = DEFAULT_ROOT + "/{name}",
    endpoint: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    use_ssl: bool | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB connection with one schema per published registry (named as in
    ``names``) of ``read_parquet`` views of its tables, for joins across experiments without
    merging them (their run hashes may mean different things). Tables a publication lacks are
    left out; a name with none of them is refused, since it is most likely misspelt. The views
    read the bucket on every query; nothing is copied. Closed on exit."""
    wanted = [names] if isinstance(names, str) else list(names)
    if not wanted:
        raise InvalidArgumentError("open_s3_registries needs at least one registry name")
    if len(set(wanted)) != len(wanted):
        raise InvalidArgumentError(f"a registry name is given twice: {', '.join(wanted)}")
    options = upstream_storage_options(
        storage_options, endpoint=endpoint, access_key=access_key, secret_key=secret_key, use_ssl=use_ssl
    )
    locations = {}
    for name in wanted:
        try:
            locations[name] = _check_location(bucket, prefix_template.format(name=name))
        except (KeyError, IndexError, ValueError) as e:
            if isinstance(e, InvalidArgumentError):
                raise
            raise InvalidArgumentError(
                f"prefix_template {prefix_template!r} must name its one field {{name}}"
            ) from None
    con = duckdb.connect()
    try:
        use_s3(con, options)
        for name, (b, prefix) in locations.items():
            where = f"s3://{b}/{prefix}"
            present = {
                url.rsplit("/", 1)[1][: -len(".parquet")] for url in _listing(con, f"{where}/*.parquet")
            }
            tables = [t for t in REGISTRY_SYNC_TABLES if t in present]
            if not tables:
                raise NotFoundError(
                    f"no registry is published at {where} (none of its <table>.parquet files); "
                    "check the name, bucket and prefix_template"
                )
            schema = quote_identifier(name)
            con.execute(f"CREATE SCHEMA {schema}")
            for table in tables:
                url = sql_literal(f"{where}/{table}.parquet")
                con.execute(
                    f"CREATE VIEW {schema}.{quote_identifier(table)} AS SELECT * FROM read_parquet({url})"
                )
        yield con
    finally:
        con.close()
