"""The docs cannot drift: every command has help and a README mention, README Python runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from joshreg.cli.app import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"^```python\n(.*?)^```", README, flags=re.S | re.M)
COMMANDS = build_parser()._subparsers._group_actions[0].choices


def test_readme_has_python_examples():
    assert len(PYTHON_BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_readme_python_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = compile(PYTHON_BLOCKS[index], f"README.md python block {index + 1}", "exec")
    exec(code, {"__name__": f"readme_block_{index + 1}"})


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_has_help_and_an_example(name):
    sub = COMMANDS[name]
    assert sub.description, f"joshreg {name} is missing its help"
    assert "example" in (sub.epilog or ""), f"joshreg {name} has no example in its --help"
    for action in sub._actions:
        assert action.help, f"joshreg {name} {action.option_strings or action.dest} has no help"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_readme_mentions_command(name):
    assert f"joshreg {name} " in README


def test_quick_start_commands_and_ci_agree():
    setup = "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && "
    assert setup + ".venv/bin/just demo\n" in README
    test_command = setup + ".venv/bin/just test"
    assert test_command + "\n" in README
    ci = ROOT / ".ci" / "run"
    assert test_command in ci.read_text()
    assert os.access(ci, os.X_OK)


def test_justfile_has_the_documented_recipes():
    just = Path(sys.executable).parent / "just"
    proc = subprocess.run(
        [str(just), "--justfile", str(ROOT / "justfile"), "--summary"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    recipes = set(proc.stdout.split())
    assert {"default", "test", "demo", "bench", "schemas", "lint"} <= recipes
    for recipe in recipes - {"default"}:
        assert f"just {recipe}" in README, f"README does not mention `just {recipe}`"
