"""The settings of an S3-compatible event store: storage_options, then AWS_*, then MINIO_*;
secrets never shown; a service that ignores put-if-absent is refused (against a real server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from joshreg.errors import InvalidArgumentError, StoreError
from joshreg.log.store.s3options import probe_conditional_put, resolve_s3_options

AWS = {
    "AWS_ENDPOINT_URL": "https://s3.example.org",
    "AWS_ACCESS_KEY_ID": "aws-key",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "AWS_REGION": "eu-central-1",
}
MINIO = {
    "MINIO_ENDPOINT": "minio.local:9000",
    "MINIO_ACCESS_KEY": "minio-key",
    "MINIO_SECRET_KEY": "minio-secret",
}


def test_storage_options_then_aws_then_minio_field_by_field() -> None:
    got = resolve_s3_options(
        {"aws_access_key_id": "opt-key", "aws_secret_access_key": "opt-secret"}, {**AWS, **MINIO}
    )
    assert (got.endpoint, got.access_key_id, got.secret_access_key, got.region) == (
        "https://s3.example.org",
        "opt-key",
        "opt-secret",
        "eu-central-1",
    )
    assert got.sources == {
        "endpoint": "AWS_*",
        "region": "AWS_*",
        "access_key_id": "storage_options",
        "secret_access_key": "storage_options",
    }
    minio = resolve_s3_options(None, MINIO)
    assert (minio.endpoint, minio.access_key_id, minio.allow_http) == (
        "http://minio.local:9000",
        "minio-key",
        True,
    )
    assert resolve_s3_options(None, {**MINIO, "AWS_ACCESS_KEY_ID": "a"}).access_key_id == "a"


def test_plain_http_and_spellings_of_the_data_tools() -> None:
    assert resolve_s3_options({"endpoint_url": "http://127.0.0.1:8333"}, {}).allow_http
    assert not resolve_s3_options({"endpoint_url": "https://x"}, {}).allow_http
    assert resolve_s3_options({"endpoint": "https://x", "allow_http": "true"}, {}).allow_http
    assert resolve_s3_options({"key": "k", "secret": "s", "token": "t"}, {}).session_token == "t"
    with pytest.raises(InvalidArgumentError, match="unknown storage_options endpiont"):
        resolve_s3_options({"endpiont": "x"}, {})


def test_secrets_never_show() -> None:
    got = resolve_s3_options({"aws_session_token": "tok-123"}, {**AWS})
    assert "aws-secret" not in repr(got) and "tok-123" not in repr(got)
    config = got.client_config()
    assert config["secret_access_key"] == "aws-secret" and config["virtual_hosted_style_request"] is False
    anonymous = resolve_s3_options(None, {}).client_config()
    assert anonymous["skip_signature"] is True and "endpoint" not in anonymous


def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*AWS, *MINIO, "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def test_a_job_given_a_role_instead_of_keys_signs_with_the_role(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch and container jobs get short-lived keys from a role: both the object client and
    DuckDB's secret sign with them (not anonymously), and given keys still win."""
    from joshreg.projection.httpfs import secret_sql
    from joshreg.testing.credentials import credentials_endpoint

    _no_keys(monkeypatch)
    with credentials_endpoint() as role:
        role.issue("ROLEKEY", "role-secret", "role-token")
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", role.url)
        got = resolve_s3_options()
        assert got.role == "container-role"
        assert got.sources["access_key_id"] == "AWS credential chain (container-role)"
        config = got.client_config()
        assert "skip_signature" not in config and "access_key_id" not in config
        assert config["credential_provider"]()["access_key_id"] == "ROLEKEY"
        sql = secret_sql(got)
        assert "KEY_ID 'ROLEKEY'" in sql and "SESSION_TOKEN 'role-token'" in sql
        assert "role-secret" not in repr(got) and "role-token" not in repr(got)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "given")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "given-secret")
        keys = resolve_s3_options()
        assert keys.role is None and keys.client_config()["access_key_id"] == "given"


def test_no_keys_anywhere_is_anonymous_and_a_bad_profile_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_keys(monkeypatch)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert resolve_s3_options().client_config()["skip_signature"] is True
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(StoreError, match=r"credential settings are unusable .*no-such-profile.*AWS_PROFILE"):
        resolve_s3_options()


@pytest.mark.slow  # a server
def test_the_probe_passes_on_seaweedfs_and_names_an_unreachable_service(tmp_path: Path) -> None:
    from obstore.store import MemoryStore, S3Store

    from joshreg.testing.servers import seaweedfs

    with seaweedfs(tmp_path) as server:
        server.create_bucket("sweeps")
        options = resolve_s3_options({"endpoint_url": server.endpoint, "key": "any", "secret": "any"}, {})
        client = S3Store("sweeps", **options.client_config())
        probe_conditional_put(client, "exp1", where="s3://sweeps/exp1")  # refuses the second put
        probe_conditional_put(MemoryStore(), "", where="memory")
        unreachable = S3Store(
            "sweeps", **resolve_s3_options({"endpoint_url": "http://127.0.0.1:9"}, {}).client_config()
        )
        with pytest.raises(
            StoreError, match=r"cannot reach http://127.0.0.1:9 to put .* s3://sweeps/x.*AWS_ENDPOINT_URL"
        ):
            probe_conditional_put(unreachable, "x", where="s3://sweeps/x", endpoint="http://127.0.0.1:9")
