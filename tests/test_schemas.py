"""The published JSON Schemas match the event types, and real lines validate against them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from joshreg.log.events import (
    DesignDeleted,
    DesignRegistered,
    LabelArchived,
    LabelAssigned,
    LabelReleased,
    OutputRegistered,
    RegistryImported,
    ResultsLoaded,
    RunCompleted,
    RunRegistered,
    RunStarted,
    RunStatusChanged,
    SessionCreated,
    SessionStatusChanged,
    TagsSet,
    event_types,
)
from joshreg.log.labels import LabelLog, LabelState
from joshreg.log.schemas import generate, main, write_schemas
from joshreg.log.store import MemoryStore
from joshreg.log.writer import EventWriter

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@pytest.mark.parametrize("name", sorted(generate()))
def test_committed_schema_matches_the_code(name: str) -> None:
    committed = SCHEMAS / name
    assert committed.exists(), f"{committed} is missing: run `python -m joshreg.log.schemas`"
    assert committed.read_text(encoding="utf-8") == generate()[name], (
        f"{committed} is out of date: run `python -m joshreg.log.schemas` and commit the result"
    )


def test_write_schemas_writes_what_generate_returns(tmp_path: Path) -> None:
    paths = write_schemas(tmp_path / "out")
    assert {p.name: p.read_text(encoding="utf-8") for p in paths} == generate()


def test_main_writes_into_the_given_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main([str(tmp_path)])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(generate())
    assert "events.schema.json" in capsys.readouterr().out


def test_every_event_type_is_described_with_framing() -> None:
    schema = json.loads(generate()["events.schema.json"])
    tags = {d["properties"]["type"]["enum"][0]: d for d in schema["$defs"].values()}
    assert set(tags) == set(event_types())
    for definition in tags.values():
        for field in ("p", "c", "event_id", "writer", "seq", "hlc", "actor"):
            assert field in definition["required"]
            assert definition["properties"][field]["description"]


def written_lines() -> list[dict[str, Any]]:
    store = MemoryStore()
    w = EventWriter(store, durability="none")
    w.append_many(
        [
            SessionCreated(session_id="s1", experiment_name="e", metadata={"job_config": {"a": [1, 2]}}),
            SessionCreated(session_id="s2", created_us=1_785_000_000_000_000),
            SessionStatusChanged(session_id="s1", status="running"),
            RunRegistered(
                session_id="s1",
                run_hash="abc",
                config_content="x = 1",
                file_mappings={"f": {"path": "/p", "hash": "h"}},
                parameters={"x": 1, "y": "a"},
                parameter_types={"x": "DOUBLE", "y": "VARCHAR"},
            ),
            RunStarted(run_id="r1", run_hash="abc", session_id="s1", replicate=2),
            RunCompleted(run_id="r1", exit_code=0),
            OutputRegistered(output_id="o1", run_id="r1", output_type="csv", file_path="/o.csv"),
            ResultsLoaded(
                run_id="r1",
                run_hash="abc",
                blob="blobs/ab/ab.parquet",
                blob_sha256="ab",
                source_path="/o.csv",
                source_sha256="cd",
                row_count=3,
                columns={"avg.height": "DOUBLE"},
            ),
            RegistryImported(
                source="/old.duckdb",
                source_kind="duckdb",
                source_timezone="Etc/UTC",
                counts={"sessions": 2},
                not_imported=["table run_tags"],
            ),
            RunStatusChanged(run_hash="abc", status="superseded", superseded_by="def", reason="newer"),
            RunStatusChanged(run_hash="def"),
            TagsSet(scope="site", key="mojave", tags={"elevation": 900, "dry": True, "note": None}),
            DesignRegistered(name="d", requirements=[{"attributes": {"site": "a"}, "min_active": 1}]),
            DesignDeleted(name="d"),
        ]
    )
    w.close()  # seals the segment: a segment.sealed line
    return [json.loads(line) for line in store.read(w.segment).splitlines()]


def test_real_lines_validate_against_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(generate()["events.schema.json"]))
    lines = written_lines()
    assert {line["type"] for line in lines} == set(event_types())
    for line in lines:
        validator.validate(line)
    broken = dict(lines[4])
    del broken["c"]
    assert not validator.is_valid(broken)
    assert not validator.is_valid({**lines[5], "exit_code": "zero"})
    assert not validator.is_valid({**lines[5], "p": "XYZ"})
    assert not validator.is_valid({**lines[1], "created_us": "yesterday"})


def test_real_label_commit_validates_against_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(generate()["label-commit.schema.json"]))
    store = MemoryStore()

    def plan(state: LabelState) -> list[Any]:
        return [
            LabelArchived(label="best", run_hash="a", archived_as="best_1"),
            LabelReleased(label="old", run_hash="b", reason="relabel"),
            LabelAssigned(label="best", run_hash="b", previous_run_hash="a"),
            LabelAssigned(label="kept", run_hash="c", reason="imported"),
        ]

    LabelLog(store).commit(plan)
    (name,) = store.list_claims("labels")
    commit = json.loads(store.read_claim(name) or b"")
    validator.validate(commit)
    assert not validator.is_valid({**commit, "actions": [{"type": "label.renamed"}]})
