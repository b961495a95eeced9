"""Stored sources as files: read-only exports, source-file checks, IDE and text diffs, CLI."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from joshreg import (
    ConfigSourceInfo,
    IdeUnavailableError,
    JoshregError,
    RunNotFoundError,
    RunRegistry,
    SourceNotStoredError,
)
from joshreg.cli.app import main
from joshreg.provenance import sources as src

CONFIG_A = "maxGrowth = 10 count\nseed = 1 count\nsteps = 20 count\n"
CONFIG_B = "maxGrowth = 20 count\nseed = 1 count\nsteps = 20 count\n"
JOSH_A = "start simulation Main\n  grid.size = 1000 m\nend simulation\n"
JOSH_B = "start simulation Main\n  grid.size = 500 m\nend simulation\n"
NONE = ConfigSourceInfo(path=None, exists=False, content_matches=False)


@dataclass
class JobConfig:
    """The parts of a job config create_session reads; ``config_path`` as joshpy serialises it."""

    config_path: Path | None = None
    simulation: str = "Main"
    template_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.config_path is None:
            return {"template_path": "sweep.jshc.j2"}
        return {"config_path": str(self.config_path)}


def add_run(
    reg: RunRegistry,
    run_hash: str,
    config: str = CONFIG_A,
    *,
    config_path: Path | None = None,
    josh_path: Path | str | None = "model.josh",
    josh: str | None = JOSH_A,
    label: str | None = None,
) -> str:
    """A run in a session of its own, whose job config points at ``config_path``."""
    sid = reg.create_session(JobConfig(config_path))
    reg.register_run(sid, run_hash, josh_path, config, None, {"maxGrowth": 10}, josh_content=josh)
    if label is not None:
        reg.label_run(run_hash, label)
    return run_hash


def body(path: Path, header_lines: int) -> str:
    """An export's text after its comment header and the blank line."""
    lines = path.read_text(encoding="utf-8").split("\n")
    assert all(ln.startswith("# ") for ln in lines[:header_lines])
    assert lines[header_lines] == ""
    return "\n".join(lines[header_lines + 1 :])


# --- exports ------------------------------------------------------------------------------------


def test_export_config_writes_header_and_stored_text_named_by_label(registry, tmp_path):
    add_run(registry, "aaaaaaaaaaaa", label="baseline")
    path = registry.export_config("baseline", tmp_path)
    assert path == tmp_path / "baseline.jshc"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert "READ-ONLY" in lines[0]
    assert lines[1] == "# Run: aaaaaaaaaaaa"
    assert "no effect" in lines[2] and ".jshc" in lines[3]
    assert body(path, 4) == CONFIG_A


def test_export_by_hash_is_named_by_hash_even_when_the_run_has_a_label(registry, tmp_path):
    add_run(registry, "aaaaaaaaaaaa", label="baseline")
    assert registry.export_config("aaaaaaaaaaaa", tmp_path).name == "aaaaaaaaaaaa.jshc"
    assert registry.export_josh("aaaaaaaaaaaa", tmp_path).name == "aaaaaaaaaaaa.josh"


def test_a_label_wins_over_a_hash_of_the_same_spelling(registry, tmp_path):
    add_run(registry, "aaaaaaaaaaaa", CONFIG_A)
    add_run(registry, "bbbbbbbbbbbb", CONFIG_B, label="aaaaaaaaaaaa")
    path = registry.export_config("aaaaaaaaaaaa", tmp_path)
    assert body(path, 4) == CONFIG_B
    assert "# Run: bbbbbbbbbbbb" in path.read_text(encoding="utf-8")


def test_export_josh_has_a_three_line_header(registry, tmp_path):
    add_run(registry, "aaaaaaaaaaaa", label="baseline")
    path = registry.export_josh("baseline", tmp_path)
    assert path == tmp_path / "baseline.josh"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert "READ-ONLY" in lines[0] and lines[1] == "# Run: aaaaaaaaaaaa" and "no effect" in lines[2]
    assert body(path, 3) == JOSH_A


def test_exports_are_read_only_files_and_replace_earlier_ones(registry, tmp_path):
    add_run(registry, "aaaaaaaaaaaa", label="baseline")
    target = tmp_path / "baseline.jshc"
    target.write_text("something else\n")
    target.chmod(0o444)
    path = registry.export_config("baseline", tmp_path)
    assert body(path, 4) == CONFIG_A
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert registry.export_config("baseline", tmp_path) == path  # again: replaced, no error
    assert [p.name for p in tmp_path.iterdir()] == ["baseline.jshc"]  # no temp files left


def test_export_creates_the_output_directory(registry, tmp_path):
    add_run(registry, "aaaaaaaaaaaa")
    out = tmp_path / "a" / "b" / "c"
    path = registry.export_config("aaaaaaaaaaaa", out)
    assert path.parent == out and path.is_file()


@pytest.mark.parametrize("label", ["with space", 'it\'s "quoted"', "référence-β", "ünï cødé 名前"])
def test_export_names_and_directories_with_spaces_quotes_and_non_ascii(registry, tmp_path, label):
    text = "name = \"café ☕\" 'quoted'\n"
    add_run(registry, "aaaaaaaaaaaa", text, label=label)
    out = tmp_path / f"dir {label}"
    path = registry.export_config(label, out)
    assert path == out / f"{label}.jshc"
    assert body(path, 4) == text


@pytest.mark.parametrize("label", ["../escape", "a/b", "..", "tab\there"])
def test_a_label_cannot_place_the_export_outside_the_directory(registry, tmp_path, label):
    add_run(registry, "aaaaaaaaaaaa", label=label)
    out = tmp_path / "out"
    path = registry.export_config(label, out)
    assert path.parent == out
    assert "/" not in path.name and "\t" not in path.name
    assert body(path, 4) == CONFIG_A


def test_unknown_run_is_a_key_error_and_writes_nothing(registry, tmp_path):
    add_run(registry, "aaaaaaaaaaaa")
    for export in (registry.export_config, registry.export_josh):
        with pytest.raises(KeyError, match="nope") as exc:
            export("nope", tmp_path / "out")
        assert isinstance(exc.value, RunNotFoundError)
    assert not (tmp_path / "out").exists()


def test_export_josh_without_stored_source_says_how_to_fix_it(registry, tmp_path):
    add_run(registry, "aaaaaaaaaaaa", josh=None, josh_path="models/forest.josh")
    with pytest.raises(SourceNotStoredError) as exc:
        registry.export_josh("aaaaaaaaaaaa", tmp_path / "out")
    e = exc.value
    assert isinstance(e, KeyError) and isinstance(e, ValueError) and isinstance(e, JoshregError)
    msg = str(e)
    assert "aaaaaaaaaaaa" in msg and "josh_content=" in msg and "models/forest.josh" in msg
    assert not msg.startswith("'")  # a sentence, not KeyError's quoted repr
    assert not (tmp_path / "out").exists()


# --- where the sources came from ----------------------------------------------------------------


def test_config_source_matching_drifted_and_missing(registry, tmp_path):
    cfg = tmp_path / "my sweep é.jshc"
    cfg.write_text(CONFIG_A, encoding="utf-8")
    add_run(registry, "aaaaaaaaaaaa", config_path=cfg)
    assert registry.resolve_config_source("aaaaaaaaaaaa") == ConfigSourceInfo(cfg, True, True)
    cfg.write_text(CONFIG_A + "extra = 1 count\n", encoding="utf-8")
    assert registry.resolve_config_source("aaaaaaaaaaaa") == ConfigSourceInfo(cfg, True, False)
    cfg.unlink()
    assert registry.resolve_config_source("aaaaaaaaaaaa") == ConfigSourceInfo(cfg, False, False)


def test_config_source_without_a_config_path_is_none(registry):
    add_run(registry, "aaaaaaaaaaaa")  # templated: the job config has no config_path
    assert registry.resolve_config_source("aaaaaaaaaaaa") == NONE
    assert registry.resolve_config_source("no-such-hash") == NONE


def test_config_source_with_an_empty_job_config_or_no_session(registry):
    class Bare:
        simulation = "Main"
        template_path = None

        def to_dict(self) -> dict[str, Any]:
            return {}

    sid = registry.create_session(Bare())
    registry.register_run(sid, "aaaaaaaaaaaa", None, CONFIG_A, None, {})
    assert registry.resolve_config_source("aaaaaaaaaaaa") == NONE
    cfg = registry.get_config_by_hash("aaaaaaaaaaaa")
    session = registry.get_session(sid)
    session.metadata = None  # a session recorded without a job config
    assert src.config_source(cfg, session) == NONE
    assert src.config_source(cfg, None) == NONE
    assert src.config_source(None, session) == NONE


def test_unreadable_source_counts_as_not_existing(registry, tmp_path, monkeypatch):
    cfg = tmp_path / "sweep.jshc"
    cfg.mkdir()  # a directory where the file was: reading it fails
    add_run(registry, "aaaaaaaaaaaa", config_path=cfg)
    assert registry.resolve_config_source("aaaaaaaaaaaa") == ConfigSourceInfo(cfg, False, False)
    cfg.rmdir()
    cfg.write_text(CONFIG_A)
    real = Path.read_text

    def denied(self: Path, *a: Any, **k: Any) -> str:
        if self == cfg:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", denied)
    assert registry.resolve_config_source("aaaaaaaaaaaa") == ConfigSourceInfo(cfg, False, False)


def test_a_source_that_is_not_utf8_exists_but_does_not_match(registry, tmp_path):
    cfg = tmp_path / "sweep.jshc"
    cfg.write_bytes(b"\xff\xfe binary")
    add_run(registry, "aaaaaaaaaaaa", config_path=cfg)
    assert registry.resolve_config_source("aaaaaaaaaaaa") == ConfigSourceInfo(cfg, True, False)


def test_josh_source_in_all_its_cases(registry, tmp_path):
    josh = tmp_path / "model.josh"
    josh.write_text(JOSH_A, encoding="utf-8")
    add_run(registry, "aaaaaaaaaaaa", josh_path=josh)
    add_run(registry, "bbbbbbbbbbbb", josh_path=None)
    add_run(registry, "cccccccccccc", josh_path=josh, josh=None)
    assert registry.resolve_josh_source("aaaaaaaaaaaa") == ConfigSourceInfo(josh, True, True)
    assert registry.resolve_josh_source("bbbbbbbbbbbb") == NONE
    assert registry.resolve_josh_source("cccccccccccc") == NONE  # nothing stored to compare with
    assert registry.resolve_josh_source("no-such-hash") == NONE
    josh.write_text(JOSH_B, encoding="utf-8")
    assert registry.resolve_josh_source("aaaaaaaaaaaa") == ConfigSourceInfo(josh, True, False)
    josh.unlink()
    assert registry.resolve_josh_source("aaaaaaaaaaaa") == ConfigSourceInfo(josh, False, False)


# --- text diffs ---------------------------------------------------------------------------------


def test_diff_configs_is_a_unified_diff_naming_both_runs(registry):
    add_run(registry, "aaaaaaaaaaaa", CONFIG_A, label="baseline")
    add_run(registry, "bbbbbbbbbbbb", CONFIG_B)
    text = registry.diff_configs("baseline", "bbbbbbbbbbbb")
    lines = text.splitlines()
    assert lines[0] == "--- baseline (aaaaaaaaaaaa)"
    assert lines[1] == "+++ bbbbbbbbbbbb"
    assert "-maxGrowth = 10 count" in lines and "+maxGrowth = 20 count" in lines
    assert " seed = 1 count" in lines  # context
    # Given by hash, a labelled run is still named by its label.
    assert registry.diff_configs("aaaaaaaaaaaa", "bbbbbbbbbbbb").splitlines()[0] == lines[0]


def test_diff_context_and_identical_runs(registry):
    add_run(registry, "aaaaaaaaaaaa", CONFIG_A)
    add_run(registry, "bbbbbbbbbbbb", CONFIG_B)
    add_run(registry, "cccccccccccc", CONFIG_A)
    assert registry.diff_configs("aaaaaaaaaaaa", "cccccccccccc") == ""
    assert registry.diff_configs("aaaaaaaaaaaa", "aaaaaaaaaaaa") == ""
    bare = registry.diff_configs("aaaaaaaaaaaa", "bbbbbbbbbbbb", context=0).splitlines()
    assert not [ln for ln in bare if ln.startswith(" ")]
    with pytest.raises(ValueError, match="context"):
        registry.diff_configs("aaaaaaaaaaaa", "bbbbbbbbbbbb", context=-1)


def test_diff_marks_a_missing_final_newline(registry):
    add_run(registry, "aaaaaaaaaaaa", "x = 1")
    add_run(registry, "bbbbbbbbbbbb", "x = 2\n")
    assert registry.diff_configs("aaaaaaaaaaaa", "bbbbbbbbbbbb").splitlines()[3:] == [
        "-x = 1",
        "\\ No newline at end of file",
        "+x = 2",
    ]


def test_diff_josh_compares_the_josh_sources(registry):
    add_run(registry, "aaaaaaaaaaaa", josh=JOSH_A)
    add_run(registry, "bbbbbbbbbbbb", josh=JOSH_B)
    add_run(registry, "cccccccccccc", josh=None)
    text = registry.diff_josh("aaaaaaaaaaaa", "bbbbbbbbbbbb")
    assert "-  grid.size = 1000 m" in text and "+  grid.size = 500 m" in text
    with pytest.raises(SourceNotStoredError, match="josh_content="):
        registry.diff_josh("aaaaaaaaaaaa", "cccccccccccc")
    with pytest.raises(KeyError):
        registry.diff_josh("aaaaaaaaaaaa", "nope")


# --- IDE diffs ----------------------------------------------------------------------------------


@pytest.fixture
def fake_ide(tmp_path, monkeypatch):
    """``code`` and ``cursor`` on PATH: each records its argv; subprocess.run calls are spied on."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "ide-argv.json"
    for name in ("code", "cursor"):
        script = bin_dir / name
        script.write_text(
            f"#!{sys.executable}\n"
            "import json, sys\n"
            f"with open({str(log)!r}, 'a') as f:\n"
            "    f.write(json.dumps(sys.argv) + '\\n')\n"
        )
        script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    calls: list[tuple[Any, dict[str, Any]]] = []
    real_run = subprocess.run

    def spy(args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return real_run(args, **kwargs)

    monkeypatch.setattr(src.subprocess, "run", spy)

    def launched() -> list[list[str]]:
        if not log.exists():
            return []
        return [json.loads(ln) for ln in log.read_text().splitlines()]

    return {"bin": bin_dir, "launched": launched, "calls": calls}


def test_compare_configs_launches_code_diff_without_a_shell(registry, tmp_path, fake_ide):
    add_run(registry, "aaaaaaaaaaaa", CONFIG_A, label="base; $(touch pwned) 'x'")
    add_run(registry, "bbbbbbbbbbbb", CONFIG_B)
    p1, p2 = registry.compare_configs("base; $(touch pwned) 'x'", "bbbbbbbbbbbb")
    (argv,) = fake_ide["launched"]()
    assert Path(argv[0]).name == "code"
    assert argv[1:] == ["--diff", str(p1), str(p2)]
    ((args, kwargs),) = [c for c in fake_ide["calls"] if "--diff" in c[0]]
    assert isinstance(args, list) and not kwargs.get("shell") and kwargs.get("check") is False
    assert not (Path.cwd() / "pwned").exists() and not (tmp_path / "pwned").exists()
    # Templated runs have no source file: both sides are plain exports in a fresh temp dir.
    assert p1.parent == p2.parent and p1.parent.name.startswith("joshreg_inspect_")
    assert body(p1, 4) == CONFIG_A and body(p2, 4) == CONFIG_B
    assert "READ-ONLY" in p1.read_text()


def test_compare_uses_the_real_source_when_it_matches_and_flags_drift(registry, tmp_path, fake_ide):
    real_a = tmp_path / "src a" / "sweep.jshc"
    real_a.parent.mkdir()
    real_a.write_text(CONFIG_A, encoding="utf-8")
    real_b = tmp_path / "sweep_b.jshc"
    real_b.write_text(CONFIG_B + "# edited after the run\n", encoding="utf-8")
    add_run(registry, "aaaaaaaaaaaa", CONFIG_A, config_path=real_a, label="baseline")
    add_run(registry, "bbbbbbbbbbbb", CONFIG_B, config_path=real_b, label="candidate")
    out = tmp_path / "exports"
    p1, p2 = registry.compare_configs("baseline", "candidate", output_dir=out)
    assert p1 == real_a  # unchanged source: open it, editable
    assert p2 == out / "candidate.jshc"  # drifted: the stored text, saying why
    header = p2.read_text(encoding="utf-8").split("\n\n", 1)[0]
    assert "READ-ONLY" in header and "bbbbbbbbbbbb" in header
    assert str(real_b) in header and "modified since registration" in header
    assert body(p2, 4) == CONFIG_B
    assert fake_ide["launched"]()[0][1:] == ["--diff", str(real_a), str(p2)]


def test_compare_josh_with_cursor(registry, tmp_path, fake_ide):
    josh = tmp_path / "model.josh"
    josh.write_text(JOSH_A, encoding="utf-8")
    add_run(registry, "aaaaaaaaaaaa", josh_path=josh, josh=JOSH_A)
    add_run(registry, "bbbbbbbbbbbb", josh_path=tmp_path / "gone.josh", josh=JOSH_B)
    p1, p2 = registry.compare_josh("aaaaaaaaaaaa", "bbbbbbbbbbbb", ide="cursor")
    assert p1 == josh and p2.name == "bbbbbbbbbbbb.josh" and body(p2, 3) == JOSH_B
    (argv,) = fake_ide["launched"]()
    assert Path(argv[0]).name == "cursor" and argv[1:] == ["--diff", str(p1), str(p2)]


def test_compare_keeps_two_labels_that_map_to_one_file_name_apart(registry, tmp_path, fake_ide):
    add_run(registry, "aaaaaaaaaaaa", CONFIG_A, label="a/b")
    add_run(registry, "bbbbbbbbbbbb", CONFIG_B, label="a_b")
    p1, p2 = registry.compare_configs("a/b", "a_b", output_dir=tmp_path / "out")
    assert p1 != p2
    assert body(p1, 4) == CONFIG_A and body(p2, 4) == CONFIG_B


def test_compare_josh_without_stored_source_launches_nothing(registry, tmp_path, fake_ide):
    add_run(registry, "aaaaaaaaaaaa")
    add_run(registry, "bbbbbbbbbbbb", josh=None)
    with pytest.raises(SourceNotStoredError):
        registry.compare_josh("aaaaaaaaaaaa", "bbbbbbbbbbbb", output_dir=tmp_path / "out")
    assert fake_ide["launched"]() == []
    assert not (tmp_path / "out").exists()


def test_unknown_ide_is_a_value_error(registry, tmp_path, fake_ide):
    add_run(registry, "aaaaaaaaaaaa")
    with pytest.raises(ValueError, match=r"Unknown IDE 'emacs'.*Supported: cursor, vscode"):
        registry.compare_configs("aaaaaaaaaaaa", "aaaaaaaaaaaa", ide="emacs", output_dir=tmp_path / "o")
    assert fake_ide["launched"]() == []


def test_missing_ide_command_is_a_runtime_error_saying_how_to_install_it(registry, tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    add_run(registry, "aaaaaaaaaaaa")
    with pytest.raises(RuntimeError) as exc:
        registry.compare_configs("aaaaaaaaaaaa", "aaaaaaaaaaaa", output_dir=tmp_path / "out")
    assert isinstance(exc.value, IdeUnavailableError)
    msg = str(exc.value)
    assert "'code'" in msg and "PATH" in msg and "Install 'code' command" in msg
    assert str(tmp_path / "out" / "aaaaaaaaaaaa.jshc") in msg  # the files are there to use


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture
def sweep_db(tmp_path) -> Path:
    db = tmp_path / "sweep.duckdb"
    with RunRegistry(db) as reg:
        add_run(reg, "aaaaaaaaaaaa", CONFIG_A, josh=JOSH_A, label="baseline")
        add_run(reg, "bbbbbbbbbbbb", CONFIG_B, josh=JOSH_B, label="candidate")
        add_run(reg, "cccccccccccc", CONFIG_A, josh=None)
    return db


def run_cli(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_diff_prints_the_diff_and_exits_1_when_runs_differ(sweep_db, capsys):
    code, out, err = run_cli(capsys, "diff", sweep_db, "baseline", "candidate")
    assert (code, err) == (1, "")
    with RunRegistry(sweep_db) as reg:
        assert out == reg.diff_configs("baseline", "candidate")
    assert out.startswith("--- baseline (aaaaaaaaaaaa)\n+++ candidate (bbbbbbbbbbbb)\n")


def test_cli_diff_exits_0_with_no_output_when_identical(sweep_db, capsys):
    assert run_cli(capsys, "diff", sweep_db, "baseline", "cccccccccccc") == (0, "", "")


def test_cli_diff_josh_context_and_json(sweep_db, capsys):
    code, out, _ = run_cli(capsys, "diff", sweep_db, "baseline", "candidate", "--josh", "--context", "0")
    assert code == 1
    assert "+  grid.size = 500 m" in out and "start simulation Main" not in out
    code, out, _ = run_cli(capsys, "diff", sweep_db, "baseline", "cccccccccccc", "--json")
    assert code == 0
    assert json.loads(out) == {
        "a": "baseline",
        "b": "cccccccccccc",
        "kind": "config",
        "identical": True,
        "diff": "",
    }


def test_cli_diff_errors_exit_2(sweep_db, capsys):
    code, out, err = run_cli(capsys, "diff", sweep_db, "baseline", "nope")
    assert (code, out) == (2, "")
    assert err == "joshreg: error: No run found for 'nope'\n"
    code, _, err = run_cli(capsys, "diff", sweep_db, "baseline", "cccccccccccc", "--josh")
    assert code == 2 and "josh_content=" in err and len(err.splitlines()) == 1


def test_cli_diff_ide_opens_the_ide(sweep_db, capsys, fake_ide):
    code, out, err = run_cli(capsys, "diff", sweep_db, "baseline", "candidate", "--ide", "vscode")
    assert (code, err) == (0, "")
    (argv,) = fake_ide["launched"]()
    assert argv[1] == "--diff" and argv[2] in out and argv[3] in out


def test_cli_diff_ide_missing_command_exits_2(sweep_db, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    code, _, err = run_cli(capsys, "diff", sweep_db, "baseline", "candidate", "--ide", "cursor")
    assert code == 2 and "'cursor' is not on PATH" in err


def test_cli_export_writes_read_only_files_and_prints_their_paths(sweep_db, capsys, tmp_path):
    out_dir = tmp_path / "my exports ü"
    code, out, err = run_cli(capsys, "export", sweep_db, "baseline", "--both", "-o", out_dir)
    assert (code, err) == (0, "")
    assert out.splitlines() == [str(out_dir / "baseline.jshc"), str(out_dir / "baseline.josh")]
    assert body(out_dir / "baseline.jshc", 4) == CONFIG_A
    assert body(out_dir / "baseline.josh", 3) == JOSH_A
    code, out, _ = run_cli(capsys, "export", sweep_db, "candidate", "--josh", "-o", out_dir, "--json")
    assert json.loads(out) == {"run": "candidate", "kind": "josh", "path": str(out_dir / "candidate.josh")}


def test_cli_export_defaults_to_the_config_in_a_temp_dir(sweep_db, capsys):
    code, out, _ = run_cli(capsys, "export", sweep_db, "aaaaaaaaaaaa")
    assert code == 0
    path = Path(out.strip())
    assert path.name == "aaaaaaaaaaaa.jshc" and path.parent.name.startswith("joshreg_inspect_")
    assert body(path, 4) == CONFIG_A


def test_cli_export_without_stored_josh_writes_nothing(sweep_db, capsys, tmp_path):
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, "export", sweep_db, "cccccccccccc", "--both", "-o", out_dir)
    assert (code, out) == (2, "")
    assert "josh_content=" in err
    assert not out_dir.exists() or not list(out_dir.iterdir())


def test_cli_export_failure_leaves_no_empty_temp_dir(sweep_db, capsys, tmp_path, monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    code, _, _ = run_cli(capsys, "export", sweep_db, "cccccccccccc", "--josh")
    assert code == 2
    assert list(temp.iterdir()) == []


def test_cli_export_options_are_exclusive(sweep_db, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["export", str(sweep_db), "baseline", "--josh", "--config"])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_export_path_of_the_module_api_matches_the_registry(registry, tmp_path):
    """``sources`` works on plain data: the registry's export is ``export_file`` of its config."""
    add_run(registry, "aaaaaaaaaaaa", label="baseline")
    cfg = registry.get_config_by_hash("aaaaaaaaaaaa")
    direct = src.export_file("config", cfg, "baseline", tmp_path / "direct")
    via = registry.export_config("baseline", tmp_path / "via")
    assert direct.read_bytes() == via.read_bytes()
