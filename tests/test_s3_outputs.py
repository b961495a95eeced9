"""Outputs in a bucket: get_output_uris, query_remote and check_remote_consistency over export
files that runs wrote to s3:// (or recorded as minio://, as upstream does), against a real
SeaweedFS, with upstream's credential arguments or the registry's and the environment's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from joshreg import RunRegistry
from joshreg.errors import StoreError
from joshreg.log.store.s3options import resolve_s3_options
from joshreg.testing.registries import FakeJobConfig

pytestmark = pytest.mark.slow  # a server

A, B = "aaaaaaaaaaa1", "bbbbbbbbbbb2"
SECRET = "outputs-secret-value"
S3_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MINIO_ENDPOINT")


def _client(endpoint: str) -> Any:
    """An obstore client of the bucket, as a worker would write it."""
    from obstore.store import S3Store

    options = resolve_s3_options(
        {"endpoint_url": endpoint, "aws_access_key_id": "any", "aws_secret_access_key": SECRET}
    )
    return S3Store("sweeps", **options.client_config())


def _csv(height: float, replicate: int) -> bytes:
    rows = "".join(f"{x},0,{height + replicate},{s},{replicate}\n" for x in range(2) for s in range(2))
    return ("position.x,position.y,height,step,replicate\n" + rows).encode()


@pytest.fixture
def reg(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunRegistry:
    """Runs A (label best) and B (label other), one successful execution per replicate 0 and 1,
    each writing ``<prefix>/<hash>/patch_<hash>_<rep>.csv`` to the bucket; A's outputs are
    recorded as s3://, B's as minio:// (upstream's sweep writes those)."""
    import obstore

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "any")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    client, prefix = _client(s3_endpoint), tmp_path.name
    registry = RunRegistry(tmp_path / "r.duckdb")
    sid = registry.create_session(FakeJobConfig(), session_id="s1")
    for h, height, scheme in ((A, 1.0, "s3://"), (B, 3.0, "minio://")):
        registry.register_run(sid, h, None, h, None, {})
        for rep in (0, 1):
            key = f"{prefix}/{h}/patch_{h}_{rep}.csv"
            obstore.put(client, key, _csv(height, rep))
            run = registry.start_run(h, session_id=sid, replicate=rep)
            registry.register_output(run, "export.patch", f"{scheme}sweeps/{key}")
            registry.complete_run(run, 0)
    registry.label_run(A, "best")
    registry.label_run(B, "other")
    yield registry
    registry.close()


def test_uris_read_minio_as_s3(reg: RunRegistry, tmp_path: Path) -> None:
    uris = reg.get_output_uris()
    assert [(u.run_hash, u.replicate, u.uri) for u in uris] == [
        (h, rep, f"s3://sweeps/{tmp_path.name}/{h}/patch_{h}_{rep}.csv") for h in (A, B) for rep in (0, 1)
    ]


def test_query_remote_aggregates_objects_in_place(reg: RunRegistry, tmp_path: Path) -> None:
    frame = reg.query_remote("height", group_by=("label", "replicate"))
    assert frame.to_dict("records") == [
        {"label": "best", "replicate": 0, "mean": 1.0},
        {"label": "best", "replicate": 1, "mean": 2.0},
        {"label": "other", "replicate": 0, "mean": 3.0},
        {"label": "other", "replicate": 1, "mean": 4.0},
    ]
    frame = reg.query_remote(
        "height", agg="max", group_by=("run_hash",), where="step = 1", label_or_hash="other"
    )
    assert frame.to_dict("records") == [{"run_hash": B, "max": 4.0}]
    reg.mark_run(B, "bad")  # current runs only: B's objects are left out
    assert reg.query_remote("height", agg="count", group_by=("run_hash",)).to_dict("records") == [
        {"run_hash": A, "count": 8}
    ]
    assert reg.query("SELECT count(*) FROM cell_data").fetchone() == (0,)  # nothing ingested


def test_upstream_credential_arguments_reach_the_bucket(
    reg: RunRegistry, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in S3_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MINIO_ENDPOINT", "127.0.0.1:9")  # wrong, and the arguments win over it
    host = s3_endpoint.removeprefix("http://")
    creds = {"endpoint": host, "access_key": "any", "secret_key": SECRET, "use_ssl": False}
    frame = reg.query_remote("height", group_by=("label",), **creds)
    assert frame.to_dict("records") == [{"label": "best", "mean": 1.5}, {"label": "other", "mean": 3.5}]
    assert reg.check_remote_consistency(**creds) == []
    with pytest.raises(StoreError) as err:  # the environment's endpoint alone does not answer
        reg.check_remote_consistency(access_key="any", secret_key=SECRET)
    message = str(err.value)
    assert "http://127.0.0.1:9" in message and SECRET not in message and "\n" not in message
    with pytest.raises(StoreError) as err:
        reg.query_remote("height", access_key="any", secret_key=SECRET)
    message = str(err.value)
    assert "object storage" in message and SECRET not in message and "\n" not in message


def test_remote_consistency_finds_missing_extra_and_orphan_objects(
    reg: RunRegistry, s3_endpoint: str, tmp_path: Path
) -> None:
    import obstore

    client, prefix = _client(s3_endpoint), tmp_path.name
    assert reg.check_remote_consistency() == []
    obstore.delete(client, f"{prefix}/{A}/patch_{A}_1.csv")  # a replicate that never landed
    obstore.put(client, f"{prefix}/{B}/stray.csv", b"x\n")  # a file nobody registered
    obstore.put(client, f"{prefix}/{B}/patch_{B}_retry_0.csv", _csv(9.0, 0))
    run = reg.start_run(B, session_id="s1", replicate=0)  # a second file for B's replicate 0
    reg.register_output(run, "export.patch", f"s3://sweeps/{prefix}/{B}/patch_{B}_retry_0.csv")
    reg.complete_run(run, 0)
    lone = reg.start_run(A, session_id="s1", replicate=2)  # ran, registered nothing
    reg.complete_run(lone, 0)
    issues = reg.check_remote_consistency()
    assert [(i.kind, i.run_hash, i.severity) for i in issues] == [
        ("missing_remote_output", A, "error"),
        ("remote_count_mismatch", A, "error"),
        ("remote_count_mismatch", B, "error"),
        ("orphan_remote_output", None, "warning"),
    ]
    assert f"s3://sweeps/{prefix}/{A}/patch_{A}_1.csv" in issues[0].detail
    assert "3 replicates ran successfully but 2 patch files" in issues[1].detail
    assert issues[2].detail.startswith("replicate 0 has 2 patch files")
    assert issues[3].detail == f"s3://sweeps/{prefix}/{B}/stray.csv belongs to no run"
    old = f"s3://sweeps/{prefix}/{B}/patch_{A}_7.csv"  # A's, written into B's folder
    obstore.put(client, old.removeprefix("s3://sweeps/"), _csv(0.0, 7))
    reg.register_output(lone, "export.patch", old)
    reg.mark_run(A, "superseded", superseded_by=B)  # only B counts now
    issues = reg.check_remote_consistency()
    assert [(i.kind, i.run_hash) for i in issues] == [
        ("remote_count_mismatch", B),
        ("orphan_remote_output", None),
        ("orphan_remote_output", None),
    ]
    assert issues[1].detail == f"{old} belongs to a run that does not count (bad or superseded)"


def test_a_missing_bucket_is_named_in_one_line(s3_endpoint: str) -> None:
    from joshreg.results.locations import list_folder

    options = {"endpoint_url": s3_endpoint, "aws_access_key_id": "any", "aws_secret_access_key": SECRET}
    with pytest.raises(StoreError) as err:
        list_folder("s3://no-such-bucket/outputs", options)
    message = str(err.value)
    assert "the bucket no-such-bucket does not exist at " + s3_endpoint in message
    assert SECRET not in message and "\n" not in message
