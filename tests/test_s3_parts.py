"""Large claims in parts on the real servers: a result file bigger than one part goes up as parts
under a manifest, reads back whole on another host, survives a rebuild from the bucket alone,
and two processes claiming one name in parts have exactly one winner."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
from pathlib import Path

import obstore
import pytest

from joshreg import RunRegistry
from joshreg.log.store import parts
from joshreg.log.store.objects import open_s3_store
from joshreg.testing.registries import FakeJobConfig

pytestmark = pytest.mark.slow  # a server

HASH = "aaaaaaaaaaa1"
CELLS = "SELECT step, position_x, position_y, height FROM cell_data ORDER BY ALL"


def _csv(rows: int) -> bytes:
    body = "".join(f"{i % 50},{i // 50},{i * 0.37:.3f},{i % 7},0\n" for i in range(rows))
    return ("position.x,position.y,height,step,replicate\n" + body).encode()


def test_a_result_file_bigger_than_a_part_goes_up_in_parts(
    each_s3_endpoint: str, use_s3_server: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_s3_server(each_s3_endpoint)  # type: ignore[operator]
    monkeypatch.setattr(parts, "PART_SIZE", 16 << 10)
    events = f"s3://sweeps/{tmp_path.name}/exp"
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    (here / "big.csv").write_bytes(_csv(20_000))
    with RunRegistry(here / "r.duckdb", events_path=events) as reg:
        sid = reg.create_session(FakeJobConfig(), session_id="s1")
        reg.register_run(sid, HASH, None, HASH, None, {})
        assert reg.load_results(here / "big.csv", reg.start_run(HASH, session_id=sid), HASH) == 20_000
        want = reg.query(CELLS).fetchall()
    store = open_s3_store(events)
    (blob,) = list(store.walk_claims("blobs"))
    manifest = parts.parse(bytes(obstore.get(store.client, store._key(blob)).bytes()), blob)
    assert manifest is not None and len(manifest.parts) > 2  # it really went up in parts
    monkeypatch.setattr(parts, "PART_SIZE", 32 << 20)  # another host with the default size
    with RunRegistry(there / "r.duckdb", events_path=events) as reg:
        assert reg.query(CELLS).fetchall() == want
        assert reg.verify().ok


def _claim(events: str, i: int, q: mp.Queue) -> None:  # type: ignore[type-arg]
    store = open_s3_store(events)
    store.part_size = 64 << 10
    data = bytes([i]) * (300 << 10)
    q.put((i, store.claim("blobs/ra/race.parquet", data)))


def test_processes_claiming_one_name_in_parts_have_one_winner(
    each_s3_endpoint: str, use_s3_server: object, tmp_path: Path
) -> None:
    use_s3_server(each_s3_endpoint)  # type: ignore[operator]
    events = f"s3://sweeps/{tmp_path.name}/race"
    open_s3_store(events).close()
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_claim, args=(events, i, q)) for i in range(4)]
    for p in procs:
        p.start()
    results = dict(q.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
    winners = [i for i, won in results.items() if won]
    assert len(winners) == 1
    store = open_s3_store(events)
    data = store.read_claim("blobs/ra/race.parquet")
    assert data == bytes([winners[0]]) * (300 << 10)
    store.discard_temporaries("blobs", older_than=0)
    listed = obstore.list(store.client, prefix=f"{tmp_path.name}/race/parts/")
    left = {meta["path"].split("/")[-2] for batch in listed for meta in batch}
    assert left == {hashlib.sha256(data).hexdigest()}  # the losers' parts are gone
    assert store.read_claim("blobs/ra/race.parquet") == data
