"""Compaction: finished segments become Parquet, and nothing a reader sees changes.

The template store is written by a child process, so its writers have exited: three closed
(sealed) ones and one killed without closing (abandoned). Crash tests kill a real compacting
process at each durable step and check that every event is still projected exactly once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import duckdb
import pytest

from joshreg import LogDamageWarning, RunRegistry
from joshreg.cli.app import main
from joshreg.log.events import RunCompleted
from joshreg.log.store import LocalStore
from joshreg.log.store.compacted import container_metadata
from joshreg.log.writer import EventWriter
from joshreg.operations.compaction import compact_store
from joshreg.projection.projector import Projector
from joshreg.projection.tables import EVENT_TABLE_NAMES, EVENT_TABLES, PUBLIC_TABLES

BUILD = textwrap.dedent(
    """
    import os
    import sys
    from pathlib import Path
    from joshreg import CellDataLoader, RunRecorder, RunRegistry
    from joshreg.testing.registries import FakeJobConfig
    from joshreg.log.events import RunCompleted, RunStarted
    from joshreg.log.store import LocalStore
    from joshreg.log.writer import EventWriter

    EXPORT = (
        "position.x,position.y,position.longitude,position.latitude,avg.height,status,step,replicate\\n"
        "0,0,-116.0,34.0,1.5,alive,0,0\\n"
        "1,0,-116.1,34.1,,,1,0\\n"
    )
    root = Path(sys.argv[1])
    db = root / "sweep.duckdb"
    hashes = [f"{i:012x}" for i in range(6)]
    with RunRegistry(db, enable_spatial=False) as reg:  # writer 1: sealed by close()
        sid = reg.create_session(FakeJobConfig(replicates=2), experiment_name="compaction")
        for i, h in enumerate(hashes):
            reg.register_run(sid, h, "m.josh", f"cfg {i}", None, {"maxGrowth": 1.5 * i, "mode": f"m{i % 2}"})
        runs = [reg.start_run(h, session_id=sid, replicate=r) for h in hashes for r in range(2)]
        for i, rid in enumerate(runs):
            reg.complete_run(rid, i % 3, None if i % 3 == 0 else "boom")
            reg.register_output(rid, "csv", f"out_{i}.csv")
        reg.label_run(hashes[0], "baseline")
        (root / "out_0.csv").write_text(EXPORT)
        CellDataLoader(reg).load_csv(root / "out_0.csv", runs[0], hashes[0])
    with RunRegistry(db, enable_spatial=False) as reg:  # writer 2: sealed
        reg.update_session_status(sid, "completed")
        reg.label_run(hashes[1], "baseline", force=True)
        (root / "out_1.csv").write_text(EXPORT.replace("alive", "dead"))
        CellDataLoader(reg).load_csv(root / "out_1.csv", runs[2], hashes[1])
    with RunRecorder(db, session_id=sid, durability="none") as rec:  # writer 3: a worker, sealed
        for n in range(200):
            rid = rec.start_run(hashes[n % 6], replicate=n)
            rec.complete_run(rid, 0)
    w = EventWriter(LocalStore(root / "sweep.events"), durability="none")  # writer 4: killed
    for n in range(50):
        w.append(RunStarted(run_id=f"killed-{n}", run_hash=hashes[n % 6], session_id=sid))
        w.append(RunCompleted(run_id=f"killed-{n}", exit_code=9))
    w.publish()
    os._exit(0)  # no close(), no atexit: the last segment stays unsealed
    """
)

# Compacting in a child that dies right after one durable step of the first segment:
# (a) the temporary Parquet is written and fsynced, (b) it is linked to its name, (c) the JSONL
# is unlinked. ``os._exit`` skips every cleanup, as a kill would.
CRASH = textwrap.dedent(
    """
    import os
    import sys
    from joshreg.operations.compaction import compact_store
    from joshreg.log.store import LocalStore

    root, step = sys.argv[1], sys.argv[2]
    real_link, real_unlink = os.link, os.unlink

    def link(src, dst, *args, **kwargs):
        if "/compacted/" in str(dst):
            if step == "temp-written":
                os._exit(42)
            real_link(src, dst, *args, **kwargs)
            if step == "renamed":
                os._exit(42)
            return
        real_link(src, dst, *args, **kwargs)

    def unlink(path, *args, **kwargs):
        real_unlink(path, *args, **kwargs)
        if step == "deleted" and str(path).endswith(".jsonl"):
            os._exit(42)

    os.link, os.unlink = link, unlink
    compact_store(LocalStore(root), abandoned_after=0, min_bytes=0)
    os._exit(0)
    """
)
STEPS = ("temp-written", "renamed", "deleted")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template")
    subprocess.run([sys.executable, "-c", BUILD, str(root)], check=True, timeout=120)
    return root


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    """A private copy of the template (DuckDB file up to date with the store, and the store)."""
    shutil.copy(template / "sweep.duckdb", tmp_path / "sweep.duckdb")
    shutil.copytree(template / "sweep.events", tmp_path / "sweep.events")
    return tmp_path / "sweep.duckdb"


def events(db: Path) -> Path:
    return db.with_suffix(".events")


def jsonl(db: Path) -> list[str]:
    return sorted(p.name for p in (events(db) / "log").glob("*.jsonl"))


def parquet(db: Path) -> list[str]:
    return sorted(p.name for p in (events(db) / "compacted").glob("*.parquet"))


TABLES = (*PUBLIC_TABLES, *EVENT_TABLE_NAMES, "log_problems")


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Every public table, event table (segment and line included) and problem, as sorted rows."""
    return {t: sorted(repr(r) for r in con.execute(f"SELECT * FROM {t}").fetchall()) for t in TABLES}


def rebuilt(store_path: Path) -> dict[str, list[str]]:
    """The tables a fresh rebuild of the store gives (damage it warns of is in ``log_problems``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LogDamageWarning)
        reg = RunRegistry(":memory:", events_path=store_path, enable_spatial=False)
    with reg:
        assert reg.conn is not None
        return snapshot(reg.conn)


def event_count(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    return con.execute("SELECT count(*), count(DISTINCT event_id) FROM event_log").fetchone()


# --- sealing ----------------------------------------------------------------------------------


def test_close_seals_the_segment_once_and_the_seal_is_no_event(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    w = EventWriter(store, durability="none")
    w.append_many(RunCompleted(run_id=f"r{i}", exit_code=0) for i in range(3))
    first = w.segment
    w.close()
    w.close()  # nothing more
    lines = (tmp_path / "s" / first).read_bytes().splitlines()
    assert len(lines) == 4 and json.loads(lines[-1])["type"] == "segment.sealed" and w.sealed
    after = w.append(RunCompleted(run_id="later", exit_code=0))  # a new segment, never the sealed one
    assert w.segment != first and after.seq == 1 and not w.sealed
    w.close()
    with RunRegistry(":memory:", events_path=tmp_path / "s", enable_spatial=False) as reg:
        assert reg.query("SELECT count(*) FROM event_log").fetchone() == (4,)
        assert reg.query("SELECT sum(last_seq) FROM joshreg_writers").fetchone() == (4 + 2,)
    EventWriter(store).close()  # a writer that wrote nothing writes no seal either
    assert len(store.segments()) == 2


# --- what compaction does ---------------------------------------------------------------------


def test_a_multi_writer_store_compacts_to_identical_tables(db: Path, tmp_path: Path) -> None:
    shutil.copytree(events(db), tmp_path / "uncompacted.events")
    before = rebuilt(tmp_path / "uncompacted.events")
    segments = jsonl(db)
    assert len(segments) == 4
    with RunRegistry(db, enable_spatial=False) as reg:
        assert reg.conn is not None
        up_to_date = snapshot(reg.conn)
        report = reg.compact(abandoned_after=0, min_bytes=0)
        assert report.ok, str(report)
        assert sorted(c.reason for c in report.compacted) == ["abandoned", "sealed", "sealed", "sealed"]
        assert jsonl(db) == [] and len(parquet(db)) == 4
        assert reg.sync().events == 0  # an up-to-date registry finds nothing new
        assert snapshot(reg.conn) == up_to_date
        check = reg.verify()
        assert check.ok and not check.warnings, str(check)
    assert up_to_date == before
    assert rebuilt(events(db)) == before  # same rows, down to the segment and line of each event


def test_a_rebuild_from_clean_parquet_decodes_no_line_in_python(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = rebuilt(events(db))
    compact_store(LocalStore(events(db)), abandoned_after=0, min_bytes=0)
    metas = [container_metadata(str(p)) for p in (events(db) / "compacted").iterdir()]
    assert len(metas) == 4 and all(m["clean"] == b"1" for m in metas)

    def no_decoding(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a clean compacted segment was decoded line by line")

    monkeypatch.setattr("joshreg.log.reader.decode_chunk", no_decoding)  # the reader's only decoding
    assert rebuilt(events(db)) == before


def test_live_and_unknown_segments_are_left_alone(db: Path, config: Any) -> None:
    store = LocalStore(events(db))
    with RunRegistry(db, enable_spatial=False) as reg:  # this process: alive, not sealed
        reg.create_session(config, experiment_name="live")
        reg.flush()
        mine = f"log/{reg._writer.writer_id}.jsonl"
        other_host = "log/20260101T000000-elsewhere-4242-abcdef.jsonl"
        store.append(other_host, (events(db) / mine).read_bytes())
        report = reg.compact(min_bytes=0)  # the killed writer's segment is not an hour old yet
        reasons = dict(report.skipped)
        assert "still running" in reasons[mine]
        assert "another host" in reasons[other_host]
        killed = [s for s, why in report.skipped if "exited less than" in why]
        assert len(killed) == 1
        assert sorted(c.reason for c in report.compacted) == ["sealed"] * 3
        assert {mine, other_host, *killed} <= {f"log/{n}" for n in jsonl(db)}
        reg.create_session(config, experiment_name="still writing")
        assert {s.experiment_name for s in reg.list_sessions()} >= {"live", "still writing"}
    # Once closed, this registry's segment is sealed and compacts; the foreign one never does.
    report = compact_store(store, min_bytes=0)
    assert [c.segment for c in report.compacted] == [mine]
    assert jsonl(db) == sorted(Path(s).name for s in (other_host, *killed))


def test_small_segments_stay_jsonl_by_default(db: Path) -> None:
    report = compact_store(LocalStore(events(db)), abandoned_after=0)
    small = [s for s, why in report.skipped if why.startswith("smaller than")]
    assert len(small) + len(report.compacted) == 4 and small and report.compacted
    assert all(c.jsonl_bytes >= 64 * 1024 > c.parquet_bytes for c in report.compacted)


def test_compacting_twice_changes_nothing_more(db: Path) -> None:
    first = compact_store(LocalStore(events(db)), abandoned_after=0, min_bytes=0)
    files = {p: p.read_bytes() for p in events(db).rglob("*") if p.is_file()}
    second = compact_store(LocalStore(events(db)), abandoned_after=0, min_bytes=0)
    assert len(first.compacted) == 4 and second.compacted == [] and second.ok
    assert {p: p.read_bytes() for p in events(db).rglob("*") if p.is_file()} == files


def test_a_dry_run_changes_nothing(db: Path) -> None:
    files = sorted(p for p in events(db).rglob("*") if p.is_file())
    report = compact_store(LocalStore(events(db)), abandoned_after=0, min_bytes=0, dry_run=True)
    assert len(report.compacted) == 4 and report.dry_run
    assert sorted(p for p in events(db).rglob("*") if p.is_file()) == files


def test_a_half_read_segment_is_finished_from_its_parquet(db: Path, tmp_path: Path) -> None:
    store = LocalStore(events(db))
    w = EventWriter(store, durability="none")
    with RunRegistry(db, enable_spatial=False) as reg:
        w.append_many(RunCompleted(run_id=f"half-{i}", exit_code=0) for i in range(100))
        assert reg.sync().events == 100  # read the first half while the writer is live
        w.append_many(RunCompleted(run_id=f"half-{i}", exit_code=1) for i in range(100, 250))
        w.close()
        report = compact_store(store, min_bytes=0)
        assert w.segment in [c.segment for c in report.compacted]
        assert not (events(db) / w.segment).exists()
        assert reg.sync().events == 150  # the rest, from the Parquet, once
        assert reg.conn is not None
        n, distinct = event_count(reg.conn)
        assert n == distinct
        half = "SELECT count(*) FROM events_run_completed WHERE run_id LIKE 'half-%'"
        assert reg.query(half).fetchone() == (250,)
        assert snapshot(reg.conn) == rebuilt(events(db))


@pytest.mark.slow  # fault injection
def test_a_damaged_segment_compacts_losslessly_and_still_reports_its_damage(db: Path) -> None:
    seg = next(p for p in (events(db) / "log").iterdir() if b'"cfg 3"' in p.read_bytes())
    seg.write_bytes(seg.read_bytes().replace(b'"cfg 3"', b'"cfg X"'))  # checksum no longer fits
    before = rebuilt(events(db))
    assert before["log_problems"] and "checksum" in before["log_problems"][0]
    report = compact_store(LocalStore(events(db)), abandoned_after=0, min_bytes=0)
    assert report.ok and len(report.compacted) == 4
    name = next(c.claim for c in report.compacted if c.segment == f"log/{seg.name}")
    assert container_metadata(str(events(db) / name))["clean"] == b"0"
    assert rebuilt(events(db)) == before  # read line by line, with the same problems


@pytest.mark.slow  # fault injection
def test_an_abandoned_segment_keeps_its_torn_tail_and_its_verdict(db: Path) -> None:
    killed = next(p for p in (events(db) / "log").iterdir() if b"killed-0" in p.read_bytes())
    with killed.open("ab") as f:
        f.write(b'{"type":"run.completed","run_id":"torn')  # the kill came mid-write
    tables = rebuilt(events(db))
    with RunRegistry(db, enable_spatial=False) as reg:
        before = [(p.kind, p.file, p.line) for p in reg.verify().problems]
    assert [k for k, _, _ in before] == ["torn-tail"]
    report = compact_store(LocalStore(events(db)), abandoned_after=0, min_bytes=0)
    assert f"log/{killed.name}" in [c.segment for c in report.compacted if c.reason == "abandoned"]
    assert rebuilt(events(db)) == tables
    with pytest.warns(LogDamageWarning, match=f"1 in log/{killed.name}"):  # compacted: it never grows
        reg = RunRegistry(db, enable_spatial=False)
    with reg:
        assert [(p.kind, p.file, p.line) for p in reg.verify().problems] == before


# --- verify knows compacted segments ------------------------------------------------------------


@pytest.mark.slow  # fault injection
def test_a_jsonl_left_beside_its_parquet_is_a_warning_and_a_differing_one_damage(db: Path) -> None:
    seg = jsonl(db)[0]
    saved = (events(db) / "log" / seg).read_bytes()
    compact_store(LocalStore(events(db)), abandoned_after=0, min_bytes=0)
    (events(db) / "log" / seg).write_bytes(saved)  # as if the delete never happened
    with RunRegistry(db, enable_spatial=False) as reg:
        report = reg.verify()
        assert report.ok, str(report)
        assert [(w.kind, w.file) for w in report.warnings] == [("compaction-unfinished", f"log/{seg}")]
        assert reg.sync().events == 0
    changed = saved[:20] + b"X" + saved[21:]
    (events(db) / "log" / seg).write_bytes(changed)
    with RunRegistry(db, enable_spatial=False) as reg:
        report = reg.verify(rebuild_check=False)
        assert "compacted-differs" in {p.kind for p in report.problems}, str(report)
    assert not compact_store(LocalStore(events(db)), min_bytes=0).ok  # it refuses to delete either copy
    assert (events(db) / "log" / seg).read_bytes() == changed


@pytest.mark.slow  # fault injection
def test_a_damaged_parquet_is_named_and_does_not_stop_the_rest(db: Path, tmp_path: Path) -> None:
    report = compact_store(LocalStore(events(db)), abandoned_after=0, min_bytes=0)
    victim = events(db) / report.compacted[0].claim
    victim.write_bytes(victim.read_bytes()[:-100])  # cut short, like an incomplete copy
    with pytest.warns(LogDamageWarning, match=report.compacted[0].segment):
        problems = RunRegistry(":memory:", events_path=events(db), enable_spatial=False)
    try:
        kinds = problems.query("SELECT DISTINCT kind, segment FROM log_problems").fetchall()
        assert ("unreadable", report.compacted[0].segment) in kinds
        assert problems.query("SELECT count(*) FROM events_run_started").fetchone()[0] > 0
    finally:
        problems.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LogDamageWarning)
        reg = RunRegistry(db, enable_spatial=False)
    with reg:
        check = reg.verify(rebuild_check=False)
        assert not check.ok and {p.kind for p in check.problems} & {"unreadable", "compacted-damaged"}


@pytest.mark.slow  # fault injection
def test_a_flipped_bit_in_a_parquet_page_is_caught_not_projected(db: Path) -> None:
    """A rebuild reads compacted segments only through checked pages: a bit flipped inside the
    lines' data (silently different rows for a reader that skips page checksums, as DuckDB's
    own Parquet reader does) leaves that segment's events out and names it."""
    import pyarrow.parquet as pq

    before = rebuilt(events(db))
    report = compact_store(LocalStore(events(db)), abandoned_after=0, min_bytes=0)
    victim = max(report.compacted, key=lambda c: c.parquet_bytes)
    path = events(db) / victim.claim
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(0)  # the ``line`` column
    assert chunk.path_in_schema == "line"
    data = bytearray(path.read_bytes())
    data[chunk.data_page_offset + chunk.total_compressed_size // 2] ^= 0x10
    path.write_bytes(bytes(data))
    after = rebuilt(events(db))
    assert any(victim.segment in row for row in after["log_problems"])
    for table in after:
        if table != "log_problems" and table.startswith("events_"):
            assert set(after[table]) <= set(before[table]), table  # rows left out, none changed
    assert sum(map(len, (after[t] for t in after if t.startswith("events_")))) < sum(
        map(len, (before[t] for t in before if t.startswith("events_")))
    )


# --- crashes at every step ---------------------------------------------------------------------


@pytest.mark.slow  # other processes
@pytest.mark.parametrize("step", STEPS)
def test_a_compaction_killed_at_any_step_loses_and_duplicates_nothing(
    db: Path, tmp_path: Path, step: str
) -> None:
    shutil.copytree(events(db), tmp_path / "uncompacted.events")
    want = rebuilt(tmp_path / "uncompacted.events")
    crash = subprocess.run(
        [sys.executable, "-c", CRASH, str(events(db)), step], timeout=120, capture_output=True, text=True
    )
    assert crash.returncode == 42, crash.stderr
    leftovers = [p.name for p in (events(db) / "compacted").iterdir() if p.name.startswith(".tmp-")]
    # A temporary file is linked to its name, then unlinked: killed between, it is left too.
    assert len(leftovers) == (step != "deleted")
    assert len(parquet(db)) == (step != "temp-written")
    assert len(jsonl(db)) == 4 - (step == "deleted")
    with RunRegistry(db, enable_spatial=False) as reg:  # was up to date before the crash
        assert reg.sync().events == 0
        assert reg.conn is not None
        assert snapshot(reg.conn) == want
        report = reg.verify()
        assert report.ok, str(report)
        assert {w.kind for w in report.warnings} <= {"compaction-unfinished"}
        assert bool(report.warnings) == (step == "renamed")
    assert rebuilt(events(db)) == want  # a fresh rebuild sees each event once
    con = duckdb.connect()
    Projector(con, LocalStore(events(db))).rebuild()
    n, distinct = event_count(con)
    con.close()
    assert n == distinct == sum(len(want[t]) for t, _ in EVENT_TABLES.values())
    # Compacting again finishes the job; the leftover temporary file goes once old enough.
    again = compact_store(LocalStore(events(db)), abandoned_after=0, min_bytes=0, temp_grace=0)
    assert again.ok and again.temporaries_removed == len(leftovers)
    assert jsonl(db) == [] and len(parquet(db)) == 4
    assert not [p for p in (events(db) / "compacted").iterdir() if p.name.startswith(".tmp-")]
    assert rebuilt(events(db)) == want
    with RunRegistry(db, enable_spatial=False) as reg:
        assert reg.sync().events == 0
        report = reg.verify()
        assert report.ok and not report.warnings, str(report)


# --- the command --------------------------------------------------------------------------------


def test_the_cli_compacts_and_reports(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["compact", str(db), "--dry-run", "--abandoned-after", "0", "--min-bytes", "0"])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("would compact 4 segments") and len(jsonl(db)) == 4
    code = main(["compact", str(db), "--json", "--min-bytes", "0"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["ok"] and len(data["compacted"]) == 3
    [skipped] = data["skipped"]
    assert skipped["reason"].startswith("not sealed, its writer exited")
    code = main(["compact", str(db), "--abandoned-after", "0", "--min-bytes", "0"])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("compacted 1 segments") and "abandoned: log/" in out
    assert jsonl(db) == [] and os.listdir(events(db) / "compacted")
