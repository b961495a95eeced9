"""``benchmarks/bench_s3.py --quick`` runs end to end against its own SeaweedFS and writes every
row in bench_core's JSON format, ``benchmarks/bench_row.schema.json`` (figures at quick scale are
a smoke signal, not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

pytestmark = pytest.mark.slow  # a server and many processes

ROOT = Path(__file__).resolve().parents[1]
ROWS = {
    "s3_append_1proc",
    "local_append_1proc",
    "s3_append_8proc",
    "local_append_8proc",
    "s3_watch_latency_p95",
    "s3_rebuild_compacted_1m",
    "local_rebuild_compacted_1m",
    "s3_catchup_1k",
    "s3_64_writers",
}
KEYS = {"name", "what", "value", "unit", "goal", "higher_is_better", "runs", "extra", "ratio", "passed"}


def test_bench_s3_quick_writes_every_row(tmp_path: Path) -> None:
    out = tmp_path / "s3.json"
    args = [sys.executable, "benchmarks/bench_s3.py", "--quick", "--out", str(out), "--tmp", str(tmp_path)]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    jsonschema.validate(report, json.loads((ROOT / "benchmarks" / "bench_row.schema.json").read_text()))
    assert report["mode"] == "quick"
    rows = {r["name"]: r for r in report["results"]}
    assert set(rows) == ROWS
    for row in rows.values():
        assert set(row) >= KEYS and row["runs"] and row["value"] > 0, row
    many = rows["s3_64_writers"]["extra"]
    assert many["events_counted"] == many["expected"] == many["distinct"]  # nothing lost or doubled
