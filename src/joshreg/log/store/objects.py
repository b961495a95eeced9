"""The event store on object storage (S3-compatible services, through ``obstore``).

Every object is immutable once named and every name is taken with put-if-absent, so no two
writers and no retry can overwrite each other. A segment is a sequence of chunk objects laid
out by time bucket (``store.chunks``: one ``start_after`` listing finds what is new); appends
go up in the background (``store.uploads``: the ``batch`` flusher, a bounded buffer during an
outage, retries under a fixed name); a chunk put refused as already there (a retry whose first
attempt landed) is read back and compared byte for byte. Claims, ``FORMAT`` and locks are
put-if-absent objects; a claim too big for one put goes up in parts under a manifest
(``store.parts``).

A process always sees its own appends and claims at once. What other processes write becomes
visible at the next listing: with ``refresh_interval`` (the registry sets 1 s) a store lists at
most that often, so reads in a loop do not each become listings; 0 lists every time.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from joshreg.errors import InvalidArgumentError, LogFormatError, StoreError
from joshreg.log.store import parts as claim_parts
from joshreg.log.store.base import LogStore, SegmentInfo, format_body, read_format
from joshreg.log.store.chunks import (
    FULL_LISTING_S,
    GRACE_S,
    ChunkIndex,
    ChunkRef,
    bucket_of,
    chunk_name,
    parse_chunk_name,
)
from joshreg.log.store.compacted import PREFIX as COMPACTED
from joshreg.log.store.compacted import container_bytes, longest_copy, merge_listing
from joshreg.log.store.s3options import (
    explain,
    probe_conditional_put,
    resolve_s3_options,
    s3_client,
    split_s3_url,
)
from joshreg.log.store.uploads import OwnSegment, Uploads

__all__ = ["ObjectStore", "open_s3_store", "s3_store_exists"]

LOCK_POLL_S = 0.02
LOCK_LEASE_S = 600.0  # a lock older than this was left by a process that died holding it


class ObjectStore(LogStore):
    """The event store under ``prefix`` of an ``obstore`` store (``location`` is for messages).

    ``refresh_interval``: list what other processes wrote at most this often (seconds).
    ``max_buffer``: bytes of appended lines held while the service does not take them.
    ``flush_timeout``: how long ``sync`` (``flush()``, ``close()``) waits for the uploads.
    ``part_size``: claims larger than this go up in parts of this size (``store.parts``).
    """

    background_uploads = True

    def __init__(
        self,
        client: Any,
        location: str,
        prefix: str = "",
        *,
        create: bool = True,
        refresh_interval: float = 0.0,
        endpoint: str | None = None,
        max_buffer: int = 64 << 20,
        flush_timeout: float = 120.0,
        part_size: int | None = None,
    ) -> None:
        self.client = client
        self.location = location
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint = endpoint
        self.refresh_interval = refresh_interval
        self.part_size = claim_parts.PART_SIZE if part_size is None else part_size
        #: Requests made, by kind (list, get, put, delete, head): for tests and benchmarks.
        self.requests: Counter[str] = Counter()
        self._lock = threading.RLock()  # the index and the caches below
        self._index = ChunkIndex()
        self._compacted: list[tuple[str, float | None]] = []
        self._listed_at = -math.inf  # monotonic time of the last listing
        self._full_at = -math.inf
        self._cursor: str | None = None  # list after this time bucket next (None: list all)
        self._missing: dict[str, float] = {}  # claim -> when it was found missing
        self._claim_lists: dict[str, tuple[float, list[str]]] = {}
        self._pool: tuple[int, ThreadPoolExecutor] | None = None
        self._uploads = Uploads(
            self._chunk_name,
            self._put_chunk,
            location,
            max_buffer=max_buffer,
            flush_timeout=flush_timeout,
            on_uploaded=self._uploaded,
        )
        if not create and self._get("FORMAT") is None:
            raise LogFormatError(f"there is no joshreg event store at {location}")
        self._store_id = self._open_format()

    # --- naming and the client's errors -----------------------------------------------------

    def _key(self, name: str) -> str:
        return self.prefix + name

    def _name(self, key: str) -> str:
        return key[len(self.prefix) :]

    def _call(self, action: str, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a client call; its errors (but not-found and already-exists, which callers
        handle) become one-line ``StoreError``s saying what to do, never naming a credential."""
        from obstore.exceptions import AlreadyExistsError, NotFoundError

        self.requests[action] += 1
        try:
            return fn(*args, **kwargs)
        except (AlreadyExistsError, NotFoundError, FileNotFoundError):
            raise  # obstore raises FileNotFoundError for a missing object
        except Exception as e:
            raise explain(
                e, action=action, what=what, location=self.location, endpoint=self.endpoint
            ) from None

    def _put_new(self, name: str, data: bytes) -> bool:
        """Create ``name`` unless it exists; True if this call created it."""
        import obstore
        from obstore.exceptions import AlreadyExistsError

        try:
            self._call("put", name, obstore.put, self.client, self._key(name), data, mode="create")
            return True
        except AlreadyExistsError:
            return False

    def _get(self, name: str) -> bytes | None:
        import obstore
        from obstore.exceptions import NotFoundError

        try:
            return bytes(self._call("get", name, obstore.get, self.client, self._key(name)).bytes())
        except (NotFoundError, FileNotFoundError):
            return None

    def _list(self, prefix: str, after: str | None = None) -> list[dict[str, Any]]:
        import obstore

        offset = None if after is None else self._key(after)
        stream = self._call(
            "list", prefix, obstore.list, self.client, prefix=self._key(prefix), offset=offset
        )
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

    # --- listing ------------------------------------------------------------------------------

    def _fresh(self, when: float) -> bool:
        return self.refresh_interval > 0 and time.monotonic() - when < self.refresh_interval

    def _relist(self, *, full: bool = False) -> None:
        """Learn the chunks written since the last listing (all of them when ``full``, at the
        first listing, and every ``FULL_LISTING_S``; see ``store.chunks``)."""
        now, wall = time.monotonic(), time.time()
        full = full or self._cursor is None or now - self._full_at >= FULL_LISTING_S
        after = None if full else f"log/{self._cursor}"
        listed = self._list("log/", after)
        compacted = None
        if full:
            compacted = [
                (self._name(m["path"]), m["last_modified"].timestamp() if m.get("last_modified") else None)
                for m in self._list(COMPACTED + "/")
            ]
        with self._lock:
            index = ChunkIndex() if full else self._index
            for meta in listed:
                parsed = parse_chunk_name(self._name(meta["path"]))
                if parsed is None:
                    continue
                stamp = meta.get("last_modified")
                ref = ChunkRef(
                    parsed[1], int(meta["size"]), self._name(meta["path"]), stamp and stamp.timestamp()
                )
                index.add(parsed[0], ref)
            if full:
                for segment in self._own():  # its chunks uploaded while the listing ran
                    for ref in self._index.chunks.get(segment, {}).values():
                        index.add(segment, ref)
                self._index, self._compacted, self._full_at = index, compacted or [], now
            self._cursor = bucket_of(wall - GRACE_S)
            self._listed_at = now

    def segments(self) -> list[SegmentInfo]:
        if not self._fresh(self._listed_at):
            self._relist()  # not under the lock: the uploads record their chunks meanwhile
        with self._lock:
            names = set(self._index.chunks) | set(self._own())
            files = []
            for name in sorted(names):
                size = max(self._index.size(name), self._own_size(name))
                if size:
                    files.append(SegmentInfo(name, size, self._index.modified(name)))
            return merge_listing(files, self._compacted) if self._compacted else files

    def chunk_gaps(self) -> list[tuple[str, int, str, float | None]]:
        """``(segment, where its contiguous bytes end, the first chunk found after, when that
        chunk was stored)`` for every segment with a missing chunk (a full listing)."""
        self._relist(full=True)
        with self._lock:
            return [
                (seg, end, ref.name, ref.modified)
                for seg in sorted(self._index.chunks)
                for end, ref in self._index.gaps(seg)
            ]

    # --- appending ----------------------------------------------------------------------------

    def _own(self) -> dict[str, OwnSegment]:
        return self._uploads.own if self._uploads.mine() else {}

    def _own_size(self, segment: str) -> int:
        own = self._own().get(segment)
        return 0 if own is None else own.size

    def _chunk_name(self, segment: str, offset: int) -> str:
        return chunk_name(segment, offset, time.time())

    def _put_chunk(self, name: str, data: bytes) -> None:
        """Upload one chunk; a put refused as already there (our own earlier attempt landed)
        is compared byte for byte."""
        if not self._put_new(name, data) and self._get(name) != data:
            error = StoreError(
                f"chunk {name} of the event store at {self.location} exists with other bytes: "
                "another process writes this segment, which must never happen"
            )
            error.permanent = True  # type: ignore[attr-defined]
            raise error

    def _uploaded(self, segment: str, offset: int, size: int, name: str) -> None:
        with self._lock:
            self._index.add(segment, ChunkRef(offset, size, name, time.time()))

    def check_room(self, segment: str) -> None:
        self._uploads.check_room()

    def append(self, segment: str, data: bytes) -> None:
        """Buffer ``data`` for the background uploads (see ``store.uploads``). A segment this
        process has not appended to continues after what the last listing showed of it."""
        if not data:
            return
        if segment not in self._own():
            with self._lock:
                start = self._index.size(segment)
        else:
            start = 0
        self._uploads.append(segment, start, bytes(data))

    def sync(self, segment: str) -> None:
        """Wait until every byte appended to ``segment`` is in chunk objects."""
        self._uploads.wait_uploaded(segment, self._uploads.flush_timeout)

    def close_segment(self, segment: str) -> None:
        self._uploads.forget(segment)

    def close(self) -> None:
        self._uploads.close()
        if self._pool is not None and self._pool[0] == os.getpid():
            self._pool[1].shutdown()
        self._pool = None

    # --- reading ------------------------------------------------------------------------------

    def read(self, segment: str, offset: int = 0, end: int | None = None) -> bytes:
        own = self._own().get(segment)
        for attempt in (0, 1):
            with self._lock:
                refs = self._index.ordered(segment)
            size = max(sum(r.size for r in refs), 0 if own is None else own.size)
            stop = size if end is None else min(end, size)
            if own is not None and offset < stop:
                local = own.local_bytes(offset, stop)
                if local is not None:
                    return local
            if not refs and own is None:
                if attempt == 0 and not self._fresh(self._listed_at):
                    self._relist()  # a segment this handle has not listed yet
                    continue
                return self._read_compacted(segment, offset, end)
            try:
                return self._read_chunks(segment, refs, own, offset, stop)
            except _ChunkGone:
                if attempt:
                    raise StoreError(f"chunks of {segment} vanished while reading {self.location}") from None
                self._relist(full=True)  # compaction replaced them: read the copy
                with self._lock:
                    if not self._index.ordered(segment):
                        return self._read_compacted(segment, offset, end)
        raise AssertionError("unreachable")

    def _read_chunks(
        self, segment: str, refs: list[ChunkRef], own: OwnSegment | None, offset: int, stop: int
    ) -> bytes:
        parts: list[bytes] = []
        at = offset
        wanted = [r for r in refs if r.offset < stop and r.offset + r.size > offset]
        for ref, data in zip(wanted, self._fetch([r.name for r in wanted]), strict=True):
            if data is None:
                raise _ChunkGone
            parts.append(data[max(0, at - ref.offset) : stop - ref.offset])
            at = min(stop, ref.offset + ref.size)
        if own is not None and at < stop:
            rest = own.local_bytes(at, stop)
            if rest is None:
                raise StoreError(f"lost track of {segment}'s own bytes {at}-{stop} in {self.location}")
            parts.append(rest)
        return b"".join(parts)

    def _fetch(self, names: list[str]) -> list[bytes | None]:
        """GET several objects, in parallel when there are several."""
        return self._map(self._get, names)

    def _map(self, fn: Any, items: list[Any]) -> list[Any]:
        """``fn`` over ``items``, in parallel when there are several (one pool per store, made
        at the first such call)."""
        if len(items) <= 1:
            return [fn(i) for i in items]
        if self._pool is None or self._pool[0] != os.getpid():  # a forked child has no threads
            self._pool = (os.getpid(), ThreadPoolExecutor(max_workers=8, thread_name_prefix="joshreg-io"))
        return list(self._pool[1].map(fn, items))

    def _read_compacted(self, segment: str, offset: int, end: int | None) -> bytes:
        with self._lock:
            copy = longest_copy((n for n, _ in self._compacted), segment)
        if copy is None:
            copy = longest_copy(self.list_claims(COMPACTED), segment)
        if copy is None:
            return b""
        try:
            whole = container_bytes(self._get_whole(copy[0]) or b"")
        except Exception as e:  # damaged or foreign file: pyarrow raises many kinds
            raise StoreError(f"cannot read the compacted segment {copy[0]}: {e}") from e
        return whole[offset:end]

    def put_segment(self, segment: str, data: bytes) -> bool:
        if self._own_size(segment):
            return False
        self._relist(full=True)
        with self._lock:
            if self._index.chunks.get(segment) or longest_copy((n for n, _ in self._compacted), segment):
                return False
        name = chunk_name(segment, 0, time.time())
        if not self._put_new(name, bytes(data)):
            return False
        self._uploaded(segment, 0, len(data), name)
        return True

    def retire_segment(self, segment: str) -> bool:
        import obstore

        self.sync(segment)  # a segment of this process: its chunks first
        self._relist(full=True)
        with self._lock:
            chunks = list(self._index.chunks.get(segment, {}).values())
            copy = longest_copy((n for n, _ in self._compacted), segment)
        if not chunks:
            return False
        size = self._index.size(segment)
        if copy is None or copy[1] < size:
            raise StoreError(
                f"refusing to delete {segment}: no compacted copy holds its {size} bytes (compact it first)"
            )
        keys = [self._key(r.name) for r in chunks]
        self._call("delete", segment, obstore.delete, self.client, keys)
        with self._lock:
            self._index.forget(segment)
        self._uploads.forget(segment)
        return True

    # --- claims -------------------------------------------------------------------------------

    def claim(self, name: str, data: bytes) -> bool:
        data = bytes(data)
        if claim_parts.needs_parts(data, self.part_size):
            made = self._claim_in_parts(name, data)
        else:
            made = self._put_new(name, data)
        with self._lock:
            self._missing.pop(name, None)
            for prefix, (_, names) in self._claim_lists.items():
                if name.startswith(prefix) and "/" not in name[len(prefix) :] and name not in names:
                    names.append(name)
                    names.sort()
        return made

    def read_claim(self, name: str) -> bytes | None:
        with self._lock:
            since = self._missing.get(name)
        if since is not None and self._fresh(since):
            return None
        data = self._get_whole(name)
        if data is None and self.refresh_interval > 0:
            with self._lock:
                self._missing[name] = time.monotonic()
        return data

    def _claim_in_parts(self, name: str, data: bytes) -> bool:
        """Parts first (in parallel, each put-if-absent and compared if already there), the
        manifest last: the claim appears whole or not at all."""
        if self.claim_exists(name):
            return False  # lost already: do not upload the parts at all
        manifest, pieces = claim_parts.split(name, data, self.part_size)

        def put(piece: tuple[str, bytes]) -> None:
            part, body = piece
            if not self._put_new(part, body) and self._get(part) != body:
                raise StoreError(
                    f"part {part} in {self.location} exists with other bytes than its name promises; "
                    "run `joshreg verify` on the registry"
                )

        self._map(put, pieces)
        return self._put_new(name, manifest.encode())

    def _get_whole(self, name: str) -> bytes | None:
        """A claim's content, joined from its parts when it went up in parts."""
        data = self._get(name)
        manifest = None if data is None else claim_parts.parse(data, name)
        if manifest is None:
            return data
        pieces = self._fetch([part for part, _ in manifest.parts])
        return claim_parts.join(manifest, pieces, name, self.location)

    def discard_temporaries(self, prefix: str, older_than: float) -> int:
        """Delete the parts under ``prefix`` that no manifest names and that are older than
        ``older_than`` seconds (a writer that lost the race for a name, or died before its
        manifest); return how many."""
        import obstore

        listed = self._list(claim_parts.FOLDER + prefix.strip("/") + "/")
        found = [
            (self._name(m["path"]), m["last_modified"].timestamp() if m.get("last_modified") else None)
            for m in listed
        ]
        claims = {owner[0] for n, _ in found if (owner := claim_parts.owner(n)) is not None}
        manifests = {}
        for claim in claims:
            raw = self._get(claim)
            manifests[claim] = None if raw is None else claim_parts.parse(raw, claim)
        doomed = claim_parts.orphans(found, manifests, time.time() - older_than)
        if doomed:
            self._call(
                "delete", f"parts under {prefix}", obstore.delete, self.client, [self._key(n) for n in doomed]
            )
        return len(doomed)

    def list_claims(self, prefix: str) -> list[str]:
        import obstore

        folder = prefix.rstrip("/") + "/"
        with self._lock:
            cached = self._claim_lists.get(folder)
        if cached is not None and self._fresh(cached[0]):
            return list(cached[1])
        listing = self._call("list", folder, obstore.list_with_delimiter, self.client, self._key(folder))
        names = (self._name(meta["path"]) for meta in listing["objects"])
        found = sorted(n for n in names if not n.rsplit("/", 1)[-1].startswith("."))
        if self.refresh_interval > 0:
            with self._lock:
                self._claim_lists[folder] = (time.monotonic(), found)
        return list(found)

    def walk_claims(self, prefix: str) -> Iterator[str]:
        folder = prefix.rstrip("/") + "/"
        if folder.startswith(("log/", claim_parts.FOLDER)):
            return iter(())
        names = (self._name(meta["path"]) for meta in self._list(folder))
        hidden = ("log/", "locks/", ".joshreg-probe/", claim_parts.FOLDER)
        return iter(sorted(n for n in names if not n.startswith(hidden) and n != "FORMAT"))

    def claim_exists(self, name: str) -> bool:
        import obstore
        from obstore.exceptions import NotFoundError

        try:
            self._call("get", name, obstore.head, self.client, self._key(name))
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
            self._call("delete", f"the lock {name}", obstore.delete, self.client, self._key(lock))


class _ChunkGone(Exception):
    """A listed chunk was not there to read: compaction replaced it."""


# Locations whose service passed the put-if-absent probe in this process.
_PROBED: set[str] = set()


def _client(location: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str, str | None]:
    bucket, prefix = split_s3_url(location)
    if not bucket:
        raise InvalidArgumentError(f"{location} names no bucket; write s3://bucket/prefix")
    options = resolve_s3_options(storage_options)
    return s3_client(bucket, options), prefix, options.endpoint


def open_s3_store(
    location: str,
    *,
    create: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    refresh_interval: float = 0.0,
) -> ObjectStore:
    """The event store at ``s3://bucket/prefix``. The first open in a process checks that the
    service refuses a second put-if-absent of one key, and refuses it with one line if not."""
    client, prefix, endpoint = _client(location, storage_options)
    if location not in _PROBED:
        probe_conditional_put(client, prefix, where=location, endpoint=endpoint)
        _PROBED.add(location)
    return ObjectStore(
        client, location, prefix, create=create, endpoint=endpoint, refresh_interval=refresh_interval
    )


def s3_store_exists(location: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    import obstore
    from obstore.exceptions import NotFoundError

    client, prefix, endpoint = _client(location, storage_options)
    key = f"{prefix.strip('/')}/FORMAT" if prefix.strip("/") else "FORMAT"
    try:
        obstore.head(client, key)
        return True
    except (NotFoundError, FileNotFoundError):  # obstore's in-memory store raises the latter
        return False
    except Exception as e:
        raise explain(e, action="get", what="FORMAT", location=location, endpoint=endpoint) from None
