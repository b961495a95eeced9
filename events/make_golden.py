"""Write a golden event log: a realistic sweep history that every future joshreg must replay.

Usage: ``python events/make_golden.py [name] [--imported]`` (default ``golden-v1``) writes the store
directory ``events/<name>/`` through the public API (``RunRegistry`` plus two ``RunRecorder``
workers, so three writers), then ``events/<name>.expected.json`` with the tables the registry
built from it. ``tests/test_golden_logs.py`` replays every ``events/golden-*/`` from scratch
and compares. Session ids, run hashes and run ids are fixed; timestamps, writer ids and output
ids are whatever this run produces and are frozen in the log. A released version's golden log
is never regenerated: write a new name instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from joshreg import RunRecorder, RunRegistry
from joshreg.projection.tables import LATER_UPSTREAM_TABLES, UPSTREAM_TABLES

HERE = Path(__file__).resolve().parent

# Tables (and views) compared: upstream's seed tables, which never change (cell_data is summed
# per run, below), the labels and the log's problems.
TABLES = (
    *(t for t in UPSTREAM_TABLES if t != "cell_data"),
    "label_history",
    "labels_current",
    "log_problems",
)
# Tables of upstream's later features, in a snapshot only when they hold rows (older golden logs
# have none, and their expected files predate the tables).
LATER_TABLES = LATER_UPSTREAM_TABLES


def snapshot(con: duckdb.DuckDBPyConnection, exact: tuple[str, ...] = ()) -> dict[str, Any]:
    """The comparable contents of the public tables.

    Rows become dicts keyed by column name (so column order does not matter), sorted. A
    TIMESTAMP becomes whether it is set, since the golden log's times say when it was made,
    not what a replay computes, except in the ``exact`` tables, whose times are data in the
    events (imported rows keep their original times); JSON columns are parsed, so formatting
    does not matter. The result rows per run are compared too, when there are any.
    """
    out: dict[str, Any] = {}
    later = [t for t in LATER_TABLES if con.execute(f"SELECT count(*) FROM {t}").fetchone() != (0,)]
    for table in (*TABLES, *later):
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? AND table_schema = current_schema()",
                [table],
            ).fetchall()
        )
        cur = con.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cur.description]
        rows = []
        for values in cur.fetchall():
            row: dict[str, Any] = {}
            for name, value in zip(names, values, strict=True):
                kind = types[name]
                if kind.startswith("TIMESTAMP"):
                    row[name] = (
                        value.isoformat() if table in exact and value is not None else value is not None
                    )
                elif kind == "JSON" and value is not None:
                    row[name] = json.loads(value)
                else:
                    row[name] = value
            rows.append(row)
        out[table] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))
    out["event_counts"] = dict(
        con.execute("SELECT type, count(*) FROM event_log GROUP BY type ORDER BY type").fetchall()
    )
    if exact:
        out["exact_times"] = list(exact)
    if exact or con.execute("SELECT count(*) FROM cell_data").fetchone() != (0,):
        out["cell_data"] = [
            list(r)
            for r in con.execute(
                "SELECT run_id, entity_type, count(*), sum(step), count(DISTINCT replicate) FROM cell_data "
                "GROUP BY ALL ORDER BY ALL"
            ).fetchall()
        ]
    return out


@dataclass
class SweepConfig:
    """Stands in for joshpy's JobConfig: what ``create_session`` reads."""

    simulation: str
    template_path: str
    replicates: int
    parameters: dict[str, list[Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


JOSH = "start simulation Main\n  grid.size = 1000 m\n  steps.high = 10 count\nend simulation\n"


def write_history(store_dir: Path, db: Path) -> dict[str, Any]:
    """Record the sweep; return the snapshot of the registry that recorded it."""
    reg = RunRegistry(db, events_path=store_dir, durability="event")
    grow = SweepConfig(
        "Main", "templates/grow.josh.j2", 2, {"maxGrowth": [1.5, 3.0], "scenario": ["dry", "wet"]}
    )
    s1 = reg.create_session(grow, experiment_name="growth_sweep", session_id="golden-s1")
    retry = SweepConfig("Main", "templates/grow.josh.j2", 1, {"maxGrowth": [3.0, 4.5]})
    s2 = reg.create_session(retry, experiment_name="growth_retry", session_id="golden-s2")
    reg.update_session_status(s1, "running")

    hashes = {}
    for i, (growth, scenario) in enumerate([(1.5, "dry"), (1.5, "wet"), (3.0, "dry"), (3.0, "wet")]):
        h = f"a1b2c3d4e5f{i}"
        hashes[(growth, scenario)] = h
        reg.register_run(
            s1,
            h,
            "sims/grow.josh",
            f"maxGrowth = {growth} m\nscenario = {scenario}\n",
            {"cover": {"path": "/data/cover.jshd", "hash": "9f8e7d6c5b4a"}} if scenario == "wet" else None,
            {"maxGrowth": growth, "scenario": scenario, "seed": 7},
            josh_content=JOSH,
        )
    # The retry session pools one configuration and adds one with a new parameter.
    reg.register_run(
        s2, hashes[(3.0, "wet")], "sims/grow.josh", "maxGrowth = 3.0 m\nscenario = wet\n", None, {}
    )
    reg.register_run(
        s2,
        "f0e1d2c3b4a5",
        "sims/grow.josh",
        "maxGrowth = 4.5 m\n",
        None,
        {"maxGrowth": 4.5, "tuning": "high"},
    )
    reg.update_session_status(s2, "running")

    workers = [RunRecorder(events_path=store_dir, session_id=s1, durability="event") for _ in range(2)]
    n = 0
    for (growth, scenario), h in sorted(hashes.items()):
        for replicate in range(2):
            n += 1
            rid = f"golden-run-{n:02d}"
            w = workers[n % 2]
            out = f"/scratch/out/{h}/rep{replicate}.csv"
            w.start_run(
                h, replicate=replicate, output_path=out, metadata={"node": f"n{n % 2:02d}"}, run_id=rid
            )
            if growth == 3.0 and scenario == "dry" and replicate == 1:
                w.complete_run(rid, 137, "killed: out of memory")
                continue
            w.complete_run(rid, 0)
            w.register_output(rid, "csv", out, file_size=1000 + n, row_count=10 * n)
    # A failed run retried in place: the later completion wins.
    workers[0].start_run("f0e1d2c3b4a5", session_id=s2, run_id="golden-run-retry")
    workers[0].complete_run("golden-run-retry", 1, "missing input")
    workers[1].complete_run("golden-run-retry", 0)
    # A run that started and never finished.
    reg.recorder(s2).start_run(hashes[(3.0, "wet")], session_id=s2, replicate=0, run_id="golden-run-hung")
    for w in workers:
        w.close()

    reg.label_run(hashes[(1.5, "dry")], "baseline")
    reg.label_run(hashes[(1.5, "wet")], "best")
    reg.label_run(hashes[(3.0, "dry")], "best", force=True)
    reg.label_run(hashes[(3.0, "wet")], "best", on_collision="timestamp")
    reg.label_run(hashes[(1.5, "dry")], "control")
    reg.update_session_status(s1, "completed")
    reg.update_session_status(s2, "failed")
    reg.sync()
    assert reg._conn is not None
    result = snapshot(reg._conn)
    reg.close()
    return result


# Tables whose times an import carries as data: a replay must give them exactly.
IMPORTED_TIMES = ("sweep_sessions", "job_configs", "session_configs", "job_runs", "run_outputs")


def write_imported_history(store_dir: Path, db: Path, tmp: Path) -> dict[str, Any]:
    """A joshpy registry (written in California) imported, then the sweep goes on in joshreg:
    original times as event data, imported labels, result files per execution, the import's
    own record; return the snapshot."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from joshpy_shapes import JoshpyRegistry

    old = tmp / "old.duckdb"
    with JoshpyRegistry(old) as jp:
        jp.con.execute("SET TimeZone = 'America/Los_Angeles'")
        s1 = jp.create_session({"replicates": 2}, "coastal", session_id="import-s1")
        jp.register_run(
            s1, "c0a5t1a2b3c4", "sims/coast.josh", "fog = 0.2\n", None, {"fog": 0.2, "soil": "sand"}
        )
        jp.register_run(
            s1, "c0a5t1a2b3c5", "sims/coast.josh", "fog = 0.8\n", None, {"fog": 0.8, "soil": "clay"}
        )
        jp.update_session_status(s1, "running")
        jp.label_run("c0a5t1a2b3c4", "coast_baseline")
        done = jp.start_run(
            "c0a5t1a2b3c4", s1, 0, "/scratch/coast/0", {"replicates": 2}, run_id="import-run-1"
        )
        jp.complete_run(done, 0)
        jp.register_output(done, "export.patch", "/scratch/coast/0/patch.csv", 2048, output_id="import-out-1")
        rows = [
            {"step": s, "replicate": r, "longitude": -121.9, "latitude": 36.6, "cover": 0.1 * s}
            for s in range(3)
            for r in range(2)
        ]
        jp.load_rows(done, "c0a5t1a2b3c4", rows, {"cover": "DOUBLE"})
        jp.start_run("c0a5t1a2b3c5", s1, 0, run_id="import-run-2")  # still running when imported
    reg = RunRegistry(db, events_path=store_dir, durability="event")
    reg.import_joshpy(old, source_timezone="America/Los_Angeles")
    reg.complete_run("import-run-2", 0)  # the sweep goes on in joshreg
    reg.label_run("c0a5t1a2b3c5", "coast_baseline", force=True)
    reg.update_session_status("import-s1", "completed")
    reg.sync()
    assert reg._conn is not None
    result = snapshot(reg._conn, IMPORTED_TIMES)
    reg.close()
    return result


def write_curated_history(store_dir: Path, db: Path) -> dict[str, Any]:
    """Statuses, supersessions, attributes, tags and target designs (upstream HEAD's registry),
    from a registry and a worker; return the snapshot."""
    from joshreg import Requirement, TargetDesign

    reg = RunRegistry(db, events_path=store_dir, durability="event")
    cfg = SweepConfig("Main", "templates/fire.josh.j2", 2, {"ignition": [0.1, 0.2, 0.3]})
    sid = reg.create_session(cfg, experiment_name="fire_sweep", session_id="golden-s3")
    hashes = [f"f1e2d3c4b5a{i}" for i in range(4)]
    for i, h in enumerate(hashes[:3]):
        reg.register_run(
            sid,
            h,
            "sims/fire.josh",
            f"ignition = {0.1 * (i + 1):.1f}\n",
            None,
            {"ignition": 0.1 * (i + 1)},
            attributes={"site": "mojave", "tier": i},
        )
    reg.register_run(sid, hashes[3], "sims/fire.josh", "ignition = 0.4\n", None, {"ignition": 0.4})
    worker = RunRecorder(events_path=store_dir, session_id=sid, durability="event")
    for i, h in enumerate(hashes):
        rid = f"golden-fire-{i}"
        worker.start_run(h, run_id=rid)
        worker.complete_run(rid, 0 if i != 2 else 1, None if i != 2 else "diverged")
    worker.close()
    reg.label_run(hashes[0], "best")
    reg.label_run(hashes[1], "best", on_collision="supersede", reason="recalibrated ignition")
    reg.mark_run(hashes[2], "bad", reason="diverged at step 40")
    reg.supersede(hashes[3], hashes[2], reason="replaces the diverged run")
    reg.mark_run(hashes[2], "active")
    reg.mark_run(hashes[2], "bad", reason="still diverges")
    reg.set_attributes(hashes[1], tier=10, note='quoted "name"', **{"a.b": True})
    reg.set_attributes(hashes[3], site="sonoran", tier=1.0)
    reg.tag_by_session_id(sid, owner="ana", batch=3)
    reg.tag_by_run_id("golden-fire-0", node="n07")
    reg.tag_custom("mojave", scope="site", elevation=900, dry=True)
    reg.register_design(
        TargetDesign("coverage", [Requirement({"site": "mojave"}, 2), Requirement({"tier": 1})])
    )
    reg.register_design(TargetDesign("dropped", [Requirement({"site": "chihuahuan"})]))
    reg.delete_design("dropped")
    reg.register_design(TargetDesign("coverage", [Requirement({"site": "mojave"}, 3)]))
    reg.sync()
    assert reg._conn is not None
    result = snapshot(reg._conn)
    reg.close()
    return result


def write_removals_history(store_dir: Path, db: Path, tmp: Path) -> dict[str, Any]:
    """Resets, drops, a restore, a hash registered again after its drop and a late completion
    of a reset execution, with results bound to executions and unbound; return the snapshot."""
    from joshreg import CellDataLoader

    def export(name: str, value: float) -> Path:
        path = tmp / name
        path.write_text(
            "position.x,position.y,position.longitude,position.latitude,height,step,replicate\n"
            f"0,0,-116.0,34.0,{value},0,0\n1,0,-116.1,34.0,{value},1,1\n"
        )
        return path

    reg = RunRegistry(db, events_path=store_dir, durability="event")
    cfg = SweepConfig("Main", "templates/redo.josh.j2", 2, {"g": [1, 2, 3]})
    sid = reg.create_session(cfg, experiment_name="redo_sweep", session_id="golden-s4")
    hashes = [f"d0e1f2a3b4c{i}" for i in range(3)]
    worker = RunRecorder(events_path=store_dir, session_id=sid, durability="event")
    for i, h in enumerate(hashes):
        reg.register_run(sid, h, "sims/redo.josh", f"g = {i}\n", None, {"g": i})
        rid = f"golden-redo-{i}"
        worker.start_run(h, run_id=rid)
        worker.complete_run(rid, 0)
        worker.register_output(rid, "export.patch", f"/scratch/{h}.csv", row_count=2)
        CellDataLoader(reg).load_csv(export(f"{h}.csv", float(i)), rid, h)
    worker.load_csv(export("unbound.csv", 9.0), None, hashes[0])
    worker.start_run(hashes[0], run_id="golden-redo-hung")
    reg.label_run(hashes[0], "first")
    reg.label_run(hashes[2], "third")
    reg.mark_run(hashes[0], "bad", reason="diverged")
    reg.reset_run("first", reason="redo")
    worker.complete_run("golden-redo-hung", 0)  # late: recorded, left out
    worker.start_run(hashes[0], run_id="golden-redo-again")
    worker.complete_run("golden-redo-again", 0)
    CellDataLoader(reg).load_csv(export("again.csv", 5.0), "golden-redo-again", hashes[0])
    reg.drop_run(hashes[1], reason="wrong template")
    reg.register_run(sid, hashes[1], "sims/redo.josh", "g = 1.5\n", None, {"g": 1.5})
    reg.drop_run("third", reason="mistake")
    reg.restore_run(hashes[2], reason="not a mistake after all")
    worker.close()
    reg.sync()
    assert reg._conn is not None
    result = snapshot(reg._conn)
    reg.close()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", default="golden-v1")
    parser.add_argument(
        "--imported", action="store_true", help="write the history of an imported joshpy registry"
    )
    parser.add_argument(
        "--curated", action="store_true", help="write statuses, attributes, tags and target designs"
    )
    parser.add_argument("--removals", action="store_true", help="write resets, drops and a restore")
    args = parser.parse_args(argv)
    store_dir = HERE / args.name
    if store_dir.exists():
        sys.exit(f"{store_dir} exists; golden logs are never rewritten. Choose a new name.")
    with tempfile.TemporaryDirectory() as tmp:
        if args.imported:
            expected = write_imported_history(store_dir, Path(tmp) / "golden.duckdb", Path(tmp))
        elif args.removals:
            expected = write_removals_history(store_dir, Path(tmp) / "golden.duckdb", Path(tmp))
        elif args.curated:
            expected = write_curated_history(store_dir, Path(tmp) / "golden.duckdb")
        else:
            expected = write_history(store_dir, Path(tmp) / "golden.duckdb")
    expected_path = HERE / f"{args.name}.expected.json"
    expected_path.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {store_dir} and {expected_path}")


if __name__ == "__main__":
    main()
