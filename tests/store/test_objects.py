"""The LogStore contract for ObjectStore: against obstore's in-memory object store (fast) and
two real S3 servers, SeaweedFS and moto, started by the session (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from joshreg.log.store import LogStore
from joshreg.log.store.objects import ObjectStore
from joshreg.log.store.s3options import resolve_s3_options
from joshreg.testing.store_contract import LogStoreContract


class TestObjectStoreInMemory(LogStoreContract):
    store_class = ObjectStore

    def make_store(self, tmp_path: Path) -> LogStore:
        from obstore.store import MemoryStore

        return ObjectStore(MemoryStore(), "memory://test", prefix="exp1")


class TestObjectStoreInPartsInMemory(LogStoreContract):
    """The contract again with every claim over 8 bytes stored in parts (``store.parts``)."""

    store_class = ObjectStore

    def make_store(self, tmp_path: Path) -> LogStore:
        from obstore.store import MemoryStore

        return ObjectStore(MemoryStore(), "memory://test", prefix="exp1", part_size=8)


@pytest.mark.slow  # a server
class TestObjectStoreOnS3Servers(LogStoreContract):
    """The contract on each real server (SeaweedFS, then moto: ``each_s3_endpoint``)."""

    store_class = ObjectStore

    @pytest.fixture
    def store(self, tmp_path: Path, each_s3_endpoint: str) -> LogStore:  # type: ignore[override]
        from obstore.store import S3Store

        options = resolve_s3_options(
            {"endpoint_url": each_s3_endpoint, "key": "any", "secret": "any"}, {}
        )  # signed: moto refuses anonymous requests
        prefix = tmp_path.name  # a fresh store per test, in one bucket
        return ObjectStore(
            S3Store("sweeps", **options.client_config()), f"s3://sweeps/{prefix}", prefix=prefix
        )


def test_two_stores_on_one_prefix_share_one_id_and_see_each_other() -> None:
    from obstore.store import MemoryStore

    client = MemoryStore()
    a, b = ObjectStore(client, "m://x", "p"), ObjectStore(client, "m://x", "p")
    assert a.store_id == b.store_id
    a.append("log/w.jsonl", b"one\n")
    a.sync("log/w.jsonl")
    b.segments()  # a second handle continues after what it has listed
    b.append("log/w.jsonl", b"two\n")
    b.sync("log/w.jsonl")
    a.segments()
    assert a.read("log/w.jsonl") == b"one\ntwo\n" and ObjectStore(client, "m://x", "q").store_id != a.store_id
