"""The log's promises under faults, with real processes (multiprocessing "spawn"), bounded in time.

Writers run ``workers.stream_runs``: run ``n`` of worker ``w`` is a ``run.started`` event with
run id ``w<w>-<n>``, appended in random groups; after each ``publish()``/``flush()`` returns, the
worker notes the acknowledged runs in a side file (see its docstring). Faults are injected
inside the worker (``workers.Disk`` wraps ``os.write``/``os.fsync``; the clock is patched) or
by the test (SIGKILL, truncating or copying segments). Each test then checks, against the
notes and the bytes of the segments, that

- every acknowledged run (published, or durable with every byte fsynced) is projected once;
- of a group whose outcome is unknown (killed, failed) only a prefix of whole events is
  projected, never a torn line: each segment projects exactly its complete lines;
- ``registry.verify()`` names what happened, by kind, file and line.

Sizes are moderate so that the file runs in well under a minute on two cores.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import shutil
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from joshreg import RunRegistry
from joshreg.errors import LogDamageWarning
from joshreg.testing.registries import FakeJobConfig

try:
    from . import test_concurrency as conc
    from . import workers
except ImportError:
    import test_concurrency as conc  # type: ignore[no-redef]
    import workers  # type: ignore[no-redef]

pytestmark = pytest.mark.slow

CTX = conc.CTX
DEADLINE = 60.0  # seconds any one test may wait for its processes (a bound, not a speed check)
ENDLESS = 10**7  # runs of a worker that only stops when killed


# --- notes, segments and checks -------------------------------------------------------------------


@dataclass
class Notes:
    """What a worker was told: acknowledged runs, groups it wrote, errors it got."""

    published: set[int] = field(default_factory=set)
    durable: set[int] = field(default_factory=set)
    groups: list[tuple[int, int]] = field(default_factory=list)  # every group noted, in order
    unsynced: list[int] = field(default_factory=list)  # per durable ack: bytes not fsynced
    errors: list[dict[str, Any]] = field(default_factory=list)
    after_error: list[dict[str, Any]] = field(default_factory=list)  # acks after the first error
    labels: list[dict[str, Any]] = field(default_factory=list)
    done: dict[str, Any] | None = None


def read_notes(path: Path) -> Notes:
    """A worker's notes; bytes after the last newline (a note cut short by a kill) are none."""
    notes = Notes()
    try:
        lines = path.read_bytes().split(b"\n")[:-1]
    except FileNotFoundError:
        return notes
    groups: set[tuple[int, int]] = set()
    for line in lines:
        note = json.loads(line)
        if "done" in note:
            notes.done = note
            continue
        kind = note["ack"]
        if kind.startswith("label"):
            notes.labels.append(note)
            continue
        if notes.errors:
            notes.after_error.append(note)
        spans = [note["runs"]] if kind in ("published", "error") else note["runs"]
        groups.update((a, b) for a, b in spans)
        runs = {n for a, b in spans for n in range(a, b)}
        if kind == "published":
            notes.published |= runs
        elif kind == "durable":
            notes.durable |= runs
            notes.unsynced.append(note["unsynced"])
        else:
            notes.errors.append(note)
    notes.groups = sorted(groups)
    return notes


def projected_runs(reg: RunRegistry) -> dict[int, Counter[int]]:
    """Worker → how many ``run.started`` events the projection holds for each of its runs."""
    out: dict[int, Counter[int]] = {}
    for (rid,) in reg.query("SELECT run_id FROM event_log WHERE type = 'run.started'").fetchall():
        w, n = rid[1:].split("-")
        out.setdefault(int(w), Counter())[int(n)] += 1
    return out


def check_worker(projected: Counter[int], notes: Notes) -> None:
    """Acknowledged runs are projected once; any other group projects a prefix of itself."""
    doubled = {n: c for n, c in projected.items() if c != 1}
    assert not doubled, f"runs projected more than once: {doubled}"
    assert notes.published - set(projected) == set(), "published runs lost"
    assert notes.durable - set(projected) == set(), "durable runs lost"
    assert all(u == 0 for u in notes.unsynced), f"acknowledged as durable but not fsynced: {notes.unsynced}"
    covered: set[int] = set()
    for a, b in notes.groups:
        got = sorted(n for n in range(a, b) if n in projected)
        assert got == list(range(a, a + len(got))), f"group {a}-{b} is not projected as a prefix: {got}"
        covered.update(range(a, b))
    start = max((b for _, b in notes.groups), default=0)
    rest = sorted(set(projected) - covered)  # written, then killed before its note
    assert rest == list(range(start, start + len(rest))), f"unnoted runs are not a prefix: {rest}"


def segment_lines(events: Path) -> dict[str, tuple[int, int, bool]]:
    """Segment → (complete lines, seal lines among them, ends in a torn line)."""
    out = {}
    for path in sorted((events / "log").glob("*.jsonl")):
        data = path.read_bytes()
        cut = data.rfind(b"\n") + 1
        seals = data[:cut].count(b'"type":"segment.sealed"')
        out[f"log/{path.name}"] = (data[:cut].count(b"\n"), seals, cut < len(data))
    return out


def check_segments(reg: RunRegistry, events: Path) -> None:
    """Each segment projects exactly its complete lines (less seals): no torn line, no loss."""
    counts = dict(reg.query("SELECT segment, count(*) FROM event_log GROUP BY segment").fetchall())
    for name, (lines, seals, _) in segment_lines(events).items():
        assert counts.get(name, 0) == lines - seals, f"{name}: {counts.get(name, 0)} events, {lines} lines"
    dup = reg.query("SELECT event_id FROM event_log GROUP BY event_id HAVING count(*) > 1").fetchall()
    assert dup == []
    holes = reg.query(
        "SELECT writer FROM event_log GROUP BY writer "
        "HAVING min(seq) <> 1 OR max(seq) <> count(*) OR count(DISTINCT seq) <> count(*)"
    ).fetchall()
    assert holes == []


def torn_tails(events: Path) -> list[tuple[str, str, int]]:
    """What verify must say about segments of dead writers that end in a torn line."""
    return [
        ("torn-tail", name, lines + 1) for name, (lines, _, torn) in segment_lines(events).items() if torn
    ]


def found(reg: RunRegistry) -> list[tuple[str, str | None, int | None]]:
    """The problems ``verify()`` reports, as (kind, file, line)."""
    return sorted((p.kind, p.file, p.line) for p in reg.verify().problems)


def spawn(target: Any, *args: Any) -> Any:
    proc = CTX.Process(target=target, args=args)
    proc.start()
    return proc


def join(procs: list[Any], deadline: float) -> None:
    """Wait for every process until ``deadline`` (monotonic); fail if one is still running."""
    for p in procs:
        p.join(timeout=max(0.1, deadline - time.monotonic()))
    assert not any(p.is_alive() for p in procs), "a worker did not finish in time"


def new_registry(root: Path) -> tuple[Path, Path]:
    """A registry with one session and the configurations the workers' runs refer to."""
    db = root / "reg.duckdb"
    conc._make_registry(db, conc.HASHES)
    return db, root / "reg.events"


def run_workers(root: Path, faults: dict[int, dict[str, Any]], runs: int, seed: int) -> dict[int, Notes]:
    """Run one ``stream_runs`` worker per fault to its end; return their notes."""
    _, events = new_registry(root)
    rng = random.Random(seed)
    procs = [
        spawn(workers.stream_runs, str(events), w, runs, str(root / f"notes{w}"), rng.randrange(1 << 30), f)
        for w, f in faults.items()
    ]
    try:
        join(procs, time.monotonic() + DEADLINE)
        codes = [p.exitcode for p in procs]
    finally:
        conc._reap(procs)
    assert codes == [0] * len(procs), f"exit codes {codes}"
    return {w: read_notes(root / f"notes{w}") for w in faults}


# --- 1. SIGKILL at random points ------------------------------------------------------------------


def test_writers_killed_at_random_points_lose_only_unacknowledged_runs(tmp_path: Path) -> None:
    """Five writers in every durability mode, pausing at random also inside their groups, are
    killed with SIGKILL at a random moment (one kills itself in the middle of a group's write)
    while a registry follows the log; then incremental catch-up equals a rebuild. The seed is
    in the failure message."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    db, events = new_registry(tmp_path)
    faults: dict[int, dict[str, Any]] = {
        0: {"durability": "batch", "group": 120, "pause": 0.01},
        1: {"durability": "event", "group": 10, "pause": 0.01},
        2: {"durability": "none", "group": 120, "pause": 0.01},
        3: {"durability": "batch", "group": 400, "pause": 0.02},  # big groups: kills land mid-batch
        4: {"durability": "batch", "group": 300, "kill_at": [rng.randint(2, 6), 1]},  # dies mid-write
    }
    notes_path = {w: tmp_path / f"notes{w}" for w in faults}
    procs = {
        w: spawn(workers.stream_runs, str(events), w, ENDLESS, str(notes_path[w]), rng.randrange(1 << 30), f)
        for w, f in faults.items()
    }
    reg = RunRegistry(db, enable_spatial=False)
    try:
        kill_at: dict[int, float] = {}
        deadline = time.monotonic() + DEADLINE
        while any(p.is_alive() for p in procs.values()) and time.monotonic() < deadline:
            for w, p in procs.items():
                if w == 4 or not p.is_alive():
                    continue
                if w not in kill_at and _noted(notes_path[w]):  # it writes: kill it soon
                    kill_at[w] = time.monotonic() + rng.uniform(0.05, 0.8)
                elif w in kill_at and time.monotonic() >= kill_at[w]:
                    p.kill()
            reg.sync()  # follow the log while it is written
            time.sleep(0.02)
        join(list(procs.values()), deadline)
        assert {w: p.exitcode for w, p in procs.items()} == dict.fromkeys(faults, -9), f"seed {seed}"

        reg.sync()
        assert reg.query("SELECT * FROM log_problems").fetchall() == []
        runs = projected_runs(reg)
        for w in faults:
            notes = read_notes(notes_path[w])
            assert notes.published | notes.durable, f"worker {w} acknowledged nothing (seed {seed})"
            if faults[w]["durability"] == "none":
                assert not notes.durable
            check_worker(runs.get(w, Counter()), notes)
        check_segments(reg, events)
        tails = torn_tails(events)
        mine = _segments_of(reg, 4)
        assert any(t[1] in mine for t in tails), (
            "the worker killed in the middle of a write left no torn line"
        )
        assert found(reg) == tails, f"seed {seed}"

        incremental = conc._snapshot(reg)
        reg.rebuild()
        assert conc._snapshot(reg) == incremental
    finally:
        conc._reap(list(procs.values()))
        reg.close()


def _noted(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def _segments_of(reg: RunRegistry, worker: int) -> set[str]:
    rows = reg.query("SELECT DISTINCT segment FROM event_log WHERE run_id LIKE ?", [f"w{worker}-%"])
    return {r[0] for r in rows.fetchall()}


# --- 2. short writes ------------------------------------------------------------------------------


@pytest.mark.parametrize("then", ["continue", "crash"])
def test_short_writes_are_completed_or_leave_only_a_torn_tail(tmp_path: Path, then: str) -> None:
    """``os.write`` writes at most half of what it is asked, also for claims (label commits);
    with ``crash`` the worker is killed in the middle of completing one."""
    fault: dict[str, Any] = {"short": True, "group": 60, "label": "short"}
    if then == "crash":
        fault["kill_at"] = [3, 2]
    db, events = new_registry(tmp_path)
    proc = spawn(workers.stream_runs, str(events), 0, 600, str(tmp_path / "notes0"), 7, fault)
    try:
        join([proc], time.monotonic() + DEADLINE)
    finally:
        conc._reap([proc])
    notes = read_notes(tmp_path / "notes0")
    with RunRegistry(db, enable_spatial=False) as reg:
        assert reg.query("SELECT * FROM log_problems").fetchall() == []
        projected = projected_runs(reg).get(0, Counter())
        check_worker(projected, notes)
        check_segments(reg, events)
        if then == "continue":
            assert proc.exitcode == 0
            assert sorted(projected) == list(range(600))
            assert notes.labels == [{"ack": "label", "version": 1}]
            assert reg.list_labels() == [("short", workers.FAULT_HASH)]
            assert found(reg) == []
        else:
            assert proc.exitcode == -9
            assert notes.done is None
            tails = torn_tails(events)
            assert len(tails) == 1
            assert found(reg) == tails


# --- 3. a full disk -------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["write", "fsync", "claim"])
def test_full_disk_fails_clearly_and_loses_nothing_acknowledged(tmp_path: Path, where: str) -> None:
    """ENOSPC in the middle of a group's write, from fsync, or while claiming a label commit:
    a ``StoreError`` names the file and what to do; acknowledged runs stay; once space is
    freed the same process goes on (in a new segment)."""
    fault: dict[str, Any] = {
        "write": {"group": 40, "space_after": [4, 5000]},
        "fsync": {"group": 40, "fsync_fail_at": 3},
        "claim": {"group": 40, "label": "full", "label_space": 0},
    }[where]
    notes = run_workers(tmp_path, {0: fault}, 400, 11)[0]
    events = tmp_path / "reg.events"
    assert notes.done == {"done": True, "resynced": []}, "fsync was retried on a file whose fsync failed"
    if where == "claim":
        assert [n["ack"] for n in notes.labels] == ["label-error", "label"]
        error = notes.labels[0]["error"]
        assert f"{events / 'labels'}" in error and "No space left" in error and "free" in error
        assert [p.name for p in (events / "labels").iterdir()] == ["00000000000000000001.json"]
    else:
        assert len(notes.errors) == 1
        error = notes.errors[0]
        assert str(events / error["segment"]) in error["error"]
        assert "No space left" in error["error"] and "free space" in error["error"].lower()
        # The same process went on in another segment, and what it wrote there counts.
        assert notes.after_error
        assert {n["ack"] for n in notes.after_error} & {"published", "durable"}
    with RunRegistry(tmp_path / "reg.duckdb", enable_spatial=False) as reg:
        assert reg.query("SELECT * FROM log_problems").fetchall() == []
        projected = projected_runs(reg).get(0, Counter())
        check_worker(projected, notes)
        check_segments(reg, events)
        if where != "claim":
            segments = _segments_of(reg, 0)
            assert len(segments) == 2
            after = {n for a, b in notes.groups if a >= notes.errors[0]["runs"][1] for n in range(a, b)}
            assert after <= set(projected)
        else:
            assert sorted(projected) == list(range(400))
            assert reg.list_labels() == [("full", workers.FAULT_HASH)]
        tails = torn_tails(events)
        if where == "write":  # the disk filled inside a line, and that line is never read
            assert [t[1] for t in tails] == [notes.errors[0]["segment"]]
        else:
            assert tails == []
        assert found(reg) == tails
        # The registry itself writes on.
        rid = reg.start_run(conc.HASHES[0], session_id=conc.SESSION)
        assert reg.get_run(rid) is not None


# --- 4 and 5: damage done to a finished segment ----------------------------------------------------


FINISHED_RUNS = 300


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry whose log holds one worker's finished segment of FINISHED_RUNS runs."""
    root = tmp_path_factory.mktemp("finished")
    notes = run_workers(root, {0: {"group": 30}}, FINISHED_RUNS, 5)[0]
    assert notes.durable == set(range(FINISHED_RUNS))
    return root


def _copy(finished: Path, tmp_path: Path) -> tuple[Path, Path, str, list[bytes]]:
    """A copy of the finished registry: its root, its store, the worker's segment and lines."""
    root = tmp_path / "reg"
    shutil.copytree(finished, root)
    events = root / "reg.events"
    seg = max((events / "log").glob("*.jsonl"), key=lambda p: p.stat().st_size)
    return root, events, f"log/{seg.name}", seg.read_bytes().split(b"\n")[:-1]


@pytest.mark.parametrize("cut", ["last-line", "middle-of-file", "one-line-short"])
def test_truncated_segment_is_named_and_the_rest_projected_once(
    finished: Path, tmp_path: Path, cut: str
) -> None:
    """``last-line``: the file ends inside its last event line; ``middle-of-file``: it ends
    inside a line in its middle; ``one-line-short``: a middle line lost its second half and the
    lines after it stayed (so it is glued to the next line)."""
    root, events, seg, lines = _copy(finished, tmp_path)
    runs = [i for i, line in enumerate(lines) if b'"run.started"' in line]
    k = runs[-1] if cut == "last-line" else runs[len(runs) // 2]  # the damaged line, 0-based
    reg = RunRegistry(root / "reg.duckdb", enable_spatial=False)
    try:
        before = sorted(projected_runs(reg)[0])
        assert before == list(range(FINISHED_RUNS))
        head = b"".join(line + b"\n" for line in lines[:k]) + lines[k][: len(lines[k]) // 2]
        tail = b"" if cut != "one-line-short" else b"".join(line + b"\n" for line in lines[k + 1 :])
        (events / seg).write_bytes(head + tail)
        # The tables read the whole segment before it was cut: verify says it shrank.
        shrank = [p for p in found(reg) if p[0] == "segment-shrank"]
        assert shrank == [("segment-shrank", seg, len(lines) if tail else k + 1)]
    finally:
        reg.close()

    # A projection built from the damaged log: every intact line once, the damage named.
    # A line glued to the next is damage at once; a torn tail only once its writer is known gone
    # for good (sealed, or abandoned for an hour), since a live writer may still complete it.
    glued = pytest.warns(LogDamageWarning, match=seg) if cut == "one-line-short" else contextlib.nullcontext()
    with glued:
        fresh = RunRegistry(root / "fresh.duckdb", events_path=events, enable_spatial=False)
    with fresh:
        problems = fresh.query("SELECT kind, segment, line FROM log_problems ORDER BY line").fetchall()
        projected = projected_runs(fresh)[0]
        assert set(projected.values()) == {1}
        gone = {k, k + 1} if cut == "one-line-short" else set(range(k, len(lines)))
        want = {int(json.loads(lines[i])["run_id"].split("-")[1]) for i in runs if i not in gone}
        assert set(projected) == want
        if cut == "one-line-short":
            # The glued line breaks the chain and fails its checksum; its two events leave a gap.
            want = [("chain-broken", seg, k + 1), ("checksum", seg, k + 1), ("sequence-gap", seg, k + 2)]
            assert sorted(problems) == want
            assert found(fresh) == want
        else:
            assert problems == []
            assert found(fresh) == [("torn-tail", seg, k + 1)]


@pytest.mark.parametrize("how", ["copied-file", "appended-twice"])
def test_duplicated_segment_is_projected_once_and_named(finished: Path, tmp_path: Path, how: str) -> None:
    """The same events delivered twice: a copy of the segment under another name (sorting
    first, so a rebuild reads the copy before the original), or its content appended again."""
    root, events, seg, lines = _copy(finished, tmp_path)
    data = (events / seg).read_bytes()
    reg = RunRegistry(root / "reg.duckdb", enable_spatial=False)
    try:
        before = conc._snapshot(reg)
        if how == "copied-file":
            copy = f"log/0-copy-of-{seg[4:]}"
            (events / copy).write_bytes(data)
            want = [("duplicate-segment", copy, 1)]
        else:
            with open(events / seg, "ab") as f:
                f.write(data)
            n = len(lines)
            again = [n + i for i, line in enumerate(lines, 1) if b'"segment.sealed"' not in line]
            want = [("chain-broken", seg, n + 1)] + [("duplicate-event", seg, i) for i in again]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LogDamageWarning)  # the appended copy breaks the chain
            reg.sync()
        after = conc._snapshot(reg)
        for table in ("job_runs", "event_log", "joshreg_writers"):
            assert after[table] == before[table], f"{table} changed"
        assert sorted(projected_runs(reg)[0].items()) == [(n, 1) for n in range(FINISHED_RUNS)]
        assert found(reg) == sorted(want)
    finally:
        reg.close()
    # Lines appended again break the chain (damage named at every open); a copied file is only
    # read once, and `verify` names it.
    broken = pytest.warns(LogDamageWarning, match=seg) if how != "copied-file" else contextlib.nullcontext()
    with broken:
        fresh = RunRegistry(root / "fresh.duckdb", events_path=events, enable_spatial=False)
    with fresh:
        assert sorted(projected_runs(fresh)[0].items()) == [(n, 1) for n in range(FINISHED_RUNS)]
        rebuilt = conc._snapshot(fresh)
        for table in ("job_runs", "event_log", "joshreg_writers"):
            assert rebuilt[table] == before[table], f"{table} differs in a fresh projection"


# --- 6. the wall clock jumps back -----------------------------------------------------------------


def test_clock_jumping_back_keeps_order_and_loses_nothing(tmp_path: Path) -> None:
    """Worker 0's wall clock jumps back an hour after run 150 starts, and it then completes its
    earlier runs again with exit code 0; worker 1 writes alongside with a sane clock."""
    jump = 150
    faults = {
        0: {"group": 20, "complete": True, "clock_jump_at": [jump, -3600], "pause": 0.002},
        1: {"group": 20, "complete": True, "pause": 0.002},
    }
    notes = run_workers(tmp_path, faults, 400, 3)
    events = tmp_path / "reg.events"
    with RunRegistry(tmp_path / "reg.duckdb", enable_spatial=False) as reg:
        runs = projected_runs(reg)
        for w in faults:
            assert sorted(runs[w].items()) == [(n, 1) for n in range(400)]
            check_worker(runs[w], notes[w])
        check_segments(reg, events)
        # Per writer, the clock never goes back: hlc strictly increases with seq.
        for (writer,) in reg.query("SELECT DISTINCT writer FROM event_log").fetchall():
            hlcs = [
                h
                for (h,) in reg.query(
                    "SELECT hlc FROM event_log WHERE writer = ? ORDER BY seq", [writer]
                ).fetchall()
            ]
            assert all(a < b for a, b in itertools.pairwise(hlcs)), writer
        # The completion written after the jump is the later one, whatever the wall clock said.
        codes = dict(reg.query("SELECT run_id, exit_code FROM job_runs").fetchall())
        for n in range(400):
            assert codes[workers.run_id(0, n)] == (0 if n < jump else 1)
            assert codes[workers.run_id(1, n)] == 1
        backwards = reg.query("SELECT count(*) FROM job_runs WHERE completed_at < started_at").fetchone()
        assert backwards == (0,)
        assert found(reg) == []
        incremental = conc._snapshot(reg)
        reg.rebuild()
        assert conc._snapshot(reg) == incremental


# --- 7. a label race ------------------------------------------------------------------------------


LABEL_PROCS = 8
LABEL_ATTEMPTS = 200
LABELS = [f"l{i}" for i in range(10)]
MODES = ["plain"] * 5 + ["force"] * 3 + ["timestamp"] * 2


def test_label_race_has_one_order_and_losers_are_absent(tmp_path: Path) -> None:
    """8 processes × 200 ``label_run`` calls on 10 shared labels, each call a unique
    (label, run) pair: plain calls may lose (``ValueError`` "already assigned"), ``force`` and
    ``on_collision="timestamp"`` calls retry until they commit."""
    rng = random.Random(2024)
    db = tmp_path / "reg.duckdb"
    per = LABEL_ATTEMPTS // len(LABELS)
    hashes = {w: [f"{w:06d}{r:06d}" for r in range(per)] for w in range(LABEL_PROCS)}
    with RunRegistry(db, enable_spatial=False) as reg:
        reg.create_session(FakeJobConfig(simulation="Sim"), experiment_name="race", session_id=conc.SESSION)
        for w in hashes:
            for h in hashes[w]:
                reg.register_run(conc.SESSION, h, f"{h}.josh", "cfg", None, {"alpha": 1.0})
    plans = {}
    for w in range(LABEL_PROCS):
        pairs = [(label, h, rng.choice(MODES)) for h in hashes[w] for label in LABELS]
        rng.shuffle(pairs)
        plans[w] = pairs
    barrier = CTX.Barrier(LABEL_PROCS)
    procs = [
        spawn(workers.label_attempts, str(db), w, plans[w], barrier, str(tmp_path / f"out{w}"))
        for w in range(LABEL_PROCS)
    ]
    try:
        join(procs, time.monotonic() + DEADLINE)
        assert [p.exitcode for p in procs] == [0] * LABEL_PROCS
    finally:
        conc._reap(procs)
    outcomes = [
        json.loads(line)
        for w in range(LABEL_PROCS)
        for line in (tmp_path / f"out{w}").read_text().splitlines()
    ]
    assert len(outcomes) == LABEL_PROCS * LABEL_ATTEMPTS
    assert [o for o in outcomes if o["outcome"] == "error"] == []
    won = {(o["label"], o["run"]) for o in outcomes if o["outcome"] == "ok"}
    lost = {(o["label"], o["run"]) for o in outcomes if o["outcome"] == "conflict"}
    assert won and lost
    assert all(
        o["mode"] == "plain" and "already assigned" in o["message"]
        for o in outcomes
        if o["outcome"] == "conflict"
    )

    # The log: versions 1..N, no gap, nothing half-claimed; one commit per winning call.
    folder = tmp_path / "reg.events" / "labels"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"{v:020d}.json" for v in range(1, len(names) + 1)]
    commits = [json.loads((folder / name).read_bytes()) for name in names]
    assert [c["version"] for c in commits] == list(range(1, len(names) + 1))
    assigned = [
        (a["label"], a["run_hash"]) for c in commits for a in c["actions"] if a["type"] == "label.assigned"
    ]
    assert len(assigned) == len(commits)  # one assignment per commit: one call each
    assert Counter(assigned) == Counter(won)  # every winner exactly once ...
    assert not lost & set(assigned)  # ... and no loser at all

    # labels_current equals a sequential replay of the log.
    holder: dict[str, str] = {}
    for c in commits:
        for a in c["actions"]:
            if a["type"] == "label.assigned":
                for name in [n for n, h in holder.items() if h == a["run_hash"]]:
                    del holder[name]
                holder[a["label"]] = a["run_hash"]
            elif a["type"] == "label.released":
                if holder.get(a["label"]) == a["run_hash"]:
                    del holder[a["label"]]
            else:
                assert a["type"] == "label.archived"
                if holder.get(a["label"]) == a["run_hash"]:
                    del holder[a["label"]]
                holder[a["archived_as"]] = a["run_hash"]
    with RunRegistry(db, enable_spatial=False) as reg:
        assert sorted(reg.list_labels()) == sorted(holder.items())
        assert sorted(reg.query("SELECT label, run_hash FROM labels_current").fetchall()) == sorted(
            holder.items()
        )
        assert reg.query("SELECT count(DISTINCT version) FROM label_history").fetchone() == (len(commits),)
        assert found(reg) == []
