"""Outputs where they are: get_output_uris, query_remote and check_remote_consistency over the
export files runs wrote, on local paths (tests/test_s3_outputs.py: in a bucket)."""

from __future__ import annotations

from pathlib import Path

import pytest

from joshreg import OutputURI, RunRegistry
from joshreg.errors import InvalidArgumentError
from joshreg.registry.outputs import replicate_from_uri, s3_uri

A, B = "aaaaaaaaaaa1", "bbbbbbbbbbb2"


@pytest.fixture
def reg(registry: RunRegistry, session: str, tmp_path: Path) -> RunRegistry:
    for h, height in ((A, 1.0), (B, 3.0)):
        registry.register_run(session, h, None, h, None, {})
        folder = tmp_path / h
        folder.mkdir()
        run = registry.start_run(h, session_id=session)
        for rep in (0, 1):
            path = folder / f"patch_{h}_{rep}.csv"
            path.write_text(
                "position.x,position.y,height,step,replicate\n"
                + "".join(f"{x},0,{height + rep},{s},{rep}\n" for x in range(2) for s in range(2))
            )
            registry.register_output(run, "export.patch", str(path))
        registry.register_output(run, "export.patch", str(folder / "josh.jar"))
    registry.label_run(A, "best")
    registry.label_run(B, "other")
    return registry


def test_uris_of_current_runs_with_replicates_from_file_names(reg: RunRegistry, tmp_path: Path) -> None:
    uris = reg.get_output_uris()
    assert [(u.run_hash, u.label, u.replicate) for u in uris] == [
        (A, "best", 0),
        (A, "best", 1),
        (B, "other", 0),
        (B, "other", 1),
    ]
    assert all(u.uri.endswith(".csv") for u in uris)  # never the jar
    reg.mark_run(B, "bad")
    assert {u.run_hash for u in reg.get_output_uris()} == {A}
    assert len(reg.get_output_uris(current_only=False)) == 4
    assert reg.get_output_uris("best") == uris[:2] and isinstance(uris[0], OutputURI)
    assert reg.get_output_uris(output_type="coverage") == []


def test_helpers() -> None:
    assert replicate_from_uri("s3://b/run/patch_3f2a_12.csv") == 12
    assert replicate_from_uri("out/final.csv") is None
    assert s3_uri("minio://bucket/k.csv") == "s3://bucket/k.csv" == s3_uri("minio:/bucket/k.csv")


def test_query_remote_aggregates_in_place(reg: RunRegistry, tmp_path: Path) -> None:
    frame = reg.query_remote("height", group_by=("label", "replicate"))
    assert frame.to_dict("records") == [
        {"label": "best", "replicate": 0, "mean": 1.0},
        {"label": "best", "replicate": 1, "mean": 2.0},
        {"label": "other", "replicate": 0, "mean": 3.0},
        {"label": "other", "replicate": 1, "mean": 4.0},
    ]
    frame = reg.query_remote(
        "height", agg="max", group_by=("run_hash",), where="step = 1", cache=tmp_path / "c.csv"
    )
    assert frame.to_dict("records") == [{"run_hash": A, "max": 2.0}, {"run_hash": B, "max": 4.0}]
    assert (tmp_path / "c.csv").read_text().startswith("run_hash,max")
    assert reg.query("SELECT count(*) FROM cell_data").fetchone() == (0,)  # nothing ingested
    with pytest.raises(InvalidArgumentError, match="Unknown agg"):
        reg.query_remote("height", agg="mode")
    with pytest.raises(InvalidArgumentError, match="No coverage outputs"):
        reg.query_remote("height", output_type="coverage")


def test_remote_consistency_checks_local_files(reg: RunRegistry, tmp_path: Path) -> None:
    assert reg.check_remote_consistency() == []
    (tmp_path / A / f"patch_{A}_1.csv").unlink()
    (tmp_path / B / "stray.csv").write_text("x\n")
    reg.mark_run(A, "superseded", superseded_by=B)
    issues = reg.check_remote_consistency(current_only=False)
    assert [(i.kind, i.severity) for i in issues] == [
        ("missing_remote_output", "error"),
        ("orphan_remote_output", "warning"),
    ]
    issues = reg.check_remote_consistency()  # only B counts now: A's files are not B's
    assert [i.kind for i in issues] == ["orphan_remote_output"]


def test_upstream_credential_arguments_are_accepted_for_local_outputs(reg: RunRegistry) -> None:
    frame = reg.query_remote("height", group_by=("label",), endpoint="http://minio:9000", use_ssl=False)
    assert len(frame) == 2
    assert reg.check_remote_consistency(access_key="k", secret_key="s") == []


def test_remote_count_mismatch_on_local_files(reg: RunRegistry, session: str, tmp_path: Path) -> None:
    for rep in (0, 1, 2):  # three replicates of A ran; two files are registered
        reg.complete_run(reg.start_run(A, session_id=session, replicate=rep), 0)
    extra = reg.start_run(B, session_id=session)  # a second file for B's replicate 1
    path = tmp_path / B / f"patch_{B}_again_1.csv"
    path.write_text("position.x,position.y,height,step,replicate\n0,0,9,0,1\n")
    reg.register_output(extra, "export.patch", str(path))
    issues = reg.check_remote_consistency()
    assert [(i.kind, i.run_hash) for i in issues] == [
        ("remote_count_mismatch", A),
        ("remote_count_mismatch", B),
    ]
    assert "3 replicates ran successfully but 2 patch files are registered" in issues[0].detail
    assert issues[1].detail.startswith("replicate 1 has 2 patch files")
