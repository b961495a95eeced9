"""``joshreg info``: one configuration's whole story on one page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from joshreg import RunRegistry
from joshreg.cli.app import main


class Config:
    simulation = "Main"
    template_path = None

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path

    def to_dict(self) -> dict:
        return {"config_path": str(self.config_path), "replicates": 3}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.duckdb"
    cfg_file = tmp_path / "sweep config.jshc"
    cfg_file.write_text("maxGrowth = 85\n")
    with RunRegistry(path) as reg:
        sid = reg.create_session(Config(cfg_file), experiment_name="info_exp")
        mappings = {"soil": {"path": "/data/soil.jshd", "hash": "0123456789abcdef0123456789abcdef"}}
        reg.register_run(
            sid, "aaaaaaaaaaaa", "m.josh", "maxGrowth = 85\n", mappings, {"maxGrowth": 85, "kind": "it's"}
        )
        reg.register_run(sid, "bbbbbbbbbbbb", "m.josh", "maxGrowth = 90\n", None, {"maxGrowth": 90})
        ok = reg.start_run("aaaaaaaaaaaa", session_id=sid, output_path="/out/a")
        reg.complete_run(ok, 0)
        bad = reg.start_run("aaaaaaaaaaaa", session_id=sid)
        reg.complete_run(bad, 2, "ran out of memory")
        reg.start_run("aaaaaaaaaaaa", session_id=sid)
        reg.label_run("bbbbbbbbbbbb", "baseline")
        reg.label_run("aaaaaaaaaaaa", "baseline", force=True)
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_info_page_shows_parameters_as_given_runs_and_label_history(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "info", db, "baseline")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Run: baseline (aaaaaaaaaaaa)"
    assert lines[1] == "=" * len(lines[0])
    assert "  maxGrowth = 85" in lines  # as registered, not the table's 85.0
    assert '  kind = "it\'s"' in lines
    assert any(line.startswith("Session:") and "(info_exp)" in line for line in lines)
    assert any("soil: /data/soil.jshd" in line for line in lines)
    assert "Replicates:  3 per execution; 0 with loaded results" in lines
    assert "Executions:  1 succeeded, 1 failed, 1 pending" in lines
    assert "ran out of memory" in out and "running" in out and "/out/a" in out
    history = out[out.index("Label history:") :]
    # The label moved by force: the assignment names the run that held it before.
    assert history.splitlines()[2].split()[4:8] == ["assigned", "baseline", "aaaaaaaaaaaa", "bbbbbbbbbbbb"]


def test_info_by_hash_and_as_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "info", db, "bbbbbbbbbbbb", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["run_hash"] == "bbbbbbbbbbbb"
    assert info["label"] is None  # lost "baseline" to aaaaaaaaaaaa
    assert info["parameters"] == {"maxGrowth": 90}
    assert info["runs"] == []
    assert [c["action"] for c in info["label_history"]] == ["assigned", "released", "assigned"]


def test_info_unknown_run_names_it(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "info", db, "no-such-run")
    assert code == 2
    assert "no-such-run" in err
