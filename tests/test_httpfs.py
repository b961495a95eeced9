"""DuckDB on s3:// through the httpfs wheel and a temporary secret from the store's resolver."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from joshreg.log.store.s3options import resolve_s3_options
from joshreg.projection.httpfs import secret_sql, use_s3


def test_the_secret_follows_the_resolver_and_plain_http_turns_ssl_off() -> None:
    env = {"MINIO_ENDPOINT": "minio.local:9000", "MINIO_ACCESS_KEY": "ak", "MINIO_SECRET_KEY": "sk"}
    sql = secret_sql(resolve_s3_options(None, env))
    assert "TEMPORARY SECRET" in sql and "ENDPOINT 'minio.local:9000'" in sql and "USE_SSL false" in sql
    assert "KEY_ID 'ak'" in sql and "URL_STYLE 'path'" in sql
    sql = secret_sql(resolve_s3_options({"endpoint_url": "https://s3.example", "key": "it's"}, {}))
    assert "USE_SSL true" in sql and "KEY_ID 'it''s'" in sql


@pytest.mark.slow  # a server
def test_duckdb_writes_and_reads_s3_and_keeps_no_secret_in_its_file(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "any")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
    db = tmp_path / "t.duckdb"
    con = duckdb.connect(str(db))
    use_s3(con)
    url = f"s3://sweeps/{tmp_path.name}/t.parquet"
    con.execute(f"COPY (SELECT 42 AS answer) TO '{url}' (FORMAT parquet)")
    assert con.execute(f"SELECT answer FROM read_parquet('{url}')").fetchall() == [(42,)]
    assert "very-secret-value" not in str(con.execute("SELECT * FROM duckdb_secrets()").fetchall())
    con.close()
    assert b"very-secret-value" not in db.read_bytes()


@pytest.mark.slow  # a server
def test_settings_changed_in_the_environment_apply_at_the_next_use(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job script that refreshes its credentials (or endpoint) in the environment is heard:
    the secret is made again from the resolver before every use."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "any")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "old")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # stale: nothing answers there
    con = duckdb.connect()
    url = f"s3://sweeps/{tmp_path.name}/t.parquet"
    use_s3(con)
    with pytest.raises(duckdb.Error):
        con.execute(f"COPY (SELECT 1 AS one) TO '{url}' (FORMAT parquet)")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "refreshed")
    use_s3(con)
    con.execute(f"COPY (SELECT 1 AS one) TO '{url}' (FORMAT parquet)")
    assert con.execute(f"SELECT one FROM read_parquet('{url}')").fetchall() == [(1,)]
