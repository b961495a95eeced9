"""A projection is a function of the set of events: any order and batch split == a full rebuild."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joshreg.errors import JoshregError
from joshreg.log.codec import GENESIS
from joshreg.log.events import (
    EventBase,
    LabelAction,
    LabelAssigned,
    LabelReleased,
    OutputRegistered,
    RunCompleted,
    RunRegistered,
    RunStarted,
    SessionCreated,
    SessionStatusChanged,
)
from joshreg.log.labels import LabelLog, LabelState
from joshreg.log.reader import LogReader, ReadBatch
from joshreg.log.store import MemoryStore
from joshreg.log.writer import EventWriter
from joshreg.projection.projector import Projector
from joshreg.projection.tables import PUBLIC_TABLES, infer_type

# cell_data stays empty here: these histories record no simulation results.
TABLES = (*(t for t in PUBLIC_TABLES if t != "cell_data"), "event_log")

sessions = st.sampled_from(["s0", "s1", "s2"])
hashes = st.sampled_from(["h0", "h1", "h2", "h3"])
runs = st.sampled_from(["r0", "r1", "r2", "r3", "r4"])
texts = st.sampled_from(["", "a = 1", "b = 2\nc = 'x'", "ünï"])
maybe_text = st.none() | texts
values = st.sampled_from([1.0, 2.5, -3, "dry", "3", ""])
parameters = st.dictionaries(st.sampled_from(["alpha", "beta", "gamma"]), values, max_size=3)
metadata = st.none() | st.fixed_dictionaries({"node": st.sampled_from(["n1", "n2"])})


@st.composite
def registrations(draw: st.DrawFn) -> RunRegistered:
    params = draw(parameters)
    return RunRegistered(
        session_id=draw(sessions),
        run_hash=draw(hashes),
        josh_path=draw(maybe_text),
        josh_content=draw(maybe_text),
        config_content=draw(texts),
        file_mappings=draw(st.none() | st.just({"f": {"path": "/d/f.jshd", "hash": "ab"}})),
        parameters=params,
        parameter_types={k: infer_type(v) for k, v in params.items()},
    )


events = st.one_of(
    st.builds(
        SessionCreated,
        session_id=sessions,
        experiment_name=maybe_text,
        simulation=maybe_text,
        template_path=maybe_text,
        metadata=metadata,
        replicates=st.none() | st.integers(1, 3),
    ),
    st.builds(SessionStatusChanged, session_id=sessions, status=st.sampled_from(["running", "done"])),
    registrations(),
    st.builds(
        RunStarted,
        run_id=runs,
        run_hash=hashes,
        session_id=sessions,
        replicate=st.integers(0, 2),
        output_path=maybe_text,
        metadata=metadata,
    ),
    st.builds(RunCompleted, run_id=runs, exit_code=st.integers(0, 2), error_message=maybe_text),
    st.builds(
        OutputRegistered,
        output_id=st.sampled_from(["o0", "o1", "o2"]),
        run_id=runs,
        output_type=st.sampled_from(["csv", "parquet"]),
        file_path=texts,
        file_size=st.none() | st.integers(0, 10**9),
        row_count=st.none() | st.integers(0, 1000),
    ),
)

MAX_BATCHES = 6
histories = st.lists(st.tuples(st.integers(0, 2), events), min_size=1, max_size=40)
label_changes = st.lists(st.tuples(st.sampled_from(["best", "base"]), hashes), max_size=5)


def take(label: str, run_hash: str):  # type: ignore[no-untyped-def]
    """A plan giving ``label`` to ``run_hash`` with ``force``."""

    def plan(state: LabelState) -> list[LabelAction]:
        holder = state.holder.get(label)
        if holder == run_hash:
            return []
        actions: list[LabelAction] = []
        if holder is not None:
            actions.append(LabelReleased(label=label, run_hash=holder, reason="force"))
        old = state.label_of.get(run_hash)
        if old is not None:
            actions.append(LabelReleased(label=old, run_hash=run_hash, reason="relabel"))
        actions.append(LabelAssigned(label=label, run_hash=run_hash, previous_run_hash=holder))
        return actions

    return plan


def recorded(
    history: list[tuple[int, EventBase]], labels: list[tuple[str, str]], writers: int
) -> MemoryStore:
    """A store holding ``history`` (event k written by writer k mod ``writers``) and ``labels``."""
    store = MemoryStore()
    ws = [EventWriter(store, durability="none") for _ in range(writers)]
    for k, event in history:
        ws[k % writers].append(event)
    for w in ws:
        w.publish()
    log = LabelLog(store)
    for label, run_hash in labels:
        log.commit(take(label, run_hash))
    return store


def column_types(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main'"
    ).fetchall()
    out: dict[str, dict[str, str]] = {}
    for table, column, typ in rows:
        out.setdefault(table, {})[column] = typ
    return out


def contents(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted, with columns in name order (so column order does not matter)."""
    out = {}
    for table in TABLES:
        cur = con.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cur.description]
        order = sorted(range(len(names)), key=names.__getitem__)
        rows = [tuple((names[i], row[i]) for i in order) for row in cur.fetchall()]
        out[table] = sorted(rows, key=repr)
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@pytest.mark.slow  # a Hypothesis suite
@given(
    history=histories,
    labels=label_changes,
    writers=st.integers(1, 3),
    data=st.data(),
)
def test_any_order_and_batch_split_equals_a_full_rebuild(
    history: list[tuple[int, EventBase]],
    labels: list[tuple[str, str]],
    writers: int,
    data: st.DataObject,
) -> None:
    store = recorded(history, labels, writers)
    full = duckdb.connect()
    Projector(full, store).rebuild()
    expected = contents(full)

    everything = LogReader(store).read_new({}, {})
    commits = LabelLog(store).refresh()
    assert len(everything.events) == len(history) and everything.problems == []
    order = data.draw(st.permutations(range(len(history))), label="order")
    n = len(history)
    cuts = data.draw(
        st.sets(st.integers(1, n - 1), max_size=MAX_BATCHES - 1) if n > 1 else st.just(set()), label="cuts"
    )
    bounds = [0, *sorted(cuts), n]
    commit_cuts = data.draw(
        st.lists(st.integers(0, len(commits)), min_size=len(bounds) - 2, max_size=len(bounds) - 2),
        label="label cuts",
    )
    commit_bounds = [0, *sorted(commit_cuts), len(commits)]

    incremental = duckdb.connect()
    projector = Projector(incremental, MemoryStore())
    for b in range(len(bounds) - 1):
        idx = order[bounds[b] : bounds[b + 1]]
        batch = ReadBatch(
            events=[everything.events[i] for i in idx],
            lines=[everything.lines[i] for i in idx],
            origins=[everything.origins[i] for i in idx],
            linenos=[everything.linenos[i] for i in idx],
        )
        chunk = commits[commit_bounds[b] : commit_bounds[b + 1]]
        head = LabelLog(projector.store)
        head.state = LabelState(version=chunk[-1].version if chunk else projector.labels_head, last_c=GENESIS)
        projector._apply(batch, chunk, head, full=False)
        if chunk:
            projector.labels_head = chunk[-1].version

    got = contents(incremental)
    for table in TABLES:
        assert got[table] == expected[table], table
    assert sum(len(v) for v in got.values()) >= len(history)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@pytest.mark.slow  # a Hypothesis suite
@given(history=histories, labels=label_changes, writers=st.integers(1, 3))
def test_a_rebuild_into_views_shows_what_its_tables_hold(
    history: list[tuple[int, EventBase]], labels: list[tuple[str, str]], writers: int
) -> None:
    """verify's private rebuild makes the public tables that are one query views
    (``materialize=False``): the same rows, column names and types as the tables a rebuild
    fills, so that comparing the two compares values."""
    store = recorded(history, labels, writers)
    tables, views = duckdb.connect(), duckdb.connect()
    Projector(tables, store).rebuild()
    projector = Projector(views, store, materialize=False)
    projector.rebuild()
    projector.rebuild()  # again: the views a rebuild made are replaced
    assert contents(views) == contents(tables)
    assert column_types(views) == column_types(tables)
    kinds = dict(views.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall())
    assert {t for t, k in kinds.items() if k == "VIEW"} >= {"job_runs", "run_outputs", "sweep_sessions"}
    with pytest.raises(JoshregError, match="only rebuilds"):
        projector.catch_up()
