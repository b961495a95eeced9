"""Results on object storage: a registry whose event store is in a bucket keeps its result files
there, so a registry on any other host sees them and a rebuild from the bucket alone restores
cell_data; Josh CSV exports are read straight from s3:// (and minio://) keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from joshreg import CellDataLoader, RunRecorder, RunRegistry
from joshreg.errors import StoreError
from joshreg.log.store.s3options import resolve_s3_options
from joshreg.results.josh_csv import read_josh_csv
from joshreg.testing.registries import FakeJobConfig

pytestmark = pytest.mark.slow  # a server

A, B = "aaaaaaaaaaa1", "bbbbbbbbbbb2"
SECRET = "results-secret-value"


def _csv(height: float) -> bytes:
    rows = "".join(f"{x},0,{height + x},{s},0\n" for x in range(3) for s in range(2))
    return ("position.x,position.y,height,step,replicate\n" + rows).encode()


def _put(endpoint: str, key: str, data: bytes) -> None:
    import obstore
    from obstore.store import S3Store

    options = resolve_s3_options(
        {"endpoint_url": endpoint, "aws_access_key_id": "any", "aws_secret_access_key": SECRET}
    )
    obstore.put(S3Store("sweeps", **options.client_config()), key, data)


@pytest.fixture
def env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "any")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    return s3_endpoint


CELLS = "SELECT run_hash, step, position_x, height FROM cell_data ORDER BY ALL"


def test_results_loaded_on_one_host_are_seen_and_rebuilt_on_another(env: str, tmp_path: Path) -> None:
    events = f"s3://sweeps/{tmp_path.name}/exp"
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    (here / "a.csv").write_bytes(_csv(1.0))
    with RunRegistry(here / "r.duckdb", events_path=events) as reg:
        sid = reg.create_session(FakeJobConfig(), session_id="s1")
        for h in (A, B):
            reg.register_run(sid, h, None, h, None, {})
        run = reg.start_run(A, session_id=sid)
        assert reg.load_results(here / "a.csv", run, A) == 6
        want = reg.query(CELLS).fetchall()
    assert len(want) == 6
    (here / "a.csv").unlink()  # the local export is gone; the bucket holds the rows
    _put(env, f"{tmp_path.name}/out/b.csv", _csv(5.0))
    with RunRecorder(events_path=events, session_id="s1") as worker:  # a worker reads it from the bucket
        assert worker.load_csv(f"s3://sweeps/{tmp_path.name}/out/b.csv", worker.start_run(B), B) == 6
    db = there / "r.duckdb"
    with RunRegistry(db, events_path=events) as reg:  # another host: its own folder and file
        cells = reg.query(CELLS).fetchall()
        assert [c for c in cells if c[0] == A] == want and len(cells) == 12
        assert reg.verify().ok
    db.unlink()
    with RunRegistry(db, events_path=events) as reg:  # rebuilt from the bucket alone
        assert reg.query(CELLS).fetchall() == cells


def test_load_csv_reads_an_export_from_a_bucket(env: str, tmp_path: Path) -> None:
    prefix = tmp_path.name
    _put(env, f"{prefix}/out/{A}_0.csv", _csv(1.0))
    _put(env, f"{prefix}/out/{B}_0.csv", _csv(5.0))
    with RunRegistry(tmp_path / "r.duckdb") as reg:  # a local store; the exports are in a bucket
        sid = reg.create_session(FakeJobConfig(), session_id="s1")
        for h in (A, B):
            reg.register_run(sid, h, None, h, None, {})
        ra, rb = reg.start_run(A, session_id=sid), reg.start_run(B, session_id=sid)
        loader = CellDataLoader(reg)
        assert loader.load_csv(f"s3://sweeps/{prefix}/out/{A}_0.csv", ra, A) == 6
        assert loader.load_csv_batch([(f"minio://sweeps/{prefix}/out/{B}_0.csv", rb, B)]) == 6
        assert reg.query("SELECT run_hash, max(height) FROM cell_data GROUP BY 1 ORDER BY 1").fetchall() == [
            (A, 3.0),
            (B, 7.0),
        ]
        source = reg.query("SELECT source_path FROM events_results_loaded ORDER BY 1").fetchall()
        assert source == [(f"s3://sweeps/{prefix}/out/{A}_0.csv",), (f"s3://sweeps/{prefix}/out/{B}_0.csv",)]
        with pytest.warns(Warning, match="already loaded"):
            assert loader.load_csv(f"s3://sweeps/{prefix}/out/{A}_0.csv", ra, A) == 0
        with pytest.raises(FileNotFoundError, match=f"s3://sweeps/{prefix}/out/none.csv"):
            loader.load_csv(f"s3://sweeps/{prefix}/out/none.csv", ra, A)


def test_storage_options_of_the_registry_read_the_export_and_bad_keys_say_so(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MINIO_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    prefix = tmp_path.name
    _put(s3_endpoint, f"{prefix}/a.csv", _csv(2.0))
    options = {"endpoint_url": s3_endpoint, "aws_access_key_id": "any", "aws_secret_access_key": SECRET}
    events = f"s3://sweeps/{prefix}/exp"
    with RunRegistry(tmp_path / "r.duckdb", events_path=events, storage_options=options) as reg:
        sid = reg.create_session(FakeJobConfig(), session_id="s1")
        reg.register_run(sid, A, None, A, None, {})
        run = reg.start_run(A, session_id=sid)
        assert reg.load_results(f"s3://sweeps/{prefix}/a.csv", run, A) == 6
        with pytest.raises(FileNotFoundError, match=r"s3://no-such-bucket-here/a\.csv"):
            reg.load_results("s3://no-such-bucket-here/a.csv", run, A)
    unreachable = {**options, "endpoint_url": "http://127.0.0.1:9"}
    with pytest.raises(StoreError) as err:
        read_josh_csv(f"s3://sweeps/{prefix}/a.csv", storage_options=unreachable)
    message = str(err.value)
    assert "http://127.0.0.1:9" in message and f"s3://sweeps/{prefix}/a.csv" in message
    assert SECRET not in message and "\n" not in message
