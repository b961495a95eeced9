"""check_consistency: results that disagree with the runs, as upstream HEAD reports them, and
the orphan events verify knows of."""

from __future__ import annotations

from pathlib import Path

import pytest

from joshreg import CellDataLoader, ConsistencyError, RunRegistry

A, B = "aaaaaaaaaaa1", "bbbbbbbbbbb2"


def _csv(folder: Path, name: str, replicate: int = 0) -> Path:
    path = folder / name
    path.write_text(
        "position.x,position.y,position.longitude,position.latitude,height,step,replicate\n"
        f"0,0,-116.0,34.0,1.0,0,{replicate}\n"
    )
    return path


def test_a_consistent_registry_has_no_findings(registry: RunRegistry, session: str, tmp_path: Path) -> None:
    registry.register_run(session, A, None, "a", None, {})
    run = registry.start_run(A, session_id=session)
    registry.complete_run(run, 0)
    CellDataLoader(registry).load_csv(_csv(tmp_path, "a.csv"), run, A)
    assert registry.check_consistency() == []
    assert registry.check_consistency(A, strict=True) == []


def test_each_kind_is_found(registry: RunRegistry, session: str, tmp_path: Path) -> None:
    registry.register_run(session, A, None, "a", None, {})
    first = registry.start_run(A, session_id=session)
    second = registry.start_run(A, session_id=session)
    idle = registry.start_run(A, session_id=session)
    for run in (first, second, idle):
        registry.complete_run(run, 0)
    loader = CellDataLoader(registry)
    loader.load_csv(_csv(tmp_path, "1.csv"), first, A)
    loader.load_csv(_csv(tmp_path, "2.csv"), second, A)  # replicate 0 again, another execution
    worker = registry.recorder()
    worker.load_csv(_csv(tmp_path, "b.csv"), None, B)  # results of a hash never registered
    worker.load_csv(_csv(tmp_path, "ghost.csv", 1), "ghost-run", A)  # of an unknown execution
    issues = registry.check_consistency()
    kinds = {(i.kind, i.severity, i.run_hash) for i in issues}
    assert kinds == {
        ("data_without_config", "error", B),
        ("orphan_cell_data", "error", A),
        ("duplicate_replicate", "error", A),
        ("ran_not_ingested", "warning", A),
        ("orphan_event", "warning", None),
    }
    dup = next(i for i in issues if i.kind == "duplicate_replicate")
    assert first in dup.detail and second in dup.detail
    assert idle in next(i for i in issues if i.kind == "ran_not_ingested").detail
    assert [i.kind for i in registry.check_consistency(B)] == ["data_without_config"]
    with pytest.raises(ConsistencyError, match="consistency error") as raised:
        registry.check_consistency(strict=True)
    assert isinstance(raised.value, RuntimeError)


def test_one_run_by_label(registry: RunRegistry, session: str, tmp_path: Path) -> None:
    for h in (A, B):
        registry.register_run(session, h, None, h, None, {})
        registry.complete_run(registry.start_run(h, session_id=session), 0)
    registry.label_run(B, "best")
    assert [i.run_hash for i in registry.check_consistency("best")] == [B]
    assert registry.check_consistency("best", strict=True)[0].kind == "ran_not_ingested"  # a warning


def test_describe_texts_are_what_the_command_line_prints(
    registry: RunRegistry, session: str, tmp_path: Path
) -> None:
    registry.register_run(session, A, None, "a", None, {"g": 1.5})
    registry.complete_run(registry.start_run(A, session_id=session), 0)
    registry.label_run(A, "best")
    assert "best" in registry.describe_labels() and A in registry.describe_labels()
    assert session in registry.describe_sessions()
    page = registry.describe_run("best")
    assert page.startswith(f"Run: best ({A})") and "g = 1.5" in page
    assert "warning: ran_not_ingested" in page
    CellDataLoader(registry).load_csv(_csv(tmp_path, "a.csv"), registry.get_runs_for_hash(A)[0].run_id, A)
    assert "Consistency" not in registry.describe_run(A)
    summary = registry.describe_summary()
    assert summary.startswith("Registry Data Summary") and "Rows:     1" in summary
