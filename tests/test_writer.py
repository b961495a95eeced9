"""EventWriter: numbering, envelopes, durability modes and a new identity after fork."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import uuid
from pathlib import Path

import pytest

from joshreg.errors import StoreError
from joshreg.log.events import RunCompleted, SessionStatusChanged
from joshreg.log.reader import LogReader
from joshreg.log.store import LocalStore, MemoryStore
from joshreg.log.writer import DURABILITY_MODES, EventWriter


class CountingStore(MemoryStore):
    """A memory store that counts syncs and can be told to fail the next append."""

    def __init__(self) -> None:
        super().__init__()
        self.syncs = 0
        self.fail_next = False

    def sync(self, segment: str) -> None:
        self.syncs += 1

    def append(self, segment: str, data: bytes) -> None:
        if self.fail_next:
            self.fail_next = False
            super().append(segment, data[: len(data) // 2])
            raise StoreError("disk full")
        super().append(segment, data)


def done(i: int) -> RunCompleted:
    return RunCompleted(run_id=f"r{i}", exit_code=0)


def test_seq_starts_at_one_and_is_contiguous() -> None:
    store = MemoryStore()
    w = EventWriter(store, durability="none")
    assert w.last_seq == 0
    one = [w.append(done(i)) for i in range(4)]
    many = w.append_many(done(i) for i in range(4, 9))
    assert [e.seq for e in one + many] == list(range(1, 10))
    assert w.last_seq == 9
    batch = LogReader(store).read_new({}, {})
    assert [e.seq for e in batch.events] == list(range(1, 10))
    assert batch.problems == []


def test_envelope_fields_are_filled() -> None:
    store = MemoryStore()
    w = EventWriter(store, durability="none")
    events = w.append_many(SessionStatusChanged(session_id="s", status=str(i)) for i in range(20))
    assert w.segment == f"log/{w.writer_id}.jsonl"
    assert [s.name for s in store.segments()] == [w.segment]
    for e in events:
        assert uuid.UUID(e.event_id).version == 7
        assert e.writer == w.writer_id
        assert "@" in e.actor
        assert e.v == 1
    assert len({e.event_id for e in events}) == len(events)
    hlcs = [e.hlc for e in events]
    assert all(a < b for a, b in itertools.pairwise(hlcs))
    assert LogReader(store).read_new({}, {}).events == events


def test_an_event_that_does_not_encode_leaves_no_gap() -> None:
    store = MemoryStore()
    w = EventWriter(store, durability="none")
    w.append(done(0))
    with pytest.raises(TypeError):
        w.append(SessionStatusChanged(session_id="s", status=object()))  # type: ignore[arg-type]
    assert w.last_seq == 1
    assert w.append(done(1)).seq == 2
    w.flush()
    batch = LogReader(store).read_new({}, {})
    assert [e.seq for e in batch.events] == [1, 2]
    assert batch.problems == []


def test_empty_append_many_writes_nothing() -> None:
    store = MemoryStore()
    w = EventWriter(store)
    assert w.append_many([]) == []
    assert store.segments() == []


@pytest.mark.parametrize("mode", DURABILITY_MODES)
def test_every_durability_mode_is_accepted(mode: str) -> None:
    w = EventWriter(MemoryStore(), durability=mode)  # type: ignore[arg-type]
    w.append(done(1))
    w.flush()
    assert w.durability == mode


def test_invalid_durability_is_refused() -> None:
    with pytest.raises(ValueError, match="durability must be one of none, batch, event"):
        EventWriter(MemoryStore(), durability="always")  # type: ignore[arg-type]


def test_batch_mode_flush_returns_the_durable_seq() -> None:
    store = CountingStore()
    w = EventWriter(store, durability="batch", batch_size=1000, max_delay=3600)
    for i in range(3):
        w.append(done(i))
    assert (store.syncs, w.durable_seq) == (0, 0)
    assert w.flush() == 3
    assert store.syncs == 1
    w.append(done(3))
    assert w.durable_seq == 3
    assert w.flush() == 4


def test_batch_mode_syncs_every_batch_size_events() -> None:
    store = CountingStore()
    w = EventWriter(store, durability="batch", batch_size=5, max_delay=3600)
    for i in range(12):
        w.append(done(i))
    assert store.syncs == 2
    assert w.durable_seq == 10


def test_event_mode_syncs_before_append_returns() -> None:
    store = CountingStore()
    w = EventWriter(store, durability="event")
    for i in range(3):
        w.append(done(i))
        assert w.durable_seq == i + 1
    assert store.syncs == 3


def test_none_mode_never_syncs() -> None:
    store = CountingStore()
    w = EventWriter(store, durability="none")
    w.append_many(done(i) for i in range(3))
    assert w.flush() == 0
    w.close()
    assert store.syncs == 0


def test_failed_append_moves_to_a_new_segment() -> None:
    store = CountingStore()
    w = EventWriter(store, durability="none")
    w.append(done(0))
    w.publish()
    first = w.writer_id
    store.fail_next = True
    w.append(done(1))
    with pytest.raises(StoreError):
        w.publish()
    after = w.append(done(2))
    w.publish()
    assert after.writer != first and after.seq == 1
    assert len(store.segments()) == 2
    batch = LogReader(store).read_new({}, {})
    # The torn tail of the old segment is not read; both intact events are.
    assert [(e.writer, e.seq) for e in batch.events] == sorted([(first, 1), (after.writer, 1)])
    assert batch.problems == []


def _child_appends(w: EventWriter, out: mp.Queue) -> None:  # type: ignore[type-arg]
    e = w.append(done(100))
    w.close()
    out.put((w.writer_id, w.segment, e.seq))


def test_forked_child_gets_a_new_writer_and_segment(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "x.events")
    w = EventWriter(store, durability="batch")
    w.append(done(0))
    parent_id, parent_segment = w.writer_id, w.segment
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    p = ctx.Process(target=_child_appends, args=(w, out))
    p.start()
    child_id, child_segment, child_seq = out.get(timeout=60)
    p.join(timeout=60)
    assert p.exitcode == 0
    assert child_id != parent_id and child_segment != parent_segment
    assert child_seq == 1
    assert w.append(done(1)).seq == 2
    assert w.writer_id == parent_id
    w.close()
    batch = LogReader(store).read_new({}, {})
    assert batch.problems == []
    assert sorted((e.writer, e.seq) for e in batch.events) == sorted(
        [(parent_id, 1), (parent_id, 2), (child_id, 1)]
    )


def test_appends_are_grouped_until_publish_then_written_without_sync() -> None:
    store = CountingStore()
    w = EventWriter(store, durability="batch", batch_size=1000, max_delay=3600)
    for i in range(3):
        w.append(done(i))
    assert store.read(w.segment) == b""
    assert w.publish() == 3
    assert len(store.read(w.segment).splitlines()) == 3
    assert (store.syncs, w.durable_seq) == (0, 0)
    assert w.flush() == 3
    assert store.syncs == 1


def test_a_group_older_than_max_delay_is_written_by_the_next_append() -> None:
    store = CountingStore()
    w = EventWriter(store, durability="batch", batch_size=1000, max_delay=0.0)
    w.append(done(0))
    w.append(done(1))
    assert len(store.read(w.segment).splitlines()) == 2
    assert w.durable_seq == 2
