"""Merging registries: the union of their event stores, the same whatever the order or repetition.

Registries recorded on different machines combine by copying into the target what it lacks;
nothing in the target is ever changed or removed, so merging is a set union: merging twice, in
another order, or a merge of merges gives the same store contents that matter, and the
projection (a pure function of them) gives the same tables.

- **Segments** (``log/``): writer ids are unique per process and host, so a segment the target
  lacks is copied whole (its complete lines). The same segment in both (from an earlier merge,
  or a copied store) is extended when the target's copy is a prefix of the source's. Copies
  that differ otherwise are damage: it is reported, the target's copy stays, and the source's
  lines whose ``(writer, seq)`` the target lacks are kept beside it as
  ``log/<name>.diverged-<hash>.jsonl`` (the reader skips events it already has).
- **Claims**: result files (``blobs/``, content-addressed) and session id claims are copied
  when missing; a claim present in both with other content is reported and the target's kept.
  Compacted segments are not copied: their bytes arrive as segments.
- **Label streams**: the source's own label log and every stream it imported are copied
  verbatim under ``labels-imported/`` (see ``labelstreams`` for their ids and their fold).

Claims and label streams are copied before segments, so a reader catching up during a merge
never meets an event whose result file is not there yet. Concurrent merges into one target are
serialised by the target's lock ``merge`` (``LogStore.exclusive``); writers and readers of the
target carry on. Everything goes through the ``LogStore`` interface, so any backend that keeps
its contract can be merged from and into (``merge_into``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import msgspec

from joshreg.errors import JoshregError, LogFormatError
from joshreg.log.labels import PREFIX, commit_name, parse_commit
from joshreg.log.labelstreams import IMPORTED, imported_dirs, stream_dir_ok
from joshreg.log.names import default_events_path
from joshreg.log.store import is_object_location, open_store, store_exists_at
from joshreg.log.store.base import LogStore, SegmentInfo

__all__ = ["CLAIM_FOLDERS", "MergeReport", "event_store_path", "merge_into", "merge_store", "merge_stores"]

#: The folders of claims a merge copies (label streams and segments are merged on their own).
CLAIM_FOLDERS = ("blobs", "claims")


@dataclass
class MergeReport:
    """What one source added to the target; ``problems`` are damage found on the way."""

    source: str
    target: str
    segments_new: int = 0
    segments_extended: int = 0
    events: int = 0
    label_streams: int = 0
    label_commits: int = 0
    blobs: int = 0
    claims: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything was copied."""
        return any(
            (
                self.segments_new,
                self.segments_extended,
                self.events,
                self.label_streams,
                self.label_commits,
                self.blobs,
                self.claims,
            )
        )

    def summary(self) -> str:
        """One line: what was copied, or that the target had everything already."""
        if not self.changed:
            return f"{self.source}: nothing new for {self.target}"
        return (
            f"{self.source} -> {self.target}: {self.segments_new} new and {self.segments_extended} "
            f"extended segments ({self.events} events), {self.label_commits} label commits in "
            f"{self.label_streams} label stream(s), {self.blobs} result files, {self.claims} other claims"
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready builtins."""
        return {**asdict(self), "changed": self.changed}


def event_store_path(path: str | os.PathLike[str]) -> str:
    """The event store of ``path``: a store folder (it has ``FORMAT``) or an ``s3://`` location
    as it is, else the folder beside a registry file (``sweep.duckdb`` → ``sweep.events``)."""
    p = os.fspath(path)
    if is_object_location(p) or os.path.isfile(os.path.join(p, "FORMAT")):
        return p  # an s3:// location names its store itself
    return default_events_path(p)


def merge_stores(
    sources: Iterable[str | os.PathLike[str]], target: str | os.PathLike[str]
) -> list[MergeReport]:
    """Merge each source into ``target`` in turn (created if missing); one report per source."""
    return [merge_store(s, target) for s in sources]


def merge_store(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> MergeReport:
    """Copy into ``target`` every event, label commit, result file and claim of ``source`` it
    lacks. Both are registry files or event store folders; ``target`` is created if missing.
    Raises ``JoshregError`` when ``source`` holds no event store."""
    src_root = event_store_path(source)
    tgt_root = event_store_path(target)
    if not store_exists_at(src_root):
        raise JoshregError(f"no event store at {src_root}: nothing to merge from {os.fspath(source)}")
    tgt = open_store(tgt_root)
    try:
        if _same_location(src_root, tgt_root):
            return MergeReport(src_root, tgt_root)
        src = open_store(src_root, create=False)
        try:
            return merge_into(src, tgt)
        finally:
            src.close()
    finally:
        tgt.close()


def _same_location(a: str, b: str) -> bool:
    """Whether two locations name one store (a copy of a store is another store, though it
    has the same id)."""
    if is_object_location(a) or is_object_location(b):
        return a.rstrip("/") == b.rstrip("/")
    return os.path.samefile(a, b)


def merge_into(src: LogStore, tgt: LogStore) -> MergeReport:
    """Copy into store ``tgt`` what it lacks of store ``src`` (see the module docstring)."""
    report = MergeReport(src.location, tgt.location)
    with tgt.exclusive("merge"):
        _merge_claims(src, tgt, report)
        _merge_labels(src, tgt, report)
        _merge_segments(src, tgt, report)
    return report


# --- claims ---------------------------------------------------------------------------------------


def _merge_claims(src: LogStore, tgt: LogStore, report: MergeReport) -> None:
    for folder in CLAIM_FOLDERS:
        for name in src.walk_claims(folder):
            blob = name.startswith("blobs/")
            if tgt.claim_exists(name):
                if not blob and src.read_claim(name) != tgt.read_claim(name):
                    report.problems.append(
                        f"{name}: the source and the target hold different contents under this name; "
                        "kept the target's"
                    )
                continue  # a result file's name is its content's hash
            data = src.read_claim(name)
            if data is None:
                continue
            if tgt.claim(name, data):
                if blob:
                    report.blobs += 1
                else:
                    report.claims += 1


# --- label streams --------------------------------------------------------------------------------

Stream = tuple[str, list[tuple[str, bytes]]]  # prefix, [(event id, commit bytes)] for versions 1..n


def _streams(store: LogStore, report: MergeReport | None) -> list[Stream]:
    """Every label stream of ``store`` up to its first missing or damaged commit."""
    out: list[Stream] = []
    for prefix in (PREFIX, *imported_dirs(store)):
        commits: list[tuple[str, bytes]] = []
        version = 1
        while (raw := store.read_claim(commit_name(version, prefix))) is not None:
            try:
                commit, _ = parse_commit(raw, version)
            except LogFormatError:
                raise
            except (msgspec.DecodeError, ValueError) as e:
                if report is not None:
                    report.problems.append(
                        f"{commit_name(version, prefix)}: damaged label commit ({e}); its stream is "
                        f"merged up to commit {version - 1}"
                    )
                break
            commits.append((commit.event_id, raw))
            version += 1
        if commits:
            out.append((prefix, commits))
    return out


def _merge_labels(src: LogStore, tgt: LogStore, report: MergeReport) -> None:
    for _, commits in _streams(src, report):
        stream = commits[0][0]
        ids = [e for e, _ in commits]
        have = _streams(tgt, None)
        if not stream_dir_ok(stream):
            report.problems.append(f"label stream {stream!r}: not a valid stream id; not merged")
            continue
        known = {e for _, cs in have for e, _ in cs}
        same = [(p, [e for e, _ in cs]) for p, cs in have if cs[0][0] == stream]
        if any(t[: len(ids)] == ids for _, t in same):
            continue  # the target holds this stream at least as far
        grow = next((p for p, t in same if p != PREFIX and ids[: len(t)] == t), None)
        if grow is not None:
            dest, start = grow, len(next(t for p, t in same if p == grow))
        else:
            branch = next((e for e in ids if e not in known), ids[-1])
            dest, start = f"{IMPORTED}/{stream}" if not same else f"{IMPORTED}/{stream}~{branch}", 0
            if not stream_dir_ok(dest.split("/", 1)[1]) or tgt.list_claims(dest):
                report.problems.append(f"label stream {stream}: cannot import it as {dest}; not merged")
                continue
        copied = 0
        for version in range(start + 1, len(commits) + 1):
            event_id, raw = commits[version - 1]
            name = commit_name(version, dest)
            if not tgt.claim(name, raw) and tgt.read_claim(name) != raw:
                report.problems.append(f"{name}: another merge wrote a different commit here; stopped")
                break
            copied += event_id not in known
        report.label_streams += 1
        report.label_commits += copied


# --- segments -------------------------------------------------------------------------------------


class _Envelope(msgspec.Struct):
    writer: str = ""
    seq: int = 0


_envelope = msgspec.json.Decoder(_Envelope)


def _keys(data: bytes) -> list[tuple[tuple[str, int] | None, bytes]]:
    """Each complete line of ``data`` with its ``(writer, seq)`` (None when it does not decode)."""
    out: list[tuple[tuple[str, int] | None, bytes]] = []
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            env = _envelope.decode(line)
            out.append(((env.writer, env.seq), line))
        except (msgspec.DecodeError, ValueError):
            out.append((None, line))
    return out


def _merge_segments(src: LogStore, tgt: LogStore, report: MergeReport) -> None:
    theirs = {s.name: s for s in tgt.segments()}
    for seg in src.segments():
        data = src.read(seg.name, 0, seg.size)
        data = data[: data.rfind(b"\n") + 1]  # a torn last line is not written yet
        if not data:
            continue
        mine = theirs.get(seg.name)
        if mine is None:
            if tgt.put_segment(seg.name, data):  # appears whole, never half-copied
                report.segments_new += 1
                report.events += data.count(b"\n")
            continue
        have = tgt.read(seg.name, 0, mine.size)
        if data[: len(have)] == have:
            if len(data) > len(have):
                _extend(tgt, mine, data, len(have))
                report.segments_extended += 1
                report.events += data.count(b"\n", len(have))
        elif have[: len(data)] != data:
            _keep_diverged(tgt, theirs, seg.name, data, have, report)


def _extend(tgt: LogStore, mine: SegmentInfo, data: bytes, start: int) -> None:
    if mine.compacted is not None and mine.jsonl_size is None:
        # Only a compacted copy is left: a JSONL with every byte is read in its place.
        tgt.put_segment(mine.name, data)
        return
    tgt.append(mine.name, data[start:])
    tgt.sync(mine.name)
    tgt.close_segment(mine.name)


def _keep_diverged(
    tgt: LogStore,
    theirs: dict[str, SegmentInfo],
    name: str,
    data: bytes,
    have: bytes,
    report: MergeReport,
) -> None:
    stem = name.removesuffix(".jsonl")
    differ = next(i for i, (a, b) in enumerate(zip(data, have, strict=False)) if a != b)
    line = 1 + have.count(b"\n", 0, differ)
    known = {k for k, _ in _keys(have) if k is not None}
    for other, info in theirs.items():
        if other.startswith(stem + ".diverged-"):
            known |= {k for k, _ in _keys(tgt.read(other, 0, info.size)) if k is not None}
    missing = b"".join(raw for k, raw in _keys(data) if k is not None and k not in known)
    kept = ""
    if missing:
        extra = f"{stem}.diverged-{hashlib.sha256(missing).hexdigest()[:12]}.jsonl"
        n = missing.count(b"\n")
        if tgt.put_segment(extra, missing):
            report.events += n
            report.segments_new += 1
        kept = f"; the source's {n} events the target lacks are kept as {extra}"
    report.problems.append(
        f"{name}: the source's and the target's copies differ from line {line} on (edited or "
        f"damaged); kept the target's{kept}. Run `joshreg verify` on both"
    )
