"""The LogStore contract for LocalStore, plus what only a directory can show: real processes
racing for claims, the FORMAT file, and reopening."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from joshreg.errors import LogFormatError
from joshreg.log.store import LocalStore, LogStore, open_store
from joshreg.log.store.local import FORMAT_NAME, FORMAT_VERSION, LEGACY_ID_FILE
from joshreg.testing.store_contract import LogStoreContract


class TestLocalStore(LogStoreContract):
    store_class = LocalStore

    def make_store(self, tmp_path: Path) -> LogStore:
        return open_store(str(tmp_path / "x.events"))

    def break_storage(self, store: LogStore) -> bool:
        # Files where the store's folders should be: every open and link fails (ENOTDIR).
        root = Path(store.location)
        (root / "log").rename(root / "log.moved")
        for folder in ("log", "labels"):
            (root / folder).write_text("not a folder")
        return True


def test_list_claims_skips_leftover_temp_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    store.claim("labels/1.json", b"a")
    # A process killed between writing its temporary file and linking it leaves this behind.
    (tmp_path / "s" / "labels" / ".tmp-123-abcdef").write_bytes(b"half")
    assert store.list_claims("labels") == ["labels/1.json"]


def test_discard_temporaries_removes_only_old_leftovers(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    folder = tmp_path / "s" / "compacted"
    folder.mkdir()
    old, young = folder / ".tmp-1-aaaaaa", folder / ".tmp-2-bbbbbb"
    old.write_bytes(b"half a parquet file")
    young.write_bytes(b"a compaction in progress")
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert store.segments() == [] and store.list_claims("compacted") == []
    assert store.discard_temporaries("compacted", 3600) == 1
    assert not old.exists() and young.exists()
    assert store.discard_temporaries("nothing-here", 0) == 0


def test_reopened_store_sees_segments_and_claims(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    store.append("log/w.jsonl", b"line\n")
    store.sync("log/w.jsonl")
    store.claim("labels/1.json", b"c")
    store.close()
    again = LocalStore(tmp_path / "s")
    assert again.read("log/w.jsonl") == b"line\n"
    assert again.read_claim("labels/1.json") == b"c"
    assert not again.claim("labels/1.json", b"other")


def test_format_file_is_created_with_a_store_id(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    info = json.loads((tmp_path / "s" / "FORMAT").read_text())
    assert info.pop("store_id") == store.store_id == LocalStore(tmp_path / "s").store_id
    assert info == {"format": FORMAT_NAME, "version": FORMAT_VERSION}
    assert len(store.store_id) == 32 and LocalStore(tmp_path / "t").store_id != store.store_id


def test_a_store_without_an_id_gets_one_claimed_once(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "FORMAT").write_text(json.dumps({"format": FORMAT_NAME, "version": 1}))
    first, second = LocalStore(tmp_path / "s"), LocalStore(tmp_path / "s")
    assert first.stored_id() is None  # looking does not give it one
    assert not (tmp_path / "s" / LEGACY_ID_FILE).exists()
    assert first.store_id == second.store_id == second.stored_id()
    assert json.loads((tmp_path / "s" / "FORMAT").read_text()) == {"format": FORMAT_NAME, "version": 1}


def test_a_folder_with_other_files_is_not_made_a_store(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "thesis.tex").write_text("precious")
    with pytest.raises(LogFormatError, match="other files in it and no FORMAT"):
        LocalStore(tmp_path / "results")
    assert sorted(os.listdir(tmp_path / "results")) == ["thesis.tex"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(LogFormatError, match="is a file"):
        LocalStore(tmp_path / "file")


def test_create_false_refuses_a_missing_store(tmp_path: Path) -> None:
    with pytest.raises(LogFormatError, match="no joshreg event store"):
        LocalStore(tmp_path / "nothing", create=False)
    assert not (tmp_path / "nothing").exists()


def test_newer_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "FORMAT").write_text(json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION + 1}))
    with pytest.raises(LogFormatError, match="upgrade joshreg"):
        LocalStore(tmp_path / "s")


@pytest.mark.parametrize("content", ['{"format": "something-else", "version": 1}', "not json at all"])
def test_non_joshreg_directory_is_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "FORMAT").write_text(content)
    with pytest.raises(LogFormatError, match="joshreg"):
        LocalStore(tmp_path / "s")


# --- claims raced by real processes -----------------------------------------------------------

RACERS = 8
NAMES = 40


def _race(root: str, me: int, barrier: object, out: object) -> None:
    store = LocalStore(root)
    barrier.wait()  # type: ignore[attr-defined]
    won = [i for i in range(NAMES) if store.claim(f"race/{i:03d}.json", f"{me}\n".encode())]
    out.put((me, won))  # type: ignore[attr-defined]


@pytest.mark.slow  # other processes
def test_claim_is_exclusive_across_processes(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    root = str(tmp_path / "s")
    LocalStore(root)
    barrier, out = ctx.Barrier(RACERS), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(root, me, barrier, out)) for me in range(RACERS)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    winners: dict[int, list[int]] = {}
    for me, won in results.items():
        for i in won:
            winners.setdefault(i, []).append(me)
    assert sorted(winners) == list(range(NAMES))
    assert all(len(w) == 1 for w in winners.values()), winners
    store = LocalStore(root)
    for i, (me,) in winners.items():
        assert store.read_claim(f"race/{i:03d}.json") == f"{me}\n".encode()
    assert store.list_claims("race") == [f"race/{i:03d}.json" for i in range(NAMES)]
    assert not [n for n in os.listdir(os.path.join(root, "race")) if n.startswith(".tmp-")]


def _create(root: str, barrier: object, out: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    try:
        out.put(LocalStore(root).store_id)  # type: ignore[attr-defined]
    except Exception as e:
        out.put(f"failed: {e}")  # type: ignore[attr-defined]


@pytest.mark.slow  # other processes
def test_processes_making_one_new_store_at_once_all_open_it(tmp_path: Path) -> None:
    """Workers started together on a new events path: whoever writes FORMAT first, the others
    see its half-made store (a log folder, a temporary file) and open it, one store id for all."""
    ctx = mp.get_context("spawn")
    for attempt in range(3):
        root = str(tmp_path / f"new{attempt}.events")
        barrier, out = ctx.Barrier(RACERS), ctx.Queue()
        procs = [ctx.Process(target=_create, args=(root, barrier, out)) for _ in range(RACERS)]
        for p in procs:
            p.start()
        ids = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert len(set(ids)) == 1 and not ids[0].startswith("failed"), ids
        assert LocalStore(root).store_id == ids[0]


def test_a_half_made_store_is_finished_not_refused(tmp_path: Path) -> None:
    root = tmp_path / "half.events"
    (root / "log").mkdir(parents=True)
    (root / ".tmp-123-abcdef").write_bytes(b"")  # a creator that died before its FORMAT
    store = LocalStore(root)
    assert (root / "FORMAT").exists() and store.store_id


def test_a_synced_new_segment_has_its_folder_entry_made_durable_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync of a new file makes its bytes durable, not its name: after a power cut the folder
    could forget the segment. The first sync of a segment also syncs its folder, once."""
    store = open_store(str(tmp_path / "x.events"))
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store.append("log/w1.jsonl", b"{}\n")
    store.sync("log/w1.jsonl")
    store.append("log/w1.jsonl", b"{}\n")
    store.sync("log/w1.jsonl")
    log_dir, segment = str(tmp_path / "x.events" / "log"), str(tmp_path / "x.events" / "log" / "w1.jsonl")
    assert synced == [segment, log_dir, segment]
