"""The event store on object storage (S3-compatible services, through ``obstore``).

Every object is immutable once named and every name is taken with put-if-absent, so no two
writers and no retry can overwrite each other. A segment is a sequence of chunk objects, one
per ``append`` (the writer's group commit decides how many lines that is), named
``<segment>/<start offset as 20 digits>.chunk`` so that listing returns them in order; the
chunks' lines continue the segment's checksum chain, so a gap, a duplicate or an edited chunk
shows as on disk. Claims, ``FORMAT`` and locks are put-if-absent objects. A chunk put refused
as already there (a retry whose first attempt landed) is read back and compared byte for byte.

This is the backend, checked by ``LogStoreContract``; opening ``s3://`` paths from the
registry, the CLI and workers, the background flusher and cheap discovery by key layout come
next (see the issue 15 note).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import Any

from joshreg.errors import InvalidArgumentError, LogFormatError, StoreError
from joshreg.log.store.base import LogStore, SegmentInfo, format_body, read_format
from joshreg.log.store.compacted import PREFIX as COMPACTED
from joshreg.log.store.compacted import container_bytes, longest_copy, merge_listing
from joshreg.log.store.s3options import client_error, probe_conditional_put, resolve_s3_options

__all__ = ["ObjectStore", "open_s3_store", "s3_store_exists"]

CHUNK_SUFFIX = ".chunk"
LOCK_POLL_S = 0.02
LOCK_LEASE_S = 600.0  # a lock older than this was left by a process that died holding it


class ObjectStore(LogStore):
    """The event store under ``prefix`` of an ``obstore`` store (``location`` is for messages)."""

    def __init__(self, client: Any, location: str, prefix: str = "", *, create: bool = True) -> None:
        self.client = client
        self.location = location
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._sizes: dict[str, int] = {}
        if not create and self._get("FORMAT") is None:
            raise LogFormatError(f"there is no joshreg event store at {location}")
        self._store_id = self._open_format()

    # --- naming and the client's errors -----------------------------------------------------

    def _key(self, name: str) -> str:
        return self.prefix + name

    def _name(self, key: str) -> str:
        return key[len(self.prefix) :]

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a client call; its errors (but not-found and already-exists, which callers
        handle) become one-line ``StoreError``s naming the store, never a credential."""
        from obstore.exceptions import AlreadyExistsError, NotFoundError

        try:
            return fn(*args, **kwargs)
        except (AlreadyExistsError, NotFoundError, FileNotFoundError):
            raise  # obstore raises FileNotFoundError for a missing object
        except Exception as e:
            raise StoreError(
                f"cannot {what} in the event store at {self.location}: {client_error(e)}"
            ) from None

    def _put_new(self, name: str, data: bytes) -> bool:
        """Create ``name`` unless it exists; True if this call created it. (A chunk whose put
        may have landed before a retry is checked by its bytes in ``append``; a claim is not,
        since two racing claimants may write the same bytes.)"""
        import obstore
        from obstore.exceptions import AlreadyExistsError

        try:
            self._call(f"write {name}", obstore.put, self.client, self._key(name), data, mode="create")
            return True
        except AlreadyExistsError:
            return False

    def _get(self, name: str) -> bytes | None:
        import obstore
        from obstore.exceptions import NotFoundError

        try:
            return bytes(self._call(f"read {name}", obstore.get, self.client, self._key(name)).bytes())
        except (NotFoundError, FileNotFoundError):
            return None

    def _list(self, prefix: str) -> list[dict[str, Any]]:
        import obstore

        stream = self._call(f"list {prefix}", obstore.list, self.client, prefix=self._key(prefix))
        return [meta for batch in stream for meta in batch]

    def _open_format(self) -> str:
        self._put_new("FORMAT", format_body())
        sid = read_format(self._get("FORMAT") or b"", self.location)
        if sid is None:  # object stores were made after store ids existed: never happens
            raise LogFormatError(f"{self.location}/FORMAT names no store id")
        return sid

    @property
    def store_id(self) -> str:  # type: ignore[override]
        return self._store_id

    # --- segments ---------------------------------------------------------------------------

    def _chunks(self, segment: str) -> list[tuple[int, int, str]]:
        """``(offset, size, key)`` of the segment's chunks, in order."""
        out = []
        for meta in self._list(segment + "/"):
            base = meta["path"].rsplit("/", 1)[-1]
            if base.endswith(CHUNK_SUFFIX) and base[: -len(CHUNK_SUFFIX)].isdigit():
                out.append((int(base[: -len(CHUNK_SUFFIX)]), int(meta["size"]), meta["path"]))
        return sorted(out)

    def append(self, segment: str, data: bytes) -> None:
        if not data:
            return
        offset = self._sizes.get(segment)
        if offset is None:
            offset = sum(size for _, size, _ in self._chunks(segment))
        name = f"{segment}/{offset:020d}{CHUNK_SUFFIX}"
        if not self._put_new(name, bytes(data)) and self._get(name) != bytes(data):
            raise StoreError(
                f"chunk {name} of the event store at {self.location} exists with other bytes: "
                "another process writes this segment, which must never happen"
            )
        self._sizes[segment] = offset + len(data)

    def sync(self, segment: str) -> None:
        """Nothing to do: an appended chunk is durable when ``append`` returns."""

    def close_segment(self, segment: str) -> None:
        self._sizes.pop(segment, None)

    def segments(self) -> list[SegmentInfo]:
        sizes: dict[str, int] = {}
        modified: dict[str, float] = {}
        compacted: list[tuple[str, float | None]] = []
        for meta in self._list("log/"):
            name = self._name(meta["path"])
            segment, _, base = name.rpartition("/")
            if not base.endswith(CHUNK_SUFFIX):
                continue
            sizes[segment] = sizes.get(segment, 0) + int(meta["size"])
            stamp = meta.get("last_modified")
            if stamp is not None:
                modified[segment] = max(modified.get(segment, 0.0), stamp.timestamp())
        for meta in self._list(COMPACTED + "/"):
            stamp = meta.get("last_modified")
            compacted.append((self._name(meta["path"]), stamp.timestamp() if stamp else None))
        files = [SegmentInfo(n, s, modified.get(n)) for n, s in sorted(sizes.items())]
        return merge_listing(files, compacted) if compacted else files

    def read(self, segment: str, offset: int = 0, end: int | None = None) -> bytes:
        chunks = self._chunks(segment)
        if chunks:
            parts = []
            for start, size, key in chunks:
                if end is not None and start >= end:
                    break
                if start + size <= offset:
                    continue
                parts.append((start, self._get(self._name(key)) or b""))
            data = b"".join(p for _, p in parts)
            base = parts[0][0] if parts else offset
            return data[offset - base : None if end is None else end - base]
        copy = longest_copy(self.list_claims(COMPACTED), segment)
        if copy is None:
            return b""
        try:
            whole = container_bytes(self._get(copy[0]) or b"")
        except Exception as e:  # damaged or foreign file: pyarrow raises many kinds
            raise StoreError(f"cannot read the compacted segment {copy[0]}: {e}") from e
        return whole[offset:end]

    def put_segment(self, segment: str, data: bytes) -> bool:
        if self._chunks(segment):
            return False
        return self._put_new(f"{segment}/{0:020d}{CHUNK_SUFFIX}", bytes(data))

    def retire_segment(self, segment: str) -> bool:
        import obstore

        chunks = self._chunks(segment)
        if not chunks:
            return False
        size = sum(s for _, s, _ in chunks)
        copy = longest_copy(self.list_claims(COMPACTED), segment)
        if copy is None or copy[1] < size:
            raise StoreError(
                f"refusing to delete {segment}: no compacted copy holds its {size} bytes (compact it first)"
            )
        self._call(f"delete {segment}", obstore.delete, self.client, [key for _, _, key in chunks])
        self._sizes.pop(segment, None)
        return True

    # --- claims -------------------------------------------------------------------------------

    def claim(self, name: str, data: bytes) -> bool:
        return self._put_new(name, bytes(data))

    def read_claim(self, name: str) -> bytes | None:
        return self._get(name)

    def list_claims(self, prefix: str) -> list[str]:
        import obstore

        folder = prefix.rstrip("/") + "/"
        listing = self._call(f"list {folder}", obstore.list_with_delimiter, self.client, self._key(folder))
        names = (self._name(meta["path"]) for meta in listing["objects"])
        return sorted(n for n in names if not n.rsplit("/", 1)[-1].startswith("."))

    def walk_claims(self, prefix: str) -> Iterator[str]:
        folder = prefix.rstrip("/") + "/"
        if folder.startswith("log/"):
            return iter(())
        names = (self._name(meta["path"]) for meta in self._list(folder))
        return iter(sorted(n for n in names if not n.startswith(("log/", "locks/")) and n != "FORMAT"))

    def claim_exists(self, name: str) -> bool:
        import obstore
        from obstore.exceptions import NotFoundError

        try:
            self._call(f"look up {name}", obstore.head, self.client, self._key(name))
            return True
        except (NotFoundError, FileNotFoundError):
            return False

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """A lock object taken with put-if-absent and deleted after; one older than the lease
        was left by a process that died holding it, and is broken."""
        import obstore

        lock = f"locks/{name}"
        while not self._put_new(lock, f"{time.time()}\n".encode()):
            held = self._get(lock)
            try:
                since = float((held or b"0").decode())
            except ValueError:
                since = 0.0
            if held is not None and time.time() - since > LOCK_LEASE_S:
                with contextlib.suppress(Exception):
                    obstore.delete(self.client, self._key(lock))
                continue
            time.sleep(LOCK_POLL_S)
        try:
            yield
        finally:
            self._call(f"release the lock {name}", obstore.delete, self.client, self._key(lock))


# Locations whose service passed the put-if-absent probe in this process.
_PROBED: set[str] = set()


def _client(location: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str]:
    from obstore.store import S3Store

    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    if not bucket:
        raise InvalidArgumentError(f"{location} names no bucket; write s3://bucket/prefix")
    options = resolve_s3_options(storage_options)
    return S3Store(bucket, **options.client_config()), prefix


def open_s3_store(
    location: str, *, create: bool = True, storage_options: Mapping[str, Any] | None = None
) -> ObjectStore:
    """The event store at ``s3://bucket/prefix``. The first open in a process checks that the
    service refuses a second put-if-absent of one key, and refuses it with one line if not."""
    client, prefix = _client(location, storage_options)
    if location not in _PROBED:
        probe_conditional_put(client, prefix, where=location)
        _PROBED.add(location)
    return ObjectStore(client, location, prefix, create=create)


def s3_store_exists(location: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    import obstore
    from obstore.exceptions import NotFoundError

    client, prefix = _client(location, storage_options)
    key = f"{prefix.strip('/')}/FORMAT" if prefix.strip("/") else "FORMAT"
    try:
        obstore.head(client, key)
        return True
    except (NotFoundError, FileNotFoundError):  # obstore's in-memory store raises the latter
        return False
    except Exception as e:
        raise StoreError(f"cannot reach the event store at {location}: {client_error(e)}") from None
