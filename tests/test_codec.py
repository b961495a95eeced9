"""Framing, the checksum chain and decoding: bytes in, events out, damage exposed."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joshreg.errors import InvalidArgumentError
from joshreg.log import codec
from joshreg.log.codec import (
    GENESIS,
    Problem,
    check_line,
    decode_commit,
    decode_event,
    decode_events,
    encode_commit,
    encode_event,
    frame,
    verify_lines,
)
from joshreg.log.events import (
    DesignDeleted,
    DesignRegistered,
    EventBase,
    LabelArchived,
    LabelAssigned,
    LabelCommit,
    LabelReleased,
    LabelSuperseded,
    OutputRegistered,
    RegistryImported,
    ResultsLoaded,
    RunCompleted,
    RunDropped,
    RunRegistered,
    RunReset,
    RunRestored,
    RunStarted,
    RunStatusChanged,
    SegmentSealed,
    SessionCreated,
    SessionStatusChanged,
    TagsSet,
    event_types,
)

ENVELOPE = {
    "event_id": "01890a5d-ac96-774b-bcce-b302099a8057",
    "writer": "20260101T000000-host-1-abcdef",
    "seq": 7,
    "hlc": 1_767_225_600_000_000_123,
    "actor": "ana@host",
}

SAMPLES: list[EventBase] = [
    SessionCreated(
        session_id="s1",
        experiment_name="exp",
        simulation="Main",
        template_path="t.josh.j2",
        metadata={"job_config": {"replicates": 2}},
        replicates=2,
        created_us=1_785_000_000_123_456,
        **ENVELOPE,
    ),
    SessionStatusChanged(session_id="s1", status="running", **ENVELOPE),
    RunRegistered(
        session_id="s1",
        run_hash="abc123def456",
        josh_path="sim.josh",
        josh_content="start simulation Main\nend simulation",
        config_content="maxGrowth = 5 m",
        file_mappings={"cover": {"path": "/data/cover.jshd", "hash": "ff"}},
        parameters={"maxGrowth": 5, "name": 'ünïcode "quoted"\n'},
        parameter_types={"maxGrowth": "DOUBLE", "name": "VARCHAR"},
        **ENVELOPE,
    ),
    RunStarted(
        run_id="r1",
        run_hash="abc123def456",
        session_id="s1",
        replicate=1,
        output_path="/out/r1.csv",
        metadata={"node": "n01"},
        **ENVELOPE,
    ),
    RunCompleted(run_id="r1", exit_code=1, error_message="boom", **ENVELOPE),
    OutputRegistered(
        output_id="o1",
        run_id="r1",
        output_type="csv",
        file_path="/out/r1.csv",
        file_size=10,
        row_count=2,
        **ENVELOPE,
    ),
    ResultsLoaded(
        run_id="r1",
        run_hash="abc123def456",
        entity_type="patch",
        blob="blobs/ab/ab12.parquet",
        blob_sha256="ab12",
        source_path="/out/r1.csv",
        source_sha256="cd34",
        row_count=2,
        columns={"avg.height": "DOUBLE"},
        import_through=41,
        **ENVELOPE,
    ),
    RegistryImported(
        source="/data/old.duckdb",
        source_kind="duckdb",
        source_timezone="Europe/Berlin",
        counts={"sessions": 1, "runs": 2},
        not_imported=["table run_tags (3 rows)"],
        **ENVELOPE,
    ),
    RunStatusChanged(
        run_hash="abc123def456",
        status="superseded",
        superseded_by="def456abc123",
        reason="recalibrated",
        **ENVELOPE,
    ),
    TagsSet(scope="run_hash", key="abc123def456", tags={"site": "mojave", "n": 2, "ok": True}, **ENVELOPE),
    DesignRegistered(
        name="sites", requirements=[{"attributes": {"site": "mojave"}, "min_active": 2}], **ENVELOPE
    ),
    DesignDeleted(name="sites", **ENVELOPE),
    SegmentSealed(**ENVELOPE),
]


def framed(event: EventBase, prev: str = GENESIS) -> tuple[bytes, str]:
    return frame(encode_event(event), prev)


def test_samples_cover_every_event_type() -> None:
    assert {type(e) for e in SAMPLES} == set(event_types().values())


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.__struct_config__.tag)
def test_decode_event_of_every_type_round_trips(event: EventBase) -> None:
    line, _ = framed(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    decoded = decode_event(line[:-1])
    assert type(decoded) is type(event)
    assert decoded == event


def test_framing_round_trip() -> None:
    line, c = framed(SAMPLES[3], prev="1234abcd")
    chk = check_line(line[:-1])
    assert chk is not None
    assert (chk.prev, chk.c, chk.intact) == ("1234abcd", c, True)
    assert line[:-1].endswith(f',"p":"1234abcd","c":"{c}"}}'.encode())
    assert msgspec.json.decode(line)["p"] == "1234abcd"


def test_editing_any_byte_fails_the_check() -> None:
    line, _ = framed(SAMPLES[2])
    body = line[:-1]
    for i in range(len(body)):
        edited = bytearray(body)
        edited[i] ^= 0x01
        chk = check_line(bytes(edited))
        assert chk is None or not chk.intact, f"edit at byte {i} went unnoticed"


def test_p_links_each_line_to_the_previous_c() -> None:
    prev = GENESIS
    checks = []
    for event in SAMPLES:
        line, c = framed(event, prev)
        chk = check_line(line[:-1])
        assert chk is not None and chk.intact and chk.c == c
        checks.append(chk)
        prev = c
    assert checks[0].prev == GENESIS
    assert [k.prev for k in checks[1:]] == [k.c for k in checks[:-1]]


def test_unframed_line_has_no_check() -> None:
    assert check_line(encode_event(SAMPLES[1])) is None
    assert check_line(b"") is None
    assert check_line(b"garbage") is None


def test_unknown_tag_raises() -> None:
    body = encode_event(SAMPLES[1]).replace(b'"session.status_changed"', b'"session.renamed"')
    line, _ = frame(body, GENESIS)
    with pytest.raises(msgspec.ValidationError, match=r"session\.renamed"):
        decode_event(line[:-1])


def test_newer_schema_version_is_refused() -> None:
    line, _ = framed(msgspec.structs.replace(SAMPLES[3], v=2))
    with pytest.raises(InvalidArgumentError, match=r"'run.started' has schema version 2.*upgrade joshreg"):
        decode_event(line[:-1])


def test_a_buffer_with_one_newer_event_does_not_decode_at_once() -> None:
    """The whole-buffer decode refuses a buffer holding any event of another schema version,
    so that line by line decoding (which names it) takes over."""
    events = [msgspec.structs.replace(SAMPLES[3], v=1, seq=k) for k in range(1, 6)]
    lines = [framed(e)[0] for e in events]
    assert [e.seq for e in decode_events(b"".join(lines))] == [1, 2, 3, 4, 5]
    lines[3] = framed(msgspec.structs.replace(events[3], v=2))[0]
    with pytest.raises(msgspec.ValidationError, match="schema version 2"):
        decode_events(b"".join(lines))


def test_current_version_is_accepted() -> None:
    line, _ = framed(msgspec.structs.replace(SAMPLES[4], v=1))
    assert decode_event(line[:-1]).v == 1


def test_label_commit_round_trips_with_every_action() -> None:
    commit = LabelCommit(
        version=3,
        event_id=ENVELOPE["event_id"],
        writer=ENVELOPE["writer"],
        hlc=ENVELOPE["hlc"],
        actor="ana@host",
        actions=[
            LabelArchived(label="best", run_hash="aaa", archived_as="best_20260101_000000"),
            LabelReleased(label="old", run_hash="bbb", reason="relabel"),
            LabelAssigned(label="best", run_hash="bbb", previous_run_hash="aaa"),
            LabelSuperseded(label="best", run_hash="bbb", superseded_by="ccc", reason="newer data"),
            LabelSuperseded(label=None, run_hash="ddd", superseded_by="ccc"),
            RunReset(run_hash="ddd", run_ids=["r1", "r2"], results=["e1"], reason="redo"),
            RunDropped(run_hash="eee", label="old", registrations=["e2"], run_ids=["r3"]),
            RunRestored(run_hash="eee", restores="c9"),
        ],
    )
    line, _ = frame(encode_commit(commit), GENESIS)
    chk = check_line(line[:-1])
    assert chk is not None and chk.intact
    assert decode_commit(line[:-1]) == commit


def test_problem_names_segment_and_line() -> None:
    p = Problem("log/w.jsonl", 12, "checksum", "the line was edited")
    assert str(p) == "log/w.jsonl:12: checksum: the line was edited"


def _chain(n: int) -> list[bytes]:
    """``n`` framed lines of one segment, chained from GENESIS (without their newlines)."""
    out, prev = [], GENESIS
    for i in range(n):
        line, prev = framed(SAMPLES[i % len(SAMPLES)], prev)
        out.append(line[:-1])
    return out


_LINES = _chain(300)  # above the size where verify_lines checks all lines at once


@pytest.mark.slow  # a Hypothesis suite
@given(
    damage=st.lists(
        st.tuples(
            st.sampled_from(["flip", "delete", "swap", "cut", "upper", "glue", "prev"]),
            st.integers(0, len(_LINES) - 1),
            st.integers(0, 10_000),
        ),
        max_size=3,
    )
)
@settings(max_examples=150, deadline=None)
def test_checking_all_lines_at_once_reports_what_the_line_loop_reports(damage) -> None:
    """verify_lines checks big chunks vectorised; whatever the damage, its answer must be the
    one the per-line loop gives (the loop is what says which line and why)."""
    lines = list(_LINES)
    prev = GENESIS
    for kind, i, k in damage:
        i %= len(lines)
        line = lines[i]
        if kind == "flip" and line:
            edited = bytearray(line)
            edited[k % len(line)] ^= 0x04
            lines[i] = bytes(edited)
        elif kind == "delete" and len(lines) > 1:
            del lines[i]
        elif kind == "swap" and i > 0:
            lines[i - 1], lines[i] = lines[i], lines[i - 1]
        elif kind == "cut":
            lines[i] = line[: k % max(1, len(line))]
        elif kind == "upper":  # a checksum in capitals is not the one the writer wrote
            lines[i] = line[:-10] + line[-10:].upper()
        elif kind == "glue" and i + 1 < len(lines):
            lines[i : i + 2] = [line + lines[i + 1]]
        elif kind == "prev":
            prev = "1234abcd"
    fast = verify_lines(lines, prev)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(codec, "_VECTOR_MIN", 10**9)
        slow = verify_lines(lines, prev)
    assert fast == slow
    # The vectorised check itself accepts exactly the sound chunks (not only by falling back).
    sound = slow[:2] == ([], set()) and len(lines) > 0
    assert (codec._all_sound(lines, prev.encode()) is not None) == sound
    if not damage:
        assert fast == ([], set(), check_line(lines[-1]).c)


def test_decoding_many_lines_leaves_the_garbage_collector_as_it_found_it() -> None:
    """decode_events pauses the collector; it must come back on, after a failure too, and
    stay off for a caller that had turned it off."""
    import gc

    body = b"".join(encode_event(ev) + b"\n" for ev in SAMPLES)
    was = gc.isenabled()
    try:
        gc.enable()
        assert codec.decode_events(body) == SAMPLES and gc.isenabled()
        with pytest.raises(msgspec.DecodeError):
            codec.decode_events(body + b"{not json\n")
        assert gc.isenabled()
        gc.disable()
        assert codec.decode_events(body) == SAMPLES and not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def test_line_chain_writes_the_bytes_frame_writes() -> None:
    chain = codec.LineChain()
    prev, expected = GENESIS, b""
    for event in SAMPLES * 3:
        chain.add(event)
        line, prev = framed(event, prev)
        expected += line
    assert chain.prev == prev.encode()
    assert chain.take() == expected
    assert chain.take() == b""  # a new group; the chain goes on from the last line
    chain.add(SAMPLES[0])
    assert chain.take() == framed(SAMPLES[0], prev)[0]


def test_an_event_that_does_not_encode_leaves_the_chain_as_it_was() -> None:
    chain = codec.LineChain()
    chain.add(SAMPLES[1])
    before = (bytes(chain.lines), chain.prev)
    with pytest.raises(TypeError):
        chain.add(SessionCreated(session_id="s", metadata={"x": object()}))
    assert (bytes(chain.lines), chain.prev) == before
    chain.add(SAMPLES[2])
    lines = chain.take().splitlines()
    assert verify_lines(lines, GENESIS)[:2] == ([], set())


@given(st.binary(max_size=2000), st.integers(0, 2**32 - 1))
def test_the_checksum_is_zlibs_crc32(data: bytes, start: int) -> None:
    """Whichever implementation is installed (ISA-L's or zlib's), the bytes are zlib's CRC-32."""
    import zlib

    assert codec._crc32(data, start) == zlib.crc32(data, start)
    assert codec._crc32(bytearray(data)) == zlib.crc32(data)
