"""A job with a role and no keys (ECS/Batch container credentials here; web identity, instance
profiles, profiles and SSO go through the same chain): both clients, the event store's and
DuckDB's, sign with the role's keys and pick up renewed ones when they expire. Against a real
SeaweedFS behind a proxy that notes which key signed each request."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from joshreg import RunRegistry
from joshreg.log.store.s3options import S3Options, resolve_s3_options
from joshreg.testing.credentials import credentials_endpoint
from joshreg.testing.proxy import cuttable_proxy
from joshreg.testing.registries import FakeJobConfig

pytestmark = pytest.mark.slow  # a server

KEY_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
    "AWS_PROFILE",
)


def _objects(endpoint: str, prefix: str) -> list[bytes]:
    """Every object's bytes under ``prefix`` in the bucket, read with the servers' any-key pair."""
    import obstore
    from obstore.store import S3Store

    from joshreg.testing.servers import S3Server

    client = S3Store("sweeps", **_options(S3Server(endpoint).storage_options()).client_config())
    names = [m["path"] for batch in obstore.list(client, prefix=prefix) for m in batch]
    return [bytes(obstore.get(client, name).bytes()) for name in names]


def _options(storage_options: dict[str, str]) -> S3Options:

    return resolve_s3_options(storage_options, {})


def test_a_roles_renewed_keys_sign_the_store_and_duckdb(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with credentials_endpoint(lifetime=timedelta(seconds=4)) as role, cuttable_proxy(s3_endpoint) as wire:
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", role.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL", wire.endpoint)
        role.issue("ROLEKEYONE", "role-secret-one", "role-token-one")
        reg = RunRegistry(tmp_path / "r.duckdb", events_path=f"s3://sweeps/{tmp_path.name}/events")
        try:
            sid = reg.create_session(FakeJobConfig(), session_id="s1")
            reg.register_run(sid, "aaaaaaaaaaa1", None, "x", None, {})
            reg.flush()
            reg.push_to_s3(bucket="sweeps", prefix=f"{tmp_path.name}/published")  # DuckDB's httpfs
            assert wire.signed_with and set(wire.signed_with) == {"ROLEKEYONE"}

            role.issue("ROLEKEYTWO", "role-secret-two", "role-token-two")
            time.sleep(4.5)  # the first keys have expired
            del wire.signed_with[:]
            run = reg.start_run("aaaaaaaaaaa1", session_id=sid)
            reg.complete_run(run, 0)
            reg.flush()
            reg.push_to_s3(bucket="sweeps", prefix=f"{tmp_path.name}/published")
            assert wire.signed_with and set(wire.signed_with) == {"ROLEKEYTWO"}
            assert role.fetches >= 2
        finally:
            reg.close()
        again = RunRegistry(tmp_path / "other.duckdb", events_path=f"s3://sweeps/{tmp_path.name}/events")
        try:
            assert [r.exit_code for r in again.get_runs_for_hash("aaaaaaaaaaa1")] == [0]
        finally:
            again.close()
    kept = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    kept += b"".join(_objects(s3_endpoint, tmp_path.name))
    for secret in (b"role-secret-one", b"role-secret-two", b"role-token-one", b"role-token-two"):
        assert secret not in kept
