"""Upstream's registry sync on S3: ``push_to_s3`` and ``pull_from_s3``.

A mixin of ``RunRegistry``; the work is in ``joshreg.operations.publish``. A push publishes the
tables as they stand after catching up with the log; a pull imports a publication as events, so
it adds what the registry lacks and never overwrites (see ``joshreg.operations.publish``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from typing import Any, Literal

from joshreg.errors import ImportConflictWarning, InvalidArgumentError
from joshreg.operations.publish import (
    default_prefix,
    publish_tables,
    pulled_tables,
    sync_tables,
)
from joshreg.projection.sqltext import quote_identifier
from joshreg.results.locations import upstream_storage_options

__all__ = ["RegistryPublishing"]


class RegistryPublishing:
    """``push_to_s3`` and ``pull_from_s3``, as upstream joshpy names them."""

    def _sync_counts(self, tables: Iterable[str]) -> dict[str, int]:
        con = self._con()
        return {
            t: int(con.execute(f"SELECT count(*) FROM main.{quote_identifier(t)}").fetchone()[0])
            for t in tables
        }

    def _s3_options(self, **upstream: Any) -> dict[str, Any]:
        """Upstream's arguments over this registry's own ``storage_options``."""
        return upstream_storage_options(self.storage_options, **upstream)

    def push_to_s3(
        self,
        *,
        bucket: str,
        prefix: str | None = None,
        endpoint: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        use_ssl: bool | None = None,
        tables: Iterable[str] | None = None,
    ) -> str:
        """Publish the tables as Parquet at ``s3://bucket/prefix/<table>.parquet`` (default
        prefix ``run-registries/<db file stem>``), the layout upstream's ``open_s3_registries``
        and ``pull_from_s3`` read; return ``s3://bucket/prefix``.

        Each file is replaced, as upstream does: a publication is a copy for readers, and the
        registry's truth stays in its log. A prefix inside an event store is refused. Settings:
        the arguments (``endpoint`` is ``host:port``, ``use_ssl`` picks https), then the
        registry's ``storage_options``, then ``AWS_*``, then ``MINIO_*``. Times are in UTC.
        """
        prefix = default_prefix(self.db_path) if prefix is None else prefix
        names = sync_tables(tables)
        self.sync()
        options = self._s3_options(
            endpoint=endpoint, access_key=access_key, secret_key=secret_key, use_ssl=use_ssl
        )
        url = publish_tables(
            self._con(),
            bucket=bucket,
            prefix=prefix,
            tables=names,
            storage_options=options,
            events_path=self.events_path,
        )
        self._trace(f"published {len(names)} tables to {url}")
        return url

    def pull_from_s3(
        self,
        *,
        bucket: str,
        prefix: str | None = None,
        mode: Literal["merge", "restore"] = "merge",
        endpoint: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        use_ssl: bool | None = None,
        tables: Iterable[str] | None = None,
        source_timezone: str | None = None,
    ) -> dict[str, int]:
        """Import a publication at ``s3://bucket/prefix`` (upstream's or ``push_to_s3``'s) as
        the events that reproduce it; return the rows each table gained.

        ``merge`` adds what this registry lacks; a session or run hash it holds with other
        content is kept as it is (an ``ImportConflictWarning`` names each). ``restore`` does
        the same but only into an empty registry, and refuses otherwise: nothing is ever
        overwritten, and pulling again adds nothing. Times in files ``push_to_s3`` wrote are
        UTC; upstream's are naive local times, read in ``source_timezone`` (default: this
        machine's zone)."""
        if mode not in ("merge", "restore"):
            raise InvalidArgumentError(f"mode must be 'merge' or 'restore', not {mode!r}")
        prefix = default_prefix(self.db_path) if prefix is None else prefix
        self.sync()
        if mode == "restore" and (self._projector.cursors or self._projector.labels_head):
            name = "this registry" if os.fspath(self.db_path) == ":memory:" else os.fspath(self.db_path)
            raise InvalidArgumentError(
                f"pull_from_s3(mode='restore') refused: {name} already holds events and a restore "
                "never overwrites; use mode='merge' to add what it lacks, or restore into a new registry"
            )
        options = self._s3_options(
            endpoint=endpoint, access_key=access_key, secret_key=secret_key, use_ssl=use_ssl
        )
        with pulled_tables(bucket=bucket, prefix=prefix, tables=tables, storage_options=options) as pulled:
            counted = [t for t in sync_tables(None) if t in pulled.tables]
            before = self._sync_counts(counted)
            report = self.import_joshpy(pulled.source, source_timezone=source_timezone or pulled.timezone)
        if report.conflicts:
            warnings.warn(
                f"pull_from_s3 from {pulled.source.path} kept this registry's rows where the two differ: "
                + "; ".join(report.conflicts),
                ImportConflictWarning,
                stacklevel=2,
            )
        self._trace(report.summary())
        after = self._sync_counts(counted)
        return {t: after[t] - before[t] for t in counted}
