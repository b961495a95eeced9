"""Josh debug output: line parsing, the message store, the registry's debug methods, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import duckdb
import pytest

from joshreg import (
    DebugMessage,
    DebugMessageStore,
    DebugParseWarning,
    InvalidArgumentError,
    NoDebugOutputError,
    RunNotFoundError,
    RunRegistry,
    load_debug_file,
)
from joshreg.cli.app import main
from joshreg.projection import queries as q
from joshreg.provenance.debug import format_message, output_path, parse_debug_line
from joshreg.testing.registries import FakeJobConfig

# --- parsing ------------------------------------------------------------------------------------


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_a_line_parses_into_typed_fields():
    m = parse_debug_line("[Step 3, organism @ 1a2b3c (10.5, 20.0)] height = 1.5 alive = true", 7)
    assert m == DebugMessage(3, "organism", "1a2b3c", 10.5, 20.0, "height = 1.5 alive = true", 7)
    assert (type(m.step), type(m.x), type(m.y)) == (int, float, float)
    assert m.location == (10.5, 20.0)


@pytest.mark.parametrize(
    ("line", "step", "x", "y"),
    [
        ("[Step -3, patch @ abc (1.0, 2.0)] spin-up", -3, 1.0, 2.0),
        ("[Step 0, patch @ abc (-1.5, -0.25)] west of origin", 0, -1.5, -0.25),
        ("[Step 2, patch @ abc (1.5E-3, -2e+4)] sci", 2, 1.5e-3, -2e4),
        ("[Step 2, patch @ abc (3, 4)] integers", 2, 3.0, 4.0),
        ("[Step 2, patch @ abc (.5, 7.)] bare points", 2, 0.5, 7.0),
    ],
)
def test_negative_steps_and_coordinates_and_scientific_notation_parse(line, step, x, y):
    m = parse_debug_line(line)
    assert m is not None and (m.step, m.x, m.y) == (step, x, y)


def test_upper_case_ids_parse_and_are_kept_as_written():
    m = parse_debug_line("[Step 1, agent @ DEADbeef (0.0, 0.0)] hi")
    assert m is not None and m.entity_id == "DEADbeef"


def test_content_may_be_empty_or_hold_brackets_and_trailing_space_is_dropped():
    assert parse_debug_line("[Step 1, patch @ a (0.0, 0.0)]").content == ""
    assert parse_debug_line("[Step 1, patch @ a (0.0, 0.0)] ").content == ""
    m = parse_debug_line("  [Step 1, patch @ a (0.0, 0.0)] list [1, 2] (x, y)  \r\n")
    assert m.content == "list [1, 2] (x, y)"


@pytest.mark.parametrize(
    "line",
    [
        "",
        "Exception in thread main",
        "[Step x, patch @ a (0.0, 0.0)] bad step",
        "[Step 1, patch @ xyz (0.0, 0.0)] not hex",
        "[Step 1, patch @ a (1e, 0.0)] bad number",
        "[Step 1, patch @ a (-, 0.0)] bad number",
        "[Step 1, patch @ a (1.0 2.0)] no comma",
        "[Step 1, patch @ a (1.0, 2.0)]glued",
    ],
)
def test_lines_that_are_not_messages_give_none(line):
    assert parse_debug_line(line) is None


def test_load_counts_and_warns_about_unparseable_lines_with_file_line_numbers(tmp_path):
    path = write(
        tmp_path / "organism.txt",
        "[Step -1, organism @ aa (1.0, 2.0)] init",
        "",
        "garbage",
        "[Step 0, organism @ aa (1.0, 2.0)] grow",
        "[Step 0, organism @ bb (1.0, 1e)] bad coordinate",
        "   ",
    )
    with pytest.warns(DebugParseWarning, match=re.escape(f"Skipped 2 unparseable lines in {path}")):
        store = load_debug_file(path)
    assert store.parse_errors == 2
    assert [(m.step, m.content, m.line_number) for m in store.messages] == [(-1, "init", 1), (0, "grow", 4)]
    assert issubclass(DebugParseWarning, UserWarning)


def test_a_clean_file_loads_without_a_warning(tmp_path):
    path = write(tmp_path / "p.txt", "[Step 0, patch @ a (0.0, 0.0)] ok")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_debug_file(path)) == 1


def test_missing_file_and_bad_bytes(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.txt"):
        load_debug_file(tmp_path / "nope.txt")
    path = tmp_path / "latin.txt"
    path.write_bytes(b"[Step 0, patch @ a (0.0, 0.0)] caf\xe9\n[Step 1, patch @ a (0.0, 0.0)] ok\n")
    store = load_debug_file(path)
    assert [m.step for m in store] == [0, 1] and store.messages[0].content.startswith("caf")


def test_messages_are_immutable_and_hashable():
    m = DebugMessage(1, "patch", "a", 0.0, 0.0, "x")
    with pytest.raises(AttributeError):
        m.step = 2  # type: ignore[misc]
    assert m.line_number == 0
    assert len({m, DebugMessage(1, "patch", "a", 0.0, 0.0, "x")}) == 1
    assert m.to_dict()["content"] == "x"


def test_format_message_round_trips_a_line():
    line = "[Step -2, organism @ 0f (-1.5, 3.0)] seeds = 4"
    assert format_message(parse_debug_line(line)) == line


def test_output_path_reads_file_uris():
    assert output_path("file:///tmp/debug%20x.txt") == Path("/tmp/debug x.txt")
    assert output_path("/tmp/a.txt") == Path("/tmp/a.txt")
    assert output_path("rel/a.txt") == Path("rel/a.txt")


# --- the store ----------------------------------------------------------------------------------

LINES = [
    "[Step -1, organism @ aa01 (1.0, 2.0)] init height = 0",
    "[Step 0, organism @ aa01 (1.0, 2.0)] height = 1",
    "[Step 0, organism @ aa02 (3.0, -4.0)] height = 2",
    "[Step 0, patch @ bb01 (1.0, 2.0)] cover = 0.5",
    "[Step 1, organism @ aa02 (3.0, -4.0)] died of drought",
    "[Step 1, organism @ aa01 (1.0, 2.0)] height = 2",
    "[Step 2, organism @ aa01 (1.0, 2.0)] died of fire",
    "[Step 2, patch @ bb01 (1.0, 2.0)] cover = 0.7",
]


@pytest.fixture
def store(tmp_path) -> DebugMessageStore:
    return load_debug_file(write(tmp_path / "debug.txt", *LINES))


def test_filter_takes_every_criterion_and_keeps_file_order(store):
    assert [m.line_number for m in store.filter(step=0)] == [2, 3, 4]
    assert [m.line_number for m in store.filter(step_range=(-1, 0))] == [1, 2, 3, 4]
    assert [m.line_number for m in store.filter(entity_type="patch")] == [4, 8]
    assert [m.line_number for m in store.filter(entity_id="aa02")] == [3, 5]
    assert [m.line_number for m in store.filter(x=3, y=-4.0)] == [3, 5]
    assert [m.line_number for m in store.filter(content_contains="died")] == [5, 7]
    assert [m.line_number for m in store.filter(step=1, entity_type="organism", content_contains="h")] == [
        5,
        6,
    ]
    assert store.filter(step=0, entity_id="bb01", content_contains="fire") == []
    assert store.filter(entity_id="nope") == []
    assert len(store.filter()) == len(LINES)


def test_filter_results_are_copies(store):
    store.filter(entity_id="aa02").clear()
    store.filter().clear()
    assert len(store.trace("aa02")) == 2 and len(store) == len(LINES)


def test_distinct_values_are_sorted(store):
    assert store.steps() == [-1, 0, 1, 2]
    assert store.entity_types() == ["organism", "patch"]
    assert store.entity_ids() == ["aa01", "aa02", "bb01"]
    assert store.locations() == [(1.0, 2.0), (3.0, -4.0)]


def test_trace_is_by_step_then_line(store):
    s = DebugMessageStore()
    s.add(DebugMessage(2, "organism", "cc", 0.0, 0.0, "late", 1))
    s.add(DebugMessage(-1, "organism", "cc", 0.0, 0.0, "early b", 3))
    s.add(DebugMessage(-1, "organism", "cc", 0.0, 0.0, "early a", 2))
    assert [m.content for m in s.trace("cc")] == ["early a", "early b", "late"]
    assert [m.step for m in store.trace("aa01")] == [-1, 0, 1, 2]
    assert store.trace("zz") == []


def test_resolve_entity_id_by_exact_id_or_unique_prefix(store):
    assert store.resolve_entity_id("aa01") == "aa01"
    assert store.resolve_entity_id("b") == "bb01"
    assert store.resolve_entity_id("AA02") == "aa02"
    assert store.resolve_entity_id("aa") is None  # ambiguous
    assert store.resolve_entity_id("f") is None
    assert store.entity_ids_with_prefix("aa") == ["aa01", "aa02"]


def test_summary(store):
    s = store.summary()
    assert s.total_messages == 8 and s.parse_errors == 0
    assert s.step_range == (-1, 2) and s.num_steps == 4
    assert s.entity_types == ("organism", "patch")
    assert (s.num_entities, s.num_locations) == (3, 2)
    assert s.messages_per_step == {-1: 1, 0: 3, 1: 2, 2: 2}
    assert list(s.messages_per_step) == [-1, 0, 1, 2]
    assert s.entities_per_type == {"organism": 2, "patch": 1}


def test_empty_store_summary():
    s = DebugMessageStore().summary()
    assert (s.total_messages, s.step_range, s.num_steps, s.entity_types) == (0, (0, 0), 0, ())


def test_indexes_follow_messages_added_after_a_query(store):
    assert store.summary().num_entities == 3
    store.add(DebugMessage(-5, "agent", "dd", 9.0, 9.0, "new", 99))
    store.messages.append(DebugMessage(7, "agent", "ee", 9.0, 9.0, "newer", 100))
    s = store.summary()
    assert (s.num_entities, s.step_range, s.entities_per_type["agent"]) == (5, (-5, 7), 2)
    assert store.resolve_entity_id("e") == "ee" and len(store.trace("dd")) == 1
    store.messages = store.messages[:2]  # replaced: indexed afresh
    assert store.entity_ids() == ["aa01"]


def test_merge_appends_and_adds_parse_errors(store):
    other = DebugMessageStore([DebugMessage(9, "patch", "ff", 0.0, 0.0, "x")], parse_errors=2)
    store.merge(other)
    assert len(store) == 9 and store.parse_errors == 2 and store.messages[-1].entity_id == "ff"


def test_find_events_counts_entities_and_orders_by_first_event_step(store, capsys):
    matches = store.find_events("died", print=False, limit=None)
    assert [m.entity_id for m in matches] == ["aa02", "aa01"]
    assert matches[1].event_steps == [2] and matches[1].location == (1.0, 2.0)
    assert matches[1].context == matches[1].full_trace == store.trace("aa01")
    assert repr(matches[0]) == "EventMatch(aa02, steps=[1])"
    assert capsys.readouterr().out == ""


def test_find_events_limit_filters_and_print(store, capsys):
    one = store.find_events("died", limit=1)
    out = capsys.readouterr().out
    assert len(one) == 1
    assert out.startswith('Found 2 entities matching "died"')
    assert "1 more" in out and "<- event" in out
    assert store.find_events("died", step=2, print=False)[0].entity_id == "aa01"
    assert store.find_events("died", step_range=(0, 1), print=False)[0].entity_id == "aa02"
    assert store.find_events("cover", entity_type="organism", print=False) == []
    assert [m.entity_id for m in store.find_events("cover", entity_type="patch", print=False)] == ["bb01"]


def test_find_events_context_window_is_in_trace_messages(store, capsys):
    (m,) = store.find_events("died of fire", before=1, after=0, print=False)
    assert [x.step for x in m.context] == [1, 2]
    assert [x.step for x in m.full_trace] == [-1, 0, 1, 2]
    text = m.format()
    assert "2 messages not shown" not in text and text.splitlines()[-1].startswith(">")
    (m,) = store.find_events("height = 1", before=0, after=0, print=False)
    assert [x.step for x in m.context] == [0]
    with pytest.raises(InvalidArgumentError):
        store.find_events("x", before=-1)


def test_find_events_marks_gaps_between_windows(tmp_path):
    lines = [f"[Step {i}, organism @ ab ({i}.0, 0.0)] {'EVENT' if i in (0, 5) else 'tick'}" for i in range(7)]
    s = load_debug_file(write(tmp_path / "g.txt", *lines))
    (m,) = s.find_events("EVENT", before=0, after=1, print=False)
    assert [x.step for x in m.context] == [0, 1, 5, 6]
    assert "(3 messages not shown)" in m.format()


def test_print_trace(store, capsys):
    store.print_trace("bb")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "--- Step 0 ---" and out[1].startswith("[Step 0, patch @ bb01")
    store.print_trace("aa", limit=1)
    assert "not found" in capsys.readouterr().out
    store.print_trace("aa01", limit=1)
    assert "3 more messages" in capsys.readouterr().out


# --- the registry -------------------------------------------------------------------------------


@pytest.fixture
def debug_reg(tmp_path):
    """Run "h1" (labelled baseline) executed twice with debug outputs, "h2" never executed."""
    reg = RunRegistry(tmp_path / "sweep.duckdb")
    sid = reg.create_session(FakeJobConfig(template_path=None), experiment_name="dbg")
    for h in ("h1", "h2", "h3"):
        reg.register_run(sid, h, "m.josh", f"cfg {h}", None, {})
    reg.label_run("h1", "baseline")
    d = tmp_path / "out"
    d.mkdir()
    org_1 = write(d / "org_1.txt", "[Step 0, organism @ a1 (0.0, 0.0)] first", "bad line")
    patch_1 = write(
        d / "patch_1.txt", "[Step -1, patch @ b1 (0.0, 0.0)] spin", "[Step 0, patch @ b1 (0.0, 0.0)] p"
    )
    org_2 = write(d / "org_2.txt", "[Step 0, organism @ a2 (1.0, 1.0)] second")
    run_1 = reg.start_run("h1", session_id=sid)
    reg.register_output(run_1, "debug.patch", str(patch_1))
    reg.register_output(run_1, "debug.organism", str(org_1))
    reg.register_output(run_1, "export.patch", str(d / "export.csv"))
    reg.register_output(run_1, "debug.organism", str(org_1))  # a duplicate registration
    reg.complete_run(run_1, 0)
    run_2 = reg.start_run("h1", session_id=sid)
    reg.register_output(run_2, "debug.organism", str(org_2))
    reg.register_output(run_2, "debug.agent", str(d / "never_written.txt"))
    reg.complete_run(run_2, 0)
    run_3 = reg.start_run("h3", session_id=sid)
    yield {
        "reg": reg,
        "sid": sid,
        "run_1": run_1,
        "run_2": run_2,
        "run_3": run_3,
        "org_1": org_1,
        "org_2": org_2,
        "patch_1": patch_1,
        "dir": d,
        "db": tmp_path / "sweep.duckdb",
    }
    reg.close()


def test_latest_execution_by_default(debug_reg):
    reg = debug_reg["reg"]
    assert reg.get_debug_output_files("baseline") == [debug_reg["org_2"]]
    assert reg.get_debug_output_files("h1") == [debug_reg["org_2"]]
    assert reg._resolve_run_id_for_hash("h1") == debug_reg["run_2"]


def test_explicit_run_id_orders_by_type_then_path_without_duplicates(debug_reg):
    reg, d = debug_reg["reg"], debug_reg
    assert reg.get_debug_output_files("baseline", run_id=d["run_1"]) == [d["org_1"], d["patch_1"]]


def test_entity_type_filter(debug_reg):
    reg, d = debug_reg["reg"], debug_reg
    for types in (["patch"], "patch", ["debug.patch"]):
        assert reg.get_debug_output_files("h1", run_id=d["run_1"], entity_types=types) == [d["patch_1"]]
    assert reg.get_debug_output_files("h1", run_id=d["run_1"], entity_types=["agent"]) == []
    assert reg.get_debug_output_files("h1", run_id=d["run_1"], entity_types=[]) == [d["org_1"], d["patch_1"]]


def test_existing_only_false_includes_missing_files(debug_reg):
    reg, d = debug_reg["reg"], debug_reg
    assert reg.get_debug_output_files("h1", existing_only=False) == [
        d["dir"] / "never_written.txt",
        d["org_2"],
    ]


def test_unknown_names_and_mismatched_run_ids(debug_reg):
    reg, d = debug_reg["reg"], debug_reg
    with pytest.raises(KeyError, match="No run found for 'nope'") as e:
        reg.get_debug_output_files("nope")
    assert isinstance(e.value, RunNotFoundError)
    with pytest.raises(KeyError, match="No run execution found for run_id 'r-x'"):
        reg.get_debug_output_files("h1", run_id="r-x")
    with pytest.raises(ValueError, match="belongs to run_hash 'h3', not 'h1'"):
        reg.load_debug("h1", run_id=d["run_3"])
    with pytest.raises(KeyError, match="No run executions found for run_hash 'h2'"):
        reg.load_debug("h2")


def test_latest_execution_tie_breaks():
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE job_runs (run_id VARCHAR, run_hash VARCHAR, "
        "started_at TIMESTAMP, completed_at TIMESTAMP)"
    )
    con.execute(
        "INSERT INTO job_runs VALUES "
        "('r1', 'h', '2026-01-01 10:00', '2026-01-01 11:00'), "
        "('r2', 'h', NULL, '2026-01-02 00:00'), "
        "('r3', 'h', '2026-01-01 10:00', NULL), "
        "('r4', 'h', '2026-01-01 10:00', '2026-01-01 12:00'), "
        "('r0', 'h', '2026-01-01 10:00', '2026-01-01 12:00')"
    )
    assert q.latest_run_id(con, "h") == "r4"  # same start and end: greatest run id
    con.execute("DELETE FROM job_runs WHERE run_id IN ('r4', 'r0')")
    assert q.latest_run_id(con, "h") == "r1"  # a completion beats none; NULL start comes last
    con.execute("DELETE FROM job_runs WHERE run_id IN ('r1', 'r3')")
    assert q.latest_run_id(con, "h") == "r2"
    assert q.latest_run_id(con, "other") is None


def test_load_debug_merges_files_in_order_and_sums_parse_errors(debug_reg):
    reg, d = debug_reg["reg"], debug_reg
    with pytest.warns(DebugParseWarning, match="Skipped 1 unparseable lines"):
        store = reg.load_debug("baseline", run_id=d["run_1"])
    assert [m.entity_id for m in store] == ["a1", "b1", "b1"]
    assert store.parse_errors == 1 and store.steps() == [-1, 0]
    assert [m.content for m in reg.load_debug("baseline")] == ["second"]


def test_load_debug_without_files_is_a_value_error(debug_reg):
    reg = debug_reg["reg"]
    with pytest.raises(ValueError, match="No debug output files found for 'h3'") as e:
        reg.load_debug("h3")
    assert isinstance(e.value, NoDebugOutputError)
    assert "Ensure debugFiles are configured and outputs were registered" in str(e.value)
    with pytest.raises(NoDebugOutputError, match="missing"):
        reg.load_debug("h1", entity_types=["agent"])


def test_load_debug_of_a_missing_file_when_asked_for_every_file(debug_reg):
    with pytest.raises(FileNotFoundError, match="never_written"):
        debug_reg["reg"].load_debug("h1", existing_only=False)


def test_file_uri_outputs_are_read(debug_reg):
    reg, d = debug_reg["reg"], debug_reg
    reg.register_output(d["run_3"], "debug.organism", d["org_2"].as_uri())
    assert reg.get_debug_output_files("h3") == [d["org_2"]]
    assert len(reg.load_debug("h3")) == 1


def test_debug_outputs_survive_a_rebuild(debug_reg):
    reg, d = debug_reg["reg"], debug_reg
    before = reg.get_debug_output_files("h1", run_id=d["run_1"])
    reg.rebuild()
    assert reg.get_debug_output_files("h1", run_id=d["run_1"]) == before


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture
def cli_db(debug_reg):
    debug_reg["reg"].close()
    return debug_reg


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_prints_messages_in_josh_format(cli_db, capsys):
    code, out, err = run_cli(capsys, "debug", cli_db["db"], "baseline")
    assert code == 0, err
    assert out == "[Step 0, organism @ a2 (1.0, 1.0)] second\n"


def test_cli_run_id_step_grep_and_parse_warnings(cli_db, capsys):
    code, out, err = run_cli(capsys, "debug", cli_db["db"], "h1", "--run-id", cli_db["run_1"], "--step", "-1")
    assert code == 0
    assert out == "[Step -1, patch @ b1 (0.0, 0.0)] spin\n"
    assert err.startswith("joshreg: warning: Skipped 1 unparseable lines in ")
    code, out, _ = run_cli(capsys, "debug", cli_db["db"], "h1", "--run-id", cli_db["run_1"], "--grep", "firs")
    assert out.splitlines() == ["[Step 0, organism @ a1 (0.0, 0.0)] first"]
    code, out, _ = run_cli(capsys, "debug", cli_db["db"], "h1", "--run-id", cli_db["run_1"], "--grep", "zzz")
    assert (code, out) == (0, "(no matching messages)\n")


def test_cli_entity_type_selects_files(cli_db, capsys):
    code, out, err = run_cli(
        capsys, "debug", cli_db["db"], "h1", "--run-id", cli_db["run_1"], "--entity-type", "patch", "--json"
    )
    assert code == 0 and err == ""  # the organism file with the bad line was not read
    rows = [json.loads(ln) for ln in out.splitlines()]
    assert [(r["step"], r["entity_type"], r["line_number"]) for r in rows] == [
        (-1, "patch", 1),
        (0, "patch", 2),
    ]


def test_cli_entity_trace_and_prefix_errors(cli_db, capsys):
    args = ("debug", cli_db["db"], "h1", "--run-id", cli_db["run_1"])
    code, out, _ = run_cli(capsys, *args, "--entity", "b")
    assert code == 0
    assert out.splitlines() == [
        "Trace of b1 (2 messages)",
        "--- Step -1 ---",
        "[Step -1, patch @ b1 (0.0, 0.0)] spin",
        "--- Step 0 ---",
        "[Step 0, patch @ b1 (0.0, 0.0)] p",
    ]
    code, out, _ = run_cli(capsys, *args, "--entity", "b1", "--step", "0")
    assert out == "[Step 0, patch @ b1 (0.0, 0.0)] p\n"
    code, _, err = run_cli(capsys, *args, "--entity", "f")
    assert code == 2 and "no entity 'f'" in err
    code, _, err = run_cli(capsys, "debug", cli_db["db"], "h1", "--run-id", cli_db["run_1"], "--entity", "")
    assert code == 2 and "matches 2 entities" in err


def test_cli_summary_readable_and_json(cli_db, capsys):
    code, out, _ = run_cli(
        capsys, "debug", cli_db["db"], "baseline", "--run-id", cli_db["run_1"], "--summary"
    )
    assert code == 0
    assert out.startswith("Debug output of baseline (h1)\n")
    assert f"Execution:     {cli_db['run_1']}" in out
    assert str(cli_db["org_1"]) in out and str(cli_db["patch_1"]) in out
    assert "Messages:      3  (1 unparseable lines skipped)" in out
    assert "Steps:         -1 to 0  (2 distinct)" in out
    assert "organism (1 entities), patch (1 entities)" in out
    code, out, _ = run_cli(
        capsys, "debug", cli_db["db"], "h1", "--run-id", cli_db["run_1"], "--summary", "--json", "--step", "0"
    )
    (row,) = [json.loads(ln) for ln in out.splitlines()]
    assert row["run_id"] == cli_db["run_1"] and row["total_messages"] == 2
    assert row["messages_per_step"] == {"0": 2} and row["parse_errors"] == 1


def test_cli_limit(cli_db, capsys):
    code, out, _ = run_cli(capsys, "debug", cli_db["db"], "h1", "--run-id", cli_db["run_1"], "--limit", "1")
    assert code == 0
    assert out.splitlines() == [
        "[Step 0, organism @ a1 (0.0, 0.0)] first",
        "... 2 more messages (raise --limit to see them)",
    ]


def test_cli_errors_are_one_line(cli_db, capsys):
    code, out, err = run_cli(capsys, "debug", cli_db["db"], "h3")
    assert (code, out) == (2, "")
    assert (
        err.startswith("joshreg: error: No debug output files found for 'h3'") and len(err.splitlines()) == 1
    )
    code, _, err = run_cli(capsys, "debug", cli_db["db"], "nope")
    assert code == 2 and "No run found for 'nope'" in err
    code, _, err = run_cli(capsys, "debug", cli_db["db"], "h1", "--run-id", cli_db["run_3"])
    assert code == 2 and "belongs to run_hash 'h3'" in err


@pytest.mark.slow  # other processes
def test_cli_reads_debug_output_while_another_process_holds_the_registry(cli_db, capsys):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from joshreg import RunRegistry; r = RunRegistry(sys.argv[1]); "
            "print('ready', flush=True); sys.stdin.readline(); r.close()",
            str(cli_db["db"]),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        code, out, err = run_cli(capsys, "debug", cli_db["db"], "baseline", "--json")
        assert code == 0, err
        assert [json.loads(ln)["content"] for ln in out.splitlines()] == ["second"]
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
