"""A TCP proxy on loopback that tests can cut and restore: a network outage between a worker
and a real S3 server, without touching the server. It also notes which access key signed each
request it forwards (the servers here accept any key, so only the wire shows which one)."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator

__all__ = ["CuttableProxy", "cuttable_proxy"]

_REQUEST_HEAD = re.compile(rb"(?m)^(?:GET|PUT|POST|HEAD|DELETE) \S+ HTTP/1\.1\r\n.*?\r\n\r\n", re.S)
_SIGNED_BY = re.compile(rb"Credential=([A-Za-z0-9_.-]+)/")


class CuttableProxy:
    """Forwards ``127.0.0.1:port`` to ``target``. ``cut()`` drops every open connection and
    refuses new ones (they are accepted and closed at once, as a dead link looks to a
    client); ``restore()`` forwards again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut = False
        self._stopped = False
        #: The access key id that signed each request seen so far, in order ("" if unsigned).
        self.signed_with: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            for s in list(self._open):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._stopped = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._cut:
                    client.close()
                    continue
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    client.close()
                    continue
                self._open.update((client, upstream))
            for a, b, requests in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(a, b, requests), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, requests: bool) -> None:
        try:
            while data := src.recv(65536):
                if requests:
                    for head in _REQUEST_HEAD.findall(data):
                        signed = _SIGNED_BY.search(head)
                        self.signed_with.append(signed.group(1).decode() if signed else "")
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)
            for s in (src, dst):  # the other direction's thread then stops too
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


@contextlib.contextmanager
def cuttable_proxy(endpoint: str) -> Iterator[CuttableProxy]:
    """A proxy to ``endpoint`` (``http://host:port``) for the ``with`` block."""
    host, _, port = endpoint.removeprefix("http://").rstrip("/").partition(":")
    proxy = CuttableProxy(host, int(port))
    try:
        yield proxy
    finally:
        proxy.close()
