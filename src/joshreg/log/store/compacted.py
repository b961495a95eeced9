"""Compacted segments: a finished segment's bytes kept in a Parquet file.

A compacted segment is the claim ``compacted/<stem>.<size>.parquet`` holding the segment
``log/<stem>.jsonl`` of ``size`` bytes: one row per complete line, in line order. Column
``line`` keeps each line's bytes *with* its newline, so the column's values joined (plus a torn
tail, kept in the file's metadata) are byte for byte the JSONL. Stores serve a compacted segment
under its JSONL name with those bytes, so readers' byte-offset cursors, the checksum chain and
every line number stay valid across compaction. The size is in the name so that listing the
store tells every segment's size without opening a file.

The envelope columns (``type``, ``writer``, ``seq``, ``hlc``; null for a line that does not
decode) let a rebuild load the lines into DuckDB without decoding them in Python, and let
queries prune by writer, seq or time. The key-value metadata says where the bytes came from
(``source_sha256``, ``source_bytes``), what they hold (first and last seq, lines, events) and
whether every line is intact, chained and in sequence (``clean``): only a clean segment may take
the rebuild's fast path. Everything else about events is the compactor's business; this module
knows bytes and columns only. ``pyarrow`` is imported on first use, so a worker that never reads
a compacted segment does not pay for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from joshreg.log.store.base import SegmentInfo

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "COLUMNS",
    "CONTAINER_FORMAT",
    "CONTAINER_VERSION",
    "PREFIX",
    "compacted_name",
    "container_bytes",
    "container_metadata",
    "encode_container",
    "longest_copy",
    "merge_listing",
    "parse_compacted_name",
    "read_container",
]

PREFIX = "compacted"
CONTAINER_FORMAT = "joshreg-compacted-segment"
CONTAINER_VERSION = 1
#: Column → Arrow type name, in file order.
COLUMNS = {"line": "large_binary", "type": "string", "writer": "string", "seq": "int64", "hlc": "int64"}
_META_PREFIX = "joshreg."
_TAIL = "tail"


def compacted_name(segment: str, size: int) -> str:
    """The claim name holding ``segment`` (``log/<stem>.jsonl``) of ``size`` bytes."""
    stem = segment.rsplit("/", 1)[-1].removesuffix(".jsonl")
    return f"{PREFIX}/{stem}.{size}.parquet"


def parse_compacted_name(name: str) -> tuple[str, int] | None:
    """``(segment, size)`` of a compacted claim name, or None for anything else (temp files)."""
    base = name.rsplit("/", 1)[-1]
    if base.startswith(".") or not base.endswith(".parquet"):
        return None
    stem, _, size = base.removesuffix(".parquet").rpartition(".")
    if not stem or not size.isdigit():
        return None
    return f"log/{stem}.jsonl", int(size)


def longest_copy(claims: Iterable[str], segment: str) -> tuple[str, int] | None:
    """The compacted claim among ``claims`` that holds the most bytes of ``segment``, and how
    many; None when none holds it. A longer copy holds a shorter one's bytes and more."""
    best: tuple[str, int] | None = None
    for claim in claims:
        parsed = parse_compacted_name(claim)
        if parsed is not None and parsed[0] == segment and (best is None or parsed[1] > best[1]):
            best = (claim, parsed[1])
    return best


def merge_listing(files: list[SegmentInfo], compacted: list[tuple[str, float | None]]) -> list[SegmentInfo]:
    """One ``SegmentInfo`` per segment from the JSONL files and compacted claims (name, mtime).

    A compacted copy at least as long as the JSONL holds the whole segment and is named in
    ``compacted``; ``jsonl_size`` then says whether the JSONL is still there (an interrupted
    compaction). A JSONL longer than every copy is read as a plain segment.
    """
    best: dict[str, tuple[int, str, float | None]] = {}
    for claim, mtime in compacted:
        parsed = parse_compacted_name(claim)
        if parsed is not None and (parsed[0] not in best or parsed[1] > best[parsed[0]][0]):
            best[parsed[0]] = (parsed[1], claim, mtime)
    out: list[SegmentInfo] = []
    for f in files:
        copy = best.pop(f.name, None)
        if copy is not None and copy[0] >= f.size:
            out.append(SegmentInfo(f.name, copy[0], f.modified, copy[1], f.size))
        else:
            out.append(f)
    out += [SegmentInfo(name, size, mtime, claim, None) for name, (size, claim, mtime) in best.items()]
    out.sort(key=lambda s: s.name)
    return out


def encode_container(
    body: bytes,
    offsets: Sequence[int],
    envelope: dict[str, list[Any]],
    metadata: dict[str, str],
    tail: bytes = b"",
) -> bytes:
    """Parquet (zstd, page checksums) of a segment's complete lines and its torn ``tail``.

    ``body`` holds the complete lines, ``offsets`` (an ``array("q")`` of n + 1 positions) where
    each starts and the last ends; ``envelope`` the other ``COLUMNS``; ``metadata`` goes under
    ``joshreg.`` keys.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta: dict[bytes, bytes] = {
        f"{_META_PREFIX}{k}".encode(): v if isinstance(v, bytes) else str(v).encode()
        for k, v in {
            "format": CONTAINER_FORMAT,
            "version": str(CONTAINER_VERSION),
            **metadata,
            _TAIL: tail,
        }.items()
    }
    n = len(offsets) - 1
    lines = pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(body)])
    columns = {"line": lines}
    columns.update({k: pa.array(envelope[k], getattr(pa, t)()) for k, t in COLUMNS.items() if k != "line"})
    table = pa.table(columns).replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        write_page_checksum=True,
        use_dictionary=["type", "writer"],
        row_group_size=256 * 1024,
    )
    return sink.getvalue().to_pybytes()


def read_container(
    source: bytes | str, columns: list[str] | None = None
) -> tuple[pa.Table, dict[str, bytes]]:
    """The table (``columns``, all by default) and the ``joshreg.`` metadata of a container.

    ``source`` is the file's bytes or a local path. Raises ``ValueError`` for a file that is
    not a joshreg compacted segment of a version this joshreg reads, and pyarrow's errors for
    a damaged one.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = pa.BufferReader(source) if isinstance(source, bytes) else source
    table = pq.read_table(src, columns=columns, page_checksum_verification=True)
    raw = table.schema.metadata or {}
    meta = {k.decode()[len(_META_PREFIX) :]: v for k, v in raw.items() if k.startswith(_META_PREFIX.encode())}
    if meta.get("format") != CONTAINER_FORMAT.encode():
        raise ValueError("not a joshreg compacted segment")
    if int(meta.get("version", b"0")) > CONTAINER_VERSION:
        raise ValueError(
            f"compacted segment format {meta['version'].decode()} is newer than this joshreg's "
            f"{CONTAINER_VERSION}; upgrade joshreg to read it"
        )
    return table, meta


def container_metadata(source: bytes | str) -> dict[str, bytes]:
    """The ``joshreg.`` metadata of a container, without reading its rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = pa.BufferReader(source) if isinstance(source, bytes) else source
    raw = pq.read_schema(src).metadata or {}
    prefix = _META_PREFIX.encode()
    return {k.decode()[len(prefix) :]: v for k, v in raw.items() if k.startswith(prefix)}


def container_bytes(source: bytes | str) -> bytes:
    """The segment's bytes, exactly as its JSONL held them; ``ValueError`` if they do not add up."""
    table, meta = read_container(source, ["line"])
    parts: list[Any] = []
    for chunk in table.column("line").chunks:
        if len(chunk) == 0:
            continue
        _, offsets, values = chunk.buffers()
        bounds = memoryview(offsets).cast("q")  # large_binary: int64 offsets
        parts.append(memoryview(values)[bounds[chunk.offset] : bounds[chunk.offset + len(chunk)]])
    parts.append(meta.get(_TAIL, b""))
    data = b"".join(parts)
    want = meta.get("source_bytes")
    if want is not None and int(want) != len(data):
        raise ValueError(f"holds {len(data)} bytes, not the {int(want)} it was written from")
    return data
