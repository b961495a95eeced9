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

import zlib
from typing import Any

import msgspec

from .events import (
    UPCASTERS,
    Event,
    EventBase,
    LabelCommit,
    check_version,
)

__all__ = [
    "GENESIS",
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
    "verify_lines",
]

GENESIS = "00000000"
_P_OPEN = b',"p":"'
_C_OPEN = b'","c":"'
_CLOSE = b'"}'
_SUFFIX = len(_P_OPEN) + 8 + len(_C_OPEN) + 8 + len(_CLOSE)  # 31 bytes
_AFTER_P = len(_C_OPEN) + 8 + len(_CLOSE)  # 17 bytes

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


def frame_bytes(body: bytes, prev: bytes, _crc32=zlib.crc32) -> tuple[bytes, bytes]:
    """``frame`` with ``prev`` and ``c`` as bytes: the writer's hot path."""
    covered = body[:-1] + _P_OPEN + prev
    c = b"%08x" % _crc32(covered)
    return covered + _C_OPEN + c + b'"}\n', c


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
    return LineCheck(prev, c, f"{zlib.crc32(line[: n - _AFTER_P]):08x}" == c)


def verify_lines(lines: list[bytes], prev: str) -> tuple[list[tuple[int, str, str]], set[int], str]:
    """Check the framing and chain of consecutive lines of one segment.

    Returns ``(problems, skip, last_c)``: problems as ``(index, kind, detail)``, the indices of
    lines that must not be applied (unframed or edited), and the ``c`` of the last line. A
    broken ``p`` link is a problem but does not make the line itself unusable.
    """
    problems: list[tuple[int, str, str]] = []
    skip: set[int] = set()
    crc32 = zlib.crc32
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


def _preview(line: bytes) -> str:
    text = line[:120].decode("utf-8", "replace")
    return f"not a framed event line: {text!r}" + ("..." if len(line) > 120 else "")


def decode_events(buffer: bytes) -> list[EventBase]:
    """Decode newline-separated lines at once (fast path); raises if any line does not decode."""
    events = _event_decoder.decode_lines(buffer)
    for ev in events:
        if ev.v != 1:
            raise msgspec.ValidationError(f"event {ev.event_id} has schema version {ev.v}")
    return events


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
