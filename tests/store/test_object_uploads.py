"""The object store's own behaviour beyond the contract: background uploads, the bounded
buffer, the time-bucketed key layout and its listings, refresh_interval, safe retries and the
one-line errors (against obstore's in-memory store; the real servers are in test_s3_*)."""

from __future__ import annotations

import threading
import time
from typing import Any

import obstore
import pytest
from obstore.store import MemoryStore

from joshreg.errors import StoreError, UploadBacklogError
from joshreg.log.events import RunStarted
from joshreg.log.store.chunks import BUCKET_S, ChunkIndex, ChunkRef, bucket_of, chunk_name, parse_chunk_name
from joshreg.log.store.objects import ObjectStore
from joshreg.log.store.s3options import explain
from joshreg.log.writer import EventWriter

SEG = "log/w1.jsonl"


def chunks_in(client: Any, prefix: str = "p") -> list[str]:
    return sorted(m["path"] for batch in obstore.list(client, prefix=prefix + "/log/") for m in batch)


def wait_for(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class FlakyStore(ObjectStore):
    """An object store whose chunk uploads fail while ``down`` is set (a network outage)."""

    down = False

    def _put_chunk(self, name: str, data: bytes) -> None:
        if self.down:
            error = StoreError("cannot reach the service (error sending request)")
            error.permanent = False  # type: ignore[attr-defined]
            raise error
        super()._put_chunk(name, data)


def test_chunk_names_sort_by_time_then_segment_and_offset() -> None:
    t = 1_800_000_000.0
    first, later = chunk_name(SEG, 0, t), chunk_name(SEG, 100, t + BUCKET_S)
    assert first < later and chunk_name("log/a.jsonl", 5, t + BUCKET_S) < later
    assert parse_chunk_name(first) == (SEG, 0, bucket_of(t))
    assert parse_chunk_name("log/w1.jsonl/00000000000000000000.chunk") is None  # not this layout
    assert bucket_of(t) < bucket_of(t + BUCKET_S) and bucket_of(t) == bucket_of(t + BUCKET_S - 1)


def test_a_segment_is_only_as_long_as_its_contiguous_chunks() -> None:
    index = ChunkIndex()
    index.add(SEG, ChunkRef(0, 10, "a"))
    index.add(SEG, ChunkRef(25, 5, "c"))
    assert index.size(SEG) == 10 and index.gaps(SEG) == [(10, ChunkRef(25, 5, "c"))]
    index.add(SEG, ChunkRef(10, 15, "b"))
    assert index.size(SEG) == 30 and index.gaps(SEG) == []


def test_a_lone_append_goes_up_in_the_background_within_the_delay() -> None:
    client = MemoryStore()
    writer_store, other = ObjectStore(client, "m://x", "p"), ObjectStore(client, "m://x", "p")
    writer_store.append(SEG, b"one\n")
    wait_for(lambda: chunks_in(client))  # no flush, no further write: the flusher uploads it
    assert [(s.name, s.size) for s in other.segments()] == [(SEG, 4)]
    assert other.read(SEG) == b"one\n"


class SlowStore(ObjectStore):
    """An object store whose uploads take 100 ms (a far service)."""

    def _put_chunk(self, name: str, data: bytes) -> None:
        time.sleep(0.1)
        super()._put_chunk(name, data)


def test_appends_while_an_upload_is_in_flight_go_into_the_next_chunk_in_order() -> None:
    client = MemoryStore()
    store = SlowStore(client, "m://x", "p")
    first = [f"line {i}\n".encode() for i in range(300)]  # more than 256: goes up at once
    for line in first:
        store.append(SEG, line)
    wait_for(lambda: store._uploads.own[SEG].in_flight)
    later = [f"later {i}\n".encode() for i in range(100)]
    for line in later:  # while the first chunk is in flight
        store.append(SEG, line)
    store.sync(SEG)
    names = chunks_in(client)
    assert len(names) == 2
    offsets = [parse_chunk_name(n.removeprefix("p/"))[1] for n in names]  # type: ignore[index]
    assert offsets == [0, len(b"".join(first))]
    assert ObjectStore(client, "m://x", "p").read(SEG) == b"".join(first + later)


class GatedStore(ObjectStore):
    """An object store whose uploads wait until the test opens the gate."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()

    def _put_chunk(self, name: str, data: bytes) -> None:
        assert self.gate.wait(30)
        super()._put_chunk(name, data)


def test_a_writer_in_batch_mode_does_not_wait_and_in_event_mode_does() -> None:
    client = MemoryStore()
    store = GatedStore(client, "m://x", "b")
    batch = EventWriter(store, durability="batch")
    batch.append(RunStarted(run_id="r1", run_hash="h", session_id="s", replicate=0))  # returns
    assert chunks_in(client, "b") == []
    store.gate.set()
    batch.flush()
    assert len(chunks_in(client, "b")) == 1
    event = EventWriter(ObjectStore(client, "m://x", "e"), durability="event")
    event.append(RunStarted(run_id="r1", run_hash="h", session_id="s", replicate=0))
    assert len(chunks_in(client, "e")) == 1  # uploaded before append returned


def test_an_outage_fills_the_buffer_up_to_its_bound_then_refuses_and_loses_nothing() -> None:
    client = MemoryStore()
    store = FlakyStore(client, "m://x", "p", max_buffer=4096, flush_timeout=0.3)
    store.down = True
    writer = EventWriter(store)
    kept = []
    with pytest.raises(UploadBacklogError, match=r"wait in this process .* Nothing is lost"):
        for i in range(1000):
            kept.append(writer.append(RunStarted(run_id=f"r{i}", run_hash="h", session_id="s", replicate=0)))
    assert 5 < len(kept) < 1000
    with pytest.raises(UploadBacklogError, match="not in the event store at m://x yet"):
        writer.flush()
    store.down = False  # the service is back
    writer.flush()
    more = writer.append(RunStarted(run_id="after", run_hash="h", session_id="s", replicate=0))
    writer.flush()
    data = ObjectStore(client, "m://x", "p").read(writer.segment)
    seqs = [int(line.split(b'"seq":')[1].split(b",")[0]) for line in data.splitlines()]
    assert seqs == [*range(1, len(kept) + 2)]  # every kept event once, in order, and
    assert more.seq == len(kept) + 1  # the refused one took no sequence number or chain link
    from joshreg.operations.verify import verify_store

    assert verify_store(ObjectStore(client, "m://x", "p"), rebuild=False).ok


def test_a_retried_put_that_had_landed_is_compared_not_doubled() -> None:
    client = MemoryStore()
    store = ObjectStore(client, "m://x", "p")
    name = chunk_name(SEG, 0, time.time())
    obstore.put(client, f"p/{name}", b"same\n")  # the first attempt landed, its answer was lost
    store._put_chunk(name, b"same\n")  # the retry: refused as there, read back, equal: fine
    with pytest.raises(StoreError, match="exists with other bytes"):
        store._put_chunk(name, b"other\n")


def test_a_listing_starts_after_the_last_seen_time_bucket() -> None:
    client = MemoryStore()
    reader = ObjectStore(client, "m://x", "p")
    assert reader.segments() == []
    before = reader.requests["list"]
    # A chunk named in a bucket long before the reader's cursor is not listed again ...
    obstore.put(client, "p/" + chunk_name("log/late.jsonl", 0, time.time() - 3600), b"x\n")
    obstore.put(client, "p/" + chunk_name("log/new.jsonl", 0, time.time()), b"y\n")
    assert [s.name for s in reader.segments()] == ["log/new.jsonl"]
    assert reader.requests["list"] == before + 1  # one listing, compacted copies not listed again
    # ... until a full listing (every FULL_LISTING_S, and by verify's chunk_gaps) finds it.
    assert reader.chunk_gaps() == []
    assert [s.name for s in reader.segments()] == ["log/late.jsonl", "log/new.jsonl"]


def test_a_missing_chunk_hides_what_follows_it_until_it_appears() -> None:
    client = MemoryStore()
    reader = ObjectStore(client, "m://x", "p")
    now = time.time()
    obstore.put(client, "p/" + chunk_name(SEG, 4, now), b"two\n")
    assert [(s.name, s.size) for s in reader.segments()] == []
    [(segment, end, name, _)] = reader.chunk_gaps()
    assert (segment, end) == (SEG, 0) and name.endswith("00000000000000000004.chunk")
    obstore.put(client, "p/" + chunk_name(SEG, 0, now), b"one\n")
    assert [(s.name, s.size) for s in reader.segments()] == [(SEG, 8)]
    assert reader.read(SEG) == b"one\ntwo\n"


def test_a_reader_whose_chunks_were_compacted_away_reads_the_copy() -> None:
    from joshreg.log.store.compacted import compacted_name
    from joshreg.testing.store_contract import container

    client = MemoryStore()
    writer, reader = ObjectStore(client, "m://x", "p"), ObjectStore(client, "m://x", "p")
    data = b"one\ntwo\n"
    writer.append(SEG, data)
    writer.sync(SEG)
    assert [s.size for s in reader.segments()] == [len(data)]  # the reader knows the chunk
    assert writer.claim(compacted_name(SEG, len(data)), container(data))
    assert writer.retire_segment(SEG)
    assert reader.read(SEG, 4) == b"two\n"  # 404 on the chunk: list again, read the copy


def test_refresh_interval_lists_at_most_that_often_but_own_writes_show_at_once() -> None:
    client = MemoryStore()
    mine = ObjectStore(client, "m://x", "p", refresh_interval=60)
    other = ObjectStore(client, "m://x", "p")
    mine.segments()
    lists, gets = mine.requests["list"], mine.requests["get"]
    other.append("log/other.jsonl", b"theirs\n")
    other.sync("log/other.jsonl")
    mine.append(SEG, b"mine\n")
    assert [(s.name, s.size) for s in mine.segments()] == [(SEG, 5)]  # own: at once, no listing
    assert mine.read(SEG) == b"mine\n" and mine.requests["list"] == lists and mine.requests["get"] == gets
    assert mine.read_claim("labels/x") is None and mine.read_claim("labels/x") is None
    assert mine.requests["get"] == gets + 1  # a missing claim is asked once per interval
    mine.refresh_interval = 0.05  # the interval passes
    time.sleep(0.06)
    assert {s.name for s in mine.segments()} == {SEG, "log/other.jsonl"}


@pytest.mark.parametrize(
    ("text", "action", "expected", "permanent"),
    [
        ("Generic S3 error: ... 404 Not Found: <Code>NoSuchBucket</Code>", "list",
         "the bucket sweeps does not exist at http://h:1", True),
        ("PermissionDenied: 403 <Code>AccessDenied</Code>", "list", "lack the s3:ListBucket permission",
         True),
        ("403 <Code>AccessDenied</Code>", "delete", "s3:DeleteObject", True),
        ("403 <Code>RequestTimeTooSkewed</Code>", "put", "clock differs", True),
        ("403 <Code>InvalidAccessKeyId</Code>", "get", "set AWS_ACCESS_KEY_ID", True),
        ("Error performing PUT after 4 retries - HTTP error: error sending request", "put",
         "cannot reach http://h:1 .* AWS_ENDPOINT_URL", False),
        ("Server returned 503 SlowDown after 4 retries", "get", "still failing after retries", False),
    ],
)  # fmt: skip
def test_client_errors_read_as_one_line_saying_what_to_do(
    text: str, action: str, expected: str, permanent: bool
) -> None:
    error = explain(RuntimeError(text + "\n\nDebug source: secret-ish dump"), action=action,
                    what="log/", location="s3://sweeps/exp", endpoint="http://h:1")  # fmt: skip
    with pytest.raises(StoreError, match=expected):
        raise error
    assert "\n" not in str(error) and "Debug source" not in str(error)
    assert error.permanent is permanent  # type: ignore[attr-defined]


def test_verify_calls_a_missing_chunk_not_yet_visible_then_lost() -> None:
    from joshreg.operations.verify import verify_store

    client = MemoryStore()
    store = ObjectStore(client, "m://x", "p")
    writer = EventWriter(store, durability="event")  # one chunk per event
    for i in range(3):
        writer.append(RunStarted(run_id=f"r{i}", run_hash="h", session_id="s", replicate=0))
    [first, *_] = chunks_in(client)
    obstore.delete(client, first)  # the first chunk vanishes (or has not arrived yet)
    fresh = ObjectStore(client, "m://x", "p")
    report = verify_store(fresh, rebuild=False)
    assert report.ok and [p.kind for p in report.warnings] == ["chunk-not-yet-visible"]
    later = verify_store(fresh, rebuild=False, now=time.time() + 3600)
    assert not later.ok and any(p.kind == "chunk-missing" and "lost" in p.message for p in later.problems)


def test_closing_a_store_that_cannot_upload_says_so_and_can_be_retried() -> None:
    client = MemoryStore()
    store = FlakyStore(client, "m://x", "p", flush_timeout=0.2)
    store.down = True
    store.append(SEG, b"one\n")
    with pytest.raises(UploadBacklogError, match="not in the event store"):
        store.close()
    store.down = False
    store.close()  # the thread went on; closing again waits again
    assert ObjectStore(client, "m://x", "p").read(SEG) == b"one\n"


@pytest.mark.parametrize(
    ("how", "said"),
    [("kept = EventWriter(store)\nkept", "the event log was not flushed"),  # by the writers' hook
     ("EventWriter(store)", "events could not be uploaded")],  # a writer dropped: the store's hook
)  # fmt: skip
def test_a_process_exiting_with_events_it_cannot_upload_says_so(how: str, said: str) -> None:
    import subprocess
    import sys

    script = (
        "from obstore.store import MemoryStore\n"
        "from joshreg.log.events import RunStarted\n"
        "from joshreg.log.writer import EventWriter\n"
        "import tests.store.test_object_uploads as t\n"
        "store = t.FlakyStore(MemoryStore(), 'm://x', 'p', flush_timeout=0.2)\n"
        "store.down = True\n"
        f"{how}.append(RunStarted(run_id='r', run_hash='h', session_id='s', replicate=0))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert f"joshreg: at exit, {said}" in done.stderr
    assert "not in the event store at m://x yet" in done.stderr
