"""Damage in the log is reported where users look: at every open and by every CLI read."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from joshreg import LogDamageWarning, RunRegistry
from joshreg.cli.app import main
from joshreg.log.clock import new_writer_id
from joshreg.testing.registries import FakeJobConfig

pytestmark = pytest.mark.slow  # fault injection: every test damages a log on purpose


@pytest.fixture
def registry_path(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.duckdb"
    with RunRegistry(path) as reg:
        sid = reg.create_session(FakeJobConfig(), experiment_name="damaged")
        reg.register_run(sid, "aaaaaaaaaaaa", "m.josh", "x = 1", None, {"x": 1})
    return path


def _segment(path: Path) -> Path:
    (seg,) = (path.parent / "sweep.events" / "log").iterdir()
    return seg


def _open_quietly(path: Path) -> RunRegistry:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LogDamageWarning)
        return RunRegistry(path)


def test_a_garbage_line_warns_at_every_open(registry_path: Path) -> None:
    seg = _segment(registry_path)
    lines = seg.read_bytes().splitlines(keepends=True)
    lines.insert(1, b"this is not an event\n")
    seg.write_bytes(b"".join(lines))
    for _ in range(2):  # found once, and still told at the next open
        with pytest.warns(LogDamageWarning) as caught:
            reg = RunRegistry(registry_path)
        reg.close()
        (message,) = [str(w.message) for w in caught]
        assert f"has 1 damaged line that replay skipped or worked around (1 in log/{seg.name}" in message
        assert f"joshreg verify {registry_path}" in message


def test_every_cli_read_prints_one_line_about_the_damage(
    registry_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seg = _segment(registry_path)
    seg.write_bytes(seg.read_bytes() + b'{"garbage": true}\n')
    _open_quietly(registry_path).close()
    for command in (["sessions"], ["runs"], ["labels"], ["log"], ["info", "aaaaaaaaaaaa"]):
        code = main([command[0], str(registry_path), *command[1:]])
        out, err = capsys.readouterr()
        assert code == 0 and out, (command, err)
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("joshreg: warning: the event log of"), (command, err)
        assert "joshreg verify" in lines[0]


def test_a_torn_line_after_the_seal_is_damage(registry_path: Path) -> None:
    seg = _segment(registry_path)
    with open(seg, "ab") as f:
        f.write(b'{"type":"run.started","run_id":"half')  # a sealed segment never grows again
    with pytest.warns(LogDamageWarning, match=f"1 in log/{seg.name}"):
        RunRegistry(registry_path).close()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _foreign_segment(registry_path: Path, pid: int) -> Path:
    """A segment of a writer of this host whose process id is ``pid``, cut in its first line."""
    stamp, _, rest = new_writer_id().partition("-")
    host, _, tail = rest.rsplit("-", 2)
    seg = _segment(registry_path).parent / f"{stamp}-{host}-{pid}-{tail}.jsonl"
    seg.write_bytes(b'{"type":"session.cre')
    return seg


def test_a_torn_line_of_a_dead_writer_is_damage_once_abandoned(registry_path: Path) -> None:
    seg = _foreign_segment(registry_path, _dead_pid())
    _open_quietly(registry_path).close()  # an hour has not passed: not yet damage
    with warnings.catch_warnings():
        warnings.simplefilter("error", LogDamageWarning)
        RunRegistry(registry_path).close()
    hour_ago = time.time() - 3700
    os.utime(seg, (hour_ago, hour_ago))
    with pytest.warns(LogDamageWarning, match=f"1 in log/{seg.name}"):
        RunRegistry(registry_path).close()


def test_a_torn_line_of_a_live_writer_is_not_damage(registry_path: Path) -> None:
    seg = _foreign_segment(registry_path, os.getpid())  # this process: it may finish the line
    hour_ago = time.time() - 3700
    os.utime(seg, (hour_ago, hour_ago))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LogDamageWarning)
        RunRegistry(registry_path).close()
