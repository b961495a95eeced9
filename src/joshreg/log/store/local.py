"""A store in a POSIX directory, local or shared (NFS, Lustre).

Segments are appended with ``O_APPEND`` by their single writer; claims are written to a unique
temporary file, fsynced, then ``link(2)``-ed to their name, which is put-if-absent on local file
systems and NFSv3+ alike, and never exposes a half-written claim. A compacted segment is the
claim ``compacted/<stem>.<size>.parquet``; reads of ``log/<stem>.jsonl`` use it once the JSONL
is gone, so a reader racing the compactor's delete still gets every byte.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import time
from collections.abc import Iterator

from joshreg.errors import LogFormatError, StoreError
from joshreg.log.store.base import (
    FORMAT_NAME,
    FORMAT_VERSION,
    LogStore,
    SegmentInfo,
    format_body,
    read_format,
)
from joshreg.log.store.compacted import PREFIX as COMPACTED
from joshreg.log.store.compacted import container_bytes, longest_copy, merge_listing

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "LEGACY_ID_FILE", "LocalStore"]

# Where a store whose FORMAT predates store ids keeps its id.
LEGACY_ID_FILE = "STORE_ID"


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte: a short write (a signal, a nearly full disk) is completed, which is
    safe because each file has a single writer; a write that makes no progress raises."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.EIO, f"write made no progress with {len(view)} bytes left")
        view = view[n:]


class LocalStore(LogStore):
    """The event store in directory ``root``.

    ``create=False`` refuses a directory that is not a store yet instead of making one there.
    A directory that holds files but no ``FORMAT`` is never made a store: it is somebody's
    folder, named by mistake.
    """

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        self.root = os.fspath(root)
        self.location = self.root
        self._fds: dict[str, int] = {}
        self._known_dirs: set[str] = set()
        self._named: set[str] = set()  # segments whose folder entry has been made durable
        self._bytes_cache: tuple[str, bytes] | None = None  # the last compacted segment read
        self._store_id: str | None = None
        self._check_place(create)
        try:
            os.makedirs(os.path.join(self.root, "log"), exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the event store at {self.root}: {e}") from e
        self._check_format()

    def _check_place(self, create: bool) -> None:
        """Refuse, before writing anything, a location that is not a store and must not become one."""
        root = self.root
        if os.path.isfile(os.path.join(root, "FORMAT")):
            return
        if os.path.lexists(root) and not os.path.isdir(root):
            raise LogFormatError(f"{root} is a file, not a joshreg event store (a directory)")
        if not create:
            raise LogFormatError(f"there is no joshreg event store at {root}")
        try:
            # ``log`` and ``.tmp-*`` are what another process making this store right now writes
            # before its FORMAT: not somebody's files.
            listed = os.listdir(root) if os.path.isdir(root) else []
            entries = [e for e in listed if e != "log" and not e.startswith(".tmp-")]
        except OSError as e:
            raise StoreError(f"cannot read {root}: {e}") from e
        if entries and os.path.isfile(os.path.join(root, "FORMAT")):
            return  # another process made the store between our two looks
        if entries:
            raise LogFormatError(
                f"{root} is a directory with other files in it and no FORMAT, so it is not a joshreg "
                "event store; joshreg makes its store only in an empty or new directory: give another "
                "events path"
            )

    def _check_format(self) -> None:
        path = os.path.join(self.root, "FORMAT")
        if not os.path.exists(path):
            self._put_if_absent("FORMAT", format_body())
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise LogFormatError(f"{path} is not a joshreg FORMAT file: {e}") from e
        self._store_id = read_format(raw, self.root)

    @property
    def store_id(self) -> str:
        # A store made before store ids existed gets one on first use, claimed put-if-absent
        # beside FORMAT (which is never rewritten), so every process agrees on it.
        if self._store_id is None:
            self._put_if_absent(LEGACY_ID_FILE, secrets.token_hex(16).encode())
            data = self.read_claim(LEGACY_ID_FILE) or b""
            self._store_id = data.decode("ascii", "replace").strip()
        return self._store_id

    def stored_id(self) -> str | None:
        if self._store_id is None:
            data = self.read_claim(LEGACY_ID_FILE)
            if data:
                self._store_id = data.decode("ascii", "replace").strip()
        return self._store_id

    # --- segments ---------------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def _fd(self, segment: str) -> int:
        fd = self._fds.get(segment)
        if fd is None:
            path = self._path(segment)
            try:
                self._ensure_dir(os.path.dirname(path))
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
            _write_all(fd, data)
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
        if segment not in self._named:  # its name too, once: a new file's entry is in its folder
            self._sync_dir(os.path.dirname(self._path(segment)))
            self._named.add(segment)

    def close_segment(self, segment: str) -> None:
        fd = self._fds.pop(segment, None)
        if fd is not None:
            os.close(fd)

    def _scan(self, folder: str, suffix: str) -> list[tuple[str, int, float]]:
        out: list[tuple[str, int, float]] = []
        try:
            entries = os.scandir(os.path.join(self.root, folder))
        except FileNotFoundError:
            return out
        with entries:
            for entry in entries:
                if entry.name.endswith(suffix) and not entry.name.startswith(".tmp-"):
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue
                    out.append((f"{folder}/{entry.name}", st.st_size, st.st_mtime))
        return out

    def segments(self) -> list[SegmentInfo]:
        files = [SegmentInfo(n, size, mtime) for n, size, mtime in self._scan("log", ".jsonl")]
        compacted = [(n, mtime) for n, _, mtime in self._scan(COMPACTED, ".parquet")]
        if not compacted:
            files.sort(key=lambda s: s.name)
            return files
        return merge_listing(files, compacted)

    def _compacted_copy(self, segment: str) -> tuple[str, int] | None:
        """The longest compacted claim holding ``segment`` and its size, if any."""
        return longest_copy((name for name, _, _ in self._scan(COMPACTED, ".parquet")), segment)

    def _compacted_bytes(self, claim: str) -> bytes:
        cached = self._bytes_cache
        if cached is not None and cached[0] == claim:
            return cached[1]
        try:
            data = container_bytes(self._path(claim))
        except Exception as e:  # damaged or foreign file: pyarrow raises many kinds
            raise StoreError(f"cannot read the compacted segment {self._path(claim)}: {e}") from e
        self._bytes_cache = (claim, data)
        return data

    def read(self, segment: str, offset: int = 0, end: int | None = None) -> bytes:
        path = self._path(segment)
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read() if end is None else f.read(max(0, end - offset))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise StoreError(f"cannot read segment {path}: {e}") from e
        copy = self._compacted_copy(segment)  # the JSONL is gone: compacted, or never was
        if copy is None:
            return b""
        return self._compacted_bytes(copy[0])[offset:end]

    def retire_segment(self, segment: str) -> bool:
        path = self._path(segment)
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            return False
        copy = self._compacted_copy(segment)
        if copy is None or copy[1] < size:
            raise StoreError(
                f"refusing to delete {path}: no compacted copy holds its {size} bytes (compact it first)"
            )
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False  # another compactor was quicker
        except OSError as e:
            raise StoreError(f"cannot delete {path}: {e}") from e
        self._sync_dir(os.path.dirname(path))
        return True

    def discard_temporaries(self, prefix: str, older_than: float) -> int:
        folder = self._path(prefix.rstrip("/"))
        limit = time.time() - older_than
        n = 0
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return 0
        for entry in entries:
            if entry.name.startswith(".tmp-"):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime <= limit:
                        os.unlink(entry.path)
                        n += 1
        return n

    @staticmethod
    def _sync_dir(folder: str) -> None:
        with contextlib.suppress(OSError):
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    # --- claims -----------------------------------------------------------------------------

    def _ensure_dir(self, d: str) -> None:
        if d not in self._known_dirs:
            if not os.path.isdir(d):
                os.makedirs(d, exist_ok=True)
                self._sync_dir(os.path.dirname(d))  # the new folder's own entry
            self._known_dirs.add(d)

    def _put_if_absent(self, name: str, data: bytes) -> bool:
        final = self._path(name)
        folder = os.path.dirname(final)
        tmp = os.path.join(folder, f".tmp-{os.getpid()}-{secrets.token_hex(6)}")
        try:
            self._ensure_dir(folder)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                _write_all(fd, data)  # a short write must not name half a claim
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
            self._sync_dir(folder)
            return True
        except OSError as e:
            raise StoreError(
                f"cannot create {final}: {e}; nothing was created: free space or fix "
                "permissions, then try again"
            ) from e
        finally:
            with contextlib.suppress(OSError):  # cleanup: the error above, if any, is what counts
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

    def walk_claims(self, prefix: str) -> Iterator[str]:
        folder = prefix.strip("/")
        if folder == "log" or folder.startswith("log/"):
            return iter(())  # segments, not claims
        top = self._path(folder)
        found: list[str] = []
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = os.path.relpath(folder, self.root).replace(os.sep, "/")
            found += [f"{rel}/{f}" for f in files if not f.startswith(".")]
        return iter(sorted(found))

    def claim_exists(self, name: str) -> bool:
        return os.path.exists(self._path(name))

    def put_segment(self, segment: str, data: bytes) -> bool:
        return self._put_if_absent(segment, data)  # link(2): whole or not at all

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        path = self._path(f".lock-{name}")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise StoreError(f"cannot take the lock {path}: {e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def close(self) -> None:
        for seg in list(self._fds):
            self.close_segment(seg)
