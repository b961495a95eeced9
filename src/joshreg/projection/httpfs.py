"""DuckDB reading and writing ``s3://`` data: the httpfs extension, from its wheel, and a
temporary S3 secret made from the same settings resolver as the event store's client.

The secret is TEMPORARY (it lives in the connection's memory, never in the DuckDB file) and is
made again from the resolver before every use, so credentials a job script refreshes in the
environment, and the keys of a role that AWS's credential chain renews, are picked up. Its
values never reach a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

from joshreg.errors import RemoteUnavailableError, StoreError
from joshreg.log.store.s3options import S3Options, resolve_s3_options
from joshreg.projection.extensions import load_extension

__all__ = ["SECRET_NAME", "load_httpfs", "secret_sql", "use_s3"]

SECRET_NAME = "joshreg_s3"


def load_httpfs(con: duckdb.DuckDBPyConnection) -> None:
    """Load the httpfs extension into ``con`` from the ``duckdb-extension-httpfs`` wheel."""
    load_extension(con, "httpfs", RemoteUnavailableError)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def secret_sql(options: S3Options) -> str:
    """The ``CREATE TEMPORARY SECRET`` statement for ``options`` (path-style URLs; plain http
    when the endpoint is ``http://``)."""
    parts = ["TYPE s3", "URL_STYLE 'path'", f"REGION {_quote(options.region or 'us-east-1')}"]
    if options.endpoint:
        scheme, _, host = options.endpoint.partition("://")
        parts.append(f"ENDPOINT {_quote(host.rstrip('/'))}")
        parts.append(f"USE_SSL {'false' if scheme == 'http' else 'true'}")
    key, secret, token = options.access_key_id, options.secret_access_key, options.session_token
    if options.credentials is not None:  # the chain's keys as they are now (renewed if due)
        key, secret, token = options.credentials.keys()
    if key:
        parts.append(f"KEY_ID {_quote(key)}")
    if secret:
        parts.append(f"SECRET {_quote(secret)}")
    if token:
        parts.append(f"SESSION_TOKEN {_quote(token)}")
    return f"CREATE OR REPLACE TEMPORARY SECRET {SECRET_NAME} ({', '.join(parts)})"


def use_s3(con: duckdb.DuckDBPyConnection, storage_options: Mapping[str, Any] | None = None) -> S3Options:
    """Make ``con`` ready to read and write ``s3://`` paths with the settings the resolver
    gives now (``storage_options``, then ``AWS_*``, then ``MINIO_*``); return them."""
    options = resolve_s3_options(storage_options)
    load_httpfs(con)
    try:
        con.execute(secret_sql(options))
    except duckdb.Error as e:  # never echo the statement: it holds the secret
        first = (str(e).splitlines() or [""])[0].split("CREATE", 1)[0]
        raise StoreError(
            f"DuckDB refused the S3 settings (endpoint {options.endpoint or 'AWS'}): {first}"
        ) from None
    return options
