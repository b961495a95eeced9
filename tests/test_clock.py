"""Identity and time: UUIDv7 ids and the hybrid clock's stamps."""

from __future__ import annotations

import multiprocessing as mp
import uuid

from joshreg.log.clock import HybridClock, uuid7


def _ms(event_id: str) -> int:
    return int(event_id[:8] + event_id[9:13], 16)


def test_uuid7_has_version_variant_and_time() -> None:
    ids = [uuid7(1_767_225_600_123) for _ in range(2000)]  # more than one draw of random bits
    assert len(set(ids)) == len(ids)
    for i in ids:
        u = uuid.UUID(i)
        assert (u.version, u.variant, str(u)) == (7, uuid.RFC_4122, i)
        assert _ms(i) == 1_767_225_600_123
    assert {i[19] for i in ids} == set("89ab")  # the variant's two bits, the rest random


def test_stamp_is_now_and_an_id_of_its_millisecond() -> None:
    clock = HybridClock()
    stamps = [clock.stamp() for _ in range(1000)]
    hlcs = [h for h, _ in stamps]
    assert hlcs == sorted(set(hlcs))  # strictly increasing
    assert all(_ms(i) == h // 1_000_000 and uuid.UUID(i).version == 7 for h, i in stamps)
    assert clock.now() > hlcs[-1]
    clock.observe(hlcs[-1] + 10**12)
    assert clock.stamp()[0] > hlcs[-1] + 10**12


def _child_ids(out: mp.Queue) -> None:  # type: ignore[type-arg]
    out.put([uuid7() for _ in range(100)])


def test_a_forked_child_draws_its_own_random_bits() -> None:
    uuid7()  # the parent holds drawn bits that a child must not reuse
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    p = ctx.Process(target=_child_ids, args=(out,))
    p.start()
    child = out.get(timeout=60)
    p.join(timeout=60)
    parent = [uuid7() for _ in range(100)]
    assert {i[19:] for i in child}.isdisjoint(i[19:] for i in parent)
