"""joshreg status, tags and designs: what they print, --json, --as-of, and exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from joshreg import Requirement, RunRegistry, TargetDesign
from joshreg.cli.app import main
from joshreg.cli.curating import parse_value
from joshreg.testing.registries import FakeJobConfig

A, B, C = "aaaaaaaaaaa1", "bbbbbbbbbbb2", "ccccccccccc3"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.duckdb"
    with RunRegistry(path) as reg:
        sid = reg.create_session(FakeJobConfig())
        for h in (A, B, C):
            reg.register_run(sid, h, None, h, None, {})
        reg.label_run(A, "best")
        reg.label_run(B, "best", on_collision="supersede", reason="recalibrated")
        reg.mark_run(C, "bad", reason="NaN")
        reg.set_attributes(B, site="mojave", tier=2)
        reg.set_attributes(C, site="mojave", tier="2")
        reg.register_design(TargetDesign("cov", [Requirement({"site": "mojave"}, 2)]))
    return path


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_status_lists_every_run(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "status", db)
    assert code == 0
    assert f"superseded by {B} (recalibrated)" in out
    assert "bad (NaN)" in out and "active (never marked)" in out
    code, out, _ = run_cli(capsys, "status", db, "best", "--json")
    assert lines(out) == [
        {
            "run_hash": B,
            "status": None,
            "superseded_by": None,
            "reason": None,
            "updated_at": None,
            "label": "best",
            "effective_status": "active",
        }
    ]


def test_status_history_and_as_of(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "status", db, "--history", "--json")
    changes = lines(out)
    assert [(c["run_hash"], c["status"]) for c in changes] == [(A, "superseded"), (C, "bad")]
    assert changes[0]["version"] == 2 and changes[1]["segment"].startswith("log/")
    code, out, _ = run_cli(capsys, "status", db, C, "--as-of", str(changes[0]["position"]), "--json")
    assert code == 0 and lines(out)[0]["status"] is None  # C was not marked yet


def test_tags_parse_values_as_json_first(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert [parse_value(v) for v in ("2", "2.5", "true", '"2"', "mojave", "[1, 2]")] == [
        2,
        2.5,
        True,
        "2",
        "mojave",
        [1, 2],
    ]
    code, out, _ = run_cli(capsys, "tags", db, "--find", "tier=2", "--json")
    assert [r["key"] for r in lines(out)] == [B]  # the number, not the text "2"
    code, out, _ = run_cli(capsys, "tags", db, "--find", 'tier="2"', "--json")
    assert [r["key"] for r in lines(out)] == [C]
    code, _, _ = run_cli(capsys, "tags", db, "best", "--set", "ok=true", "--set", "note=dry run")
    assert code == 0
    with RunRegistry(db) as reg:
        assert reg.get_attributes(B) == {"site": "mojave", "tier": 2, "ok": True, "note": "dry run"}
    code, _, _ = run_cli(capsys, "tags", db, "mojave", "--scope", "site", "--set", "elevation=900")
    code, out, _ = run_cli(capsys, "tags", db, "--scope", "site")
    assert "elevation=900" in out


def test_tags_refusals(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "tags", db, "--set", "a=1")
    assert code == 2 and "--set needs a KEY" in err
    code, _, err = run_cli(capsys, "tags", db, A, "--set", "a=1", "--as-of", "1")
    assert code == 2 and "--as-of" in err
    with pytest.raises(SystemExit):
        main(["tags", str(db), A, "--set", "novalue"])


def test_designs_list_and_check_exit_status(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "designs", db, "--json")
    assert lines(out) == [
        {"name": "cov", "requirements": [{"attributes": {"site": "mojave"}, "min_active": 2}]}
    ]
    code, out, _ = run_cli(capsys, "designs", db, "--check", "cov")
    assert code == 1 and "UNMET" in out and f"{C} (bad)" in out
    with RunRegistry(db) as reg:
        reg.mark_run(C, "active")
    code, out, _ = run_cli(capsys, "designs", db, "--check", "cov", "--json")
    assert code == 0 and lines(out)[0]["satisfied"] is True


def test_info_shows_status_attributes_and_status_history(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "info", db, A)
    assert f"Status:      superseded by {B} (recalibrated)" in out
    assert "Status history:" in out and "label commit 2" in out
    code, out, _ = run_cli(capsys, "info", db, "best")
    assert 'site = "mojave"' in out and "tier = 2" in out
    code, out, _ = run_cli(capsys, "info", db, C, "--json")
    assert code == 0
    page = lines(out)[0]
    assert page["status"] == "bad" and page["status_history"][0]["reason"] == "NaN"
    assert page["attributes"] == {"site": "mojave", "tier": "2"}
