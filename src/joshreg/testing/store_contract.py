"""The promises of ``joshreg.log.store.base.LogStore``, one test per promise, for every backend.

``LogStoreContract`` is for a store that writes: a backend's test file subclasses it (the class
name does not start with ``Test``, so pytest does not collect it on its own), sets
``store_class`` and implements ``make_store``, and ``break_storage`` where the backend can meet
operating-system errors. ``ReadOnlyStoreContract`` is for a view of another store (verify's
``SnapshotStore``). The suite checks that ``make_store`` built ``store_class``, so a fixture
that quietly builds another backend fails. Importing this module imports pytest.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
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

    def break_storage(self, store: LogStore) -> bool:
        """Make every later write of ``store`` fail in the operating system; False for a
        backend that has no operating system below it (in memory)."""
        return False

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

    # --- what a merge needs --------------------------------------------------------------------

    def test_walk_claims_lists_every_claim_below_a_folder(self, store: LogStore) -> None:
        for name in (
            "blobs/ab/ab1.parquet",
            "blobs/cd/cd2.parquet",
            "claims/sessions/x.json",
            "labels/1.json",
        ):
            assert store.claim(name, b"x")
        store.append("log/w.jsonl", b"line\n")
        assert list(store.walk_claims("blobs")) == ["blobs/ab/ab1.parquet", "blobs/cd/cd2.parquet"]
        assert list(store.walk_claims("claims/")) == ["claims/sessions/x.json"]
        assert list(store.walk_claims("log")) == []  # segments are not claims
        assert list(store.walk_claims("nothing")) == []

    def test_claim_exists_without_reading(self, store: LogStore) -> None:
        assert not store.claim_exists("blobs/ab/ab1.parquet")
        store.claim("blobs/ab/ab1.parquet", b"x")
        assert store.claim_exists("blobs/ab/ab1.parquet")

    def test_put_segment_creates_a_whole_segment_once(self, store: LogStore) -> None:
        assert store.put_segment("log/other.jsonl", b"a\nb\n") is True
        assert store.put_segment("log/other.jsonl", b"c\n") is False
        assert store.read("log/other.jsonl") == b"a\nb\n"
        assert [s.name for s in store.segments()] == ["log/other.jsonl"]
        store.append("log/mine.jsonl", b"x\n")
        assert store.put_segment("log/mine.jsonl", b"y\n") is False
        assert store.read("log/mine.jsonl") == b"x\n"

    def test_exclusive_holders_never_overlap(self, store: LogStore) -> None:
        import threading

        inside: list[int] = []
        overlaps: list[int] = []

        def hold(i: int) -> None:
            with store.exclusive("merge"):
                inside.append(i)
                if len(inside) > 1:
                    overlaps.append(i)
                threading.Event().wait(0.01)
                inside.remove(i)

        threads = [threading.Thread(target=hold, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert overlaps == []
        with store.exclusive("merge"), store.exclusive("other"):  # distinct locks are independent
            pass

    def test_operating_system_errors_become_store_errors(self, store: LogStore) -> None:
        store.append("log/w.jsonl", b"before\n")
        if not self.break_storage(store):
            store.append("log/w.jsonl", b"after\n")  # nothing below it can fail
            assert store.read("log/w.jsonl") == b"before\nafter\n"
            return
        with pytest.raises(StoreError):
            store.append("log/new.jsonl", b"x\n")
        with pytest.raises(StoreError):
            store.claim("labels/00000000000000000001.json", b"x\n")
        with pytest.raises(StoreError):
            store.put_segment("log/copied.jsonl", b"x\n")


class ReadOnlyStoreContract:
    """A read-only view of another store: it reads what ``fill`` wrote and refuses every write
    with ``StoreError``. A subclass sets ``store_class`` and implements ``make_store``."""

    store_class: type[LogStore]

    def make_store(self, tmp_path: Path, fill: Callable[[LogStore], None]) -> LogStore:
        """A view of a new store that ``fill`` has written."""
        raise NotImplementedError

    @staticmethod
    def fill(store: LogStore) -> None:
        store.append("log/w.jsonl", b"one\ntwo\n")
        store.claim("blobs/ab/ab1.parquet", b"blob")
        store.claim("labels/00000000000000000001.json", b"commit\n")

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[LogStore]:
        s = self.make_store(tmp_path, self.fill)
        yield s
        s.close()

    def test_make_store_builds_the_expected_class(self, store: LogStore) -> None:
        assert type(store) is self.store_class

    def test_it_reads_what_was_written(self, store: LogStore) -> None:
        assert [s.name for s in store.segments()] == ["log/w.jsonl"]
        assert store.read("log/w.jsonl") == b"one\ntwo\n"
        assert store.read_claim("blobs/ab/ab1.parquet") == b"blob"
        assert store.claim_exists("blobs/ab/ab1.parquet")
        assert list(store.walk_claims("blobs")) == ["blobs/ab/ab1.parquet"]
        assert store.list_claims("labels") == ["labels/00000000000000000001.json"]

    def test_every_write_is_refused(self, store: LogStore) -> None:
        for write in (
            lambda: store.append("log/w.jsonl", b"three\n"),
            lambda: store.claim("labels/00000000000000000002.json", b"x"),
            lambda: store.put_segment("log/new.jsonl", b"x\n"),
            lambda: store.exclusive("merge").__enter__(),
        ):
            with pytest.raises(StoreError, match="read-only"):
                write()
        assert store.read("log/w.jsonl") == b"one\ntwo\n"
