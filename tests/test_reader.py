"""LogReader: torn tails wait, damage is reported with segment:line and skipped, the rest reads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import joshreg
from joshreg.log.events import EventBase, RunCompleted, RunRegistered, RunStarted, SessionCreated
from joshreg.log.reader import Cursor, LogReader, ReadBatch
from joshreg.log.store import LocalStore, MemoryStore
from joshreg.log.writer import EventWriter

SEG = "log/w.jsonl"


def history(n: int = 5) -> list[EventBase]:
    events: list[EventBase] = [SessionCreated(session_id="s1", experiment_name="exp")]
    events.append(RunRegistered(session_id="s1", run_hash="h1", config_content="a = 1", parameters={"a": 1}))
    for i in range(n - 2):
        events.append(RunStarted(run_id=f"r{i}", run_hash="h1", session_id="s1", replicate=i))
    return events[:n]


def written_lines(events: list[EventBase]) -> list[bytes]:
    """The framed lines (with newlines) a real writer produces for ``events``."""
    mem = MemoryStore()
    w = EventWriter(mem, durability="none")
    w.append_many(events)
    data = mem.read(w.segment)
    return data.splitlines(keepends=True)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "x.events")


def read_all(store: LocalStore) -> ReadBatch:
    return LogReader(store).read_new({}, {})


def seqs(batch: ReadBatch) -> list[int]:
    return [e.seq for e in batch.events]


def kinds_at(batch: ReadBatch, line: int) -> set[str]:
    return {p.kind for p in batch.problems if p.line == line}


def test_intact_segment_reads_every_event_without_problems(store: LocalStore) -> None:
    w = EventWriter(store, durability="none")
    written = w.append_many(history())
    batch = read_all(store)
    assert batch.events == written
    assert batch.problems == [] and batch.duplicates == 0
    assert batch.linenos == [1, 2, 3, 4, 5]
    assert batch.cursors[w.segment].line == 5
    assert batch.writer_seqs == {w.writer_id: 5}


def test_torn_last_line_is_not_yet_written(store: LocalStore) -> None:
    lines = written_lines(history(3))
    half = len(lines[2]) // 2
    store.append(SEG, lines[0] + lines[1] + lines[2][:half])
    reader = LogReader(store)
    first = reader.read_new({}, {})
    assert seqs(first) == [1, 2]
    assert first.problems == []
    assert first.cursors[SEG].offset == len(lines[0] + lines[1])
    assert reader.pending(first.cursors)
    store.append(SEG, lines[2][half:])
    second = reader.read_new(first.cursors, first.writer_seqs)
    assert seqs(second) == [3]
    assert second.problems == []
    assert second.linenos == [3]
    assert not reader.pending(second.cursors)


def test_a_torn_tail_after_a_spent_budget_waits_and_the_reading_ends(store: LocalStore) -> None:
    """A batch whose budget is nearly spent stops before a segment it cannot take a line of;
    the next call reads on, a torn tail stays unread until it is finished, and the loop ends."""
    w = EventWriter(store, durability="none")
    w.append_many(history(5))
    done = store.read(w.segment).splitlines(keepends=True)
    torn = written_lines([RunCompleted(run_id="r9", exit_code=0)])[0]
    store.append("log/x.jsonl", torn[:-10])  # a live writer's unfinished first line, listed after
    assert [s.name for s in store.segments()] == [w.segment, "log/x.jsonl"]
    reader = LogReader(store)
    cursors: dict[str, Cursor] = {}
    seqs_seen: list[int] = []
    high: dict[str, int] = {}
    budget = len(done[0]) + len(done[1]) + 5  # two lines and a few bytes left for the next
    for _ in range(10):
        batch = reader.read_new(cursors, high, max_bytes=budget)
        seqs_seen += seqs(batch)
        cursors.update(batch.cursors)
        high = batch.writer_seqs
        if not batch.more:
            break
    assert not batch.more and seqs_seen == [1, 2, 3, 4, 5]
    assert "log/x.jsonl" not in cursors or cursors["log/x.jsonl"].offset == 0
    store.append("log/x.jsonl", torn[-10:])
    assert [e.run_id for e in reader.read_new(cursors, high).events] == ["r9"]


def test_edited_line_is_reported_with_its_line_number(store: LocalStore) -> None:
    lines = written_lines(history(5))
    lines[2] = lines[2].replace(b'"run_id":"r0"', b'"run_id":"r9"')
    assert b'"run_id":"r9"' in lines[2]
    store.append(SEG, b"".join(lines))
    batch = read_all(store)
    assert kinds_at(batch, 3) == {"checksum"}
    assert all(p.segment == SEG for p in batch.problems)
    assert seqs(batch) == [1, 2, 4, 5]
    assert batch.cursors[SEG].line == 5


def test_deleted_line_breaks_the_chain_and_the_sequence(store: LocalStore) -> None:
    lines = written_lines(history(5))
    del lines[2]
    store.append(SEG, b"".join(lines))
    batch = read_all(store)
    assert kinds_at(batch, 3) == {"chain-broken", "sequence-gap"}
    assert {p.line for p in batch.problems} == {3}
    assert seqs(batch) == [1, 2, 4, 5]


def test_glued_lines_are_reported(store: LocalStore) -> None:
    lines = written_lines(history(5))
    glued = lines[1][:-1] + lines[2]
    store.append(SEG, lines[0] + glued + b"".join(lines[3:]))
    batch = read_all(store)
    assert kinds_at(batch, 2), batch.problems
    assert "sequence-gap" in kinds_at(batch, 3)
    assert seqs(batch) == [1, 4, 5]


def test_garbage_line_is_reported_as_malformed(store: LocalStore) -> None:
    lines = written_lines(history(3))
    store.append(SEG, lines[0] + b"hello world\n" + lines[1] + lines[2])
    batch = read_all(store)
    assert kinds_at(batch, 2) == {"malformed"}
    assert seqs(batch) == [1, 2, 3]
    assert batch.linenos == [1, 3, 4]


def test_duplicated_segment_is_read_once(store: LocalStore, tmp_path: Path) -> None:
    w = EventWriter(store, durability="none")
    written = w.append_many(history())
    w.close()
    root = tmp_path / "x.events" / "log"
    shutil.copy(root / Path(w.segment).name, root / "copy.jsonl")
    batch = read_all(store)
    assert len(store.segments()) == 2
    assert sorted(e.event_id for e in batch.events) == sorted(e.event_id for e in written)
    assert batch.duplicates == len(written)
    assert batch.problems == []


def test_max_bytes_chunks_return_every_event_exactly_once(store: LocalStore) -> None:
    written: list[EventBase] = []
    for _ in range(3):
        w = EventWriter(store, durability="none")
        written += w.append_many(RunCompleted(run_id=f"r{i}", exit_code=i % 3) for i in range(40))
        w.close()
    assert len(store.segments()) == 3
    reader = LogReader(store)
    cursors: dict[str, Cursor] = {}
    writer_seqs: dict[str, int] = {}
    seen: list[str] = []
    calls = 0
    while True:
        batch = reader.read_new(cursors, writer_seqs, max_bytes=700)
        calls += 1
        assert batch.problems == []
        # About max_bytes a call, never the rest of a segment for a budget's last few bytes.
        advanced = sum(c.offset - cursors.get(s, Cursor()).offset for s, c in batch.cursors.items())
        assert 0 < advanced <= 700 or not batch.more, (calls, advanced)
        seen += [e.event_id for e in batch.events]
        cursors.update(batch.cursors)
        writer_seqs = batch.writer_seqs
        if not batch.more:
            break
    assert calls > 3
    assert sorted(seen) == sorted(e.event_id for e in written)
    assert len(seen) == len(set(seen))
    assert reader.read_new(cursors, writer_seqs).events == []


def test_a_line_longer_than_the_budget_is_read_whole_but_not_the_rest(store: LocalStore) -> None:
    """A line longer than ``max_bytes`` is read to its end, in a read at most about twice its
    length, not with the rest of the segment behind it."""
    big = RunRegistered(session_id="s1", run_hash="h1", config_content="x = 1\n" * 2000)
    small = [RunStarted(run_id=f"r{i}", run_hash="h1", session_id="s1") for i in range(300)]
    w = EventWriter(store, durability="none")
    w.append_many([big, *small])
    size = store.segments()[0].size
    long_line = len(written_lines([big])[0])
    reader = LogReader(store)
    first = reader.read_new({}, {}, max_bytes=1000)
    assert seqs(first)[0] == 1 and first.more
    advanced = first.cursors[w.segment].offset
    assert long_line <= advanced <= 2 * long_line < size // 2
    cursors, high, got = dict(first.cursors), first.writer_seqs, seqs(first)
    while True:
        batch = reader.read_new(cursors, high, max_bytes=1000)
        got += seqs(batch)
        cursors.update(batch.cursors)
        high = batch.writer_seqs
        if not batch.more:
            break
    assert got == list(range(1, 302))


# --- through the registry ---------------------------------------------------------------------


def test_registry_warns_records_and_replays_past_a_damaged_line(tmp_path: Path) -> None:
    events = [
        SessionCreated(session_id="s1", experiment_name="exp"),
        RunRegistered(session_id="s1", run_hash="h1", config_content="a = 1", parameters={"a": 1}),
        RunStarted(run_id="r1", run_hash="h1", session_id="s1"),
        RunStarted(run_id="r2", run_hash="h1", session_id="s1"),
        RunCompleted(run_id="r2", exit_code=0),
    ]
    lines = written_lines(events)
    lines[2] = lines[2].replace(b'"r1"', b'"rX"')
    with joshreg.RunRegistry(tmp_path / "x.duckdb") as reg:
        reg.store.append("log/foreign.jsonl", b"".join(lines))
        with pytest.warns(joshreg.LogDamageWarning) as caught:
            reg.sync()
        messages = [str(w.message) for w in caught]
        assert any("log/foreign.jsonl:3: checksum" in m for m in messages), messages
        problems = reg.query("SELECT segment, line, kind FROM log_problems ORDER BY line, kind").fetchall()
        assert ("log/foreign.jsonl", 3, "checksum") in problems
        assert reg.get_session("s1") is not None
        assert reg.get_run("r1") is None
        run = reg.get_run("r2")
        assert run is not None and run.exit_code == 0


def test_bodies_hold_exactly_the_lines_they_stand_for(store: LocalStore) -> None:
    """A batch hands on whole runs of lines in their read buffer (``bodies``); each must be its
    lines with their newlines, a sealed segment's run stopping before the seal, and the Arrow
    text built from a batch must be its lines whether a run was used or the lines joined."""
    from joshreg.projection.replay import _text_array

    sealed = EventWriter(store, durability="none")
    sealed.append_many(history(6))
    sealed.close()  # writes the seal, which is not an event of the batch
    ls = written_lines(history(5))
    ls[2] = ls[2].replace(b'"run_id":"r0"', b'"run_id":"r9"')  # edited: read line by line
    store.append(SEG, b"".join(ls))
    batch = read_all(store)
    assert len(batch.events) == 6 + 4 and len(batch.lines) == len(batch.events)
    assert [first for first, _, _ in batch.bodies] == [batch.origins.index(sealed.segment)]
    for first, k, body in batch.bodies:
        assert bytes(body) == b"".join(line + b"\n" for line in batch.lines[first : first + k])
        assert k == 6 and b"segment.sealed" not in bytes(body)
    for bodies in (batch.bodies, []):
        text = _text_array(batch.lines, bodies).to_pylist()
        assert [t.rstrip("\n") for t in text] == [line.decode() for line in batch.lines]
