"""Point reads and reopening a small registry, against upstream joshpy's way (issue 16).

Run from the repository root::

    python benchmarks/bench_reads.py            # 200 configurations, 300 calls a read kind, 5 turns
    python benchmarks/bench_reads.py --quick    # 50 configurations, 100 calls, 2 turns

One row per read kind, because their baselines differ fivefold (a configuration joins its
parameters, a label is one column of one row) and one sum would hide a slow cheap kind:

- ``point_reads_config``: ``get_config_by_hash``; ``point_reads_run``: ``get_run``;
  ``point_reads_label``: ``resolve_label``; ``point_reads_session``: ``get_session``;
  ``point_reads_runs_for_hash``: ``get_runs_for_hash``. Each figure is the time of ``calls``
  calls over the keys in a shuffled order (every key once, then again), starting just after a
  write, so the registry's read model starts empty and its filling is timed. The baseline
  answers the same calls the way upstream joshpy does: one SQL statement a call (its
  parameters bound) on a held DuckDB connection to a file with upstream's tables and primary
  keys holding the same rows, building the same dataclasses. Goal: at least 5x faster.
- ``reopen_small``: ``RunRegistry(path)`` of the closed registry plus its first
  ``get_config_by_hash``, against ``duckdb.connect`` on a copy of the same file plus the same
  read as one statement. Goal: at most the baseline's time.

Turns alternate joshreg and baseline back to back, so both see the same load (reported per
row). Writes ``bench-output/reads.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import (
    CONFIG_CONTENT,
    UPSTREAM_DDL,
    Result,
    _Config,
    bench_args,
    chosen,
    machine,
    print_table,
    run_step,
    write_report,
)

from joshreg import RunRegistry
from joshreg.models import ConfigInfo, RunInfo, SessionInfo

KINDS = ("config", "run", "label", "session", "runs_for_hash")
NAMES = (*(f"point_reads_{k}" for k in KINDS), "reopen_small")


@dataclass
class Scale:
    configs: int = 200
    sessions: int = 10
    runs_per_config: int = 2
    calls: int = 300
    repeats: int = 5
    open_repeats: int = 7


QUICK = Scale(configs=50, sessions=5, calls=100, repeats=2, open_repeats=3)

_CONFIG_SQL = (
    "SELECT jc.run_hash, jc.session_id, jc.josh_path, jc.josh_content, jc.config_content, "
    "jc.file_mappings, jc.label, jc.created_at, cp.a, cp.b, cp.c FROM job_configs jc "
    "LEFT JOIN config_parameters cp ON cp.run_hash = jc.run_hash WHERE jc.run_hash = ?"
)
_RUN_COLS = (
    "run_id, run_hash, replicate, started_at, completed_at, exit_code, output_path, error_message, metadata"
)
_SESSION_COLS = (
    "session_id, experiment_name, created_at, template_path, template_hash, simulation, "
    "total_jobs, total_replicates, status, metadata"
)


def _json(text: str | None) -> Any:
    return json.loads(text) if text else None


# --- the fixture ------------------------------------------------------------------------------


@dataclass
class Keys:
    hashes: list[str]
    run_ids: list[str]
    labels: list[str]
    sessions: list[str]


def build(sc: Scale, path: Path) -> tuple[RunRegistry, Keys]:
    """A registry of ``sc.configs`` configurations over ``sc.sessions`` sessions, two executions
    each (one failed), half of them labelled."""
    reg = RunRegistry(path)
    sessions = [reg.create_session(_Config(), experiment_name=f"bench{i}") for i in range(sc.sessions)]
    keys = Keys([], [], [], sessions)
    for i in range(sc.configs):
        h = f"{i:012x}"
        sid = sessions[i % sc.sessions]
        mappings = {"data": {"path": f"/data/{i}.jshd", "md5": "0" * 32}}
        reg.register_run(sid, h, "sim.josh", CONFIG_CONTENT, mappings, {"a": i * 0.5, "b": i, "c": "x"})
        keys.hashes.append(h)
        if i % 2 == 0:
            reg.label_run(h, f"lab{i}")
            keys.labels.append(f"lab{i}")
        for r in range(sc.runs_per_config):
            rid = reg.start_run(
                h, session_id=sid, replicate=r, output_path=f"/scratch/{h}", metadata={"r": r}
            )
            reg.complete_run(rid, r % 2, "failed" if r % 2 else None)
            keys.run_ids.append(rid)
    reg.sync()
    return reg, keys


def upstream_copy(reg: RunRegistry, path: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB file with upstream's tables (and primary keys) holding the registry's rows."""
    con = duckdb.connect(str(path))
    con.execute(UPSTREAM_DDL)
    con.execute('ALTER TABLE config_parameters ADD COLUMN "a" DOUBLE')
    con.execute('ALTER TABLE config_parameters ADD COLUMN "b" DOUBLE')
    con.execute('ALTER TABLE config_parameters ADD COLUMN "c" VARCHAR')
    copies = [
        ("sweep_sessions", f"SELECT {_SESSION_COLS} FROM sweep_sessions", _SESSION_COLS),
        (
            "job_configs",
            "SELECT run_hash, session_id, josh_path, josh_content, config_content, file_mappings, label, "
            "created_at FROM job_configs",
            "run_hash, session_id, josh_path, josh_content, config_content, file_mappings, label, created_at",
        ),
        ("session_configs", "SELECT session_id, run_hash, created_at FROM session_configs", None),
        ("config_parameters", "SELECT run_hash, a, b, c FROM config_parameters", None),
        (
            "job_runs",
            "SELECT run_id, run_hash, session_id, replicate, started_at, completed_at, exit_code, "
            "output_path, error_message, metadata FROM job_runs",
            None,
        ),
    ]
    con.execute("BEGIN")
    for table, select, cols in copies:
        rows = reg.query(select).fetchall()
        marks = ", ".join("?" * len(rows[0]))
        target = f"{table} ({cols})" if cols else table
        con.executemany(f"INSERT INTO {target} VALUES ({marks})", rows)
    con.execute("COMMIT")
    con.execute("CHECKPOINT")
    return con


# --- the reads, both ways -------------------------------------------------------------------------


def upstream_reads(con: duckdb.DuckDBPyConnection) -> dict[str, Callable[[str], Any]]:
    """Each read as upstream makes it: one statement with bound parameters, then the dataclass."""

    def config(h: str) -> ConfigInfo | None:
        row = con.execute(_CONFIG_SQL, [h]).fetchone()
        if row is None:
            return None
        *head, fm, label, created, a, b, c = row
        params = {k: v for k, v in (("a", a), ("b", b), ("c", c)) if v is not None}
        return ConfigInfo(*head, file_mappings=_json(fm), parameters=params, label=label, created_at=created)

    def run(rid: str) -> RunInfo | None:
        row = con.execute(f"SELECT {_RUN_COLS} FROM job_runs WHERE run_id = ?", [rid]).fetchone()
        return None if row is None else RunInfo(*row[:-1], metadata=_json(row[-1]))

    def label(name: str) -> str:
        row = con.execute("SELECT run_hash FROM job_configs WHERE label = ?", [name]).fetchone()
        if row is None:
            raise KeyError(name)
        return row[0]

    def session(sid: str) -> SessionInfo | None:
        row = con.execute(
            f"SELECT {_SESSION_COLS} FROM sweep_sessions WHERE session_id = ?", [sid]
        ).fetchone()
        return None if row is None else SessionInfo(*row[:-1], metadata=_json(row[-1]))

    def runs_for_hash(h: str) -> list[RunInfo]:
        rows = con.execute(
            f"SELECT {_RUN_COLS} FROM job_runs WHERE run_hash = ? ORDER BY started_at", [h]
        ).fetchall()
        return [RunInfo(*r[:-1], metadata=_json(r[-1])) for r in rows]

    return {"config": config, "run": run, "label": label, "session": session, "runs_for_hash": runs_for_hash}


def joshreg_reads(reg: RunRegistry) -> dict[str, Callable[[str], Any]]:
    return {
        "config": reg.get_config_by_hash,
        "run": reg.get_run,
        "label": reg.resolve_label,
        "session": reg.get_session,
        "runs_for_hash": reg.get_runs_for_hash,
    }


def _keys_of(kind: str, keys: Keys) -> list[str]:
    return {
        "config": keys.hashes,
        "run": keys.run_ids,
        "label": keys.labels,
        "session": keys.sessions,
        "runs_for_hash": keys.hashes,
    }[kind]


def _calls(kind: str, keys: Keys, n: int, seed: int) -> list[str]:
    """``n`` keys: each key once in a shuffled order, then again, and so on."""
    pool = list(_keys_of(kind, keys))
    rnd = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        rnd.shuffle(pool)
        out.extend(pool)
    return out[:n]


def _check_same(
    ours: dict[str, Callable[[str], Any]], theirs: dict[str, Callable[[str], Any]], keys: Keys
) -> None:
    """Both ways answer alike (upstream's ConfigInfo lacks the status fields; the rest match)."""
    for kind in KINDS:
        for key in _keys_of(kind, keys)[:5]:
            a, b = ours[kind](key), theirs[kind](key)
            if kind == "config":
                a = (a.run_hash, a.session_id, a.file_mappings, a.parameters, a.label, a.created_at)
                b = (b.run_hash, b.session_id, b.file_mappings, b.parameters, b.label, b.created_at)
            assert a == b, (kind, key, a, b)


def _loop(read: Callable[[str], Any], calls: list[str]) -> float:
    t0 = time.perf_counter()
    for key in calls:
        read(key)
    return time.perf_counter() - t0


def bench_point_reads(sc: Scale, reg: RunRegistry, keys: Keys, base: Path, only: set[str]) -> list[Result]:
    up = upstream_copy(reg, base / "upstream.duckdb")
    ours, theirs = joshreg_reads(reg), upstream_reads(up)
    _check_same(ours, theirs, keys)
    results = []
    for kind in KINDS:
        name = f"point_reads_{kind}"
        if name not in only:
            continue
        mine: list[float] = []
        base_runs: list[float] = []
        for turn in range(sc.repeats):
            calls = _calls(kind, keys, sc.calls, seed=turn)
            # A write first: the read model starts empty, as it does after every change.
            reg.update_session_status(keys.sessions[0], "running" if turn % 2 else "completed")
            reg.sync()
            mine.append(_loop(ours[kind], calls))
            base_runs.append(_loop(theirs[kind], calls))
        value, baseline = sorted(mine)[len(mine) // 2], sorted(base_runs)[len(base_runs) // 2]
        results.append(
            Result(
                name,
                f"{sc.calls} calls of {kind} over {len(_keys_of(kind, keys))} keys, after a write (s); "
                "baseline: one statement a call on a held connection (upstream)",
                value,
                "s",
                5.0,
                False,
                baseline=baseline,
                runs=mine,
                baseline_runs=base_runs,
                extra={
                    "per_call_us": round(value / sc.calls * 1e6, 1),
                    "baseline_per_call_us": round(baseline / sc.calls * 1e6, 1),
                },
            )
        )
    up.close()
    return results


def bench_reopen(sc: Scale, path: Path, keys: Keys, base: Path) -> Result:
    """The registry at ``path`` is closed; its copy is what the baseline opens."""
    copy = base / "plain.duckdb"
    shutil.copyfile(path, copy)
    h = keys.hashes[len(keys.hashes) // 2]

    def ours() -> float:
        t0 = time.perf_counter()
        reg = RunRegistry(path)
        cfg = reg.get_config_by_hash(h)
        t = time.perf_counter() - t0
        reg.close()
        assert cfg is not None
        return t

    def plain() -> float:
        t0 = time.perf_counter()
        con = duckdb.connect(str(copy))
        row = con.execute(
            "SELECT jc.*, cp.* FROM job_configs jc LEFT JOIN config_parameters cp "
            "ON cp.run_hash = jc.run_hash WHERE jc.run_hash = ?",
            [h],
        ).fetchone()
        t = time.perf_counter() - t0
        con.close()
        assert row is not None
        return t

    ours(), plain()  # warm: byte code, DuckDB's first instance, the page cache
    mine, theirs = [], []
    for turn in range(sc.open_repeats):
        if turn % 2:
            theirs.append(plain())
            mine.append(ours())
        else:
            mine.append(ours())
            theirs.append(plain())
    value, baseline = sorted(mine)[len(mine) // 2], sorted(theirs)[len(theirs) // 2]
    return Result(
        "reopen_small",
        f"RunRegistry(path) of {sc.configs} configurations + first get_config_by_hash (s); baseline: "
        "duckdb.connect on a copy of the file + the same read as one statement",
        value,
        "s",
        1.0,
        False,
        baseline=baseline,
        runs=mine,
        baseline_runs=theirs,
        relative=True,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_args(ap, "bench-output/reads.json")  # --scale: no scale rows here; --profile: unused
    args = ap.parse_args(argv)
    only = chosen(args, "bench_reads", NAMES)
    if not only:
        return 0
    sc = QUICK if args.quick else Scale()
    info = machine()
    print(
        f"joshreg read benchmarks ({'quick' if args.quick else 'full'}): nproc={info['nproc']} "
        f"python={info['python']} duckdb={info['duckdb']}\n"
    )
    results: list[Result] = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="joshreg-bench-reads-", dir=args.tmp) as tmp:
        base = Path(tmp)
        path = base / "small.duckdb"
        reg, keys = build(sc, path)
        if only - {"reopen_small"}:
            run_step(results, "point reads", lambda: bench_point_reads(sc, reg, keys, base, only))
        reg.close()
        if "reopen_small" in only:
            run_step(results, "reopen_small", lambda: bench_reopen(sc, path, keys, base))
    total = time.perf_counter() - t_all
    print()
    print_table(results)
    write_report(Path(args.out or "bench-output/reads.json"), args.quick, info, sc, total, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
