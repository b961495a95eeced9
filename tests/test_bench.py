"""``just bench --quick`` runs every benchmark script end to end, so the benchmarks cannot rot,
and every JSON file it writes follows ``benchmarks/bench_row.schema.json``. Quick figures are a
smoke signal: no timing is checked here, only the shape of the rows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

pytestmark = pytest.mark.slow  # every benchmark script, many processes, about a minute

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "benchmarks" / "bench_row.schema.json").read_text())
# The scripts `just bench` runs and the file each writes; a script added later is covered by
# checking every file the run wrote, whatever its name.
EXPECTED = {
    "core.json",
    "results.json",
    "reads.json",
    "watch.json",
    "import.json",
    "curation.json",
    "startup.json",
}
# Rows whose goal is another row of the same run.
FLOORED = {"rebuild_big": "compacted_floor_1m", "rebuild_compacted_1m": "compacted_floor_1m"}


def _just() -> str:
    local = Path(sys.executable).with_name("just")
    found = str(local) if local.exists() else shutil.which("just")
    if found is None:
        pytest.skip("no `just` executable (the dev extras install one into the environment)")
    return found


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_just_bench_quick_writes_rows_that_follow_the_schema(tmp_path: Path) -> None:
    work, stores = tmp_path / "work", tmp_path / "stores"
    work.mkdir()
    stores.mkdir()
    args = [
        _just(),
        "--justfile",
        str(ROOT / "justfile"),
        "--working-directory",
        str(work),
        f"python={sys.executable}",
        "bench",
        "--quick",
        "--tmp",
        str(stores),
    ]
    env = {**os.environ, "TMPDIR": str(stores), "MPLBACKEND": "Agg"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    # Each script says where it wrote; every file is under the working directory, none in the
    # checkout (a relative path is the working directory's).
    said = [(work / line.removeprefix("wrote ").strip()).resolve() for line in done.stdout.splitlines()
            if line.startswith("wrote ")]  # fmt: skip
    assert said and all(p.is_relative_to(tmp_path.resolve()) for p in said), said
    written = {p.name: p for p in (work / "bench-output").glob("*.json")}
    assert {p.name for p in said} == set(written), (said, sorted(written))
    assert set(written) >= EXPECTED, sorted(written)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for name, path in sorted(written.items()):
        report = json.loads(path.read_text())
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(report)
        ]
        assert not errors, (name, errors[:5])
        assert report["mode"] == "quick", name
        rows = report["results"]
        assert rows, name
        names = [r["name"] for r in rows]
        assert len(names) == len(set(names)), (name, names)
        for row in rows:
            assert row["min"] <= row["max"], (name, row["name"])
            assert row["min"] == min(row["runs"]) and row["max"] == max(row["runs"]), (name, row["name"])
    core = {r["name"]: r for r in json.loads(written["core.json"].read_text())["results"]}
    for row, floor in FLOORED.items():  # judged against the floor measured in this run
        assert core[row]["baseline_name"] == floor
        assert core[row]["baseline"] == core[floor]["value"]
        assert core[row]["status"] in ("PASS", "MISS")
    assert core["compacted_floor_1m"]["status"] == "INFO"


def test_a_relative_goal_without_its_floor_is_not_a_pass(tmp_path: Path) -> None:
    out = tmp_path / "core.json"
    args = [
        sys.executable,
        str(ROOT / "benchmarks" / "bench_core.py"),
        "--quick",
        "--only",
        "rebuild_compacted_1m",
        "--out",
        str(out),
        "--tmp",
        str(tmp_path),
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    jsonschema.validate(report, SCHEMA)
    (row,) = report["results"]
    assert row["name"] == "rebuild_compacted_1m"
    assert row["status"] == "NO_BASELINE" and row["passed"] is False and row["baseline"] is None
    assert "compacted_floor_1m" in row["note"]
