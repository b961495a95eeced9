"""Where a Josh export is: a local path, or a key in an S3-compatible bucket.

Upstream loads ``s3://`` exports (and writes ``minio://bucket/key`` output paths); joshreg
reads such a key's bytes once through ``obstore``, with the settings of the one resolver that
serves the event store (``storage_options``, then ``AWS_*``, then ``MINIO_*``). Bytes rather
than DuckDB's httpfs, because the parser hashes the file's exact bytes for its identity and
types every column from the whole file: one GET, no second read, no DuckDB connection needed
(a worker has none).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from joshreg.errors import InvalidArgumentError, StoreError
from joshreg.log.store.s3options import client_error, resolve_s3_options

__all__ = ["is_object_uri", "object_client", "read_bytes", "s3_uri", "source_exists", "split_uri", "where"]


def s3_uri(uri: str) -> str:
    """``minio://bucket/key`` (and ``minio:/bucket/key``, as upstream writes it) as
    ``s3://bucket/key``; anything else unchanged."""
    for prefix in ("minio://", "minio:/"):
        if uri.startswith(prefix):
            return "s3://" + uri[len(prefix) :]
    return uri


def is_object_uri(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an object in a bucket (``s3://`` or ``minio://``)."""
    return s3_uri(os.fspath(path)).startswith("s3://")


def split_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://`` or ``minio://`` URI."""
    bucket, _, key = s3_uri(uri).removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise InvalidArgumentError(f"{uri} names no object; write s3://bucket/key")
    return bucket, key


def object_client(bucket: str, storage_options: Mapping[str, Any] | None = None) -> Any:
    """An ``obstore`` client for ``bucket`` with the resolver's settings as they are now."""
    from obstore.store import S3Store

    return S3Store(bucket, **resolve_s3_options(storage_options).client_config())


def where(storage_options: Mapping[str, Any] | None) -> str:
    """The endpoint a request goes to, for messages (never a credential)."""
    return resolve_s3_options(storage_options).endpoint or "AWS S3"


def source_exists(path: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether the export exists: ``os.path.exists`` for a path, one HEAD for an object."""
    if not is_object_uri(path):
        return os.path.exists(path)
    import obstore
    from obstore.exceptions import NotFoundError

    uri = s3_uri(os.fspath(path))
    bucket, key = split_uri(uri)
    try:
        obstore.head(object_client(bucket, storage_options), key)
        return True
    except (NotFoundError, FileNotFoundError):
        return False
    except Exception as e:  # connection, permissions, unknown bucket: never a credential
        raise _error("look up", uri, storage_options, e) from None


def read_bytes(path: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None) -> bytes:
    """The export's bytes; ``FileNotFoundError`` naming it when it is not there."""
    if not is_object_uri(path):
        with open(path, "rb") as f:  # FileNotFoundError says which path
            return f.read()
    import obstore
    from obstore.exceptions import NotFoundError

    uri = s3_uri(os.fspath(path))
    bucket, key = split_uri(uri)
    try:
        return bytes(obstore.get(object_client(bucket, storage_options), key).bytes())
    except (NotFoundError, FileNotFoundError):
        raise FileNotFoundError(f"CSV not found: {uri}") from None
    except Exception as e:
        raise _error("read", uri, storage_options, e) from None


def _error(what: str, uri: str, storage_options: Mapping[str, Any] | None, e: BaseException) -> StoreError:
    return StoreError(
        f"cannot {what} {uri} (endpoint {where(storage_options)}): {client_error(e)}; check the "
        "bucket name and the S3 settings (storage_options, AWS_* or MINIO_* variables)"
    )
