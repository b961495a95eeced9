"""The package as users get it: a wheel built from the checkout, installed without extras into a
clean virtual environment, runs the demo (without plots, which need matplotlib)."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_the_wheel_installs_without_extras_and_runs_the_demo(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-w",
            str(dist),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    assert "License classifiers are deprecated" not in build.stderr + build.stdout
    assert "`project.license` as a TOML table is deprecated" not in build.stderr + build.stdout
    (wheel,) = dist.glob("joshreg-*.whl")
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    extras = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util as u; print([m for m in ('matplotlib', 'pandas') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert extras.stdout.strip() == "[]"
    demo = subprocess.run(
        [str(env / "bin" / "joshreg"), "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert demo.returncode == 0 and all(f"    {c} " in demo.stdout for c in ("sessions", "import", "watch"))
    run = subprocess.run(
        [str(python), "-m", "joshreg.demo", "--dir", str(tmp_path / "demo-output")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "Plots skipped: matplotlib is not installed (pip install 'joshreg[plot]')" in run.stdout
    assert (tmp_path / "demo-output" / "sweep.duckdb").is_file()
