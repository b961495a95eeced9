"""The test servers start even when a port found free is taken before they bind it."""

from __future__ import annotations

import contextlib
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from joshreg.testing import servers

pytestmark = pytest.mark.slow  # servers


def test_a_server_whose_port_was_taken_meanwhile_starts_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as held:
        taken = [held.getsockname()[1]]  # handed out as "free" once, but another process has it
        real = servers._free_port
        monkeypatch.setattr(servers, "_free_port", lambda: taken.pop() if taken else real())
        with servers.moto(tmp_path) as server:
            assert server.endpoint != f"http://127.0.0.1:{held.getsockname()[1]}"
            with contextlib.suppress(urllib.error.HTTPError):  # an error page is an answer too
                urllib.request.urlopen(server.endpoint + "/", timeout=5).close()
    assert (tmp_path / "moto.log").exists() and (tmp_path / "start-2" / "moto.log").exists()
