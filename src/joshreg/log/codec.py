"""Events to line bytes and back, with a checksum chain that exposes damage.

A line is the event's JSON object with two fields appended by framing, always last and always
of fixed width::

    {"type":"run.started",...,"p":"1f2e3d4c","c":"9a8b7c6d"}\\n

``c`` is the CRC-32 (8 hex digits) of every byte of the line before ``","c":"``; ``p`` is the
``c`` of the previous line of the same segment (``00000000`` for the first). An edited line
fails its own ``c``; a lost, inserted or reordered line breaks the ``p`` link of the line after
it; a glued or torn line is not valid JSON. Because the suffix has a fixed width, checking costs
one CRC over bytes already in memory. Bytes in and out; no files.
"""

from __future__ import annotations

import functools
import gc
import zlib
from operator import attrgetter, itemgetter
from typing import Any

import msgspec

from joshreg.log.events import (
    CURRENT_VERSIONS,
    UPCASTERS,
    Event,
    EventBase,
    LabelAction,
    LabelCommit,
    check_version,
)

__all__ = [
    "GENESIS",
    "LineChain",
    "LineCheck",
    "Problem",
    "check_line",
    "decode_commit",
    "decode_event",
    "decode_events",
    "encode_commit",
    "encode_event",
    "frame",
    "frame_bytes",
    "newer_commit_than_known",
    "newer_than_known",
    "verify_lines",
]

GENESIS = "00000000"
_P_OPEN = b',"p":"'
_C_OPEN = b'","c":"'
_CLOSE = b'"}'
_CLOSE_NL = b'"}\n'
_SUFFIX = len(_P_OPEN) + 8 + len(_C_OPEN) + 8 + len(_CLOSE)  # 31 bytes
_AFTER_P = len(_C_OPEN) + 8 + len(_CLOSE)  # 17 bytes

try:  # the same CRC-32 as zlib's, about ten times faster on a line (ISA-L), when installed
    from isal.isal_zlib import crc32 as _crc32
except ImportError:  # pragma: no cover - depends on what is installed
    _crc32 = zlib.crc32
_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(Event)
_commit_decoder = msgspec.json.Decoder(LabelCommit)


def encode_event(event: EventBase) -> bytes:
    """The event's JSON object, without framing."""
    return _encoder.encode(event)


def frame(body: bytes, prev: str) -> tuple[bytes, str]:
    """Append the chain fields to a JSON object; return the line (with ``\\n``) and its ``c``."""
    line, c = frame_bytes(body, prev.encode())
    return line, c.decode()


def frame_bytes(body: bytes, prev: bytes, _crc32=_crc32) -> tuple[bytes, bytes]:
    """``frame`` with ``prev`` and ``c`` as bytes."""
    covered = body[:-1] + _P_OPEN + prev
    c = b"%08x" % _crc32(covered)
    return covered + _C_OPEN + c + b'"}\n', c


class LineChain:
    """One segment's lines in the making: events encoded and framed into a growing buffer,
    carrying the chain from line to line. The writer's hot path.

    Each event is encoded into one reused scratch buffer, framed and checksummed there, and
    copied once into ``lines``: ``frame(encode_event(...))`` makes three objects per line. The
    bytes are exactly ``frame_bytes``'s (a test compares them).
    """

    __slots__ = ("_scratch", "lines", "prev")

    def __init__(self, prev: bytes = GENESIS.encode()) -> None:
        self.lines = bytearray()  # whole lines not yet taken
        self.prev = prev  # the ``c`` of the last line added: the next line's ``p``
        self._scratch = bytearray()

    def add(self, event: EventBase, _encode_into=_encoder.encode_into, _crc32=_crc32) -> None:
        """Frame ``event`` after the lines so far. An event that does not encode raises and
        leaves the chain as it was."""
        scratch = self._scratch
        _encode_into(event, scratch)  # the buffer ends up holding exactly the JSON object
        scratch[-1:] = _P_OPEN  # the object's closing brace
        scratch += self.prev
        self.prev = c = b"%08x" % _crc32(scratch)
        lines = self.lines
        lines += scratch
        lines += _C_OPEN
        lines += c
        lines += _CLOSE_NL

    def take(self) -> bytes:
        """The lines added since the last ``take``, which starts a new group."""
        data = bytes(self.lines)
        self.lines.clear()
        return data


class LineCheck(msgspec.Struct, frozen=True):
    """The result of checking one line's framing: its ``p``, its ``c`` and whether ``c`` holds."""

    prev: str
    c: str
    intact: bool


class Problem(msgspec.Struct, frozen=True):
    """Something wrong in the log, with where it is: ``segment`` and 1-based ``line``."""

    segment: str
    line: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.segment}:{self.line}: {self.kind}: {self.detail}"


def check_line(line: bytes | memoryview) -> LineCheck | None:
    """Check a line (without its newline); ``None`` when it has no framing at all."""
    n = len(line)
    if (
        n < _SUFFIX + 2
        or line[n - _SUFFIX : n - _SUFFIX + len(_P_OPEN)] != _P_OPEN
        or line[n - _AFTER_P : n - _AFTER_P + len(_C_OPEN)] != _C_OPEN
        or line[n - 2 :] != _CLOSE
    ):
        return None
    prev = bytes(line[n - _SUFFIX + len(_P_OPEN) : n - _AFTER_P]).decode("ascii", "replace")
    c = bytes(line[n - 10 : n - 2]).decode("ascii", "replace")
    return LineCheck(prev, c, f"{_crc32(line[: n - _AFTER_P]):08x}" == c)


def verify_lines(lines: list[bytes], prev: str) -> tuple[list[tuple[int, str, str]], set[int], str]:
    """Check the framing and chain of consecutive lines of one segment.

    Returns ``(problems, skip, last_c)``: problems as ``(index, kind, detail)``, the indices of
    lines that must not be applied (unframed or edited), and the ``c`` of the last line. A
    broken ``p`` link is a problem but does not make the line itself unusable.
    """
    if len(lines) >= _VECTOR_MIN:
        last = _all_sound(lines, prev.encode())
        if last is not None:
            return [], set(), last
    problems: list[tuple[int, str, str]] = []
    skip: set[int] = set()
    crc32 = _crc32
    p_open, c_open, close = _P_OPEN, _C_OPEN, _CLOSE
    want = prev.encode()
    for i, line in enumerate(lines):
        n = len(line)
        if (
            n < _SUFFIX + 2
            or line[n - 31 : n - 25] != p_open
            or line[n - 17 : n - 10] != c_open
            or line[n - 2 :] != close
        ):
            problems.append((i, "malformed", _preview(line)))
            skip.add(i)
            continue
        if line[n - 25 : n - 17] != want:
            problems.append((i, "chain-broken", "a line before this one is missing, extra or out of order"))
        want = line[n - 10 : n - 2]
        if b"%08x" % crc32(line[: n - 17]) != want:
            problems.append((i, "checksum", "the line was edited"))
            skip.add(i)
    return problems, skip, want.decode("ascii", "replace")


_VECTOR_MIN = 256  # lines; fewer are checked one by one without loading numpy
_TAIL = itemgetter(slice(-_SUFFIX, None))  # a line's framing: its last 31 bytes


@functools.cache
def _constants() -> tuple[Any, Any, Any, Any, Any]:
    """The framing's fixed parts as numpy arrays, a table of each byte's value as a lowercase
    hex digit (255 for anything else), and zlib's CRC-32 table (what one byte does to the
    register, read from zlib itself)."""
    import numpy as np

    hex_digits = np.full(256, 255, np.uint8)
    hex_digits[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)
    fixed = (np.frombuffer(part, np.uint8) for part in (_P_OPEN, _C_OPEN, _CLOSE))
    crc_table = np.array([zlib.crc32(bytes([i]), 0xFFFFFFFF) ^ 0xFFFFFFFF for i in range(256)], np.uint32)
    return (*fixed, hex_digits, crc_table)


def _all_sound(lines: list[bytes], prev: bytes) -> str | None:
    """The last line's ``c`` when every line is framed, chained from ``prev`` and intact; None
    when any is not, and the caller checks line by line to say which and why.

    The framing and the chain are compared for all lines at once (numpy, over each line's last
    31 bytes); only a whole line's CRC is a call per line. ``c`` covers a line but its last 17
    bytes (``","c":"…"}``), and CRC-32 carried over fixed bytes is one-to-one, so carrying
    each ``c`` over its line's last 17 bytes (vectorised) and comparing with the whole line's
    CRC checks exactly what the loop checks, without slicing every line. Because a None answer
    falls back to the per-line loop, the problems reported are exactly that loop's.
    """
    import numpy as np

    p_open, c_open, close, hex_digits, crc_table = _constants()
    n = len(lines)
    if min(map(len, lines)) < _SUFFIX + 2:
        return None
    tail = np.frombuffer(b"".join(map(_TAIL, lines)), np.uint8).reshape(n, _SUFFIX)  # no Python loop
    if (tail[:, :6] != p_open).any() or (tail[:, 14:21] != c_open).any() or (tail[:, 29:] != close).any():
        return None
    links = np.ascontiguousarray(tail[:, 6:14]).view("<u8")[:, 0]
    marks = np.ascontiguousarray(tail[:, 21:29])
    codes = marks.view("<u8")[:, 0]
    if len(prev) != 8 or links[0] != np.frombuffer(prev, "<u8")[0] or (links[1:] != codes[:-1]).any():
        return None
    digits = hex_digits[marks].astype(np.uint32)
    if (digits == 255).any():
        return None
    register = np.zeros(n, np.uint32)
    for k in range(8):
        register |= digits[:, k] << np.uint32(28 - 4 * k)
    register = ~register  # zlib's register after the covered bytes, if ``c`` is right
    for k in range(_SUFFIX - _AFTER_P, _SUFFIX):
        register = crc_table[(register ^ tail[:, k]) & 0xFF] ^ (register >> 8)
    got = np.fromiter(map(_crc32, lines), np.uint32, n)
    if (got != ~register).any():
        return None
    return bytes(marks[-1]).decode("ascii")


def _preview(line: bytes) -> str:
    text = line[:120].decode("utf-8", "replace")
    return f"not a framed event line: {text!r}" + ("..." if len(line) > 120 else "")


_VERSION = attrgetter("v")


def decode_events(buffer: bytes | memoryview) -> list[EventBase]:
    """Decode newline-separated lines at once (fast path); raises if any line does not decode.

    The garbage collector is paused meanwhile: the allocations of a big buffer's events set off
    collections that scan the whole heap and find nothing (figures in benchmarks/findings.md).
    It is left alone when already paused, and a collection missed here happens at the next
    allocations after it.
    """
    if gc.isenabled():
        gc.disable()
        try:
            events = _event_decoder.decode_lines(buffer)
        finally:
            gc.enable()
    else:
        events = _event_decoder.decode_lines(buffer)
    if any(map((1).__ne__, map(_VERSION, events))):  # C-level: a Python loop is slower
        ev = next(e for e in events if e.v != 1)
        raise msgspec.ValidationError(f"event {ev.event_id} has schema version {ev.v}")
    return events


class _Head(msgspec.Struct):
    type: str = ""
    v: int = 1


class _CommitHead(msgspec.Struct):
    actions: list[_Head] = []
    v: int = 1


_head_decoder = msgspec.json.Decoder(_Head)
_commit_head_decoder = msgspec.json.Decoder(_CommitHead)
_ACTION_TAGS = {t.__struct_config__.tag for t in LabelAction.__args__}  # type: ignore[attr-defined]


def newer_than_known(line: bytes | memoryview) -> str | None:
    """What in an intact line that did not decode was written by a newer joshreg (an event
    type or schema version this one does not know), or None when it is not that: projecting
    around such a line would misread the log (a drop skipped shows the run as live)."""
    try:
        head = _head_decoder.decode(line)
    except msgspec.DecodeError:
        return None
    known = CURRENT_VERSIONS.get(head.type)
    if known is None and head.type:
        return f"event type {head.type!r}"
    if known is not None and head.v > known:
        return f"version {head.v} of event type {head.type!r} (this joshreg reads up to {known})"
    return None


def newer_commit_than_known(line: bytes | memoryview) -> str | None:
    """The same for a label commit: an action type or commit version this joshreg does not know."""
    try:
        head = _commit_head_decoder.decode(line)
    except msgspec.DecodeError:
        return None
    if head.v > 1:
        return f"label commit version {head.v}"
    unknown = sorted({a.type for a in head.actions if a.type not in _ACTION_TAGS})
    return f"label action {unknown[0]!r}" if unknown else None


def decode_chunk(
    buffer: bytes | memoryview, lines: list[bytes], skip: set[int]
) -> tuple[list[EventBase | None], list[tuple[int, str]]]:
    """Every line's event (``lines`` are ``buffer``'s, ``skip`` the damaged ones
    ``verify_lines`` found): None for a line in ``skip`` or one that does not decode, and for
    the latter ``(index, why)``. All lines are decoded at once, unless one is damaged or does
    not decode; then line by line, to tell which."""
    if not skip:
        try:
            return _decode_pieces(buffer), []
        except (msgspec.DecodeError, ValueError):
            pass
    decoded: list[EventBase | None] = []
    failed: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        event = None
        if i not in skip:
            try:
                event = decode_event(line)
            except (msgspec.DecodeError, ValueError) as e:
                failed.append((i, str(e)))
        decoded.append(event)
    return decoded, failed


#: Bytes of lines decoded per call: a call holds the GIL throughout, and a rebuild's DuckDB
#: statements wait for it (their Arrow scans call into Python) while its read-ahead thread decodes.
DECODE_PIECE = 1 << 20


def _decode_pieces(buffer: bytes | memoryview) -> list[EventBase]:
    """``decode_events`` of ``buffer`` in pieces of whole lines of about ``DECODE_PIECE``
    bytes, each cut after a newline, so that no one call holds the GIL for long."""
    size = len(buffer)
    if size <= DECODE_PIECE:
        return list(decode_events(buffer))
    view = memoryview(buffer)
    events: list[EventBase] = []
    paused = gc.isenabled()
    if paused:  # across the pieces, as decode_events does for one (a collection finds nothing)
        gc.disable()
    try:
        at = 0
        while at < size:
            end = _line_end(view, min(at + DECODE_PIECE, size) - 1)
            events += decode_events(view[at:end])
            at = end
    finally:
        if paused:
            gc.enable()
    return events


def _line_end(view: memoryview, at: int) -> int:
    """Where the line holding byte ``at`` of ``view`` ends: after its newline, or at the end."""
    window = 1 << 16
    while at < len(view):
        found = view[at : at + window].tobytes().find(b"\n")
        if found >= 0:
            return at + found + 1
        at += window
        window *= 2
    return len(view)


def decode_event(line: bytes | memoryview) -> EventBase:
    """Decode one line into its typed event, upcasting old schema versions.

    Raises ``msgspec.DecodeError`` (or ``ValidationError``) for malformed or unknown input and
    ``InvalidArgumentError`` for an event from a newer joshreg.
    """
    try:
        event = _event_decoder.decode(line)
    except msgspec.ValidationError:
        if not UPCASTERS:
            raise
        return _upcast(msgspec.json.decode(line))
    if event.v != 1:
        check_version(event.__struct_config__.tag, event.v)  # type: ignore[arg-type]
        if (event.__struct_config__.tag, event.v) in UPCASTERS:
            return _upcast(msgspec.json.decode(line))
    return event


def _upcast(data: dict[str, Any]) -> EventBase:
    tag, v = data.get("type"), data.get("v", 1)
    check_version(str(tag), int(v))
    while (step := UPCASTERS.get((tag, v))) is not None:
        data = step(data)
        v = data["v"]
    return msgspec.convert(data, Event)  # type: ignore[arg-type]


def encode_commit(commit: LabelCommit) -> bytes:
    return _encoder.encode(commit)


def decode_commit(data: bytes) -> LabelCommit:
    return _commit_decoder.decode(data)
