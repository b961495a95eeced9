"""LogStoreContract: the promises of ``joshreg.log.store.base.LogStore``, one test per promise.

The class name does not start with ``Test``, so pytest does not collect it; a backend's test
file subclasses it, sets ``store_class`` and implements ``make_store``. The suite checks that
``make_store`` built ``store_class``, so a fixture that quietly builds another backend fails.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from itertools import accumulate
from pathlib import Path

import pytest

from joshreg.errors import StoreError
from joshreg.log.store.base import LogStore, SegmentInfo
from joshreg.log.store.compacted import compacted_name, encode_container


def container(data: bytes) -> bytes:
    """A compacted copy of segment bytes ``data`` (envelope columns left empty)."""
    cut = data.rfind(b"\n") + 1
    lines = data[:cut].split(b"\n")[:-1]
    offsets = array("q", [0])
    offsets.extend(accumulate(len(x) + 1 for x in lines))
    empty: list[object] = [None] * len(lines)
    envelope = {"type": empty, "writer": empty, "seq": empty, "hlc": empty}
    return encode_container(data[:cut], offsets, envelope, {"source_bytes": str(len(data))}, data[cut:])


class LogStoreContract:
    """Every ``LogStore`` backend passes these tests."""

    store_class: type[LogStore]

    def make_store(self, tmp_path: Path) -> LogStore:
        """A new, empty store of ``store_class``."""
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[LogStore]:
        s = self.make_store(tmp_path)
        yield s
        s.close()

    def test_make_store_builds_the_expected_class(self, store: LogStore) -> None:
        assert type(store) is self.store_class
        assert isinstance(store.location, str) and store.location

    # --- segments ---------------------------------------------------------------------------

    def test_append_then_read_returns_the_bytes(self, store: LogStore) -> None:
        store.append("log/a.jsonl", b"one\n")
        store.append("log/a.jsonl", b"two\n")
        assert store.read("log/a.jsonl") == b"one\ntwo\n"

    def test_read_from_offset_and_to_end(self, store: LogStore) -> None:
        store.append("log/a.jsonl", b"0123456789\n")
        assert store.read("log/a.jsonl", 3) == b"3456789\n"
        assert store.read("log/a.jsonl", 3, 7) == b"3456"
        assert store.read("log/a.jsonl", 11) == b""

    def test_read_sees_bytes_appended_after_an_earlier_read(self, store: LogStore) -> None:
        store.append("log/a.jsonl", b"first\n")
        assert store.read("log/a.jsonl") == b"first\n"
        store.append("log/a.jsonl", b"second\n")
        assert store.read("log/a.jsonl", 6) == b"second\n"

    def test_segments_are_listed_with_sizes_sorted_by_name(self, store: LogStore) -> None:
        assert store.segments() == []
        store.append("log/c.jsonl", b"ccc\n")
        store.append("log/a.jsonl", b"a\n")
        store.append("log/b.jsonl", b"bb\n")
        store.append("log/a.jsonl", b"aaaa\n")
        assert store.segments() == [
            SegmentInfo("log/a.jsonl", 7),
            SegmentInfo("log/b.jsonl", 3),
            SegmentInfo("log/c.jsonl", 4),
        ]

    def test_claims_are_not_segments(self, store: LogStore) -> None:
        store.claim("labels/00000000000000000001.json", b"x\n")
        assert store.segments() == []

    def test_sync_and_close_segment_are_safe(self, store: LogStore) -> None:
        store.sync("log/never-written.jsonl")
        store.close_segment("log/never-written.jsonl")
        store.append("log/a.jsonl", b"one\n")
        store.sync("log/a.jsonl")
        store.close_segment("log/a.jsonl")
        store.close_segment("log/a.jsonl")
        assert store.read("log/a.jsonl") == b"one\n"
        # A closed segment can be appended to again by its writer, after its old bytes.
        store.append("log/a.jsonl", b"two\n")
        store.sync("log/a.jsonl")
        assert store.read("log/a.jsonl") == b"one\ntwo\n"

    # --- claims -----------------------------------------------------------------------------

    def test_claim_is_exclusive(self, store: LogStore) -> None:
        assert store.claim("labels/00000000000000000001.json", b"first\n") is True
        assert store.claim("labels/00000000000000000001.json", b"second\n") is False
        assert store.read_claim("labels/00000000000000000001.json") == b"first\n"

    def test_read_claim_of_missing_is_none(self, store: LogStore) -> None:
        assert store.read_claim("labels/00000000000000000001.json") is None
        store.claim("labels/00000000000000000002.json", b"x")
        assert store.read_claim("labels/00000000000000000001.json") is None

    def test_list_claims_is_sorted_and_limited_to_the_prefix(self, store: LogStore) -> None:
        for name in ("labels/3.json", "labels/1.json", "claims/sessions/x.json", "labelsx/2.json"):
            assert store.claim(name, name.encode())
        store.claim("labels/2.json", b"two")
        assert store.list_claims("labels") == ["labels/1.json", "labels/2.json", "labels/3.json"]
        assert store.list_claims("labels/") == ["labels/1.json", "labels/2.json", "labels/3.json"]
        assert store.list_claims("claims/sessions") == ["claims/sessions/x.json"]
        assert store.list_claims("nothing-here") == []

    def test_list_claims_excludes_temp_files(self, store: LogStore) -> None:
        # A lost race leaves nothing behind but the winner's claim.
        assert store.claim("labels/1.json", b"a")
        assert not store.claim("labels/1.json", b"b")
        assert store.list_claims("labels") == ["labels/1.json"]

    # --- compaction: the contract's one delete ------------------------------------------------

    def test_a_compacted_segment_reads_as_its_jsonl_did(self, store: LogStore) -> None:
        data = b"one\ntwo\nthree\n"
        store.append("log/w.jsonl", data)
        assert store.claim(compacted_name("log/w.jsonl", len(data)), container(data))
        # Both there (a compaction not yet finished): one segment, the JSONL still read.
        [both] = store.segments()
        assert (both.name, both.size, both.jsonl_size) == ("log/w.jsonl", len(data), len(data))
        assert both.compacted == compacted_name("log/w.jsonl", len(data))
        assert store.retire_segment("log/w.jsonl") is True
        assert store.segments() == [SegmentInfo("log/w.jsonl", len(data))]
        [only] = store.segments()
        assert only.compacted == both.compacted and only.jsonl_size is None
        assert store.read("log/w.jsonl") == data
        assert store.read("log/w.jsonl", 4, 7) == b"two"
        assert store.read("log/w.jsonl", 8) == b"three\n"
        assert store.retire_segment("log/w.jsonl") is False  # already gone: nothing to do

    def test_a_torn_tail_is_kept_by_compaction(self, store: LogStore) -> None:
        data = b"one\ntw"
        store.append("log/w.jsonl", data)
        store.claim(compacted_name("log/w.jsonl", len(data)), container(data))
        store.retire_segment("log/w.jsonl")
        assert store.read("log/w.jsonl") == data

    def test_retire_refuses_without_a_copy_holding_every_byte(self, store: LogStore) -> None:
        store.append("log/w.jsonl", b"one\n")
        with pytest.raises(StoreError, match="compact"):
            store.retire_segment("log/w.jsonl")
        store.claim(compacted_name("log/w.jsonl", 4), container(b"one\n"))
        store.append("log/w.jsonl", b"two\n")  # the JSONL grew past its copy
        [seg] = store.segments()
        assert (seg.size, seg.compacted) == (8, None)  # read as a plain segment
        assert store.read("log/w.jsonl") == b"one\ntwo\n"
        with pytest.raises(StoreError, match="compact"):
            store.retire_segment("log/w.jsonl")
        assert store.read("log/w.jsonl") == b"one\ntwo\n"

    def test_the_longest_copy_serves_a_retired_segment(self, store: LogStore) -> None:
        store.append("log/w.jsonl", b"one\n")
        store.claim(compacted_name("log/w.jsonl", 4), container(b"one\n"))
        store.append("log/w.jsonl", b"two\n")
        store.claim(compacted_name("log/w.jsonl", 8), container(b"one\ntwo\n"))
        assert store.retire_segment("log/w.jsonl") is True  # the 8-byte copy holds every byte
        assert store.read("log/w.jsonl") == b"one\ntwo\n"
        assert [(s.size, s.compacted) for s in store.segments()] == [(8, compacted_name("log/w.jsonl", 8))]

    def test_compacted_claims_are_claims_and_not_extra_segments(self, store: LogStore) -> None:
        data = b"x\n"
        name = compacted_name("log/w.jsonl", len(data))
        assert store.claim(name, container(data))
        assert not store.claim(name, container(data))
        assert store.list_claims("compacted") == [name]
        assert [s.name for s in store.segments()] == ["log/w.jsonl"]
        assert store.read("log/other.jsonl") == b""

    def test_discard_temporaries_keeps_claims(self, store: LogStore) -> None:
        store.claim("compacted/w.2.parquet", container(b"x\n"))
        assert store.discard_temporaries("compacted", 0) == 0
        assert store.list_claims("compacted") == ["compacted/w.2.parquet"]
