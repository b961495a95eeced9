"""Merging registries: a set union, the same tables whatever the order, repetition or nesting.

The registries are recorded by separate processes, as on separate machines: A; B, a copy of
A's store taken midway that then went its own way (so B shares A's segments and the start of
its label log, and both logs grow apart); C, recorded independently, sharing one run hash.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from joshreg import LabelConflictError, LogDamageWarning, RunRegistry, merge_stores
from joshreg.cli.app import main
from joshreg.log.clock import HybridClock
from joshreg.log.codec import encode_commit, frame
from joshreg.log.events import LabelAssigned, LabelCommit, LabelReleased
from joshreg.log.labels import LabelLog, LabelState
from joshreg.log.labelstreams import IMPORTED, LabelFold, LabelStreams
from joshreg.log.store import LocalStore, MemoryStore
from joshreg.operations.merge import merge_store
from joshreg.projection.tables import EVENT_TABLE_NAMES, PUBLIC_TABLES
from joshreg.testing.registries import dump_tables

EVENTS = Path(__file__).resolve().parents[1] / "events"

# A registry process: apply the operations given as JSON to the registry at argv[1].
BUILDER = """
import json, sys
from joshreg import CellDataLoader, RunRegistry
from joshreg.testing.registries import FakeJobConfig

reg = RunRegistry(sys.argv[1], enable_spatial=False)
for op, *args in json.loads(sys.argv[2]):
    if op == "session":
        reg.create_session(FakeJobConfig(), experiment_name=args[1], session_id=args[0])
    elif op == "register":
        sid, h, params = args
        reg.register_run(sid, h, "model.josh", f"config of {h}", None, params)
    elif op == "run":
        h, sid, rid, csv = args
        rec = reg.recorder(sid)
        rec.start_run(h, run_id=rid)
        rec.complete_run(rid, 0)
        CellDataLoader(reg).load_csv(csv, rid, h)
    elif op == "label":
        reg.label_run(args[0], args[1], force=bool(args[2:] and args[2]))
reg.close()
"""

CSV = (
    "position.x,position.y,position.longitude,position.latitude,height,step,replicate\n"
    "0,0,-116.0,34.0,{a},0,0\n"
    "1,0,-116.1,34.1,{b},1,0\n"
    "0,1,-116.0,34.2,{c},1,1\n"
)


def record(db: Path, ops: list[list[Any]]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", BUILDER, str(db), json.dumps(ops)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


def csv(folder: Path, name: str, a: float, b: float, c: float) -> str:
    path = folder / name
    path.write_text(CSV.format(a=a, b=b, c=c))
    return str(path)


def store(db: Path) -> Path:
    return db.with_suffix(".events")


def copy_registry(src: Path, dst: Path) -> Path:
    """A copy of a registry's event store (its tables are rebuilt on open)."""
    shutil.copytree(store(src), store(dst))
    return dst


@pytest.fixture(scope="module")
def machines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Registries A, B and C, recorded by five processes in this order."""
    d = tmp_path_factory.mktemp("machines")
    a, b, c = d / "a.duckdb", d / "b.duckdb", d / "c.duckdb"
    record(
        a,
        [
            ["session", "sa", "alpha-sweep"],
            ["register", "sa", "h1", {"x": 1}],
            ["register", "sa", "h2", {"x": 2}],
            ["run", "h1", "sa", "ra1", csv(d, "ra1.csv", 1.0, 2.0, 3.0)],
            ["label", "h1", "best"],
            ["label", "h2", "alpha"],
        ],
    )
    copy_registry(a, b)  # B starts as a copy of A, then both go on
    record(a, [["label", "h2", "gamma"]])
    record(
        b,
        [
            ["session", "sb", "beta-sweep"],
            ["register", "sb", "h3", {"x": 3}],
            ["register", "sb", "h2", {"x": 2}],
            ["run", "h3", "sb", "rb1", csv(d, "rb1.csv", 4.0, 5.0, 6.0)],
            ["label", "h3", "best", True],
            ["label", "h2", "beta"],
        ],
    )
    record(
        c,
        [
            ["session", "sc", "gamma-sweep"],
            ["register", "sc", "h1", {"x": 1}],
            ["register", "sc", "h4", {"x": 4, "mode": "wet"}],
            ["run", "h4", "sc", "rc1", csv(d, "rc1.csv", 7.0, 8.0, 9.0)],
            ["label", "h4", "best"],
            ["label", "h1", "control"],
        ],
    )
    return {"a": a, "b": b, "c": c}


PUBLIC = (*PUBLIC_TABLES, "log_problems")


def tables(db: Path, *, cell_ids: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Every public and event table of the registry at ``db``, as ``dump_tables`` gives them."""
    skip = {"cell_data": frozenset({"geom"} if cell_ids else {"geom", "cell_id"})}
    with RunRegistry(db, enable_spatial=False) as reg:
        return dump_tables(reg, (*PUBLIC, *EVENT_TABLE_NAMES), skip=skip)


def fresh(db: Path, tmp: Path, name: str) -> Path:
    """The same event store under a new, empty DuckDB file: tables by a full rebuild."""
    target = tmp / f"{name}.duckdb"
    copy_registry(db, target)
    return target


@pytest.fixture(scope="module")
def merged(machines: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same three registries merged in several orders, twice, and as a merge of a merge."""
    d = tmp_path_factory.mktemp("merged")
    a, b, c = machines["a"], machines["b"], machines["c"]
    x1 = copy_registry(a, d / "x1.duckdb")
    merge_stores([b, c], x1)  # A <- B <- C
    x2 = copy_registry(c, d / "x2.duckdb")
    merge_stores([a, b], x2)  # C <- A <- B
    x3 = d / "x3.duckdb"
    merge_stores([c, b, a], x3)  # into a new registry
    y = copy_registry(b, d / "y.duckdb")
    merge_stores([c], y)
    x5 = copy_registry(a, d / "x5.duckdb")
    merge_stores([y], x5)  # a merge of a merge
    x4 = copy_registry(x1, d / "x4.duckdb")
    again = merge_stores([a, b, c, x3, x5], x4)  # everything once more
    assert not any(r.changed for r in again), [r.summary() for r in again]
    return {"x1": x1, "x2": x2, "x3": x3, "x4": x4, "x5": x5}


def test_every_merge_order_gives_the_same_tables(merged: dict[str, Path], tmp_path: Path) -> None:
    want = tables(fresh(merged["x1"], tmp_path, "ref"))
    assert want["log_problems"] == []
    for name in ("x2", "x3", "x4", "x5"):
        got = tables(fresh(merged[name], tmp_path, name))
        for table in want:
            assert got[table] == want[table], (name, table)


def test_a_conflicting_label_is_resolved_the_same_way_and_kept_in_the_history(
    merged: dict[str, Path],
) -> None:
    for path in merged.values():
        with RunRegistry(path, enable_spatial=False) as reg:
            # best: A gave it to h1, B (copied from A) forced it to h3, C gave it to h4 last.
            # h2: A relabelled it gamma, B beta (later): beta wins, gamma is released.
            assert reg.list_labels() == [("best", "h4"), ("beta", "h2"), ("control", "h1")]
            best = [(c.action, c.run_hash, c.previous_run_hash, c.reason) for c in reg.label_history("best")]
            assert best == [
                ("assigned", "h1", None, None),
                ("released", "h1", None, "force"),
                ("assigned", "h3", "h1", None),
                ("released", "h3", None, "merge"),
                ("assigned", "h4", "h3", None),
            ]
            h2 = [(c.action, c.label, c.reason) for c in reg.label_history(run_hash="h2")]
            assert h2 == [
                ("assigned", "alpha", None),
                ("released", "alpha", "relabel"),
                ("assigned", "gamma", None),
                ("released", "gamma", "merge"),
                ("assigned", "beta", None),
            ]
            assert [c.version for c in reg.label_history()] == sorted(c.version for c in reg.label_history())


def test_results_sessions_and_runs_are_the_union(merged: dict[str, Path]) -> None:
    with RunRegistry(merged["x1"], enable_spatial=False) as reg:
        assert {s.session_id for s in reg.list_sessions()} == {"sa", "sb", "sc"}
        got = reg.query(
            "SELECT run_id, run_hash, count(*), sum(height) FROM cell_data GROUP BY ALL ORDER BY 1"
        )
        assert got.fetchall() == [("ra1", "h1", 3, 6.0), ("rb1", "h3", 3, 15.0), ("rc1", "h4", 3, 24.0)]
        assert reg.query("SELECT count(*) FROM events_run_registered").fetchone()[0] == 6
        # h2 is registered in sa (A, and B's copy of A: one event) and in sb.
        assert reg.query(
            "SELECT session_id FROM session_configs WHERE run_hash = 'h2' ORDER BY 1"
        ).fetchall() == [
            ("sa",),
            ("sb",),
        ]
        assert [r.run_id for r in reg.get_runs_for_hash("h1")] == ["ra1"]


def test_merging_twice_or_into_itself_adds_nothing(
    merged: dict[str, Path], machines: dict[str, Path]
) -> None:
    x1 = merged["x1"]
    before = sorted(p.relative_to(store(x1)) for p in store(x1).rglob("*") if p.name != ".merge.lock")
    sizes = {p: p.stat().st_size for p in store(x1).rglob("*") if p.is_file()}
    assert not merge_store(x1, x1).changed
    assert not any(r.changed for r in merge_stores(list(machines.values()), x1))
    after = sorted(p.relative_to(store(x1)) for p in store(x1).rglob("*") if p.name != ".merge.lock")
    assert after == before
    assert {p: p.stat().st_size for p in store(x1).rglob("*") if p.is_file()} == sizes


def test_the_tables_caught_up_incrementally_equal_a_rebuild_and_verify(
    machines: dict[str, Path], tmp_path: Path
) -> None:
    target = copy_registry(machines["a"], tmp_path / "live.duckdb")
    with RunRegistry(target, enable_spatial=False) as reg:
        assert reg.list_labels() == [("best", "h1"), ("gamma", "h2")]
        reports = reg.merge_from(machines["b"])
        assert reports[0].changed and reports[0].problems == []
        assert reg.list_labels() == [("best", "h3"), ("beta", "h2")]
        reg.merge_from(machines["c"])
        assert reg.list_labels() == [("best", "h4"), ("beta", "h2"), ("control", "h1")]
        report = reg.verify()
        assert report.ok, str(report)
        assert report.label_commits == 3 + 4 + 2  # A's own log, B's branch of it, C's
    incremental = tables(target, cell_ids=False)
    assert incremental == tables(fresh(target, tmp_path, "rebuilt"), cell_ids=False)


def test_commits_older_than_those_projected_rewrite_the_label_rows(
    machines: dict[str, Path], tmp_path: Path
) -> None:
    target = copy_registry(machines["c"], tmp_path / "live.duckdb")  # C labelled last
    with RunRegistry(target, enable_spatial=False) as reg:
        assert reg.list_labels() == [("best", "h4"), ("control", "h1")]
        reg.merge_from(machines["a"])  # every commit of A orders before C's: positions move
        assert reg.list_labels() == [("best", "h4"), ("control", "h1"), ("gamma", "h2")]
        assert [c.label for c in reg.label_history()][:2] == ["best", "alpha"]  # A's first
        reg.merge_from(machines["b"])
        assert reg.list_labels() == [("best", "h4"), ("beta", "h2"), ("control", "h1")]
        assert reg.verify().ok
    assert tables(target, cell_ids=False) == tables(fresh(target, tmp_path, "rebuilt"), cell_ids=False)


def test_labelling_after_a_merge_sees_every_stream_and_goes_on_in_its_own(
    machines: dict[str, Path], tmp_path: Path
) -> None:
    target = copy_registry(machines["a"], tmp_path / "t.duckdb")
    merge_stores([machines["c"]], target)
    with RunRegistry(target, enable_spatial=False) as reg:
        with pytest.raises(LabelConflictError, match="already assigned to run h4"):
            reg.label_run("h1", "best")  # h4 holds it through C's stream
        reg.label_run("h1", "best", force=True)
        assert reg.list_labels() == [("best", "h1"), ("gamma", "h2")]
        last = reg.label_history()[-3:]
        assert [(c.action, c.label, c.run_hash, c.reason) for c in last] == [
            ("released", "best", "h4", "force"),
            ("released", "control", "h1", "relabel"),  # C's label on h1: a run holds one label
            ("assigned", "best", "h1", None),
        ]
        assert reg.verify().ok
    assert (store(target) / "labels" / f"{4:020d}.json").exists()  # A had 3 commits
    assert tables(target, cell_ids=False) == tables(fresh(target, tmp_path, "again"), cell_ids=False)


def test_a_store_that_never_merged_folds_to_its_own_label_log(tmp_path: Path) -> None:
    root = tmp_path / "golden.events"
    shutil.copytree(EVENTS / "golden-v1", root)
    own = LabelLog(LocalStore(root))
    recorded = own.refresh()
    streams = LabelStreams(LocalStore(root))
    applied, restarted = streams.refresh()
    assert not streams.merged and restarted is False
    assert [a.effective() for a in applied] == recorded
    assert not any(a.replanned for a in applied)


def _commit(version: int, hlc: int, prev: str, *actions: Any, event_id: str) -> tuple[bytes, str]:
    c = LabelCommit(version=version, event_id=event_id, writer="w", hlc=hlc, actor="t", actions=list(actions))
    return frame(encode_commit(c), prev)


def test_a_label_change_after_a_merge_is_ordered_after_a_clock_running_ahead() -> None:
    store = MemoryStore()
    ahead = 4_000_000_000_000_000_000  # a foreign host's clock, far in the future
    line, c1 = _commit(1, ahead, "00000000", LabelAssigned(label="best", run_hash="x"), event_id="e1")
    store.claim(f"{IMPORTED}/e1/{1:020d}.json", line)
    line, _ = _commit(
        2,
        ahead + 5,
        c1,
        LabelReleased(label="best", run_hash="x", reason="force"),
        LabelAssigned(label="best", run_hash="y", previous_run_hash="x"),
        event_id="e2",
    )
    store.claim(f"{IMPORTED}/e1/{2:020d}.json", line)
    log = LabelLog(store, clock=HybridClock(), writer="me")
    streams = LabelStreams(store, own=log)

    def take(state: LabelState) -> list[Any]:
        view = streams.view(state)
        assert view.holder == {"best": "y"}
        return [
            LabelReleased(label="best", run_hash="y", reason="force"),
            LabelAssigned(label="best", run_hash="z", previous_run_hash="y"),
        ]

    mine = log.commit(take)
    assert mine is not None and mine.hlc > ahead + 5
    fold = LabelStreams(store)
    applied, _ = fold.refresh()
    assert [a.commit.event_id for a in applied][-1] == mine.event_id
    assert fold.fold.state.holder == {"best": "z"}
    assert not any(a.replanned for a in applied)


def test_the_fold_does_not_depend_on_how_streams_are_stored() -> None:
    def c(v: int, hlc: int, label: str, run: str, eid: str) -> LabelCommit:
        return LabelCommit(
            version=v,
            event_id=eid,
            writer="w",
            hlc=hlc,
            actor="t",
            actions=[LabelAssigned(label=label, run_hash=run)],
        )

    shared = [c(1, 10, "a", "r1", "s1"), c(2, 20, "b", "r2", "s2")]
    left = [*shared, c(3, 35, "a", "r3", "l3")]
    right = [*shared, c(3, 30, "a", "r4", "r3"), c(4, 40, "c", "r3", "r4")]
    results = []
    for streams in (
        {"labels": ("s1", left), f"{IMPORTED}/s1": ("s1", right)},
        {"labels": ("s1", right), f"{IMPORTED}/s1~x": ("s1", left)},
        {f"{IMPORTED}/s1": ("s1", right), f"{IMPORTED}/s1~y": ("s1", left), "labels": ("", [])},
    ):
        fold = LabelFold()
        fold.run(streams, {})
        results.append(([(a.commit.event_id, a.actions) for a in fold.applied], fold.state.holder))
    assert results[0] == results[1] == results[2]
    events, holder = results[0]
    assert [e for e, _ in events] == ["s1", "s2", "r3", "l3", "r4"]  # the shared start once
    # l3 (a -> r3) meets a held by r4 from the other branch: it takes it, r4 released (merge);
    # r4 (c -> r3) then moves r3 from a to c.
    assert holder == {"b": "r2", "c": "r3"}


def test_a_segment_copy_that_is_a_prefix_is_extended_and_torn_lines_wait(tmp_path: Path) -> None:
    src_db, dst_db = tmp_path / "src.duckdb", tmp_path / "dst.duckdb"
    record(src_db, [["session", "s1", "e"], ["register", "s1", "h1", {"x": 1}], ["register", "s1", "h2", {}]])
    copy_registry(src_db, dst_db)
    (segment,) = (store(dst_db) / "log").glob("*.jsonl")
    lines = segment.read_bytes().splitlines(keepends=True)
    segment.write_bytes(b"".join(lines[:1]))  # the copy was taken after one line
    torn = store(src_db) / "log" / "zz-torn.jsonl"
    torn.write_bytes(lines[0] + lines[1][:20])  # a live writer mid-line
    report = merge_store(src_db, dst_db)
    assert report.segments_extended == 1 and report.segments_new == 1 and report.problems == []
    assert report.events == len(lines) - 1 + 1
    assert segment.read_bytes() == b"".join(lines)
    assert (store(dst_db) / "log" / "zz-torn.jsonl").read_bytes() == lines[0]
    torn.write_bytes(lines[0] + lines[1])  # the line completed: the next merge brings it
    assert merge_store(src_db, dst_db).segments_extended == 1
    assert (store(dst_db) / "log" / "zz-torn.jsonl").read_bytes() == lines[0] + lines[1]


def test_diverging_copies_of_a_segment_are_reported_and_both_kept(tmp_path: Path) -> None:
    src_db, dst_db = tmp_path / "src.duckdb", tmp_path / "dst.duckdb"
    record(src_db, [["session", "s1", "e"], ["register", "s1", "h1", {"x": 1}]])
    copy_registry(src_db, dst_db)
    (segment,) = (store(src_db) / "log").glob("*.jsonl")
    lines = segment.read_bytes().splitlines(keepends=True)
    assert len(lines) == 3 and b"config of h1" in lines[1]  # created, registered, sealed
    theirs = store(dst_db) / "log" / segment.name
    theirs.write_bytes(b"".join(lines[:2]))  # the target's copy stops before the seal
    segment.write_bytes(lines[0] + lines[1].replace(b"config of h1", b"config of hX") + lines[2])
    report = merge_store(src_db, dst_db)
    assert len(report.problems) == 1 and "differ from line 2" in report.problems[0]
    assert theirs.read_bytes() == b"".join(lines[:2])  # the target's copy stays
    (kept,) = (store(dst_db) / "log").glob("*.diverged-*.jsonl")
    assert kept.read_bytes() == lines[2]  # only the event the target lacked
    assert report.events == 1 and report.segments_new == 1
    again = merge_store(src_db, dst_db)  # reported again, nothing copied twice
    assert not again.changed and len(again.problems) == 1
    with pytest.warns(LogDamageWarning, match=r"\.diverged-"):  # the kept copy breaks its chain
        reg = RunRegistry(dst_db, enable_spatial=False)
    with reg:  # every event once, config as recorded
        assert reg.get_config_by_hash("h1").config_content == "config of h1"
        assert reg.query("SELECT count(*) FROM events_run_registered").fetchone()[0] == 1


def test_cli_merge_prints_what_it_copied_and_is_idempotent(
    machines: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "combined.duckdb"
    args = ["merge", str(machines["a"]), str(machines["c"]), "--into", str(target)]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("merged ") and "events)" in out[0] and "label commits" in out[0]
    assert "result files" in out[0] and out[1].startswith("merged ")
    assert out[-1] == f"{target}: tables up to date"
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": ", 1)[1] for line in out[:2]] == [f"nothing new for {store(target)}"] * 2
    assert main([*args, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["changed"] for r in rows] == [False, False] and rows[0]["problems"] == []
    with RunRegistry(target, enable_spatial=False) as reg:
        assert reg.list_labels() == [("best", "h4"), ("control", "h1"), ("gamma", "h2")]


def test_cli_merge_of_a_missing_source_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["merge", str(tmp_path / "nope.duckdb"), "--into", str(tmp_path / "t.duckdb")]) == 2
    assert "no event store" in capsys.readouterr().err


def test_merge_works_through_the_store_interface_between_backends(tmp_path: Path) -> None:
    """merge_into knows stores, not folders: an in-memory registry's log merges into a store
    on disk and back, and the two registries then show the same tables."""
    from joshreg.log.store import LocalStore
    from joshreg.operations.merge import merge_into
    from joshreg.testing.registries import FakeJobConfig, table_differences

    with RunRegistry(":memory:") as mem:
        sid = mem.create_session(FakeJobConfig(), experiment_name="in memory", session_id="mem-s1")
        mem.register_run(sid, "aaaaaaaaaaaa", "m.josh", "x = 1", None, {"x": 1})
        mem.label_run("aaaaaaaaaaaa", "best")
        mem.flush()
        disk = LocalStore(tmp_path / "disk.events")
        report = merge_into(mem.store, disk)
        assert report.segments_new == 1 and report.label_commits == 1 and report.claims == 1
        assert not merge_into(mem.store, disk).changed  # a union: nothing new the second time
        with RunRegistry(tmp_path / "disk.duckdb", events_path=tmp_path / "disk.events") as reg:
            assert table_differences(dump_tables(reg), dump_tables(mem)) == []
        disk.close()
