"""A log written by a newer joshreg (an event type, a schema version or a label action this one
does not know) stops the projection with one line, instead of being skipped as damage: skipping
a newer drop would show a dropped run as live."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from joshreg import RunRegistry
from joshreg.cli.app import main
from joshreg.errors import LogFormatError
from joshreg.log.codec import GENESIS, check_line, frame
from joshreg.testing.registries import FakeJobConfig


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.duckdb"
    with RunRegistry(path) as reg:
        sid = reg.create_session(FakeJobConfig(), session_id="s1")
        reg.register_run(sid, "aaaaaaaaaaa1", None, "a", None, {})
    return path


def _append_line(db: Path, fields: dict[str, object]) -> None:
    """Add a well-framed line (chain and checksum intact) to the end of the registry's segment."""
    (segment,) = (db.parent / "sweep.events" / "log").glob("*.jsonl")
    lines = segment.read_bytes().splitlines()
    last = json.loads(lines[-1])
    check = check_line(lines[-1])
    prev = check.c if check is not None else GENESIS
    body = {
        "type": fields.pop("type"),
        "event_id": "01a23800-0000-7000-8000-000000000001",
        "writer": last["writer"],
        "seq": last["seq"] + 1,
        "hlc": last["hlc"] + 1,
        "actor": "ana@host",
        **fields,
    }
    line, _ = frame(json.dumps(body).encode(), prev)
    with segment.open("ab") as f:
        f.write(line)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"type": "run.archived", "run_hash": "aaaaaaaaaaa1"}, "event type 'run.archived'"),
        ({"type": "run.completed", "run_id": "r", "exit_code": 0, "v": 2}, "version 2 of event type"),
    ],
)
def test_a_newer_event_stops_the_projection(
    db: Path, fields: dict[str, object], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _append_line(db, fields)
    db.unlink()  # a fresh projection reads the whole log
    with pytest.raises(LogFormatError, match=f"{says}.*newer joshreg; upgrade joshreg"):
        RunRegistry(db)
    assert main(["sessions", str(db)]) == 2
    err = capsys.readouterr().err
    assert "newer joshreg" in err and len(err.strip().splitlines()) == 1


def test_damage_is_still_skipped_and_reported(db: Path) -> None:
    """A line whose checksum fails is damage, not news: skipped, reported, the rest applied."""
    (segment,) = (db.parent / "sweep.events" / "log").glob("*.jsonl")
    segment.write_bytes(segment.read_bytes().replace(b'"a"', b'"b"', 1))
    db.unlink()
    with pytest.warns(UserWarning), RunRegistry(db) as reg:
        assert reg.query("SELECT count(*) FROM log_problems").fetchone()[0] >= 1


def test_a_newer_label_action_stops_the_projection(db: Path) -> None:
    with RunRegistry(db) as reg:
        reg.label_run("aaaaaaaaaaa1", "best")
    claim = db.parent / "sweep.events" / "labels" / f"{1:020d}.json"
    commit = json.loads(claim.read_bytes())
    commit["actions"] = [{"type": "label.frozen", "label": "best", "run_hash": "aaaaaaaaaaa1"}]
    for key in ("p", "c"):
        commit.pop(key)
    line, _ = frame(json.dumps(commit).encode(), GENESIS)
    claim.write_bytes(line)
    db.unlink()
    with pytest.raises(LogFormatError, match=r"label action 'label\.frozen'"):
        RunRegistry(db)
