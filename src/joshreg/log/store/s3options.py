"""Where an S3-compatible event store is and how to sign in: one resolver for every client.

The first piece of the object-storage event store (issue 15): a ``storage_options`` mapping
(the keys pandas, polars and deltalake take) wins, then the standard ``AWS_*`` environment
variables, then upstream joshpy's ``MINIO_*`` ones, field by field, so job scripts that set
either keep working. Secrets never appear in a repr or a message. ``probe_conditional_put``
checks that a service really refuses a second put-if-absent of one key, which every decision
of the log (label commits, claims, chunks) relies on.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from joshreg.errors import InvalidArgumentError, StoreError
from joshreg.log.store.credentials import ChainCredentials, chain_credentials

__all__ = [
    "PERMISSIONS",
    "S3Options",
    "client_error",
    "explain",
    "probe_conditional_put",
    "resolve_s3_options",
    "s3_client",
    "split_s3_url",
]

# storage_options keys per field, in the spellings the data tools accept.
_OPTION_KEYS = {
    "endpoint": ("endpoint_url", "aws_endpoint_url", "endpoint", "aws_endpoint"),
    "region": ("region", "aws_region", "region_name"),
    "access_key_id": ("aws_access_key_id", "access_key_id", "key"),
    "secret_access_key": ("aws_secret_access_key", "secret_access_key", "secret"),
    "session_token": ("aws_session_token", "session_token", "token"),
    "allow_http": ("allow_http", "aws_allow_http"),
}
_AWS_ENV = {
    "endpoint": ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"),
    "region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "access_key_id": ("AWS_ACCESS_KEY_ID",),
    "secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
    "session_token": ("AWS_SESSION_TOKEN",),
    "allow_http": ("AWS_ALLOW_HTTP",),
}
_MINIO_ENV = {
    "endpoint": ("MINIO_ENDPOINT",),
    "access_key_id": ("MINIO_ACCESS_KEY",),
    "secret_access_key": ("MINIO_SECRET_KEY",),
}
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class S3Options:
    """Resolved settings of an S3-compatible service; ``sources`` says where each came from."""

    endpoint: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    allow_http: bool = False
    sources: dict[str, str] = field(default_factory=dict)
    #: No keys given, but AWS's credential chain found some (a role, a profile, SSO): both
    #: clients sign with them, renewed as they expire (``credentials``).
    credentials: ChainCredentials | None = field(default=None, repr=False, compare=False)

    @property
    def role(self) -> str | None:
        """Where the chain's keys come from (``container-role``, ``iam-role``, ...), if used."""
        return self.credentials.method if self.credentials else None

    def client_config(self) -> dict[str, Any]:
        """The settings as ``obstore``'s ``S3Store`` takes them (path-style requests, which
        every S3-compatible server accepts)."""
        config: dict[str, Any] = {"region": self.region or "us-east-1", "virtual_hosted_style_request": False}
        if self.endpoint:
            config["endpoint"] = self.endpoint
        if self.access_key_id:
            config["access_key_id"] = self.access_key_id
        if self.secret_access_key:
            config["secret_access_key"] = self.secret_access_key
        if self.session_token:
            config["token"] = self.session_token
        if self.credentials is not None:
            config["credential_provider"] = self.credentials
        elif not self.access_key_id:
            config["skip_signature"] = True  # a public or anonymous service
        client: dict[str, Any] = {"connect_timeout": timedelta(seconds=5)}
        if self.allow_http:
            client["allow_http"] = True
        config["client_options"] = client
        # The client's own retries stay short; the background uploads retry for as long as the
        # process lives, and a read that still fails after these is reported (``explain``).
        config["retry_config"] = {
            "max_retries": 4,
            "retry_timeout": timedelta(seconds=20),
            "backoff": {"init_backoff": timedelta(milliseconds=50), "max_backoff": timedelta(seconds=2)},
        }
        return config


def resolve_s3_options(
    storage_options: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> S3Options:
    """The settings for an ``s3://`` store: ``storage_options``, then ``AWS_*``, then
    ``MINIO_*``, field by field, then (with no keys from those) AWS's credential chain: roles,
    profiles, SSO. A ``MINIO_ENDPOINT`` without a scheme (``host:9000``) is read as ``http://``
    as upstream does; an ``http://`` endpoint allows plain http. The chain reads the process's
    own environment, so it is consulted only when ``environ`` is not given."""
    env = os.environ if environ is None else environ
    options = {str(k).lower(): v for k, v in (storage_options or {}).items()}
    known = {k for keys in _OPTION_KEYS.values() for k in keys}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InvalidArgumentError(
            f"unknown storage_options {', '.join(unknown)}; joshreg reads "
            + ", ".join(keys[0] for keys in _OPTION_KEYS.values())
        )
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, keys in _OPTION_KEYS.items():
        for key in keys:
            if options.get(key) not in (None, ""):
                values[name], sources[name] = options[key], "storage_options"
                break
        else:
            for where, table in (("AWS_*", _AWS_ENV), ("MINIO_*", _MINIO_ENV)):
                found = next((env[v] for v in table.get(name, ()) if env.get(v)), None)
                if found is not None:
                    values[name], sources[name] = found, where
                    break
    endpoint = values.get("endpoint")
    if endpoint is not None and "://" not in str(endpoint):
        endpoint = "http://" + str(endpoint)  # upstream's MINIO_ENDPOINT is host:port
    allow = values.get("allow_http")
    allow_http = (
        (str(allow).lower() in _TRUE)
        if allow is not None
        else bool(endpoint and endpoint.startswith("http://"))
    )
    credentials = None
    if not values.get("access_key_id") and environ is None:
        credentials = chain_credentials()
        if credentials is not None:
            sources["access_key_id"] = f"AWS credential chain ({credentials.method})"
            if values.get("region") is None and credentials.region:
                values["region"], sources["region"] = credentials.region, "AWS config"
    return S3Options(
        credentials=credentials,
        endpoint=endpoint,
        region=values.get("region"),
        access_key_id=values.get("access_key_id"),
        secret_access_key=values.get("secret_access_key"),
        session_token=values.get("session_token"),
        allow_http=allow_http,
        sources=sources,
    )


#: The S3 permission each kind of request needs, for "access denied" messages.
PERMISSIONS = {
    "list": "s3:ListBucket",
    "get": "s3:GetObject",
    "put": "s3:PutObject",
    "delete": "s3:DeleteObject",
}


def explain(
    e: BaseException, *, action: str, what: str, location: str, endpoint: str | None, store: bool = True
) -> StoreError:
    """One line for a client error met while doing ``action`` (list, get, put or delete) on
    ``what`` in the store at ``location`` (or, with ``store=False``, the objects there): what
    went wrong and what to set or do. The error's
    ``permanent`` says whether waiting could cure it (an outage) or not (a missing bucket)."""
    text = str(e)
    first = client_error(e)
    kind = type(e).__name__
    service = endpoint or "AWS S3"
    permanent = True
    if "NoSuchBucket" in text:
        bucket = location.removeprefix("s3://").split("/", 1)[0]
        msg = (
            f"the bucket {bucket} does not exist at {service}: create it, or correct the location {location}"
        )
    elif "RequestTimeTooSkewed" in text:
        msg = (
            f"this machine's clock differs too much from {service}'s (RequestTimeTooSkewed), so it "
            "refuses signed requests: set the clock right (NTP) and try again"
        )
    elif kind == "UnauthenticatedError" or any(
        code in text
        for code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "MissingAuthentication")
    ):
        msg = (
            f"{service} did not accept the credentials ({first}): set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), or pass them in "
            "storage_options"
        )
    elif kind == "PermissionDeniedError" or "AccessDenied" in text:
        need = PERMISSIONS.get(action, action)
        msg = (
            f"access denied to {action} {what} in {location}: the credentials lack the {need} "
            "permission there (or there are none: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )
    elif "error sending request" in text or ("connect" in text.lower() and "retries" in text):
        permanent = False
        msg = (
            f"cannot reach {service} to {action} {what} in {location} ({first}): is the service up? "
            "Set its URL in AWS_ENDPOINT_URL or storage_options={'endpoint_url': ...} "
            "(and AWS_ALLOW_HTTP=true for a plain-http one)"
        )
    else:
        permanent = not any(x in text for x in ("retries", " 5", "SlowDown", "Throttl", "409", "Conflict"))
        msg = f"cannot {action} {what} in {'the event store at ' if store else ''}{location}: {first}"
        if not permanent:
            msg += " (still failing after retries; try again later)"
    error = StoreError(msg)
    error.permanent = permanent  # type: ignore[attr-defined]
    return error


def split_s3_url(url: str) -> tuple[str, str]:
    """``(bucket, path)`` of ``s3://bucket/path`` (the path may be empty)."""
    bucket, _, path = url.removeprefix("s3://").partition("/")
    return bucket, path


def s3_client(bucket: str, options: S3Options) -> Any:
    """An ``obstore`` client for ``bucket`` with ``options`` (from ``resolve_s3_options``)."""
    from obstore.store import S3Store

    return S3Store(bucket, **options.client_config())


def client_error(e: BaseException) -> str:
    """A client error's first line: ``obstore`` adds a multi-line debug dump below it."""
    return (str(e).splitlines() or [""])[0]


def probe_conditional_put(client: Any, prefix: str, *, where: str, endpoint: str | None = None) -> None:
    """Put one new probe object twice with put-if-absent; the service must refuse the second.
    ``client`` is an ``obstore`` store. Raises ``StoreError`` naming ``where`` (never a
    secret) when the service accepts it: such a service cannot keep the log's order."""
    import obstore
    from obstore.exceptions import AlreadyExistsError

    key = (
        f"{prefix.rstrip('/')}/.joshreg-probe/{secrets.token_hex(8)}"
        if prefix
        else f".joshreg-probe/{secrets.token_hex(8)}"
    )
    try:
        obstore.put(client, key, b"first", mode="create")
        try:
            obstore.put(client, key, b"second", mode="create")
        except AlreadyExistsError:
            return
        raise StoreError(
            f"the object store at {where} accepted a second put-if-absent of one key, so it cannot "
            "keep the event log's order; use a service that honours conditional writes "
            "(If-None-Match), as SeaweedFS, MinIO and AWS S3 do"
        )
    except StoreError:
        raise
    except Exception as e:  # the client's errors: connection, permissions, missing bucket
        raise explain(e, action="put", what="a probe object", location=where, endpoint=endpoint) from None
    finally:
        with contextlib.suppress(Exception):  # a probe left behind is harmless
            obstore.delete(client, key)
