"""Large claims on object storage go up in parts under a manifest (``store.parts``): whole or
absent to every reader, one winner per name, safe retries, orphans cleaned up, damage named
(against obstore's in-memory store; tests/test_s3_parts.py runs the real servers)."""

from __future__ import annotations

import hashlib
import os
import threading

import obstore
import pytest
from obstore.store import MemoryStore

from joshreg.errors import StoreError
from joshreg.log.store import parts
from joshreg.log.store.objects import ObjectStore

NAME = "blobs/ab/ab01.parquet"
PART = 1000


def keys(client: MemoryStore, prefix: str = "p/") -> list[str]:
    return sorted(m["path"] for batch in obstore.list(client, prefix=prefix) for m in batch)


def store(client: MemoryStore) -> ObjectStore:
    return ObjectStore(client, "m://x", "p", part_size=PART)


def test_a_big_claim_goes_up_in_parts_and_reads_back_whole() -> None:
    client = MemoryStore()
    s, data = store(client), os.urandom(4 * PART + 17)
    assert s.claim(NAME, data)
    part_keys = [k for k in keys(client) if k.startswith("p/parts/")]
    assert len(part_keys) == 5 and all(k.startswith(f"p/parts/{NAME}/") for k in part_keys)
    manifest = bytes(obstore.get(client, f"p/{NAME}").bytes())
    assert manifest.startswith(parts.MAGIC) and len(manifest) < PART  # the name holds the manifest
    assert store(client).read_claim(NAME) == data  # another process reads the whole
    assert list(s.walk_claims("blobs")) == [NAME] and s.claim_exists(NAME)
    assert list(s.walk_claims("parts")) == []  # parts are never claims of their own
    assert not s.claim(NAME, data)  # a second claim of the name loses, as for any claim


def test_small_claims_stay_one_object_unless_they_look_like_a_manifest() -> None:
    client = MemoryStore()
    s = store(client)
    assert s.claim("labels/1.json", b"{}")
    assert keys(client) == ["p/FORMAT", "p/labels/1.json"]
    tricky = parts.MAGIC + b'{"size":0}'  # content that begins like a manifest is stored in parts
    assert s.claim("blobs/odd", tricky) and store(client).read_claim("blobs/odd") == tricky


def test_racing_writers_of_one_name_have_one_winner_and_the_loser_leaves_only_orphans() -> None:
    client = MemoryStore()
    datas = [os.urandom(3 * PART) for _ in range(4)]
    won: list[bool] = [False] * 4
    go = threading.Barrier(4)

    def claim(i: int) -> None:
        go.wait()
        won[i] = store(client).claim(NAME, datas[i])

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert won.count(True) == 1
    winner = datas[won.index(True)]
    reader = store(client)
    assert reader.read_claim(NAME) == winner
    uploaded = [k for k in keys(client) if k.startswith("p/parts/")]
    assert reader.discard_temporaries("blobs", older_than=3600) == 0  # recent: may be uploading
    removed = reader.discard_temporaries("blobs", older_than=0)
    left = [k for k in keys(client) if k.startswith("p/parts/")]
    assert len(left) == 3 and removed == len(uploaded) - 3  # the winner's three stay
    assert all(k.split("/")[-2] == hashlib.sha256(winner).hexdigest() for k in left)
    assert reader.read_claim(NAME) == winner
    assert reader.discard_temporaries("blobs", older_than=0) == 0


def test_a_writer_that_died_before_its_manifest_left_nothing_visible_and_a_retry_completes() -> None:
    client = MemoryStore()
    data = os.urandom(3 * PART + 1)
    _, pieces = parts.split(NAME, data, PART)
    for name, body in pieces[:2]:  # two parts went up, then the process died
        obstore.put(client, f"p/{name}", body, mode="create")
    s = store(client)
    assert s.read_claim(NAME) is None and not s.claim_exists(NAME)
    assert list(s.walk_claims("blobs")) == []
    before = s.requests["put"]
    assert s.claim(NAME, data)  # the retry meets its own parts: compared, not doubled
    assert s.requests["put"] - before == len(pieces) + 1
    assert store(client).read_claim(NAME) == data
    assert s.discard_temporaries("blobs", older_than=0) == 0  # every part is named


def test_a_part_with_other_bytes_under_its_name_is_refused() -> None:
    client = MemoryStore()
    data = os.urandom(2 * PART + 5)
    _, pieces = parts.split(NAME, data, PART)
    obstore.put(client, f"p/{pieces[1][0]}", b"not these bytes", mode="create")
    with pytest.raises(StoreError, match="exists with other bytes"):
        store(client).claim(NAME, data)
    assert store(client).read_claim(NAME) is None  # no manifest: the claim never appeared


@pytest.mark.parametrize(
    ("damage", "said"),
    [("delete", "is missing"), ("truncate", "has 10 bytes"), ("swap", "do not add up")],
)
def test_a_damaged_part_is_named_when_the_claim_is_read(damage: str, said: str) -> None:
    client = MemoryStore()
    data = os.urandom(3 * PART)
    assert store(client).claim(NAME, data)
    first = sorted(k for k in keys(client) if k.startswith("p/parts/"))[0]
    if damage == "delete":
        obstore.delete(client, first)
    elif damage == "truncate":
        obstore.put(client, first, b"0123456789")
    else:
        obstore.put(client, first, os.urandom(PART))  # right size, wrong bytes
    with pytest.raises(StoreError, match=said):
        store(client).read_claim(NAME)


def test_a_compacted_segment_in_parts_reads_as_its_jsonl() -> None:
    from joshreg.log.store.compacted import compacted_name
    from joshreg.testing.store_contract import container

    client = MemoryStore()
    seg = "log/w1.jsonl"
    data = b"".join(b'{"line":%d,"pad":"%s"}\n' % (i, os.urandom(20).hex().encode()) for i in range(200))
    writer = store(client)
    writer.append(seg, data)
    writer.sync(seg)
    copy = container(data)
    assert len(copy) > PART
    assert writer.claim(compacted_name(seg, len(data)), copy)
    assert writer.retire_segment(seg)
    assert store(client).read(seg, 100) == data[100:]
