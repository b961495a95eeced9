"""Verification: is every byte of a store what its writers wrote, and do the tables match it?

Imports ``codec``, ``events``, ``labels``, ``labelstreams``, ``projector``, ``reader``, ``tables``,
``clock``, ``store``, ``errors`` (rung 4.5 of the ladder; ``registry`` calls it).

Replay never stops at damage: it skips what it cannot trust and goes on. ``verify_store`` is
the opposite: it reads everything once, looking for damage, and says what it found and what to
do about it. It checks

- every segment line's framing, checksum and ``p`` link (``codec.verify_lines``), and a torn
  last line, which is only damage once its writer can no longer complete it;
- every writer's sequence numbers: gaps, repeats, lines out of order, and the same events in
  two segment files (a copied file);
- every compacted segment: its Parquet gives back the bytes it was made from (their SHA-256),
  which are checked line by line like any segment; a JSONL still beside it (a compaction
  interrupted before deleting it) must be those same bytes, and is then only a warning;
- the label log and every label stream a merge imported: versions 1..N without a hole, each
  commit intact and chained to the previous;
- every result file a ``results.loaded`` event names: present, with the recorded SHA-256;
- the projection: rebuilt privately (in a bounded in-memory DuckDB database) from the log as
  the projection has read it, then every public table compared with the given connection's, as
  multisets of rows. The scan checks each chunk the rebuild's reader reads as it reads it, so
  the log is read and decoded once for both; only what the rebuild does not read is scanned
  separately.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal

import duckdb
import msgspec

from joshreg.errors import JoshregError, StoreError
from joshreg.log.clock import writer_origin, writer_running_here
from joshreg.log.codec import GENESIS, check_line, decode_chunk, decode_commit, verify_lines
from joshreg.log.events import EventBase, ResultsLoaded, SegmentSealed
from joshreg.log.labels import PREFIX as LABEL_PREFIX
from joshreg.log.labels import commit_name
from joshreg.log.labelstreams import IMPORTED, imported_dirs
from joshreg.log.reader import Chunk, ChunkObserver, Cursor
from joshreg.log.store.base import LogStore, SegmentInfo
from joshreg.log.store.compacted import container_bytes, container_metadata, read_container
from joshreg.projection.orphans import find_orphans
from joshreg.projection.projector import Projector
from joshreg.projection.tables import EVENT_TABLES, quote_identifier

__all__ = [
    "PUBLIC_TABLES",
    "STALE_AFTER_S",
    "VerifyProblem",
    "VerifyProgress",
    "VerifyReport",
    "verify_store",
]

#: A torn last line of a segment untouched for this long is damage even if its writer lives.
STALE_AFTER_S = 600.0
CHUNK_BYTES = 16 << 20
#: The buffer pool of the private rebuild (in memory, spilling to a temporary folder beyond this).
REBUILD_MEMORY = "512MB"
SAMPLES = 3

#: What a user can query, compared with a fresh rebuild (plus every ``events_*`` table).
PUBLIC_TABLES = (
    "sweep_sessions",
    "job_configs",
    "session_configs",
    "config_parameters",
    "job_runs",
    "run_outputs",
    "cell_data",
    "label_history",
    "labels_current",
)
#: The event tables compared too, one per event type, and so every table compared.
_EVENT_TABLE_NAMES = tuple(sorted(t for t, _ in EVENT_TABLES.values()))
_COMPARED = (*PUBLIC_TABLES, *_EVENT_TABLE_NAMES)

_KEYS: dict[str, tuple[str, ...]] = {
    "sweep_sessions": ("session_id",),
    "job_configs": ("run_hash",),
    "session_configs": ("session_id", "run_hash"),
    "config_parameters": ("run_hash",),
    "job_runs": ("run_id",),
    "run_outputs": ("output_id",),
    "cell_data": ("cell_id",),
    "label_history": ("version", "idx"),
    "labels_current": ("label",),
}

#: ``progress(phase, done, total)``, always called from the calling thread; phases are reported
#: in the order ``"segments"``, ``"result files"``, ``"tables"``. ``"segments"`` counts bytes
#: (first those the private rebuild reads, then the rest), the others count items.
VerifyProgress = Callable[[str, int, int], None]

Severity = Literal["error", "warning"]

_RESTORE = (
    "Restore the file from a backup if you have one; otherwise leave it as it is (replay works around it)."
)
_SEGMENT_KINDS = {
    "malformed": "this line is not a complete event line (torn, glued to another or overwritten); "
    "the event it held is not applied. ",
    "checksum": "this line does not match its checksum: it was edited, glued to the next line or "
    "partly overwritten; it is not applied. ",
    "chain-broken": "the hash chain breaks here: a line just before this one was deleted, inserted "
    "or moved (this line itself is intact and applied). ",
    "undecodable": "this line is intact but is not an event this joshreg knows; it is not applied. ",
}


class VerifyProblem(msgspec.Struct, frozen=True, omit_defaults=True):
    """One finding: its ``kind``, where (``file`` relative to the store and 1-based ``line``, or
    the projection's ``table``), and a ``message`` saying what happened and what to do."""

    kind: str
    message: str
    file: str | None = None
    line: int | None = None
    table: str | None = None
    severity: Severity = "error"

    @property
    def where(self) -> str:
        if self.table is not None:
            return f"table {self.table}"
        if self.file is None:
            return "store"
        return self.file if not self.line else f"{self.file}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"


@dataclass
class VerifyReport:
    """What ``verify`` found: ``problems`` (damage: ``ok`` is False) and ``warnings`` (not
    damage, worth knowing), each in file and line order, with what was checked."""

    location: str
    problems: list[VerifyProblem] = field(default_factory=list)
    warnings: list[VerifyProblem] = field(default_factory=list)
    segments: int = 0
    events: int = 0
    writers: int = 0
    label_commits: int = 0
    blobs: int = 0
    tables: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no damage was found (warnings do not count)."""
        return not self.problems

    def add(self, problem: VerifyProblem) -> None:
        (self.problems if problem.severity == "error" else self.warnings).append(problem)

    def summary(self) -> str:
        checked = (
            f"{self.segments} segments, {self.events} events from {self.writers} writers, "
            f"{self.label_commits} label commits, {self.blobs} result files"
        )
        if self.tables:
            checked += f", {len(self.tables)} tables against a fresh rebuild"
        return f"verified {self.location}: {checked} ({self.seconds:.2f} s)"

    def __str__(self) -> str:
        lines = [self.summary()]
        for title, items in (("problems", self.problems), ("warnings", self.warnings)):
            if items:
                lines.append(f"{title} ({len(items)}):")
                lines += [f"  {p}" for p in items]
        if self.ok:
            lines.append("ok: the store is sound" + (" (see the warnings)" if self.warnings else ""))
        else:
            n = len(self.problems)
            lines.append(f"damaged: {n} problem{'s' if n != 1 else ''} found")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready builtins."""
        return {
            "ok": self.ok,
            "location": self.location,
            "problems": msgspec.to_builtins(self.problems),
            "warnings": msgspec.to_builtins(self.warnings),
            "segments": self.segments,
            "events": self.events,
            "writers": self.writers,
            "label_commits": self.label_commits,
            "blobs": self.blobs,
            "tables": self.tables,
            "seconds": round(self.seconds, 3),
        }


def verify_store(
    store: LogStore,
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    rebuild: bool = True,
    spatial: bool = False,
    progress: VerifyProgress | None = None,
    now: float | None = None,
) -> VerifyReport:
    """Check ``store`` for damage and, with ``con``, the projection in it.

    With ``con``, segment bytes and label commits the projection has read must still exist
    (a log truncated at a line boundary or cut short by whole commits passes every checksum),
    and with ``rebuild`` every public table must equal a fresh rebuild. ``con`` must be caught
    up with the store: the rebuild reads the log only as far as the projection's checkpoint
    says it has, so writers appending meanwhile cause no false alarms. ``spatial`` rebuilds
    ``cell_data.geom`` as a registry with spatial support does.
    """
    t0 = time.perf_counter()
    report = VerifyReport(store.location)
    checkpoint = _read_checkpoint(con) if con is not None else None
    scan = _Scan()
    # The private rebuild runs in a thread, and the scan checks every chunk its reader reads
    # (one read and decode of the log for both); the label log is checked meanwhile. What the
    # rebuild does not read (lines after the checkpoint, compacted segments, which it loads
    # without decoding) is scanned here afterwards.
    rebuilder = (
        _Rebuild(store, checkpoint, spatial, _observer(scan, report))
        if rebuild and isinstance(checkpoint, _Checkpoint)
        else None
    )
    try:
        labels_head = _check_labels(store, report)
        for imported in imported_dirs(store):  # label streams a merge brought in
            _check_labels(store, report, imported)
        # The projection's side of the table comparison, while the rebuild's reader still has
        # the first batch to read and DuckDB would otherwise idle.
        mine = _projection_side(con) if rebuilder is not None and con is not None else None
        fresh = rebuilder.wait(progress) if rebuilder is not None else None
        _check_segments(store, scan, report, progress, time.time() if now is None else now)
        _check_blobs(store, report, scan.loads, progress)
        if con is not None and checkpoint is not None:
            _check_projection(store, con, report, scan, labels_head, checkpoint, fresh, progress, mine)
        if con is not None:
            for o in find_orphans(con):
                report.add(
                    VerifyProblem("orphan", o.message, file=o.segment, line=o.line, severity="warning")
                )
    finally:
        if rebuilder is not None:
            rebuilder.close()
    for found in (report.problems, report.warnings):  # by file and line, the tables last
        found.sort(key=lambda p: (p.table is not None, p.file or "", p.line or 0))
    report.seconds = time.perf_counter() - t0
    return report


# --- segments -------------------------------------------------------------------------------------


@dataclass
class _Load:
    blob: str
    sha256: str
    segment: str
    line: int


class _Occurrences:
    """Where one writer's events were read, as four parallel arrays (seq, segment index, line,
    ``hash(event_id)``): a million events take 32 MB here, not a million tuples and strings
    that would also pin the memory of every decoded event around them.

    Event ids are kept as their 64-bit (keyed, per-process) hashes: they are only compared for
    equality, to tell a copied event from a different event with the same seq."""

    __slots__ = ("eid", "line", "seg", "seq")

    def __init__(self) -> None:
        self.seq = array("q")
        self.seg = array("q")
        self.line = array("q")
        self.eid = array("q")

    def add_seqs(self, seqs: list[int]) -> None:
        try:
            self.seq.extend(seqs)
        except OverflowError:  # a forged seq beyond 64 bits (intact checksum): keep a list
            self.seq = [*self.seq, *seqs]  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.seq)

    def __iter__(self) -> Iterator[tuple[int, int, int, int]]:
        return zip(self.seq, self.seg, self.line, self.eid, strict=True)


@dataclass
class _Scan:
    """Everything read from the segments that the cross-segment checks need."""

    names: list[str] = field(default_factory=list)
    # writer -> its events' seqs, segment indices, lines and event ids in reading order
    by_writer: dict[str, _Occurrences] = field(default_factory=dict)
    skipped: dict[int, set[int]] = field(default_factory=dict)  # segment index -> damaged lines
    loads: list[_Load] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # segment -> complete lines
    seals: dict[str, set[int]] = field(default_factory=dict)  # writer -> seqs of its seals
    # segment -> how far it has been scanned (by the private rebuild's reader, then here)
    read: dict[str, Cursor] = field(default_factory=dict)
    _index: dict[str, int] = field(default_factory=dict)

    def index(self, segment: str) -> int:
        """The segment's number in ``names``, given in the order segments are first seen."""
        i = self._index.get(segment)
        if i is None:
            i = self._index[segment] = len(self.names)
            self.names.append(segment)
            self.skipped[i] = set()
        return i


def _observer(scan: _Scan, report: VerifyReport) -> ChunkObserver:
    """Scan each chunk the private rebuild reads, as it reads it: the log is then read, checked
    and decoded once, not once for the scan and again for the rebuild."""

    def seen(chunk: Chunk) -> None:
        at = scan.read.get(chunk.segment, Cursor())
        if chunk.at.offset != at.offset:  # a fresh rebuild reads each segment once, in order
            raise JoshregError(f"verify: {chunk.segment} was read out of order at byte {chunk.at.offset}")
        index = scan.index(chunk.segment)
        _undecodable(chunk.failed, chunk.segment, index, at.line + 1, scan, report)
        _record(chunk.found, chunk.skip, chunk.decoded, chunk.segment, index, at.line + 1, scan, report)
        scan.read[chunk.segment] = Cursor(
            at.offset + len(chunk.body), at.line + len(chunk.lines), chunk.last_c
        )
        scan.lines[chunk.segment] = at.line + len(chunk.lines)

    return seen


def _check_segments(
    store: LogStore, scan: _Scan, report: VerifyReport, progress: VerifyProgress | None, now: float
) -> None:
    """Scan every segment from where ``scan`` stands (the private rebuild may have read a part
    already), then check every writer's sequence across them. Progress counts the bytes the
    rebuild read as done, so it goes on from where the rebuild's stopped."""
    segments = store.segments()
    report.segments = len(segments)
    starts = [scan.read.get(s.name, Cursor()) for s in segments]
    total = sum(s.size for s in segments)
    done = sum(min(s.size, at.offset) for s, at in zip(segments, starts, strict=True))
    for seg, at in zip(segments, starts, strict=True):
        index = scan.index(seg.name)
        try:
            if seg.size > at.offset:
                _scan_segment(store, seg, index, at, scan, report, now)
        except StoreError as e:
            report.add(VerifyProblem("unreadable", f"{e}; check the file's permissions", seg.name))
        else:
            if seg.compacted is not None:
                _check_compacted(store, seg, report)
        done += max(0, seg.size - at.offset)
        if progress and (seg.size > at.offset or seg is segments[-1]):  # not again for nothing
            progress("segments", done, total)
    _check_sequences(scan, report)
    report.writers = len(scan.by_writer)


def _scan_segment(
    store: LogStore,
    seg: SegmentInfo,
    index: int,
    start: Cursor,
    scan: _Scan,
    report: VerifyReport,
    now: float,
) -> None:
    offset, lineno, prev = start.offset, start.line, start.prev
    scan.lines[seg.name] = lineno
    while offset < seg.size:
        end = min(seg.size, offset + CHUNK_BYTES)
        data = store.read(seg.name, offset, end)
        if not data:  # the file shrank while being read
            return
        cut = data.rfind(b"\n") + 1
        if cut == 0 and end < seg.size:  # one line longer than a chunk: read it whole
            data = store.read(seg.name, offset, seg.size)
            cut = data.rfind(b"\n") + 1
        if cut == 0:
            _torn_tail(seg, lineno + 1, len(data), report, now)
            return
        body = data if cut == len(data) else memoryview(data)[:cut]
        lines = data.split(b"\n")
        lines.pop()  # empty, or the start of a line not yet complete
        found, skip, prev = verify_lines(lines, prev)
        decoded, failed = decode_chunk(body, lines, skip)
        _undecodable(failed, seg.name, index, lineno + 1, scan, report)
        _record(found, skip, decoded, seg.name, index, lineno + 1, scan, report)
        offset += cut
        lineno += len(lines)
        scan.lines[seg.name] = lineno
        if len(data) > cut and offset + (len(data) - cut) >= seg.size:
            _torn_tail(seg, lineno + 1, len(data) - cut, report, now)
            return


def _undecodable(
    failed: list[tuple[int, str]], segment: str, index: int, base: int, scan: _Scan, report: VerifyReport
) -> None:
    """Report the lines ``decode_chunk`` could not decode: intact, but not an event this
    joshreg knows."""
    for i, why in failed:
        report.add(VerifyProblem("undecodable", f"{_SEGMENT_KINDS['undecodable']}{why}", segment, base + i))
        scan.skipped[index].add(base + i)


def _record(
    found: list[tuple[int, str, str]],
    skip: set[int],
    decoded: list[EventBase | None],
    segment: str,
    index: int,
    base: int,
    scan: _Scan,
    report: VerifyReport,
) -> None:
    """Report the damaged lines of a chunk (``verify_lines``'s findings) and remember each
    event's writer, seq and any result file."""
    for i, kind, detail in found:
        extra = f" ({detail})" if kind == "malformed" else ""
        report.add(VerifyProblem(kind, _SEGMENT_KINDS.get(kind, "") + _RESTORE + extra, segment, base + i))
    scan.skipped[index].update(base + i for i in skip)
    if _record_whole(decoded, index, base, scan, report):
        return
    by_writer = scan.by_writer
    keep: list[int] = []  # the indices of the events (not control records) in ``decoded``
    for i, ev in enumerate(decoded):
        if ev is None:
            continue
        kind = type(ev)
        if kind is SegmentSealed:  # a control record: it only closes the sequence
            scan.seals.setdefault(ev.writer, set()).add(ev.seq)
            continue
        keep.append(i)
        if kind is ResultsLoaded:
            scan.loads.append(_Load(ev.blob, ev.blob_sha256, segment, base + i))
    report.events += len(keep)
    writers = {decoded[i].writer for i in keep}  # type: ignore[union-attr]
    if len(writers) == 1:  # the common case: a segment holds one writer's events
        occ = by_writer.get(writer := writers.pop())
        if occ is None:
            occ = by_writer[writer] = _Occurrences()
        occ.add_seqs([decoded[i].seq for i in keep])  # type: ignore[union-attr]
        occ.seg.extend([index] * len(keep))
        occ.line.extend([base + i for i in keep])
        occ.eid.extend([hash(decoded[i].event_id) for i in keep])  # type: ignore[union-attr]
        return
    for i in keep:
        ev = decoded[i]
        assert ev is not None
        occ = by_writer.get(ev.writer)
        if occ is None:
            occ = by_writer[ev.writer] = _Occurrences()
        occ.add_seqs([ev.seq])
        occ.seg.append(index)
        occ.line.append(base + i)
        occ.eid.append(hash(ev.event_id))


def _record_whole(
    decoded: list[EventBase | None], index: int, base: int, scan: _Scan, report: VerifyReport
) -> bool:
    """``_record`` for the common chunk, done with C-level maps instead of a Python loop: every
    line an event of one writer, none a result load, a seal at most at the end. False for any
    other chunk, which ``_record`` then goes through event by event."""
    if not decoded:
        return False
    last = decoded[-1]
    events = decoded[:-1] if type(last) is SegmentSealed else decoded
    if not events or None in events:
        return False
    kinds = set(map(type, events))
    writers = set(map(_WRITER, events))
    if SegmentSealed in kinds or ResultsLoaded in kinds or len(writers) != 1:
        return False
    if events is not decoded:
        scan.seals.setdefault(last.writer, set()).add(last.seq)  # type: ignore[union-attr]
    report.events += len(events)
    writer = writers.pop()
    occ = scan.by_writer.get(writer)
    if occ is None:
        occ = scan.by_writer[writer] = _Occurrences()
    occ.add_seqs(list(map(_SEQ, events)))
    occ.seg.extend([index] * len(events))
    occ.line.extend(range(base, base + len(events)))
    occ.eid.extend(map(hash, map(_EVENT_ID, events)))
    return True


_WRITER, _SEQ, _EVENT_ID = attrgetter("writer"), attrgetter("seq"), attrgetter("event_id")


def _torn_tail(seg: SegmentInfo, line: int, size: int, report: VerifyReport, now: float) -> None:
    """Bytes after the last newline: not yet written while the writer may still finish them."""
    writer = seg.name.rsplit("/", 1)[-1].removesuffix(".jsonl")
    why = None
    if seg.compacted is not None:
        why = "the segment was compacted after its writer had finished"
    elif writer_running_here(writer) is False:
        why = f"its writer (process {(writer_origin(writer) or ('', 0))[1]} on this host) has exited"
    elif seg.modified is not None and now - seg.modified > STALE_AFTER_S:
        why = f"the file has not changed for {(now - seg.modified) / 60:.0f} minutes"
    if why is None:
        report.add(
            VerifyProblem(
                "unfinished-line",
                f"the segment ends in {size} bytes that are not yet a complete line: its writer may "
                "still be writing it (it is read once complete). If that writer was killed, this "
                "is a torn write; verify again later to know.",
                seg.name,
                line,
                severity="warning",
            )
        )
        return
    report.add(
        VerifyProblem(
            "torn-tail",
            f"the segment ends in an incomplete line ({size} bytes) that will never be finished: "
            f"{why}. The event it held was lost (the writer crashed mid-write, or the file was "
            f"truncated); replay ignores it. {_RESTORE}",
            seg.name,
            line,
        )
    )


def _check_compacted(store: LogStore, seg: SegmentInfo, report: VerifyReport) -> None:
    """The Parquet gives back the bytes it was made from; a JSONL beside it holds the same."""
    assert seg.compacted is not None
    data = store.read_claim(seg.compacted)
    if data is None:  # compacted again meanwhile: nothing to say
        return
    try:
        held = container_bytes(data)
        want = container_metadata(data).get("source_sha256", b"").decode()
    except Exception:  # unreadable: already reported by the segment scan
        return
    try:
        read_container(data)  # every column, with its page checksums
    except Exception as e:  # damaged: pyarrow raises many kinds
        report.add(
            VerifyProblem(
                "compacted-damaged",
                f"the lines of {seg.compacted} read, but its other columns do not ({e}): a rebuild "
                f"reads it line by line, more slowly. {_RESTORE}",
                seg.name,
            )
        )
    if hashlib.sha256(held).hexdigest() != want:
        report.add(
            VerifyProblem(
                "compacted-damaged",
                f"the compacted copy {seg.compacted} does not give back the bytes it was made from "
                f"(SHA-256 differs): it was changed or damaged. {_RESTORE}",
                seg.name,
            )
        )
    if seg.jsonl_size is None:
        return
    if store.read(seg.name) == held:  # the JSONL, while it is there
        report.add(
            VerifyProblem(
                "compaction-unfinished",
                f"the segment is both in its JSONL and in {seg.compacted}, with the same bytes: a "
                "compaction stopped before deleting the JSONL. Harmless (each event is read once); "
                "`joshreg compact REGISTRY` deletes it.",
                seg.name,
                severity="warning",
            )
        )
    else:
        report.add(
            VerifyProblem(
                "compacted-differs",
                f"the JSONL and its compacted copy {seg.compacted} hold different bytes (the JSONL is "
                f"read while it is there): one of them was changed after compaction. {_RESTORE}",
                seg.name,
            )
        )


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 7]`` as ``1-3, 7``."""
    out: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(out)


def _check_sequences(scan: _Scan, report: VerifyReport) -> None:
    """Per writer: every seq from 1 to its highest exactly once, in order, in one file."""
    names = scan.names
    for writer, occ in scan.by_writer.items():
        n, first_seg = len(occ), occ.seg[0]
        if occ.seq[-1] == n and occ.seq == array("q", range(1, n + 1)) and occ.seg.count(first_seg) == n:
            continue  # the common case: 1, 2, ..., n in one file
        own = f"log/{writer}.jsonl"
        seen: dict[int, tuple[int, int, int]] = {}
        last_in: dict[int, int] = {}  # segment index -> last seq seen there
        copies: dict[tuple[int, int], list[tuple[int, int]]] = {}  # (orig, copy) -> [(seq, line)]
        for seq, seg, line, eid in occ:
            first = seen.get(seq)
            if first is None:
                seen[seq] = (seg, line, eid)
            elif first[0] != seg and first[2] == eid:
                orig, copy = first[0], seg
                if names[copy] == own:  # the copy was read first (its name sorts before)
                    orig, copy = copy, orig
                    line = first[1]
                copies.setdefault((orig, copy), []).append((seq, line))
                continue
            elif first[2] == eid:
                report.add(
                    VerifyProblem(
                        "duplicate-event",
                        f"writer {writer}'s event {seq} is here a second time (first at line "
                        f"{first[1]}): a line was copied; replay applies it once. {_RESTORE}",
                        names[seg],
                        line,
                    )
                )
                continue
            else:
                report.add(
                    VerifyProblem(
                        "sequence-conflict",
                        f"writer {writer} has two different events numbered {seq} (the other is at "
                        f"{names[first[0]]}:{first[1]}): a writer id was reused or a line was forged; "
                        f"replay applies only the first one read. {_RESTORE}",
                        names[seg],
                        line,
                    )
                )
                continue
            if seq < last_in.get(seg, 0):
                report.add(
                    VerifyProblem(
                        "out-of-order",
                        f"writer {writer}'s event {seq} comes after event {last_in[seg]} in this file: "
                        f"lines were moved; replay still applies both. {_RESTORE}",
                        names[seg],
                        line,
                    )
                )
            last_in[seg] = max(seq, last_in.get(seg, 0))
        for (orig, copy), dups in copies.items():
            seqs = sorted(s for s, _ in dups)
            report.add(
                VerifyProblem(
                    "duplicate-segment",
                    f"{len(dups)} events of writer {writer} (seq {_ranges(seqs)}) are also in "
                    f"{names[orig]}: this file is a copy. Replay reads each event once, so nothing "
                    "is counted twice, but the copy should not be in log/: move it out of the store.",
                    names[copy],
                    min(line for _, line in dups),
                )
            )
        _report_gaps(writer, seen, scan, report)


def _report_gaps(
    writer: str, seen: dict[int, tuple[int, int, int]], scan: _Scan, report: VerifyReport
) -> None:
    expected = 1
    for seq in sorted(seen.keys() | scan.seals.get(writer, set())):
        if seq > expected and seq in seen:
            seg, line, _ = seen[seq]
            missing = seq - expected
            damaged = scan.skipped.get(seg, set())
            # Lines right above that were reported damaged already explain the hole.
            if not all(line - k in damaged for k in range(1, missing + 1)):
                what = f"event {expected} is" if missing == 1 else f"events {expected}-{seq - 1} are"
                report.add(
                    VerifyProblem(
                        "sequence-gap",
                        f"writer {writer}'s {what} missing before this line: lines were deleted, "
                        f"lost in a crash or destroyed by damage reported above. {_RESTORE}",
                        scan.names[seg],
                        line,
                    )
                )
        expected = seq + 1


# --- labels ---------------------------------------------------------------------------------------


def _check_labels(store: LogStore, report: VerifyReport, prefix: str = LABEL_PREFIX) -> int:
    """Versions 1..N without a hole; each commit intact, numbered right and chained. ``prefix``
    is the store's own label log or a stream imported by a merge.

    Returns N, the highest version present."""
    own = prefix == LABEL_PREFIX
    blocked = " and no label can be changed until it is back" if own else ""
    versions: set[int] = set()
    for name in store.list_claims(prefix):
        base = name.rsplit("/", 1)[-1]
        if base.endswith(".json") and len(base) == 25 and base[:20].isdigit():
            versions.add(int(base[:20]))
    head = max(versions, default=0)
    missing = [v for v in range(1, head + 1) if v not in versions]
    for hole in _runs(missing):
        first, last = hole[0], hole[-1]
        what = f"label commit {first} is" if first == last else f"label commits {first}-{last} are"
        report.add(
            VerifyProblem(
                "label-hole",
                f"{what} missing though commit {head} exists: the file was deleted. Replay stops "
                f"before it, so label changes from commit {first} on are not applied{blocked}. "
                f"Restore it from a backup or another copy of the store's {prefix}/ folder.",
                commit_name(first, prefix),
            )
        )
    prev: str | None = GENESIS
    for version in range(1, head + 1):
        if version not in versions:
            prev = None  # the chain cannot be followed across a hole
            continue
        name = commit_name(version, prefix)
        data = store.read_claim(name)
        if data is None:
            prev = None
            continue
        report.label_commits += 1
        line = data[:-1] if data.endswith(b"\n") else data
        chk = check_line(line)
        problem = None
        if chk is None or b"\n" in line:
            problem = "it is not one complete commit line (truncated or appended to)"
        elif not chk.intact:
            problem = "it does not match its checksum (edited)"
        else:
            try:
                commit = decode_commit(line)
            except (msgspec.DecodeError, ValueError) as e:
                problem = f"it does not decode: {e}"
            else:
                if commit.version != version:
                    problem = f"it says it is version {commit.version} (renamed or copied)"
        if problem is not None:
            report.add(
                VerifyProblem(
                    "label-commit",
                    f"label commit {version} is damaged: {problem}. Replay stops before it, so "
                    f"label changes from commit {version} on are not applied{blocked}. Restore it "
                    "from a backup or another copy of the store.",
                    name,
                    1,
                )
            )
        elif prev is not None and chk is not None and chk.prev != prev:
            report.add(
                VerifyProblem(
                    "chain-broken",
                    f"label commit {version} does not follow commit {version - 1}: the previous "
                    "commit was replaced or rewritten. Compare both with a backup.",
                    name,
                    1,
                )
            )
        prev = chk.c if chk is not None else None
    return head


def _runs(numbers: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for n in numbers:
        if out and out[-1][-1] == n - 1:
            out[-1].append(n)
        else:
            out.append([n])
    return out


# --- result files ---------------------------------------------------------------------------------


def _check_blobs(
    store: LogStore, report: VerifyReport, loads: list[_Load], progress: VerifyProgress | None
) -> None:
    """Every result file an event names exists and has the content hash the event recorded."""
    first: dict[str, _Load] = {}
    for load in loads:
        first.setdefault(load.blob, load)
    report.blobs = len(first)
    for i, load in enumerate(first.values(), 1):
        where = f"{load.segment}:{load.line}"
        data = store.read_claim(load.blob)
        if data is None:
            report.add(
                VerifyProblem(
                    "missing-blob",
                    f"this result file, loaded by the event at {where}, is missing: its rows are not "
                    "in cell_data. Restore the file from a backup, or load the CSV export again "
                    "(the same content gets the same file name).",
                    load.blob,
                )
            )
        elif (got := hashlib.sha256(data).hexdigest()) != load.sha256:
            report.add(
                VerifyProblem(
                    "blob-hash",
                    f"this result file, loaded by the event at {where}, has SHA-256 {got[:12]}... "
                    f"but was stored with {load.sha256[:12]}...: its bytes were changed or damaged, "
                    "so cell_data may hold wrong rows. Restore the file from a backup or load the "
                    "CSV export again after moving the damaged file out of the store.",
                    load.blob,
                )
            )
        if progress:
            progress("result files", i, len(first))


# --- the projection -------------------------------------------------------------------------------


class _Snapshot(LogStore):
    """The store as a projection has read it: segments cut at its checkpoint, labels up to its
    head. Read-only; result files pass through."""

    def __init__(
        self, store: LogStore, sizes: dict[str, int], labels_head: int, imports: dict[str, int] | None = None
    ) -> None:
        self.inner = store
        self.location = store.location
        self.store_id = store.stored_id() or "unidentified"
        self.sizes = sizes
        self.labels_head = labels_head
        self.imports = imports or {}  # imported label stream -> the version the tables hold

    def append(self, segment: str, data: bytes) -> None:
        raise JoshregError("a verification snapshot is read-only")

    def sync(self, segment: str) -> None:
        return None

    def close_segment(self, segment: str) -> None:
        return None

    def segments(self) -> list[SegmentInfo]:
        return [
            SegmentInfo(s.name, min(s.size, self.sizes[s.name]), s.modified)
            for s in self.inner.segments()
            if s.name in self.sizes
        ]

    def read(self, segment: str, offset: int = 0, end: int | None = None) -> bytes:
        limit = self.sizes.get(segment, 0)
        return self.inner.read(segment, offset, limit if end is None else min(end, limit))

    def _visible(self, name: str) -> bool:
        if name.startswith(IMPORTED + "/"):
            parts = name.split("/")
            head = self.imports.get("/".join(parts[:2]))
            if head is None or len(parts) < 3:
                return head is not None
            return not parts[2][:20].isdigit() or int(parts[2][:20]) <= head
        if not name.startswith(LABEL_PREFIX + "/"):
            return True
        base = name.rsplit("/", 1)[-1]
        return not base[:20].isdigit() or int(base[:20]) <= self.labels_head

    def claim(self, name: str, data: bytes) -> bool:
        raise JoshregError("a verification snapshot is read-only")

    def read_claim(self, name: str) -> bytes | None:
        return self.inner.read_claim(name) if self._visible(name) else None

    def list_claims(self, prefix: str) -> list[str]:
        return [n for n in self.inner.list_claims(prefix) if self._visible(n)]


@dataclass
class _Checkpoint:
    """What the projection says it has read: segment byte offsets and label versions."""

    read: list[tuple[str, int, int]]  # (segment, byte offset, lines)
    labels_head: int
    imports: dict[str, int]  # imported label stream -> the version the tables hold

    def snapshot(self, store: LogStore) -> _Snapshot:
        sizes = {segment: offset for segment, offset, _ in self.read}
        return _Snapshot(store, sizes, self.labels_head, self.imports)


def _read_checkpoint(con: duckdb.DuckDBPyConnection) -> _Checkpoint | str:
    """The projection's checkpoint, or why it cannot be read."""
    try:
        read = con.execute("SELECT segment, byte_offset, line FROM joshreg_segments").fetchall()
        head = con.execute("SELECT value FROM joshreg_meta WHERE key = 'labels_head'").fetchone()
        held = con.execute("SELECT value FROM joshreg_meta WHERE key = 'label_imports'").fetchone()
    except duckdb.Error as e:
        return str(e)
    imports: dict[str, int] = msgspec.json.decode(held[0]) if held else {}
    return _Checkpoint(read, int(head[0]) if head else 0, imports)


class _Stopped(Exception):
    """Raised into a private rebuild that is no longer wanted."""


class _Rebuild:
    """A private rebuild of the log as a checkpoint says the projection has read it, running in
    a thread from construction until ``wait``.

    It goes to an in-memory database whose buffer pool is bounded and spills to a temporary
    folder: a DuckDB file would also compress and write every row, which cost a 10⁶-event
    verify about 20% of its time for tables that are thrown away, and an unbounded in-memory
    database would hold a second copy of the tables. The public tables that are one query over
    the event tables are views there (``Projector(materialize=False)``): the comparison reads
    each once, which costs about half of writing its rows first.
    """

    def __init__(
        self, store: LogStore, checkpoint: _Checkpoint, spatial: bool, observer: ChunkObserver | None = None
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="joshreg-verify-")
        self.fresh = duckdb.connect(":memory:", config=_rebuild_config(self._tmp.name))
        self.progress: tuple[int, int] | None = None
        self.error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(
            target=self._run,
            args=(checkpoint.snapshot(store), spatial, observer),
            name="joshreg-verify-rebuild",
            daemon=True,
        )
        self._thread.start()

    def _run(self, snapshot: _Snapshot, spatial: bool, observer: ChunkObserver | None) -> None:
        def rebuilding(done: int, total: int) -> None:
            if self._stop:
                raise _Stopped
            self.progress = (done, total)

        try:
            projector = Projector(self.fresh, snapshot, spatial=spatial, materialize=False)
            projector.reader.observer = observer
            projector.rebuild(rebuilding)
        except BaseException as e:  # handed to the waiting thread
            self.error = e

    def wait(self, progress: VerifyProgress | None) -> duckdb.DuckDBPyConnection:
        """Wait for the rebuild, passing its progress on from this thread (as ``"segments"``:
        its reading is the scan); its connection."""
        shown = None
        while True:
            self._thread.join(0.1)
            now = self.progress
            if progress and now is not None and now != shown:
                shown = now
                progress("segments", *now)
            if not self._thread.is_alive():
                break
        if self.error is not None:
            raise self.error
        # The reader is done: the comparison's scans, which also run the views' queries, get
        # every core (10⁶ events, before the views: 0.3-0.4 s instead of 0.5-0.6 s on one).
        self.fresh.execute("RESET threads")
        return self.fresh

    def close(self) -> None:
        if self._thread.is_alive():  # verification failed: stop the rebuild first
            self._stop = True
            self.fresh.interrupt()
            self._thread.join()
        self.fresh.close()
        self._tmp.cleanup()


def _check_projection(
    store: LogStore,
    con: duckdb.DuckDBPyConnection,
    report: VerifyReport,
    scan: _Scan,
    labels_present: int,
    checkpoint: _Checkpoint | str,
    fresh: duckdb.DuckDBPyConnection | None,
    progress: VerifyProgress | None,
    mine: _Projection | None,
) -> None:
    """What ``con`` has read must still be there; with ``fresh`` (a private rebuild), compare
    every public table with it (``mine``: ``con``'s side, when taken already)."""
    if isinstance(checkpoint, str):
        report.add(
            VerifyProblem(
                "projection-unreadable",
                f"the projection's checkpoint cannot be read ({checkpoint}); run `joshreg rebuild` to "
                "recreate the tables from the log",
            )
        )
        return
    _check_checkpoint(store, report, scan, checkpoint.read, checkpoint.labels_head, labels_present)
    for prefix, version in sorted(checkpoint.imports.items()):
        if version and store.read_claim(commit_name(version, prefix)) is None:
            report.add(
                VerifyProblem(
                    "label-hole",
                    f"the tables show commits up to {version} of this imported label stream, but "
                    "they are gone from the log. Restore them from a backup or merge the source "
                    "registry again; a rebuild would forget those label changes.",
                    commit_name(version, prefix),
                )
            )
    if fresh is not None:
        _compare_rebuild(con, fresh, report, progress, mine)


def _rebuild_config(tmp: str) -> dict[str, str]:
    """The private rebuild's DuckDB settings: a bounded buffer pool that spills to ``tmp``, so
    that verifying a big registry does not hold a second copy of its tables in memory; and one
    DuckDB thread, as the rebuild's reader (reading, checking, decoding) keeps another core
    busy: two took more CPU for the same wall time or longer (10⁶ events, 3 runs each: user
    CPU 11.9-12.8 s with two, 9.5-10.9 s with one; 11.2-12.0 s against 10.0-11.7 s)."""
    return {"memory_limit": REBUILD_MEMORY, "temp_directory": os.path.join(tmp, "spill"), "threads": "1"}


def _compare_rebuild(
    con: duckdb.DuckDBPyConnection,
    fresh: duckdb.DuckDBPyConnection,
    report: VerifyReport,
    progress: VerifyProgress | None,
    mine: _Projection | None,
) -> None:
    """Compare every public table of ``con`` with the rebuild's in ``fresh`` (``mine``:
    ``con``'s side, when taken already)."""
    if report.problems:  # the log changed under the tables: rebuilding would lose rows
        advice = (
            "The tables were built before the log damage reported above; restore the log first, "
            "as `joshreg rebuild` would drop what only the tables still hold."
        )
    else:
        advice = (
            "The DuckDB file was changed outside joshreg (or by a joshreg bug); run `joshreg "
            "rebuild REGISTRY` to replace the tables with what the log says."
        )
    have = mine.columns if mine is not None else _columns(con)
    prints = mine.fingerprints if mine is not None else {}
    want = _columns(fresh)
    event_diffs: list[str] = []
    for i, table in enumerate(_COMPARED, 1):
        diff = _compare_table(
            con, fresh, table, have.get(table, {}), want.get(table, {}), report, prints.get(table)
        )
        if diff is not None and table in _EVENT_TABLE_NAMES:
            event_diffs.append(f"{table}: {diff}" if not event_diffs else f"{table}: {diff.split(';')[0]}")
        elif diff is not None:
            report.add(
                VerifyProblem(
                    "projection-differs",
                    f"not what a fresh rebuild of the log gives: {diff}. {advice}",
                    table=table,
                )
            )
        report.tables.append(table)
        if progress:
            progress("tables", i, len(_COMPARED))
    if event_diffs:  # one problem for the events: they differ together when lines moved
        report.add(
            VerifyProblem(
                "projection-differs",
                f"the events the tables hold are not what a fresh rebuild of the log reads: "
                f"{' | '.join(event_diffs)}. {advice}",
                table="event_log",
            )
        )


def _check_checkpoint(
    store: LogStore,
    report: VerifyReport,
    scan: _Scan,
    read: list[tuple[str, int, int]],
    labels_head: int,
    labels_present: int,
) -> None:
    """Segments and label commits the tables were built from must not have shrunk or gone."""
    restore = "Restore it from a backup or another copy of the store; a rebuild would lose those events."
    now = {s.name: s.size for s in store.segments()}
    for segment, offset, lines in sorted(read):
        if segment not in now:
            report.add(
                VerifyProblem(
                    "missing-segment",
                    f"the tables hold {lines} lines read from this segment, but the file is gone "
                    f"(deleted or moved). {restore}",
                    segment,
                )
            )
        elif now[segment] < offset:
            have = scan.lines.get(segment, 0)
            report.add(
                VerifyProblem(
                    "segment-shrank",
                    f"the tables hold {lines} lines ({offset} bytes) read from this segment, but it now "
                    f"has only {have} complete lines ({now[segment]} bytes): lines were removed from it "
                    f"or its end was cut off. {restore}",
                    segment,
                    have + 1,
                )
            )
    if labels_head > labels_present:
        first = labels_present + 1
        what = f"commit {first} is" if first == labels_head else f"commits {first}-{labels_head} are"
        report.add(
            VerifyProblem(
                "label-hole",
                f"the tables show label {what} gone from the log: the newest label commits were "
                "deleted. Restore them from a backup; a rebuild would forget those label changes.",
                commit_name(first),
            )
        )


@dataclass
class _Projection:
    """The projection's side of the comparison: every table's columns, and each compared
    table's fingerprint over its columns (sorted, as ``_compare_table`` takes them)."""

    columns: dict[str, dict[str, str]]
    fingerprints: dict[str, tuple[int, int]]


def _projection_side(con: duckdb.DuckDBPyConnection) -> _Projection | None:
    """``con``'s side of the comparison; None when its tables cannot be read (the comparison
    then says why)."""
    try:
        have = _columns(con)
        prints = {t: _fingerprint(con, t, sorted(have[t])) for t in _COMPARED if t in have}
    except duckdb.Error:
        return None
    return _Projection(have, prints)


def _fingerprint(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> tuple[int, int]:
    """Row count and the sum of row hashes: equal for equal multisets of rows."""
    cols = ", ".join(quote_identifier(c) for c in columns)
    n, h = con.execute(f"SELECT count(*), coalesce(sum(hash({cols})), 0) FROM {table}").fetchone()
    return int(n), int(h)


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Every table's and view's columns and types (one query, not one per table)."""
    out: dict[str, dict[str, str]] = {}
    for table, column, typ in con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_catalog = current_database()"
    ).fetchall():
        out.setdefault(table, {})[column] = "DOUBLE" if typ in ("DOUBLE", "FLOAT", "REAL") else typ
    return out


def _compare_table(
    con: duckdb.DuckDBPyConnection,
    fresh: duckdb.DuckDBPyConnection,
    table: str,
    have: dict[str, str],
    want: dict[str, str],
    report: VerifyReport,
    mine: tuple[int, int] | None,
) -> str | None:
    """How ``table`` differs from the rebuild's, or None when the rows are the same multiset
    (``mine``: the projection's fingerprint, when taken already)."""
    if have != want:
        extra = sorted(set(have) - set(want))
        lost = sorted(set(want) - set(have))
        typed = sorted(c for c in set(have) & set(want) if have[c] != want[c])
        parts = [f"columns only in the projection: {', '.join(extra)}"] if extra else []
        parts += [f"columns only in a rebuild: {', '.join(lost)}"] if lost else []
        parts += [f"{c} is {have[c]}, a rebuild makes it {want[c]}" for c in typed]
        return "; ".join(parts)
    columns = sorted(have)
    if mine is None:
        mine = _fingerprint(con, table, columns)
    if mine == _fingerprint(fresh, table, columns):
        return None
    if table == "cell_data":
        rest = [c for c in columns if c != "cell_id"]
        if _fingerprint(con, table, rest) == _fingerprint(fresh, table, rest):
            report.add(
                VerifyProblem(
                    "cell-ids-differ",
                    "cell_data holds the rows a rebuild gives, but numbers some of them differently "
                    "(results loaded by several processes arrived out of clock order). Harmless "
                    "unless you kept cell_id values: a rebuild renumbers them.",
                    table=table,
                    severity="warning",
                )
            )
            return None
    return _differences(con, fresh, table, columns)


def _differences(
    con: duckdb.DuckDBPyConnection, fresh: duckdb.DuckDBPyConnection, table: str, columns: list[str]
) -> str:
    """How many rows differ each way, and a few of them (changed columns only, when paired)."""
    select = ", ".join(f"{quote_identifier(c)}::VARCHAR AS {quote_identifier(c)}" for c in columns)
    fresh.register("_projection", con.execute(f"SELECT {select} FROM {table}").to_arrow_table())
    try:
        mine = f"SELECT * FROM _projection EXCEPT ALL SELECT {select} FROM {table}"
        theirs = f"SELECT {select} FROM {table} EXCEPT ALL SELECT * FROM _projection"
        n_mine = fresh.execute(f"SELECT count(*) FROM ({mine})").fetchone()[0]
        n_theirs = fresh.execute(f"SELECT count(*) FROM ({theirs})").fetchone()[0]
        rows_mine = [dict(zip(columns, r, strict=True)) for r in fresh.execute(f"{mine} LIMIT 50").fetchall()]
        rows_theirs = [
            dict(zip(columns, r, strict=True)) for r in fresh.execute(f"{theirs} LIMIT 50").fetchall()
        ]
    finally:
        fresh.unregister("_projection")
    keys = _KEYS.get(table, ("event_id",) if "event_id" in columns else ())
    samples: list[str] = []
    unpaired = list(rows_theirs)
    for row in rows_mine:
        if len(samples) >= SAMPLES:
            break
        other = next((r for r in unpaired if keys and all(r[k] == row[k] for k in keys)), None)
        if other is not None:
            unpaired.remove(other)
            changed = ", ".join(
                f"{c} {_short(row[c])} (rebuild: {_short(other[c])})" for c in columns if row[c] != other[c]
            )
            samples.append(f"{_key(row, keys)} has {changed}")
        else:
            samples.append(f"only in the projection: {_row(row, keys)}")
    for row in unpaired[: max(0, SAMPLES - len(samples))]:
        samples.append(f"only in a rebuild: {_row(row, keys)}")
    counts = f"{n_mine} row{'s' if n_mine != 1 else ''} not in a rebuild, {n_theirs} missing"
    return f"{counts}; e.g. " + "; ".join(samples) if samples else counts


def _short(value: object, width: int = 40) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _key(row: dict[str, Any], keys: tuple[str, ...]) -> str:
    return ", ".join(f"{k}={_short(row[k])}" for k in keys) if keys else "a row"


def _row(row: dict[str, Any], keys: tuple[str, ...]) -> str:
    shown = [*keys, *(c for c in row if c not in keys)][:6]
    more = ", ..." if len(row) > len(shown) else ""
    return "{" + ", ".join(f"{c}={_short(row[c], 24)}" for c in shown) + more + "}"
