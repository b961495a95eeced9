"""Outputs where they are: the registered export files of current runs, aggregated in place.

Upstream HEAD reads exports straight from where the runs wrote them instead of loading them:
``get_output_uris`` lists them, ``query_remote`` scans them once with DuckDB and aggregates,
``check_remote_consistency`` compares the registered files with what is there. Here they work
on local paths (object storage comes with the S3 event store); unlike upstream, local outputs
are checked rather than skipped. A mixin of every reader.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from joshreg.errors import InvalidArgumentError
from joshreg.models import ConsistencyIssue, OutputURI
from joshreg.projection.sqltext import bind, quote_identifier, sql_literal
from joshreg.projection.tables import CURRENT_RUN_HASHES

AGGREGATES = {"mean": "avg", "avg": "avg", "sum": "sum", "min": "min", "max": "max", "median": "median",
              "std": "stddev_samp", "count": "count"}  # fmt: skip
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def replicate_from_uri(uri: str) -> int | None:
    """The replicate index a file name carries: its last integer before the extension."""
    stem = uri.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    match = _LAST_NUMBER.search(stem)
    return int(match.group(1)) if match else None


def s3_uri(uri: str) -> str:
    """``minio://bucket/key`` (and ``minio:/bucket/key``) as ``s3://bucket/key``."""
    for prefix in ("minio://", "minio:/"):
        if uri.startswith(prefix):
            return "s3://" + uri[len(prefix) :]
    return uri


def _local_only(uris: list[OutputURI]) -> None:
    remote = [u.uri for u in uris if "://" in u.uri]
    if remote:
        raise InvalidArgumentError(
            f"{len(remote)} outputs are in object storage (first: {remote[0]}); this joshreg reads "
            "output files on local paths only"
        )


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
        to a ``.parquet`` or ``.csv`` file too. Returns a pandas DataFrame. The credential
        arguments are upstream's, for ``s3://`` outputs, which need joshreg's S3 support."""
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
        _local_only(uris)
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
        frame = self._con().execute(sql).df()
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
        """Registered export files that are not where they were registered (errors), and files
        beside them that no current run registered (warnings: a bad, superseded or unknown
        run's output, or a stray)."""
        current = self.get_output_uris(output_type=output_type, current_only=current_only)
        known = {
            os.path.abspath(u.uri) for u in self.get_output_uris(output_type=output_type, current_only=False)
        }
        live = {os.path.abspath(u.uri) for u in current}
        issues = [
            ConsistencyIssue("missing_remote_output", u.run_hash, f"{u.uri} is registered but not there")
            for u in current
            if "://" not in u.uri and not os.path.exists(u.uri)
        ]
        folders = sorted({os.path.dirname(p) for p in live if os.path.isdir(os.path.dirname(p))})
        for folder in folders:
            for name in sorted(os.listdir(folder)):
                path = os.path.join(folder, name)
                if path in live or not os.path.isfile(path) or not name.endswith(".csv"):
                    continue
                owner = "a run that does not count (bad or superseded)" if path in known else "no run"
                issues.append(
                    ConsistencyIssue("orphan_remote_output", None, f"{path} belongs to {owner}", "warning")
                )
        return issues
