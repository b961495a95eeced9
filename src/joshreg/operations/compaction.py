"""Compaction: finished segments rewritten as Parquet, for a smaller store and faster rebuilds.

**What may be compacted.** A segment is *finished* when no writer will ever append to it:

- it is **sealed**: its last line is ``segment.sealed``, which ``EventWriter.close()`` writes
  (``RunRegistry.close()``, ``RunRecorder.close()`` and a normal process exit close writers);
- or it is **abandoned**: unsealed, but its writer ran on this host, has exited, and the file
  has not changed for ``abandoned_after`` seconds (a killed worker). A torn last line is kept.

Anything else is left alone: a live writer's segment, and an unsealed segment written on another
host (whether its writer still runs cannot be told from here: close it, or compact on that
host). So are segments under ``min_bytes`` (64 KiB by default): a Parquet file has a few KiB of
fixed overhead, so compacting a registry session of a dozen events would grow it.

**Layout** (``store.compacted``): each line's exact bytes plus its envelope columns (type,
writer, seq, clock), and in the metadata whether the segment is *clean* (every line intact,
chained, decoded, one writer, seqs 1..n). A rebuild hands a clean segment's lines to DuckDB's
``from_json`` without decoding them in Python.

Rebuilds read a compacted segment with pyarrow, which checks every page's CRC. DuckDB's own
``read_parquet`` would be faster, but it does not check page checksums: most single-bit flips
in a compacted file gave different rows without any error. Typed columns (one struct column
per event type) read through pyarrow made rebuilds slower, not faster, for larger files and a
slower compaction, so the raw lines it is (figures in benchmarks/findings.md).

**Steps for one segment**, each safe to crash after:

1. read the JSONL, check every line (framing, checksum, chain, decoding), build the Parquet
   in memory and check it gives back the JSONL's exact bytes;
2. claim ``compacted/<stem>.<size>.parquet`` (temporary file, fsync, ``link``, fsync of the
   folder): it is durable before it is visible, and two compactors racing get one file;
3. read the claim back and compare (a claim that already existed, from an interrupted run or
   a racing compactor, must hold the same bytes, or the JSONL stays);
4. only then delete the JSONL (``LogStore.retire_segment``, which refuses without the copy).

A crash before step 2 leaves an invisible temporary file, deleted by a later compaction after
``temp_grace`` seconds. A crash between 2 and 4 leaves the JSONL and its Parquet side by side:
the store reads one of them, and they hold the same bytes, so a reader's byte-offset cursor
means the same in both and nothing is read twice or skipped; the next compaction deletes the
JSONL. After step 4 the segment is read from the Parquet under its old name.
"""

from __future__ import annotations

import hashlib
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

import msgspec

from joshreg.errors import StoreError
from joshreg.log.clock import actor, writer_running_here
from joshreg.log.codec import GENESIS, decode_chunk, verify_lines
from joshreg.log.events import SegmentSealed, event_types
from joshreg.log.reader import ABANDONED_AFTER_S, abandoned, ends_sealed
from joshreg.log.store.base import LogStore, SegmentInfo
from joshreg.log.store.compacted import PREFIX, compacted_name, container_bytes, encode_container

__all__ = [
    "ABANDONED_AFTER_S",
    "MIN_BYTES",
    "TEMP_GRACE_S",
    "CompactedSegment",
    "CompactionReport",
    "compact_store",
]

#: Temporary files of crashed compactions are deleted once this old (a running one is younger).
TEMP_GRACE_S = 3600.0
#: Smaller segments stay JSONL: their Parquet would not be smaller.
MIN_BYTES = 64 * 1024
_TAG = {cls: tag for tag, cls in event_types().items()}


class _Envelope(msgspec.Struct):
    """What the columns need from a line that does not decode as a known event."""

    type: str | None = None
    writer: str | None = None
    seq: int | None = None
    hlc: int | None = None


_envelope = msgspec.json.Decoder(_Envelope)


@dataclass
class CompactedSegment:
    """One segment compacted: why it was finished, what it held, and the sizes before/after."""

    segment: str
    claim: str
    reason: str  # "sealed", "abandoned" or "finished" (an interrupted compaction completed)
    lines: int = 0
    events: int = 0
    jsonl_bytes: int = 0
    parquet_bytes: int = 0


@dataclass
class CompactionReport:
    """What ``compact_store`` did: segments compacted, left alone (and why), problems."""

    location: str
    compacted: list[CompactedSegment] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    temporaries_removed: int = 0
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        before = sum(c.jsonl_bytes for c in self.compacted)
        after = sum(c.parquet_bytes for c in self.compacted)
        verb = "would compact" if self.dry_run else "compacted"
        text = f"{verb} {len(self.compacted)} segments ({sum(c.events for c in self.compacted)} events"
        text += f", {before / 1e6:.2f} MB of JSONL" + (
            f" -> {after / 1e6:.2f} MB of Parquet)" if after else ")"
        )
        text += f", left {len(self.skipped)} alone"
        if self.temporaries_removed:
            text += f", removed {self.temporaries_removed} leftover temporary files"
        return f"{text} in {self.seconds:.2f} s"

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f"  {c.reason}: {c.segment} -> {c.claim}" for c in self.compacted]
        lines += [f"  left alone: {s}: {why}" for s, why in self.skipped]
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "location": self.location,
            "dry_run": self.dry_run,
            "compacted": [vars(c) for c in self.compacted],
            "skipped": [{"segment": s, "reason": why} for s, why in self.skipped],
            "problems": self.problems,
            "temporaries_removed": self.temporaries_removed,
            "seconds": round(self.seconds, 3),
        }


def compact_store(
    store: LogStore,
    *,
    abandoned_after: float = ABANDONED_AFTER_S,
    min_bytes: int = MIN_BYTES,
    temp_grace: float = TEMP_GRACE_S,
    dry_run: bool = False,
    now: float | None = None,
    tracer: Callable[[str], None] | None = None,
) -> CompactionReport:
    """Compact every finished segment of ``store`` (see the module docstring).

    ``tracer`` is told each durable step (``wrote <claim>``, ``deleted <segment>``). A segment
    that cannot be compacted safely is named in ``problems`` and keeps its JSONL.
    """
    t0 = time.perf_counter()
    report = CompactionReport(store.location, dry_run=dry_run)
    clock = time.time() if now is None else now
    if not dry_run:
        report.temporaries_removed = sum(
            store.discard_temporaries(folder, temp_grace) for folder in (PREFIX, "blobs")
        )
    for seg in store.segments():
        if seg.compacted is not None and seg.jsonl_size is None:
            continue  # done
        if not seg.name.startswith("log/") or not seg.name.endswith(".jsonl"):
            continue
        try:
            if seg.compacted is not None:
                _finish(store, seg, report, dry_run, tracer)
            elif seg.size < min_bytes:
                report.skipped.append((seg.name, f"smaller than {min_bytes} bytes"))
            elif (reason := _finished_because(store, seg, clock, abandoned_after, report)) is not None:
                _compact(store, seg, reason, report, dry_run, tracer)
        except (StoreError, OSError) as e:
            report.problems.append(f"{seg.name}: {e}; it keeps its JSONL, compact again later")
    report.seconds = time.perf_counter() - t0
    return report


def _trace(tracer: Callable[[str], None] | None, msg: str) -> None:
    if tracer is not None:
        tracer(msg)


def _finished_because(
    store: LogStore, seg: SegmentInfo, now: float, abandoned_after: float, report: CompactionReport
) -> str | None:
    """Why no writer will append to ``seg`` again (``sealed`` or ``abandoned``), or None, and
    then why it is left alone goes into the report."""
    if seg.size == 0:
        report.skipped.append((seg.name, "empty"))
        return None
    if ends_sealed(store, seg.name, seg.size):
        return "sealed"
    gone = abandoned(seg, now, abandoned_after)
    if gone is None:
        report.skipped.append((seg.name, "not sealed, and its writer ran on another host (or is unknown)"))
        return None
    if not gone:
        running = writer_running_here(seg.name[len("log/") : -len(".jsonl")])
        why = (
            "its writer is still running"
            if running
            else f"not sealed, its writer exited less than {abandoned_after:.0f} s ago"
        )
        report.skipped.append((seg.name, why))
        return None
    return "abandoned"


def _compact(
    store: LogStore,
    seg: SegmentInfo,
    reason: str,
    report: CompactionReport,
    dry_run: bool,
    tracer: Callable[[str], None] | None,
) -> bool:
    data = store.read(seg.name)
    if len(data) < seg.size:
        report.problems.append(
            f"{seg.name}: shorter than listed ({len(data)} < {seg.size} bytes); left alone"
        )
        return False
    name = compacted_name(seg.name, len(data))
    entry = CompactedSegment(seg.name, name, reason, jsonl_bytes=len(data))
    if dry_run:
        entry.lines = data.count(b"\n")
        entry.events = max(0, entry.lines - (reason == "sealed"))
        report.compacted.append(entry)
        return True
    parquet, entry.lines, entry.events = _encode(seg.name, data, reason == "sealed")
    if container_bytes(parquet) != data:  # never publish a copy that does not give the bytes back
        report.problems.append(f"{seg.name}: the Parquet built does not reproduce the JSONL; left alone")
        return False
    if not store.claim(name, parquet):  # an interrupted run or a racing compactor made it
        existing = store.read_claim(name)
        if existing is None or not _same(existing, data):
            report.problems.append(
                f"{seg.name}: {name} exists but does not hold this segment's bytes; left both as they "
                "are (joshreg verify explains)"
            )
            return False
        parquet = existing
    else:
        check = store.read_claim(name)
        if check is None or not _same(check, data):
            report.problems.append(f"{seg.name}: {name} did not read back as written; the JSONL stays")
            return False
    _trace(tracer, f"compact: wrote {name}")
    entry.parquet_bytes = len(parquet)
    store.retire_segment(seg.name)
    _trace(tracer, f"compact: deleted {seg.name}")
    report.compacted.append(entry)
    return True


def _finish(
    store: LogStore,
    seg: SegmentInfo,
    report: CompactionReport,
    dry_run: bool,
    tracer: Callable[[str], None] | None,
) -> bool:
    """A JSONL left beside its compacted copy by an interrupted compaction: delete it once the
    copy is known to hold exactly its bytes."""
    assert seg.compacted is not None
    copy = store.read_claim(seg.compacted)
    data = store.read(seg.name)  # the JSONL while it exists
    if copy is None or not _same(copy, data):
        report.problems.append(
            f"{seg.name}: its JSONL and {seg.compacted} differ; left both as they are (joshreg verify "
            "explains)"
        )
        return False
    entry = CompactedSegment(seg.name, seg.compacted, "finished", data.count(b"\n"), 0, len(data), len(copy))
    if not dry_run:
        store.retire_segment(seg.name)
        _trace(tracer, f"compact: deleted {seg.name}")
    report.compacted.append(entry)
    return True


def _same(parquet: bytes, data: bytes) -> bool:
    try:
        return container_bytes(parquet) == data
    except Exception:  # a damaged file: pyarrow raises many kinds
        return False


def _encode(segment: str, data: bytes, sealed: bool) -> tuple[bytes, int, int]:
    """The Parquet of a segment's bytes; also its line and event counts."""
    cut = data.rfind(b"\n") + 1
    lines = data[:cut].split(b"\n")
    lines.pop()
    n = len(lines)
    problems, skip, last_c = verify_lines(lines, GENESIS)
    decoded, _ = decode_chunk(memoryview(data)[:cut], lines, skip)
    types: list[str | None] = []
    writers: list[str | None] = []
    seqs: list[int | None] = []
    hlcs: list[int | None] = []
    if None not in decoded:
        types = [_TAG[type(e)] for e in decoded]
        writers = [e.writer for e in decoded]  # type: ignore[union-attr]
        seqs = [e.seq for e in decoded]  # type: ignore[union-attr]
        hlcs = [e.hlc for e in decoded]  # type: ignore[union-attr]
    else:
        for line, ev in zip(lines, decoded, strict=True):
            if ev is None:
                try:
                    env = _envelope.decode(line)
                except (msgspec.DecodeError, ValueError):
                    env = _Envelope()
                types.append(env.type)
                writers.append(env.writer)
                seqs.append(env.seq)
                hlcs.append(env.hlc)
            else:
                types.append(_TAG[type(ev)])
                writers.append(ev.writer)
                seqs.append(ev.seq)
                hlcs.append(ev.hlc)
    seals = types.count("segment.sealed")
    clean = (
        not problems
        and None not in decoded
        and n > 0
        and writers.count(writers[0]) == n
        and seqs == list(range(1, n + 1))
        and (seals == 0 or (seals == 1 and types[-1] == "segment.sealed"))
    )
    # The line column is the segment's bytes cut at each newline: no copy per line.
    offsets = array("q", [0])
    offsets.extend(accumulate(map((1).__add__, map(len, lines))))
    metadata = {
        "segment": segment,
        "writer": writers[0] if n and writers.count(writers[0]) == n and writers[0] else "",
        "first_seq": str(min((s for s in seqs if s is not None), default=0)),
        "last_seq": str(max((s for s in seqs if s is not None), default=0)),
        "lines": str(n),
        "events": str(sum(1 for e in decoded if e is not None and type(e) is not SegmentSealed)),
        "source_bytes": str(len(data)),
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "last_c": last_c,
        "sealed": "1" if sealed else "0",
        "clean": "1" if clean else "0",
        "compacted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "compacted_by": actor(),
    }
    envelope: dict[str, list[Any]] = {"type": types, "writer": writers, "seq": seqs, "hlc": hlcs}
    parquet = encode_container(data[:cut], offsets, envelope, metadata, data[cut:])
    return parquet, n, int(metadata["events"])
