"""The label log under a real race: one order, no lost or doubled commit, one winner per label."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from joshreg.errors import LabelConflictError
from joshreg.log.events import LabelAction, LabelAssigned, LabelReleased
from joshreg.log.labels import LabelLog, LabelState, commit_name
from joshreg.log.store import LocalStore, MemoryStore

PROCS = 8
COMMITS = 50
CROWN_AT = 10


def assign(label: str, run_hash: str, *, force: bool = False):  # type: ignore[no-untyped-def]
    """A plan like ``label_run``'s: take ``label`` for ``run_hash``, refusing a held one."""

    def plan(state: LabelState) -> list[LabelAction]:
        holder = state.holder.get(label)
        if holder == run_hash:
            return []
        actions: list[LabelAction] = []
        if holder is not None:
            if not force:
                raise LabelConflictError(f"Label '{label}' is already assigned to run {holder}")
            actions.append(LabelReleased(label=label, run_hash=holder, reason="force"))
        actions.append(LabelAssigned(label=label, run_hash=run_hash, previous_run_hash=holder))
        return actions

    return plan


def _labeller(root: str, me: int, barrier: object, out: object) -> None:
    log = LabelLog(LocalStore(root), writer=f"proc{me}")
    commits: list[str] = []
    crown = "lost"
    barrier.wait()  # type: ignore[attr-defined]
    for k in range(COMMITS):
        if k == CROWN_AT:
            try:
                c = log.commit(assign("crown", f"crown-{me}"))
            except LabelConflictError:
                pass
            else:
                assert c is not None
                commits.append(c.event_id)
                crown = "won"
        c = log.commit(assign(f"p{me}-{k}", f"h{me}-{k}"))
        assert c is not None
        commits.append(c.event_id)
    out.put((me, commits, crown))  # type: ignore[attr-defined]


@pytest.mark.slow  # other processes
def test_label_race_between_processes(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    root = str(tmp_path / "x.events")
    LocalStore(root)
    barrier, out = ctx.Barrier(PROCS), ctx.Queue()
    procs = [ctx.Process(target=_labeller, args=(root, me, barrier, out)) for me in range(PROCS)]
    for p in procs:
        p.start()
    results = {me: (commits, crown) for me, commits, crown in (out.get(timeout=120) for _ in procs)}
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    log = LabelLog(LocalStore(root))
    replayed = log.refresh()
    assert log.problems == []
    assert [c.version for c in replayed] == list(range(1, PROCS * COMMITS + 2))
    assert LocalStore(root).read_claim(commit_name(len(replayed) + 1)) is None

    committed = [eid for commits, _ in results.values() for eid in commits]
    assert sorted(c.event_id for c in replayed) == sorted(committed)
    assert len(set(committed)) == len(committed)

    winners = [me for me, (_, crown) in results.items() if crown == "won"]
    assert len(winners) == 1
    assert log.state.holder["crown"] == f"crown-{winners[0]}"
    touched = {a.run_hash for c in replayed for a in c.actions}
    for me in set(range(PROCS)) - set(winners):
        assert f"crown-{me}" not in touched
    for me in range(PROCS):
        for k in range(COMMITS):
            assert log.state.holder[f"p{me}-{k}"] == f"h{me}-{k}"


# --- single-process behaviour -----------------------------------------------------------------


def test_commit_numbers_from_one_and_replays() -> None:
    store = MemoryStore()
    log = LabelLog(store)
    first = log.commit(assign("best", "aaa"))
    second = log.commit(assign("best", "bbb", force=True))
    assert first is not None and second is not None
    assert (first.version, second.version) == (1, 2)
    other = LabelLog(store)
    assert [c.version for c in other.refresh()] == [1, 2]
    assert other.state.holder == {"best": "bbb"}
    assert other.state.label_of == {"bbb": "best"}


def test_empty_plan_commits_nothing() -> None:
    store = MemoryStore()
    log = LabelLog(store)
    log.commit(assign("best", "aaa"))
    assert log.commit(assign("best", "aaa")) is None
    assert store.list_claims("labels") == [commit_name(1)]


def test_conflict_leaves_the_log_unchanged() -> None:
    store = MemoryStore()
    LabelLog(store).commit(assign("best", "aaa"))
    with pytest.raises(LabelConflictError, match="aaa"):
        LabelLog(store).commit(assign("best", "bbb"))
    assert store.list_claims("labels") == [commit_name(1)]


def test_losing_a_race_replans_against_the_winner() -> None:
    store = MemoryStore()
    slow, fast = LabelLog(store), LabelLog(store)
    slow.refresh()
    fast.commit(assign("best", "aaa"))
    # ``slow`` still believes the label free; its commit must see ``fast``'s first.
    with pytest.raises(LabelConflictError):
        slow.commit(assign("best", "bbb"))
    taken = slow.commit(assign("best", "bbb", force=True))
    assert taken is not None and taken.version == 2
    assert [type(a).__name__ for a in taken.actions] == ["LabelReleased", "LabelAssigned"]
