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
from joshreg.log.store.s3options import explain, resolve_s3_options, s3_client, split_s3_url

__all__ = [
    "endpoint_named",
    "is_object_uri",
    "list_folder",
    "object_client",
    "read_bytes",
    "s3_uri",
    "source_exists",
    "split_uri",
    "upstream_storage_options",
]


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
    bucket, key = split_s3_url(s3_uri(uri))
    if not bucket or not key:
        raise InvalidArgumentError(f"{uri} names no object; write s3://bucket/key")
    return bucket, key


def object_client(bucket: str, storage_options: Mapping[str, Any] | None = None) -> Any:
    """An ``obstore`` client for ``bucket`` with the resolver's settings as they are now."""
    return s3_client(bucket, resolve_s3_options(storage_options))


def endpoint_named(storage_options: Mapping[str, Any] | None) -> str:
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
        raise _error("get", uri, storage_options, e) from None


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
        raise _error("get", uri, storage_options, e) from None


def _error(action: str, uri: str, storage_options: Mapping[str, Any] | None, e: BaseException) -> StoreError:
    """The store's one-line explanation (bucket, credentials, permission, reachability)."""
    bucket, _ = split_s3_url(uri)
    endpoint = resolve_s3_options(storage_options).endpoint
    return explain(e, action=action, what=uri, location=f"s3://{bucket}", endpoint=endpoint, store=False)


def upstream_storage_options(
    base: Mapping[str, Any] | None = None,
    *,
    endpoint: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    use_ssl: bool | None = None,
) -> dict[str, Any]:
    """Upstream's credential arguments as ``storage_options`` over ``base`` (a registry's own),
    so the one resolver still fills the rest from ``AWS_*`` and ``MINIO_*``. Upstream's
    ``endpoint`` is ``host:port``, plain http unless ``use_ssl``; a scheme given is kept unless
    ``use_ssl`` says otherwise, and ``use_ssl`` alone re-schemes the endpoint resolved."""
    options = dict(base or {})
    if use_ssl is not None and endpoint is None:
        endpoint = resolve_s3_options(options).endpoint
    if endpoint:
        scheme, sep, host = endpoint.partition("://")
        if not sep:
            scheme, host = "http", endpoint
        if use_ssl is not None:
            scheme = "https" if use_ssl else "http"
        options["endpoint_url"] = f"{scheme}://{host}"
        options["allow_http"] = scheme == "http"
    if access_key:
        options["aws_access_key_id"] = access_key
    if secret_key:
        options["aws_secret_access_key"] = secret_key
    return options


def list_folder(folder: str, storage_options: Mapping[str, Any] | None = None) -> set[str]:
    """The ``s3://`` URIs of the objects directly inside ``folder`` (an ``s3://bucket/path``
    URI), one paged listing; empty when there are none."""
    import obstore

    bucket, path = split_s3_url(s3_uri(folder))
    prefix = path.strip("/") + "/" if path.strip("/") else ""
    try:
        listing = obstore.list_with_delimiter(object_client(bucket, storage_options), prefix or None)
    except Exception as e:
        raise _error("list", s3_uri(folder), storage_options, e) from None
    return {f"s3://{bucket}/{meta['path']}" for meta in listing["objects"]}
