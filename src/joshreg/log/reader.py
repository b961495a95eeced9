"""LogReader: segments → new events after a cursor, with damage reported, never fatal.

Reading rules:

- Bytes after a segment's last newline are not yet written (a live writer is mid-line, or a
  dead one left a torn tail); the cursor stops before them and the next read starts there.
- A line that is not framed, fails its checksum, or is not a known event is a *problem*: it is
  reported with segment and line number and skipped, and reading goes on.
- A broken ``p`` link (a line lost, inserted or reordered before this one) or a gap in a
  writer's sequence numbers is reported, and the intact line is still applied.
- An event whose ``(writer, seq)`` is at or below that writer's high-water mark was already
  read (a duplicated segment, a re-read); it is skipped silently.
- A file whose first line is another writer's (a copy of a segment under another name, a
  merge's remainder) is read after the writers' own segments ``log/<writer>.jsonl``, so an
  event is taken from its own segment whenever that holds it: which file sorts first does not
  change the tables (a rebuild equals the incremental projection), and what only the other
  file holds is still read.
- A ``segment.sealed`` line (the writer closed its segment) advances the writer's mark and is
  never returned as an event.
- A compacted segment reads exactly like its JSONL (the store gives the same bytes), so
  cursors stay valid across compaction; a segment that cannot be read is a problem, not fatal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from operator import attrgetter

import msgspec

from joshreg.errors import LogFormatError, StoreError
from joshreg.log.clock import writer_running_here
from joshreg.log.codec import GENESIS, Problem, decode_chunk, decode_event, newer_than_known, verify_lines
from joshreg.log.events import EventBase, SegmentSealed
from joshreg.log.store.base import LogStore, SegmentInfo

__all__ = [
    "ABANDONED_AFTER_S",
    "Chunk",
    "ChunkObserver",
    "Cursor",
    "LogReader",
    "Problem",
    "ReadBatch",
    "abandoned",
    "ends_sealed",
]

#: An unsealed segment of a dead local writer counts as finished once untouched this long: it is
#: compacted then, and a torn last line of it is damage, not a line still being written.
ABANDONED_AFTER_S = 3600.0
_TAIL_PEEK = 4096
_SEAL = b'"type":"segment.sealed"'


def ends_sealed(store: LogStore, segment: str, end: int) -> bool:
    """Whether the last complete line before byte ``end`` of ``segment`` is its writer's seal."""
    if end <= 0:
        return False
    tail = store.read(segment, max(0, end - _TAIL_PEEK), end)
    if not tail.endswith(b"\n"):
        return False
    last = tail[:-1].rsplit(b"\n", 1)[-1]
    if _SEAL not in last:
        return False
    try:
        return type(decode_event(last)) is SegmentSealed
    except (msgspec.DecodeError, ValueError):
        return False


def abandoned(seg: SegmentInfo, now: float, after: float = ABANDONED_AFTER_S) -> bool | None:
    """Whether the writer of ``seg`` ran on this host, has exited, and the file has not changed
    for ``after`` seconds (a killed worker): True or False, None when it ran on another host."""
    writer = seg.name.rsplit("/", 1)[-1].removesuffix(".jsonl")
    running = writer_running_here(writer)
    if running is None:
        return None
    if running:
        return False
    return seg.modified is None or now - seg.modified >= after


class Cursor(msgspec.Struct):
    """How far one segment has been read: byte offset, lines consumed, last line's ``c``."""

    offset: int = 0
    line: int = 0
    prev: str = GENESIS


@dataclass
class ReadBatch:
    """Events read in one call, their raw lines, where each segment now stands, and problems."""

    events: list[EventBase] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    linenos: list[int] = field(default_factory=list)
    cursors: dict[str, Cursor] = field(default_factory=dict)
    writer_seqs: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    duplicates: int = 0
    more: bool = False
    # Runs of ``lines`` as they were read: (index of the run's first line, how many lines, the
    # run's bytes, each line followed by a newline), so the text goes on without a join.
    bodies: list[tuple[int, int, bytes | memoryview]] = field(default_factory=list)


@dataclass
class Chunk:
    """Consecutive complete lines of one segment as a reader checked and decoded them: they
    start at ``at`` (the cursor before them); ``found`` and ``skip`` are ``verify_lines``'s,
    ``decoded`` and ``failed`` ``decode_chunk``'s; ``last_c`` is the last line's ``c``."""

    segment: str
    at: Cursor
    body: bytes | memoryview
    lines: list[bytes]
    found: list[tuple[int, str, str]]
    skip: set[int]
    decoded: list[EventBase | None]
    failed: list[tuple[int, str]]
    last_c: str


ChunkObserver = Callable[[Chunk], None]


class LogReader:
    """Reads the segments of a store incrementally."""

    def __init__(self, store: LogStore) -> None:
        self.store = store
        self._foreign: dict[str, bool] = {}  # segment -> its first line is another writer's
        #: Called with every chunk of complete lines read, once checked and decoded, so that a
        #: verification sharing this read need not read and decode the log a second time.
        self.observer: ChunkObserver | None = None

    def _holds_others(self, seg: SegmentInfo) -> bool:
        """Whether the first line of ``seg`` was written by a writer other than its owner."""
        known = self._foreign.get(seg.name)
        if known is not None:
            return known
        try:
            head = self.store.read(seg.name, 0, min(seg.size, _PEEK))
        except StoreError:
            return False
        nl = head.find(b"\n")
        if nl < 0:  # the first line is not complete yet (decided later), or very long (own)
            if seg.size > _PEEK:
                self._foreign[seg.name] = False
            return False
        try:
            writer = _writer_of(head[:nl]).writer
        except (msgspec.DecodeError, ValueError):
            writer = ""
        foreign = self._foreign[seg.name] = bool(writer) and seg.name != f"log/{writer}.jsonl"
        return foreign

    def pending(self, cursors: dict[str, Cursor]) -> bool:
        """Whether any segment has grown past its cursor (cheap: one listing)."""
        return any(s.size > cursors.get(s.name, _ZERO).offset for s in self.store.segments())

    def read_new(
        self,
        cursors: dict[str, Cursor],
        writer_seqs: dict[str, int],
        *,
        max_bytes: int | None = None,
        segments: list[SegmentInfo] | None = None,
    ) -> ReadBatch:
        """Read what lies after the cursors. Neither argument is modified.

        With ``max_bytes`` the read stops after about that many bytes and sets ``more``; with
        ``segments`` only those (in that order) are read instead of every segment of the store.
        """
        batch = ReadBatch(writer_seqs=dict(writer_seqs))
        budget = max_bytes
        listing = self.store.segments() if segments is None else segments
        # Files holding other writers' events come after the own segments (a stable sort).
        listing = sorted(
            listing, key=lambda s: s.size > cursors.get(s.name, _ZERO).offset and self._holds_others(s)
        )
        for seg in listing:
            cur = cursors.get(seg.name, _ZERO)
            if seg.size <= cur.offset:
                continue
            if budget is not None and budget <= 0:
                batch.more = True
                break
            end = seg.size if budget is None else min(seg.size, cur.offset + budget)
            try:
                data = self.store.read(seg.name, cur.offset, end)
                cut = data.rfind(b"\n") + 1
                if cut == 0 and end < seg.size:
                    if budget is not None and budget < max_bytes:  # what is left of the budget is
                        batch.more = True  # less than a line: the next call reads on from here
                        break
                    # One line longer than the whole budget: read on until it ends (doubling
                    # the read), not to the end of the segment, which may hold gigabytes more.
                    step = end - cur.offset  # the budget
                    while cut == 0 and end < seg.size:
                        step *= 2
                        end = min(seg.size, cur.offset + step)
                        data = self.store.read(seg.name, cur.offset, end)
                        cut = data.rfind(b"\n") + 1
            except StoreError as e:  # retried at the next read; the other segments go on
                batch.problems.append(Problem(seg.name, cur.line + 1, "unreadable", str(e)))
                continue
            if cut == 0:
                continue
            if end < seg.size:
                batch.more = True
            if budget is not None:
                budget -= cut
            batch.cursors[seg.name] = self._scan(seg.name, data, cut, cur, batch)
        return batch

    @staticmethod
    def _contiguous(decoded: list[EventBase | None], seqs: dict[str, int]) -> bool:
        first, last = decoded[0], decoded[-1]
        if first is None or last is None or first.writer != last.writer:
            return False
        start = seqs.get(first.writer, 0) + 1
        if first.seq != start or last.seq != start + len(decoded) - 1:
            return False
        n = len(decoded)
        try:  # C-level passes over the events, not a Python loop: 10^6 events a rebuild
            in_order = list(map(_SEQ, decoded)) == list(range(start, start + n))
            return in_order and list(map(_WRITER, decoded)).count(first.writer) == n
        except AttributeError:  # a None: a line that did not decode
            return False

    def _scan(self, segment: str, data: bytes, cut: int, cur: Cursor, batch: ReadBatch) -> Cursor:
        # The complete lines, without copying them out of ``data`` (a batch's worth of bytes).
        body = data if cut == len(data) else memoryview(data)[:cut]
        lines = data.split(b"\n")
        lines.pop()  # after the last newline: empty, or the start of a line not yet complete
        found, skip, last_c = verify_lines(lines, cur.prev)
        problems = batch.problems
        base = cur.line + 1
        for i, kind, detail in found:
            problems.append(Problem(segment, base + i, kind, detail))
        decoded, failed = decode_chunk(body, lines, skip)
        for i, why in failed:
            newer = newer_than_known(lines[i])
            if newer is not None:
                raise LogFormatError(
                    f"{segment}:{base + i} holds {newer}, written by a newer joshreg; upgrade joshreg "
                    "(pip install -U joshreg) to read this registry (nothing was changed)"
                )
            problems.append(Problem(segment, base + i, "undecodable", why))
        if self.observer is not None:
            self.observer(Chunk(segment, cur, body, lines, found, skip, decoded, failed, last_c))
        seqs = batch.writer_seqs
        events, kept, origins, linenos = batch.events, batch.lines, batch.origins, batch.linenos
        if decoded and not skip and self._contiguous(decoded, seqs):
            # The common case: one writer, next seqs in order, nothing damaged: take it whole
            # (less a closing seal, the only place a seal is written).
            n = len(decoded)
            m = n - 1 if type(decoded[-1]) is SegmentSealed else n
            if SegmentSealed not in map(type, islice(decoded, m)):
                seqs[decoded[0].writer] = decoded[-1].seq  # type: ignore[union-attr]
                events.extend(decoded[:m] if m < n else decoded)  # type: ignore[arg-type]
                if m:
                    run = body if m == n else memoryview(body)[: len(body) - len(lines[-1]) - 1]
                    batch.bodies.append((len(kept), m, run))
                kept.extend(lines[:m] if m < n else lines)
                origins.extend([segment] * m)
                linenos.extend(range(base, base + m))
                return Cursor(cur.offset + cut, cur.line + n, last_c)
        for i, ev in enumerate(decoded):
            if ev is None:
                continue
            high = seqs.get(ev.writer, 0)
            if ev.seq <= high:
                if type(ev) is not SegmentSealed:
                    batch.duplicates += 1
                continue
            if ev.seq != high + 1:
                problems.append(
                    Problem(
                        segment,
                        base + i,
                        "sequence-gap",
                        f"writer {ev.writer} jumps from seq {high} to {ev.seq}",
                    )
                )
            seqs[ev.writer] = ev.seq
            if type(ev) is SegmentSealed:
                continue
            events.append(ev)
            kept.append(lines[i])
            origins.append(segment)
            linenos.append(base + i)
        return Cursor(cur.offset + cut, cur.line + len(lines), last_c)


_ZERO = Cursor()
_SEQ = attrgetter("seq")
_WRITER = attrgetter("writer")
_PEEK = 65536  # bytes read to find a segment's first line


class _Writer(msgspec.Struct):
    writer: str = ""


_writer_of = msgspec.json.Decoder(_Writer).decode
