"""Verifying the log's bytes: segments (framing, checksums, chains, torn tails, compacted
copies), each writer's sequence numbers, label streams and result files.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import attrgetter

from joshreg.errors import JoshregError, StoreError
from joshreg.log.clock import writer_origin, writer_running_here
from joshreg.log.codec import decode_chunk, verify_lines
from joshreg.log.events import EventBase, ResultsLoaded, SegmentSealed
from joshreg.log.reader import Chunk, ChunkObserver, Cursor
from joshreg.log.store.base import LogStore, SegmentInfo
from joshreg.log.store.chunks import GRACE_S
from joshreg.log.store.compacted import container_bytes, container_metadata, read_container
from joshreg.operations.verify_report import RESTORE, VerifyProblem, VerifyProgress, VerifyReport

#: A torn last line of a segment untouched for this long is damage even if its writer lives.
STALE_AFTER_S = 600.0


CHUNK_BYTES = 16 << 20


_SEGMENT_KINDS = {
    "malformed": "this line is not a complete event line (torn, glued to another or overwritten); "
    "the event it held is not applied. ",
    "checksum": "this line does not match its checksum: it was edited, glued to the next line or "
    "partly overwritten; it is not applied. ",
    "chain-broken": "the hash chain breaks here: a line just before this one was deleted, inserted "
    "or moved (this line itself is intact and applied). ",
    "undecodable": "this line is intact but is not an event this joshreg knows; it is not applied. ",
}


@dataclass
class Load:
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
class Scan:
    """Everything read from the segments that the cross-segment checks need."""

    names: list[str] = field(default_factory=list)
    # writer -> its events' seqs, segment indices, lines and event ids in reading order
    by_writer: dict[str, _Occurrences] = field(default_factory=dict)
    skipped: dict[int, set[int]] = field(default_factory=dict)  # segment index -> damaged lines
    loads: list[Load] = field(default_factory=list)
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


def observer(scan: Scan, report: VerifyReport) -> ChunkObserver:
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


def check_segments(
    store: LogStore, scan: Scan, report: VerifyReport, progress: VerifyProgress | None, now: float
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
    _check_chunk_gaps(store, report, now)
    report.writers = len(scan.by_writer)


def _check_chunk_gaps(store: LogStore, report: VerifyReport, now: float) -> None:
    """On object storage, a chunk missing before later ones of its segment: "not yet visible"
    (a warning) while the later chunk is younger than the grace period, lost (an error) after."""
    gaps = getattr(store, "chunk_gaps", None)
    if gaps is None:
        return
    for segment, end, later, stored in gaps():
        young = stored is not None and now - stored < GRACE_S
        what = f"the chunk at byte {end} of {segment} is missing, though {later} follows it"
        report.add(
            VerifyProblem(
                "chunk-not-yet-visible" if young else "chunk-missing",
                f"{what}; it may still be uploading: verify again in a minute"
                if young
                else f"{what}: its lines are lost; the bytes after it are not read. Restore the "
                "chunk from a copy of the bucket if there is one",
                segment,
                severity="warning" if young else "error",
            )
        )


def _scan_segment(
    store: LogStore,
    seg: SegmentInfo,
    index: int,
    start: Cursor,
    scan: Scan,
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
    failed: list[tuple[int, str]], segment: str, index: int, base: int, scan: Scan, report: VerifyReport
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
    scan: Scan,
    report: VerifyReport,
) -> None:
    """Report the damaged lines of a chunk (``verify_lines``'s findings) and remember each
    event's writer, seq and any result file."""
    for i, kind, detail in found:
        extra = f" ({detail})" if kind == "malformed" else ""
        report.add(VerifyProblem(kind, _SEGMENT_KINDS.get(kind, "") + RESTORE + extra, segment, base + i))
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
            scan.loads.append(Load(ev.blob, ev.blob_sha256, segment, base + i))
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
    decoded: list[EventBase | None], index: int, base: int, scan: Scan, report: VerifyReport
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
            f"truncated); replay ignores it. {RESTORE}",
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
                f"reads it line by line, more slowly. {RESTORE}",
                seg.name,
            )
        )
    if hashlib.sha256(held).hexdigest() != want:
        report.add(
            VerifyProblem(
                "compacted-damaged",
                f"the compacted copy {seg.compacted} does not give back the bytes it was made from "
                f"(SHA-256 differs): it was changed or damaged. {RESTORE}",
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
                f"read while it is there): one of them was changed after compaction. {RESTORE}",
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


def _check_sequences(scan: Scan, report: VerifyReport) -> None:
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
                        f"{first[1]}): a line was copied; replay applies it once. {RESTORE}",
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
                        f"replay applies only the first one read. {RESTORE}",
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
                        f"lines were moved; replay still applies both. {RESTORE}",
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
    writer: str, seen: dict[int, tuple[int, int, int]], scan: Scan, report: VerifyReport
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
                        f"lost in a crash or destroyed by damage reported above. {RESTORE}",
                        scan.names[seg],
                        line,
                    )
                )
        expected = seq + 1
