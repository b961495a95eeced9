"""A store in a POSIX directory, local or shared (NFS, Lustre). Imports ``store.base``, ``errors``.

Segments are appended with ``O_APPEND`` by their single writer; claims are written to a unique
temporary file, fsynced, then ``link(2)``-ed to their name, which is put-if-absent on local file
systems and NFSv3+ alike, and never exposes a half-written claim.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets

from ..errors import LogFormatError, StoreError
from .base import LogStore, SegmentInfo

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "LocalStore"]

FORMAT_NAME = "joshreg-events"
FORMAT_VERSION = 1


class LocalStore(LogStore):
    """The event store in directory ``root`` (created if missing)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.fspath(root)
        self.location = self.root
        self._fds: dict[str, int] = {}
        self._known_dirs: set[str] = set()
        try:
            os.makedirs(os.path.join(self.root, "log"), exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the event store at {self.root}: {e}") from e
        self._check_format()

    def _check_format(self) -> None:
        path = os.path.join(self.root, "FORMAT")
        body = json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION}).encode() + b"\n"
        if not os.path.exists(path):
            self._put_if_absent("FORMAT", body)
        try:
            with open(path, "rb") as f:
                info = json.loads(f.read() or b"{}")
        except (OSError, ValueError) as e:
            raise LogFormatError(f"{path} is not a joshreg FORMAT file: {e}") from e
        if info.get("format") != FORMAT_NAME:
            raise LogFormatError(f"{self.root} is not a joshreg event store (FORMAT says {info!r})")
        if int(info.get("version", 0)) > FORMAT_VERSION:
            raise LogFormatError(
                f"{self.root} uses event store format {info.get('version')}, newer than this "
                f"joshreg's {FORMAT_VERSION}; upgrade joshreg to open it"
            )

    # --- segments ---------------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def _fd(self, segment: str) -> int:
        fd = self._fds.get(segment)
        if fd is None:
            path = self._path(segment)
            self._ensure_dir(os.path.dirname(path))
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
            except OSError as e:
                raise StoreError(f"cannot open segment {path} for appending: {e}") from e
            self._fds[segment] = fd
        return fd

    def append(self, segment: str, data: bytes) -> None:
        fd = self._fds.get(segment)
        if fd is None:
            fd = self._fd(segment)
        try:
            n = os.write(fd, data)
            if n != len(data):  # short write (signal, full disk): finish it, we are the only writer
                view = memoryview(data)[n:]
                while view:
                    view = view[os.write(fd, view) :]
        except OSError as e:
            raise StoreError(
                f"cannot append to segment {self._path(segment)}: {e}; "
                "free space or fix permissions, then write again (nothing after the last "
                "complete line is read)"
            ) from e

    def sync(self, segment: str) -> None:
        fd = self._fds.get(segment)
        if fd is None:
            return
        try:
            os.fsync(fd)
        except OSError as e:
            raise StoreError(f"cannot make segment {self._path(segment)} durable: {e}") from e

    def close_segment(self, segment: str) -> None:
        fd = self._fds.pop(segment, None)
        if fd is not None:
            os.close(fd)

    def segments(self) -> list[SegmentInfo]:
        out: list[SegmentInfo] = []
        try:
            entries = os.scandir(os.path.join(self.root, "log"))
        except FileNotFoundError:
            return out
        with entries:
            for entry in entries:
                if entry.name.endswith(".jsonl"):
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue
                    out.append(SegmentInfo("log/" + entry.name, st.st_size, st.st_mtime))
        out.sort(key=lambda s: s.name)
        return out

    def read(self, segment: str, offset: int = 0, end: int | None = None) -> bytes:
        path = self._path(segment)
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read() if end is None else f.read(max(0, end - offset))
        except FileNotFoundError:
            return b""
        except OSError as e:
            raise StoreError(f"cannot read segment {path}: {e}") from e

    # --- claims -----------------------------------------------------------------------------

    def _ensure_dir(self, d: str) -> None:
        if d not in self._known_dirs:
            os.makedirs(d, exist_ok=True)
            self._known_dirs.add(d)

    def _put_if_absent(self, name: str, data: bytes) -> bool:
        final = self._path(name)
        folder = os.path.dirname(final)
        self._ensure_dir(folder)
        tmp = os.path.join(folder, f".tmp-{os.getpid()}-{secrets.token_hex(6)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, final)
            except FileExistsError:
                # On NFS a retransmitted reply can report EEXIST for a link that worked:
                # the temporary file's link count tells.
                if os.stat(tmp).st_nlink != 2:
                    return False
            with contextlib.suppress(OSError):
                dfd = os.open(folder, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            return True
        except OSError as e:
            raise StoreError(f"cannot create {final}: {e}") from e
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def claim(self, name: str, data: bytes) -> bool:
        return self._put_if_absent(name, data)

    def read_claim(self, name: str) -> bytes | None:
        try:
            with open(self._path(name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StoreError(f"cannot read {self._path(name)}: {e}") from e

    def list_claims(self, prefix: str) -> list[str]:
        folder = prefix.rstrip("/")
        try:
            names = os.listdir(self._path(folder))
        except FileNotFoundError:
            return []
        return sorted(f"{folder}/{n}" for n in names if not n.startswith(".tmp-"))

    def close(self) -> None:
        for seg in list(self._fds):
            self.close_segment(seg)
