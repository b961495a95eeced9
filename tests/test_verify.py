"""verify: a sound registry passes; each kind of damage is found, named with file and line.

The template registry is written by a child process, so its writers have exited when the tests
run: a torn last line of their segments is then damage, not a write still in flight.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from itertools import pairwise
from pathlib import Path

import duckdb
import pytest

from joshreg import LogDamageWarning, RunRegistry, VerifyProblem, VerifyReport
from joshreg.cli.app import main
from joshreg.log.clock import new_writer_id
from joshreg.operations.verify import STALE_AFTER_S
from joshreg.projection.tables import PUBLIC_TABLES
from joshreg.testing.registries import FakeJobConfig

fault = pytest.mark.slow  # fault injection: damage made on purpose, left out by `just test-fast`

BUILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from joshreg import CellDataLoader, RunRegistry
    from joshreg.testing.registries import FakeJobConfig

    EXPORT = (
        "position.x,position.y,position.longitude,position.latitude,avg.height,treeCount,status,"
        "step,replicate\\n"
        "0,0,-116.0,34.0,1.5,10,alive,0,0\\n"
        "1,0,-116.1,34.1,,12,,1,0\\n"
        "0,1,-116.0,34.2,2.5,14,dead,1,1\\n"
    )
    root = Path(sys.argv[1])
    db = root / "sweep.duckdb"
    hashes = ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"]
    with RunRegistry(db) as reg:  # the first writer: 12 events
        sid = reg.create_session(FakeJobConfig(replicates=2), experiment_name="verify")
        for i, h in enumerate(hashes):
            reg.register_run(sid, h, "m.josh", f"cfg {i}", None, {"maxGrowth": 10.0 * (i + 1)})
        runs = []
        for i, h in enumerate(hashes):
            rid = reg.start_run(h, session_id=sid)
            reg.complete_run(rid, 3 if i == 1 else 0, "boom" if i == 1 else None)
            runs.append(rid)
        reg.register_output(runs[0], "csv", "out_0.csv")
        reg.label_run(hashes[0], "baseline")
        reg.label_run(hashes[1], "baseline", on_collision="timestamp")
        reg.label_run(hashes[2], "candidate")
        (root / "out_0.csv").write_text(EXPORT)
        CellDataLoader(reg).load_csv(root / "out_0.csv", runs[0], hashes[0])
    with RunRegistry(db) as reg:  # a second writer
        reg.update_session_status(sid, "completed")
        reg.label_run(hashes[0], "candidate", force=True)
        (root / "out_1.csv").write_text(EXPORT.replace("alive", "sapling"))
        CellDataLoader(reg).load_csv(root / "out_1.csv", runs[2], hashes[2])
    """
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed registry with sessions, runs, outputs, moved labels and loaded results."""
    root = tmp_path_factory.mktemp("template")
    subprocess.run([sys.executable, "-c", BUILD, str(root)], check=True, timeout=120)
    return root


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    """A private copy of the template (file and store), free to damage."""
    shutil.copy(template / "sweep.duckdb", tmp_path / "sweep.duckdb")
    shutil.copytree(template / "sweep.events", tmp_path / "sweep.events")
    return tmp_path / "sweep.duckdb"


def store(db: Path) -> Path:
    return db.with_suffix(".events")


def main_segment(db: Path) -> str:
    """The store-relative name of the first writer's segment (the longest)."""
    logs = sorted((store(db) / "log").iterdir(), key=lambda p: len(p.read_bytes().splitlines()))
    return f"log/{logs[-1].name}"


def lines(db: Path, segment: str) -> list[bytes]:
    return (store(db) / segment).read_bytes().splitlines(keepends=True)


def rewrite(db: Path, segment: str, new: list[bytes]) -> None:
    (store(db) / segment).write_bytes(b"".join(new))


def verify(db: Path, **kwargs: bool) -> VerifyReport:
    with warnings.catch_warnings():  # the open warns of the damage; the report is what is checked
        warnings.simplefilter("ignore", LogDamageWarning)
        reg = RunRegistry(db)
    with reg:
        return reg.verify(**kwargs)


def cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def kinds_at(report: VerifyReport, file: str, line: int | None = None) -> set[str]:
    return {p.kind for p in report.problems if p.file == file and p.line == line}


def assert_found(
    db: Path, capsys: pytest.CaptureFixture[str], kind: str, file: str, line: int | None = None
) -> VerifyReport:
    """The library reports ``kind`` at file:line, and the CLI prints it and exits 1."""
    report = verify(db)
    assert not report.ok
    assert kind in kinds_at(report, file, line), str(report)
    problem = next(p for p in report.problems if (p.kind, p.file, p.line) == (kind, file, line))
    assert len(problem.message) > 40  # says what happened and what to do
    code, out, _ = cli(capsys, "verify", db)
    assert code == 1
    where = f"{file}:{line}" if line else file
    assert f"{where}: {kind}: " in out, out
    assert out.rstrip().splitlines()[-1].startswith("damaged: ")
    return report


# --- a sound registry -----------------------------------------------------------------------------


def test_a_sound_registry_verifies_ok_and_the_cli_exits_0(db: Path, capsys) -> None:
    report = verify(db)
    assert report.ok and report.problems == [] and report.warnings == [], str(report)
    assert (report.segments, report.writers, report.events) == (2, 2, 14)
    assert (report.label_commits, report.blobs) == (4, 2)
    assert set(PUBLIC_TABLES) <= set(report.tables)
    assert "events_run_started" in report.tables
    assert str(report).splitlines()[-1] == "ok: the store is sound"
    code, out, _ = cli(capsys, "verify", db)
    assert code == 0 and "verified " in out and "ok: the store is sound" in out
    code, out, _ = cli(capsys, "verify", db, "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] is True and data["problems"] == [] and data["events"] == 14


def test_an_in_memory_registry_verifies_ok(config) -> None:
    with RunRegistry(":memory:") as reg:
        sid = reg.create_session(config, experiment_name="m")
        reg.register_run(sid, "h1", "m.josh", "c", None, {"a": 1})
        reg.label_run("h1", "best")
        report = reg.verify()
    assert report.ok and report.events == 2 and report.label_commits == 1, str(report)


def test_missing_registry_is_a_usage_error(tmp_path: Path, capsys) -> None:
    code, _, err = cli(capsys, "verify", tmp_path / "nothing.duckdb")
    assert code == 2 and "no registry" in err


# --- damaged segments -----------------------------------------------------------------------------


@fault
def test_an_edited_byte_fails_its_line_checksum(db: Path, capsys) -> None:
    seg = main_segment(db)
    ls = lines(db, seg)
    mid = len(ls[2]) // 2
    ls[2] = ls[2][:mid] + (b"x" if ls[2][mid : mid + 1] != b"x" else b"y") + ls[2][mid + 1 :]
    rewrite(db, seg, ls)
    report = assert_found(db, capsys, "checksum", seg, 3)
    # The lost event is explained by the damaged line: no separate gap is reported.
    assert not any(p.kind == "sequence-gap" for p in report.problems), str(report)


@fault
def test_a_deleted_line_breaks_the_chain_and_the_sequence(db: Path, capsys) -> None:
    seg = main_segment(db)
    ls = lines(db, seg)
    del ls[2]
    rewrite(db, seg, ls)
    report = assert_found(db, capsys, "chain-broken", seg, 3)
    assert "sequence-gap" in kinds_at(report, seg, 3)


@fault
def test_swapped_lines_break_the_chain_and_the_order(db: Path, capsys) -> None:
    seg = main_segment(db)
    ls = lines(db, seg)
    ls[2], ls[3] = ls[3], ls[2]
    rewrite(db, seg, ls)
    report = assert_found(db, capsys, "out-of-order", seg, 4)
    assert "chain-broken" in kinds_at(report, seg, 3)


@fault
def test_glued_lines_fail_the_checksum_and_lose_two_events(db: Path, capsys) -> None:
    seg = main_segment(db)
    ls = lines(db, seg)
    ls[2:4] = [ls[2][:-1] + ls[3]]
    rewrite(db, seg, ls)
    report = assert_found(db, capsys, "checksum", seg, 3)
    gap = next(p for p in report.problems if p.kind == "sequence-gap")
    assert (gap.file, gap.line) == (seg, 4) and "events 3-4 are missing" in gap.message


@fault
def test_bytes_dropped_from_the_middle_of_a_segment(db: Path, capsys) -> None:
    seg = main_segment(db)
    data = (store(db) / seg).read_bytes()
    ls = data.splitlines(keepends=True)
    start = sum(map(len, ls[:2])) + len(ls[2]) // 2  # inside line 3
    end = sum(map(len, ls[:4])) + len(ls[4]) // 2  # inside line 5
    (store(db) / seg).write_bytes(data[:start] + data[end:])
    report = assert_found(db, capsys, "checksum", seg, 3)
    assert "sequence-gap" in kinds_at(report, seg, 4)


@fault
def test_a_segment_cut_mid_line_at_its_end_is_a_torn_tail(db: Path, capsys) -> None:
    seg = main_segment(db)
    n = len(lines(db, seg))
    path = store(db) / seg
    path.write_bytes(path.read_bytes()[:-40])
    report = assert_found(db, capsys, "torn-tail", seg, n)
    assert "has exited" in next(p for p in report.problems if p.kind == "torn-tail").message


@fault
def test_whole_lines_cut_from_the_end_are_missed_by_checksums_but_not_by_the_checkpoint(
    db: Path, capsys
) -> None:
    seg = main_segment(db)
    ls = lines(db, seg)
    rewrite(db, seg, ls[:-2])
    report = assert_found(db, capsys, "segment-shrank", seg, len(ls) - 1)
    assert {p.kind for p in report.problems} <= {"segment-shrank", "projection-differs"}, str(report)


@fault
def test_a_deleted_segment_is_named(db: Path, capsys) -> None:
    seg = sorted((store(db) / "log").iterdir())[0]
    seg.unlink()
    assert_found(db, capsys, "missing-segment", f"log/{seg.name}")


@fault
def test_a_torn_tail_a_live_writer_may_finish_is_a_warning_until_it_is_stale(db: Path, capsys) -> None:
    seg = f"log/{new_writer_id()}.jsonl"  # named after this (live) process
    part = lines(db, main_segment(db))[0]
    path = store(db) / seg
    path.write_bytes(part[:50])
    report = verify(db)
    assert report.ok, str(report)
    assert [(w.kind, w.file, w.line) for w in report.warnings] == [("unfinished-line", seg, 1)]
    code, out, _ = cli(capsys, "verify", db)
    assert code == 0 and f"{seg}:1: unfinished-line: " in out
    old = time.time() - STALE_AFTER_S - 60
    os.utime(path, (old, old))
    report = assert_found(db, capsys, "torn-tail", seg, 1)
    assert "has not changed for" in report.problems[0].message


@fault
def test_a_copied_segment_is_named_as_a_copy(db: Path, capsys) -> None:
    seg = main_segment(db)
    copy = "log/" + Path(seg).stem + " copy.jsonl"  # sorts before the original
    shutil.copy(store(db) / seg, store(db) / copy)
    report = assert_found(db, capsys, "duplicate-segment", copy, 1)
    problem = next(p for p in report.problems if p.kind == "duplicate-segment")
    assert f"also in {seg}" in problem.message and "seq 1-12" in problem.message
    assert not kinds_at(report, seg, 1)


# --- result files ---------------------------------------------------------------------------------


def blobs(db: Path) -> list[str]:
    return sorted(p.relative_to(store(db)).as_posix() for p in (store(db) / "blobs").rglob("*.parquet"))


@fault
def test_a_missing_result_file_is_named(db: Path, capsys) -> None:
    blob = blobs(db)[0]
    (store(db) / blob).unlink()
    report = assert_found(db, capsys, "missing-blob", blob)
    assert "loaded by the event at log/" in report.problems[0].message


@fault
def test_a_changed_result_file_fails_its_hash(db: Path, capsys) -> None:
    blob = blobs(db)[1]
    path = store(db) / blob
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert_found(db, capsys, "blob-hash", blob)


# --- the label log --------------------------------------------------------------------------------


def commit(db: Path, version: int) -> Path:
    return store(db) / "labels" / f"{version:020d}.json"


@fault
def test_a_label_commit_removed_from_the_middle_is_a_hole(db: Path, capsys) -> None:
    commit(db, 2).unlink()
    report = assert_found(db, capsys, "label-hole", "labels/00000000000000000002.json")
    # The tables still show the removed change; a rebuild would not.
    assert any(p.kind == "projection-differs" and p.table == "label_history" for p in report.problems)


@fault
def test_the_newest_label_commit_deleted_is_missed_by_the_log_but_not_by_the_tables(db: Path, capsys) -> None:
    commit(db, 4).unlink()
    assert_found(db, capsys, "label-hole", "labels/00000000000000000004.json")


@fault
def test_an_edited_label_commit_is_named(db: Path, capsys) -> None:
    path = commit(db, 3)
    path.write_bytes(path.read_bytes().replace(b"candidate", b"candidatX", 1))
    assert_found(db, capsys, "label-commit", "labels/00000000000000000003.json", 1)


# --- the projection -------------------------------------------------------------------------------


@fault
def test_reading_in_small_chunks_finds_the_same(db: Path, monkeypatch, tmp_path: Path) -> None:
    """Segments are read in chunks; a chunk boundary changes nothing that is found. The private
    rebuild lives in a temporary directory that is gone afterwards."""
    import tempfile

    import joshreg.operations.verify_log as verify_module
    import joshreg.projection.projector as projector_module
    import joshreg.projection.replay as replay_module

    seg = main_segment(db)
    ls = lines(db, seg)
    ls[2], ls[3] = ls[3], ls[2]
    del ls[7]
    rewrite(db, seg, ls)
    con = duckdb.connect(str(db))
    con.execute("UPDATE job_runs SET exit_code = 99 WHERE exit_code = 3")
    con.close()
    whole = verify(db)
    alone = verify(db, rebuild_check=False)  # the scan reads every segment itself
    # A few lines per chunk, both for the scan and for the private rebuild's reader it shares.
    monkeypatch.setattr(verify_module, "CHUNK_BYTES", 700)
    monkeypatch.setattr(projector_module, "CHUNK_BYTES", 700)
    monkeypatch.setattr(replay_module, "CHUNK_BYTES", 700)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    phases: list[str] = []
    with pytest.warns(LogDamageWarning, match=seg):
        reg = RunRegistry(db)
    with reg:
        chunked = reg.verify(progress=lambda phase, done, total: phases.append(phase))
    assert not whole.ok and "projection-differs" in {p.kind for p in whole.problems}
    assert [str(p) for p in chunked.problems] == [str(p) for p in whole.problems]
    assert [str(p) for p in chunked.warnings] == [str(p) for p in whole.warnings]
    assert (chunked.events, chunked.writers, chunked.tables) == (whole.events, whole.writers, whole.tables)
    in_log = [str(p) for p in whole.problems if p.table is None]
    assert in_log and [str(p) for p in alone.problems] == in_log
    assert (alone.events, alone.writers) == (whole.events, whole.writers)
    order = list(dict.fromkeys(phases))
    assert order == [p for p in ("segments", "result files", "tables") if p in order], order
    assert list((tmp_path / "tmp").iterdir()) == []


def test_lines_written_after_the_checkpoint_are_scanned_too(db: Path) -> None:
    """The private rebuild reads the log only as far as the tables have; what a writer added
    since is scanned on its own, with the right line numbers, and is not a difference."""
    from joshreg.log.store.local import LocalStore
    from joshreg.operations.verify import verify_store

    behind = db.read_bytes()
    before = set((store(db) / "log").iterdir())
    with RunRegistry(db) as reg:  # a third writer, whose events the old tables never read
        sid = reg.create_session(FakeJobConfig(), experiment_name="later")
        reg.register_run(sid, "dddddddddddd", "m.josh", "cfg later", None, {"maxGrowth": 1.0})
        reg.complete_run(reg.start_run("dddddddddddd", session_id=sid), 0)
    (new,) = set((store(db) / "log").iterdir()) - before
    db.write_bytes(behind)  # the tables as they were: behind the log
    Path(f"{db}.wal").unlink(missing_ok=True)
    segment = f"log/{new.name}"
    ls = lines(db, segment)
    ls[1] = ls[1].replace(b'"dddddddddddd"', b'"eeeeeeeeeeee"')
    rewrite(db, segment, ls)
    con = duckdb.connect(str(db), read_only=True)
    seen: list[tuple[int, int]] = []
    try:
        shared = verify_store(
            LocalStore(store(db)),
            con,
            spatial=True,
            progress=lambda phase, done, total: seen.append((done, total)) if phase == "segments" else None,
        )
        alone = verify_store(LocalStore(store(db)), con, rebuild=False)
    finally:
        con.close()
    assert [(p.kind, p.file, p.line) for p in shared.problems] == [("checksum", segment, 2)], str(shared)
    assert [str(p) for p in alone.problems] == [str(p) for p in shared.problems]
    assert shared.events == alone.events > 0
    assert len(shared.tables) > len(PUBLIC_TABLES)
    # Progress over the rebuild's read and then the scan of the rest: one rising count of bytes.
    size = sum(f.stat().st_size for f in (store(db) / "log").iterdir())
    assert seen[-1] == (size, size) and seen[0][0] < seen[-1][0]
    assert all(a[0] < b[0] and b[0] <= b[1] for a, b in pairwise(seen)), seen  # no repeats


@fault
def test_a_table_changed_behind_the_logs_back_is_named_with_the_row(db: Path, capsys) -> None:
    con = duckdb.connect(str(db))
    con.execute("UPDATE job_runs SET exit_code = 99 WHERE exit_code = 3")
    con.close()
    report = verify(db)
    assert [(p.kind, p.table) for p in report.problems] == [("projection-differs", "job_runs")], str(report)
    message = report.problems[0].message
    assert "1 row not in a rebuild, 1 missing" in message and "exit_code 99 (rebuild: 3)" in message
    code, out, _ = cli(capsys, "verify", db)
    assert code == 1 and "table job_runs: projection-differs: " in out and "joshreg rebuild" in out
    code, out, _ = cli(capsys, "verify", db, "--no-rebuild-check", "--json")
    assert code == 0 and json.loads(out)["tables"] == []
    code, _, _ = cli(capsys, "rebuild", db)
    assert code == 0 and verify(db).ok


@fault
def test_cell_ids_numbered_differently_are_only_a_warning(db: Path, capsys) -> None:
    con = duckdb.connect(str(db))
    con.execute("UPDATE cell_data SET cell_id = cell_id + 1000")
    con.close()
    report = verify(db)
    assert report.ok and [(w.kind, w.table) for w in report.warnings] == [("cell-ids-differ", "cell_data")]
    code, out, _ = cli(capsys, "verify", db)
    assert code == 0 and "table cell_data: cell-ids-differ: " in out


def test_problems_are_structured_for_json(db: Path, capsys) -> None:
    commit(db, 4).write_bytes(b"not json\n")
    code, out, _ = cli(capsys, "verify", db, "--json")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False
    found = [p for p in data["problems"] if p["kind"] == "label-commit"]
    assert found and found[0]["file"] == "labels/00000000000000000004.json" and found[0]["line"] == 1
    assert VerifyProblem(**{k: v for k, v in found[0].items()}).where.endswith(".json:1")


def _chunk_cases() -> dict[str, list]:
    from joshreg.log.events import ResultsLoaded, RunCompleted, SegmentSealed

    def done(seq: int, writer: str = "w1") -> RunCompleted:
        return RunCompleted(run_id=f"r{seq}", exit_code=0, writer=writer, seq=seq, event_id=f"e{writer}{seq}")

    load = ResultsLoaded(
        run_id="r1",
        run_hash="h",
        blob="results/x.parquet",
        blob_sha256="ab",
        source_path="x.csv",
        source_sha256="cd",
        row_count=1,
        writer="w1",
        seq=3,
        event_id="load",
    )
    seal = SegmentSealed(writer="w1", seq=4, event_id="seal")
    return {
        "plain": [done(1), done(2), done(3)],
        "sealed": [done(1), done(2), done(3), seal],
        "a result load": [done(1), done(2), load, seal],
        "a damaged line": [done(1), None, done(3)],
        "two writers": [done(1), done(1, "w2"), done(2)],
        "a seal only": [seal],
    }


@pytest.mark.parametrize("case", list(_chunk_cases()))
def test_recording_a_whole_chunk_at_once_remembers_what_the_event_loop_does(case: str, monkeypatch) -> None:
    """verify records the common chunk (one writer's events, a seal at most at its end) with
    C-level maps; whatever the chunk, what it remembers must be what the loop remembers."""
    import joshreg.operations.verify_log as verify_module

    def record(whole: bool) -> tuple:
        scan, report = verify_module.Scan(), VerifyReport("x")
        index = scan.index("log/w1.jsonl")
        with monkeypatch.context() as m:
            if not whole:
                m.setattr(verify_module, "_record_whole", lambda *a: False)
            verify_module._record([], set(), _chunk_cases()[case], "log/w1.jsonl", index, 10, scan, report)
        occ = {w: list(o) for w, o in scan.by_writer.items()}
        return occ, scan.seals, [(x.blob, x.line) for x in scan.loads], report.events

    assert record(True) == record(False)
    assert record(True)[3] == sum(
        1 for e in _chunk_cases()[case] if e is not None and type(e).__name__ != "SegmentSealed"
    )
