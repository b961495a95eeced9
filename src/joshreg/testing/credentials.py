"""A container-credentials endpoint on loopback, as ECS and AWS Batch give a task: it hands out
short-lived keys that tests change at will, so renewal can be watched end to end."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["CredentialsEndpoint", "credentials_endpoint"]


class CredentialsEndpoint:
    """Serves the current keys with an expiry ``lifetime`` after each request; ``issue``
    changes them; ``fetches`` counts the requests."""

    def __init__(self, lifetime: timedelta) -> None:
        self.lifetime = lifetime
        self.fetches = 0
        self._keys = ("role-key-0", "role-secret-0", "role-token-0")
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.fetches += 1
                key, secret, token = endpoint._keys
                expires = datetime.now(UTC) + endpoint.lifetime
                body = json.dumps(
                    {
                        "AccessKeyId": key,
                        "SecretAccessKey": secret,
                        "Token": token,
                        "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        """The value of ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` that points here."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v2/credentials"

    def issue(self, key: str, secret: str, token: str) -> None:
        self._keys = (key, secret, token)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def credentials_endpoint(lifetime: timedelta = timedelta(hours=1)) -> Iterator[CredentialsEndpoint]:
    endpoint = CredentialsEndpoint(lifetime)
    try:
        yield endpoint
    finally:
        endpoint.close()
