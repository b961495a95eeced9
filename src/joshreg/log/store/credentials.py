"""Credentials from AWS's own chain, for a job that names no keys.

Cloud jobs rarely carry keys: an EKS pod has a web-identity token, an ECS or Batch task a
container credentials URL, an EC2 node an instance profile, a laptop a profile in
``~/.aws`` (or an SSO sign-in). botocore's credential chain knows every one of these and renews
the short-lived keys they give before they expire; joshreg asks it once per process and hands
the same renewing keys to both clients: the event store's ``obstore`` client (as its
credential provider) and DuckDB's S3 secret (made again before each use). The keys never reach
a repr, a message, an event or a file.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from joshreg.errors import StoreError

__all__ = ["ChainCredentials", "chain_credentials"]

#: The environment botocore's chain reads: a change to any of them is a new lookup.
_CHAIN_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
)
#: How long the object client keeps keys before asking again (it asks sooner when they expire
#: sooner); botocore renews them in the last 15 minutes of their life.
RECHECK = timedelta(minutes=15)

_lock = threading.Lock()
_found: dict[tuple[str | None, ...], ChainCredentials | None] = {}


class ChainCredentials:
    """Keys from the chain, renewed by botocore as they near expiry. Calling it gives them in
    the shape ``obstore``'s ``S3Store(credential_provider=...)`` takes."""

    def __init__(self, credentials: Any, method: str, region: str | None) -> None:
        self._credentials = credentials
        #: Where the keys come from, in botocore's words (``container-role``,
        #: ``assume-role-with-web-identity``, ``iam-role``, ``shared-credentials-file``, ``sso``).
        self.method = method
        #: The region the profile names, if any (used when no other setting gives one).
        self.region = region

    def keys(self) -> tuple[str, str, str | None]:
        """``(access key id, secret, session token)`` valid now, renewed first if they expire
        soon."""
        try:
            frozen = self._credentials.get_frozen_credentials()
        except Exception as e:  # botocore's: a role that cannot be assumed, an SSO sign-in that ran out
            first = (str(e).splitlines() or [""])[0]
            raise StoreError(
                f"the AWS credentials from {self.method} could not be renewed ({first}): sign in "
                "again (for a profile using SSO: aws sso login), or set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY"
            ) from None
        return frozen.access_key, frozen.secret_key, frozen.token

    def expires(self) -> datetime | None:
        """When the current keys expire; ``None`` for keys that do not (a profile's)."""
        expiry = getattr(self._credentials, "_expiry_time", None)  # RefreshableCredentials only
        return expiry if isinstance(expiry, datetime) else None

    def __call__(self) -> dict[str, Any]:
        key, secret, token = self.keys()
        until = datetime.now(UTC) + RECHECK
        expiry = self.expires()
        if expiry is not None:
            until = min(until, expiry.astimezone(UTC))
        return {"access_key_id": key, "secret_access_key": secret, "token": token, "expires_at": until}

    def __repr__(self) -> str:
        return f"ChainCredentials({self.method})"


def chain_credentials() -> ChainCredentials | None:
    """The chain's credentials for this process's environment, or ``None`` when it finds none
    (the client then makes anonymous requests, as for a public bucket). Looked up once per
    process and environment: the instance-profile probe costs a network round trip."""
    key = tuple(os.environ.get(name) for name in _CHAIN_ENV)
    with _lock:
        if key in _found:
            return _found[key]
        import botocore.session

        session = botocore.session.Session()
        try:
            credentials = session.get_credentials()
            region = session.get_config_variable("region")
        except Exception as e:  # a profile that does not exist, a config file that does not parse
            first = (str(e).splitlines() or [""])[0]
            raise StoreError(
                f"no S3 keys are set and AWS's credential settings are unusable ({first}): fix "
                "AWS_PROFILE or ~/.aws/config, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from None
        found = None if credentials is None else ChainCredentials(credentials, credentials.method, region)
        _found[key] = found
        return found
