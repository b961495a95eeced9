"""A chunk decoded in pieces (so that no call holds the GIL long) gives what one call gives."""

from __future__ import annotations

import pytest

from joshreg.log import codec
from joshreg.log.codec import GENESIS, decode_chunk, encode_event, frame
from joshreg.log.events import RunCompleted, RunRegistered, RunStarted, SegmentSealed

_ENV = {"event_id": "0190a0a0-0000-7000-8000-000000000001", "writer": "w1", "hlc": 1, "actor": "t"}
SAMPLES = [
    RunRegistered(session_id="s", run_hash="abc123def456", parameters={"a": 1.5}, seq=1, **_ENV),
    RunStarted(run_id="r1", run_hash="abc123def456", session_id="s", replicate=0, seq=2, **_ENV),
    RunCompleted(run_id="r1", exit_code=0, seq=3, **_ENV),
    SegmentSealed(seq=4, **_ENV),
]


def _chunk(damage: int | None = None) -> tuple[bytes, list[bytes]]:
    lines, prev = [], GENESIS
    for ev in SAMPLES * 3:
        line, prev = frame(encode_event(ev), prev)
        lines.append(line[:-1])
    if damage is not None:
        lines[damage] = b'{"type":"run.started","seq":"not a number"}'
    return b"".join(line + b"\n" for line in lines), lines


@pytest.mark.parametrize("piece", [1, 100, 1000, 10**9])
@pytest.mark.parametrize("damage", [None, 0, 7, -1])
def test_pieces_decode_what_one_call_decodes(
    monkeypatch: pytest.MonkeyPatch, piece: int, damage: int | None
) -> None:
    body, lines = _chunk(damage)
    whole = decode_chunk(body, lines, set())
    monkeypatch.setattr(codec, "DECODE_PIECE", piece)
    assert decode_chunk(body, lines, set()) == whole
    assert decode_chunk(memoryview(body + b"torn tail")[: len(body)], lines, set()) == whole
    if damage is None:
        assert whole == (SAMPLES * 3, [])
    else:
        assert [i for i, _ in whole[1]] == [damage % len(lines)]


def test_a_buffer_without_a_last_newline_decodes_as_one_call_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    body, lines = _chunk()
    whole = decode_chunk(body[:-1], lines, set())
    monkeypatch.setattr(codec, "DECODE_PIECE", 10)
    assert decode_chunk(body[:-1], lines, set()) == whole
    assert whole == (SAMPLES * 3, [])
