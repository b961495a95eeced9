"""Outputs where they are: the registered export files of current runs, aggregated in place.

Upstream HEAD reads exports straight from where the runs wrote them instead of loading them:
``get_output_uris`` lists them, ``query_remote`` scans them once with DuckDB and aggregates,
``check_remote_consistency`` compares the registered files with what is there. They work on
local paths and on ``s3://`` objects (``minio://bucket/key``, as upstream records outputs, reads
as ``s3://``): DuckDB scans objects through its httpfs extension with a temporary secret, and
folders are listed through ``obstore``, both from the one settings resolver (upstream's
``endpoint``/``access_key``/``secret_key``/``use_ssl``, then the registry's ``storage_options``,
then ``AWS_*``, then ``MINIO_*``). Unlike upstream, local outputs are checked rather than
skipped. A mixin of every reader.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb

from joshreg.errors import InvalidArgumentError, StoreError
from joshreg.models import ConsistencyIssue, OutputURI
from joshreg.projection.httpfs import use_s3
from joshreg.projection.sqltext import bind, quote_identifier, sql_literal
from joshreg.projection.tables import CURRENT_RUN_HASHES
from joshreg.results.locations import (
    endpoint_named,
    is_object_uri,
    list_folder,
    s3_uri,
    upstream_storage_options,
)

AGGREGATES = {"mean": "avg", "avg": "avg", "sum": "sum", "min": "min", "max": "max", "median": "median",
              "std": "stddev_samp", "count": "count"}  # fmt: skip
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def replicate_from_uri(uri: str) -> int | None:
    """The replicate index a file name carries: its last integer before the extension."""
    stem = uri.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    match = _LAST_NUMBER.search(stem)
    return int(match.group(1)) if match else None


def _folder(uri: str) -> str:
    return uri.rsplit("/", 1)[0] if is_object_uri(uri) else os.path.dirname(uri)


def _files_in(folder: str, options: dict[str, Any]) -> set[str]:
    """The files directly in a local folder (absolute paths) or an ``s3://`` folder (URIs)."""
    if is_object_uri(folder):
        return list_folder(folder, options)
    if not os.path.isdir(folder):
        return set()
    return {p for p in (os.path.join(folder, n) for n in os.listdir(folder)) if os.path.isfile(p)}


def _key(uri: str) -> str:
    """One spelling per file: absolute for a path, ``s3://`` for an object."""
    return uri if is_object_uri(uri) else os.path.abspath(uri)


class OutputReads:
    """``get_output_uris``, ``query_remote``, ``check_remote_consistency``."""

    def get_output_uris(
        self, label_or_hash: str | None = None, *, output_type: str = "patch", current_only: bool = True
    ) -> list[OutputURI]:
        """The registered ``export.<output_type>`` files (``<output_type>`` itself too), of one
        run or all, only active runs unless ``current_only=False``; the replicate is read from
        the file name when it carries one."""
        run_hash = None if label_or_hash is None else self.resolve_label_or_hash(label_or_hash)
        self.sync()
        sql = (
            "SELECT jc.run_hash, jc.label, o.file_path FROM run_outputs o "
            "JOIN job_runs r ON r.run_id = o.run_id JOIN job_configs jc ON jc.run_hash = r.run_hash "
            "WHERE o.output_type IN (?, ?) AND NOT lower(o.file_path) LIKE '%.jar'"
        )
        params: list[Any] = [f"export.{output_type}", output_type]
        if run_hash is not None:
            sql += " AND jc.run_hash = ?"
            params.append(run_hash)
        if current_only:
            sql += f" AND jc.run_hash IN ({CURRENT_RUN_HASHES})"
        rows = self._con().execute(bind(sql + " ORDER BY jc.run_hash, o.file_path", params)).fetchall()
        return [OutputURI(h, label, replicate_from_uri(path), s3_uri(path)) for h, label, path in rows]

    def query_remote(
        self,
        variable: str,
        *,
        agg: str = "mean",
        group_by: tuple[str, ...] = ("label", "step", "replicate"),
        output_type: str = "patch",
        current_only: bool = True,
        label_or_hash: str | None = None,
        where: str | None = None,
        cache: str | os.PathLike[str] | None = None,
        endpoint: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        use_ssl: bool | None = None,
    ) -> Any:
        """Aggregate ``variable`` over the export files of the current runs where they are,
        without loading them: one DuckDB scan of every file, joined to each run's hash and
        label. ``where`` is a SQL condition on the files' columns; ``cache`` writes the result
        to a ``.parquet`` or ``.csv`` file too. Returns a pandas DataFrame. ``s3://`` and
        ``minio://`` outputs are read in place with the credential arguments (upstream's), over
        the registry's ``storage_options`` and the environment; ``StoreError`` when they cannot."""
        func = AGGREGATES.get(agg.lower())
        if func is None:
            raise InvalidArgumentError(f"Unknown agg {agg!r}; choose one of {', '.join(sorted(AGGREGATES))}")
        uris = self.get_output_uris(label_or_hash, output_type=output_type, current_only=current_only)
        if not uris:
            raise InvalidArgumentError(
                f"No {output_type} outputs registered for {'the current runs' if current_only else 'any run'}"
                + (f" of {label_or_hash}" if label_or_hash else "")
                + "; register_output(run_id, 'export.patch', path) records them"
            )
        con = self._con()
        remote = any(is_object_uri(u.uri) for u in uris)
        options = self._s3_settings(endpoint, access_key, secret_key, use_ssl)
        if remote:
            use_s3(con, options)
        files = ", ".join(sql_literal(u.uri) for u in uris)
        manifest = " UNION ALL ".join(
            f"SELECT {sql_literal(u.uri)} AS _file, {sql_literal(u.run_hash)} AS run_hash, "
            f"{sql_literal(u.label) if u.label else 'NULL'} AS label"
            for u in uris
        )
        side = {"label": "m.", "run_hash": "m."}
        keys = ", ".join(side.get(g, "f.") + quote_identifier(g) for g in group_by)
        value = f"{func}(f.{quote_identifier(variable)}) AS {quote_identifier(agg)}"
        sql = (
            f"SELECT {keys}{', ' if keys else ''}{value} "
            f"FROM read_csv_auto([{files}], filename = true, union_by_name = true) f "
            f"JOIN ({manifest}) m ON m._file = f.filename"
            + (f" WHERE {where}" if where else "")
            + (f" GROUP BY {keys} ORDER BY {keys}" if keys else "")
        )
        try:
            frame = con.execute(sql).df()
        except duckdb.IOException as e:
            if not remote:
                raise
            first = (str(e).splitlines() or [""])[0]
            raise StoreError(
                f"cannot read the {output_type} outputs in object storage "
                f"(endpoint {endpoint_named(options)}): {first}; check the registered paths and S3 settings"
            ) from None
        if cache is not None:
            target = Path(cache)
            if target.suffix == ".parquet":
                frame.to_parquet(target)
            elif target.suffix == ".csv":
                frame.to_csv(target, index=False)
            else:
                raise InvalidArgumentError(f"cache must end in .parquet or .csv, got {target.name}")
        return frame

    def check_remote_consistency(
        self,
        *,
        output_type: str = "patch",
        current_only: bool = True,
        endpoint: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        use_ssl: bool | None = None,
    ) -> list[ConsistencyIssue]:
        """Compare the registered export files of the current runs with what is where they
        were registered, local folders and ``s3://`` folders alike (one listing per folder).

        Errors: ``missing_remote_output``, a registered file that is not there;
        ``remote_count_mismatch``, a run with fewer files registered than the replicates its
        successful executions recorded, or with two files there for one replicate (an
        aggregate would count it twice). Warning: ``orphan_remote_output``, a CSV beside them
        that no current run registered (a bad, superseded or unknown run's output, a stray).
        """
        options = self._s3_settings(endpoint, access_key, secret_key, use_ssl)
        current = self.get_output_uris(output_type=output_type, current_only=current_only)
        every = self.get_output_uris(output_type=output_type, current_only=False)
        known = {_key(u.uri) for u in every}
        live = {_key(u.uri) for u in current}
        present: set[str] = set()
        for folder in sorted({_folder(k) for k in live}):
            present |= _files_in(folder, options)
        issues = [
            ConsistencyIssue("missing_remote_output", u.run_hash, f"{u.uri} is registered but not there")
            for u in current
            if _key(u.uri) not in present
        ]
        issues += self._count_mismatches(current, present, output_type)
        for path in sorted(present - live):
            if path.endswith(".csv"):
                owner = "a run that does not count (bad or superseded)" if path in known else "no run"
                issues.append(
                    ConsistencyIssue("orphan_remote_output", None, f"{path} belongs to {owner}", "warning")
                )
        return issues

    def _count_mismatches(
        self, current: list[OutputURI], present: set[str], output_type: str
    ) -> list[ConsistencyIssue]:
        by_run: dict[str, list[OutputURI]] = defaultdict(list)
        for u in current:
            by_run[u.run_hash].append(u)
        if not by_run:
            return []
        hashes = ", ".join(sql_literal(h) for h in sorted(by_run))
        ran = dict(
            self._con()
            .execute(
                "SELECT run_hash, count(DISTINCT replicate) FROM job_runs "
                f"WHERE exit_code = 0 AND run_hash IN ({hashes}) GROUP BY run_hash"
            )
            .fetchall()
        )
        issues = []
        for run_hash, uris in sorted(by_run.items()):
            if len(uris) < ran.get(run_hash, 0):
                issues.append(
                    ConsistencyIssue(
                        "remote_count_mismatch",
                        run_hash,
                        f"{ran[run_hash]} replicates ran successfully but {len(uris)} {output_type} "
                        "files are registered",
                    )
                )
            there: dict[int, list[str]] = defaultdict(list)
            for u in uris:
                if u.replicate is not None and _key(u.uri) in present:
                    there[u.replicate].append(u.uri)
            for replicate, files in sorted(there.items()):
                if len(files) > 1:
                    issues.append(
                        ConsistencyIssue(
                            "remote_count_mismatch",
                            run_hash,
                            f"replicate {replicate} has {len(files)} {output_type} files: {', '.join(files)}",
                        )
                    )
        return issues

    def _s3_settings(
        self, endpoint: str | None, access_key: str | None, secret_key: str | None, use_ssl: bool | None
    ) -> dict[str, Any]:
        """Upstream's credential arguments over this registry's ``storage_options``."""
        return upstream_storage_options(
            getattr(self, "storage_options", None),
            endpoint=endpoint,
            access_key=access_key,
            secret_key=secret_key,
            use_ssl=use_ssl,
        )
