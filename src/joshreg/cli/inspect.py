"""Commands that look at a registry: sessions, runs, info, labels, log, debug."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import TYPE_CHECKING, TextIO

from joshreg.cli.commands import EXIT_OK, arg, command, count, open_registry
from joshreg.cli.output import emit_json
from joshreg.errors import DebugParseWarning, InvalidArgumentError, JoshregError, NotFoundError
from joshreg.registry.listings import LOG_TYPES, matches_type
from joshreg.registry.text import (
    HISTORY_HEADERS,
    LABEL_HEADERS,
    RUN_HEADERS,
    SESSION_HEADERS,
    format_run_info,
    format_table,
    format_time,
    history_rows,
    label_table_row,
    run_table_row,
    session_table_row,
)

if TYPE_CHECKING:
    from joshreg.provenance.debug import DebugMessageStore
    from joshreg.registry.reader import RegistryReader


@command(
    "sessions",
    "Show every sweep session with its configurations and run counts.",
    """
    RUNS counts executions that succeeded / failed / have not completed.

    example:
      joshreg sessions demo-output/sweep.duckdb
    """,
    as_of=True,
)
def sessions(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with open_registry(args) as reg:
        rows = reg.sessions_overview()
    if args.json:
        emit_json(rows, out)
    else:
        out.write(format_table(SESSION_HEADERS, [session_table_row(r) for r in rows]) + "\n")
    return EXIT_OK


@command(
    "runs",
    "Show run executions with their durations and exit codes.",
    """
    --hash also accepts a label.

    examples:
      joshreg runs demo-output/sweep.duckdb
      joshreg runs demo-output/sweep.duckdb --hash baseline
    """,
    arg("--session", metavar="ID", help="only executions of this session"),
    arg("--hash", metavar="H", help="only executions of this run hash (or label)"),
    as_of=True,
)
def runs(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with open_registry(args) as reg:
        if args.session is not None and reg.get_session(args.session) is None:
            raise JoshregError(f"no session with id '{args.session}'; see `joshreg sessions {args.registry}`")
        run_hash = args.hash
        if (
            run_hash is not None
            and reg.get_config_by_hash(run_hash) is None
            and not reg.get_runs_for_hash(run_hash)
        ):
            # Accept a label too, as the library's label-or-hash methods do.
            run_hash = dict(reg.list_labels()).get(run_hash)
            if run_hash is None:
                raise JoshregError(f"no run configuration with hash or label '{args.hash}'")
        rows = reg.runs_overview(args.session, run_hash)
    if args.json:
        emit_json(rows, out)
    else:
        out.write(format_table(RUN_HEADERS, [run_table_row(r) for r in rows]) + "\n")
    return EXIT_OK


@command(
    "info",
    "Show one run configuration: parameters, sources, replicates, executions, label history.",
    """
    RUN is a label or a run hash (a label wins when both match). Parameters are shown as
    they were registered (85, not 85.0).

    examples:
      joshreg info demo-output/sweep.duckdb baseline
      joshreg info demo-output/sweep.duckdb 3f2a9c41d07e --json
    """,
    arg("run", metavar="RUN", help="a label or run hash"),
    as_of=True,
)
def info(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with open_registry(args) as reg:
        try:
            page = reg.run_overview(args.run)
        except NotFoundError:
            if getattr(args, "as_of", None) is None:
                raise
            raise JoshregError(_not_yet(args, reg)) from None
    if args.json:
        page["label_history"] = [c.__dict__ for c in page["label_history"]]
        page["status_history"] = [c.__dict__ for c in page["status_history"]]
        for key in ("josh_source", "config_source"):
            src = page[key]
            page[key] = (
                None
                if src is None
                else {"path": src.path, "exists": src.exists, "matches": src.content_matches}
            )
        emit_json([page], out)
    else:
        out.write(format_run_info(page) + "\n")
    return EXIT_OK


def _not_yet(args: argparse.Namespace, view: RegistryReader) -> str:
    """Why a run is missing from a view as of the past: did it exist later, and since when?"""
    from joshreg.projection.timetravel import describe

    moment = describe(view.when, view.position)  # type: ignore[attr-defined]
    live = argparse.Namespace(**{**vars(args), "as_of": None})
    with open_registry(live) as reg:
        run_hash = dict(reg.list_labels()).get(args.run, args.run)
        cfg = reg.get_config_by_hash(run_hash)
    if cfg is None:
        return f"No run found for '{args.run}', neither as of {moment} nor now"
    if run_hash != args.run and view.get_config_by_hash(run_hash) is not None:
        return (
            f"label '{args.run}' named no run yet as of {moment}; it names {run_hash} now, which "
            f"existed then: ask for `info {run_hash}`"
        )
    since = f" at {format_time(cfg.created_at)} UTC" if cfg.created_at else " later"
    return f"run '{args.run}' did not exist yet as of {moment}: it was registered{since}"


@command(
    "labels",
    "Show the current labels, or with --history every label change ever made.",
    """
    examples:
      joshreg labels demo-output/sweep.duckdb
      joshreg labels demo-output/sweep.duckdb --history --label baseline
    """,
    arg("--history", action="store_true", help="every label change, oldest first"),
    arg("--label", metavar="L", help="only this label"),
    as_of=True,
)
def labels(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with open_registry(args) as reg:
        if args.history:
            changes = reg.label_history(label=args.label)
            if args.json:
                emit_json(({**c.__dict__} for c in changes), out)
            else:
                out.write(format_table(HISTORY_HEADERS, history_rows(changes)) + "\n")
            return EXIT_OK
        rows = reg.labels_overview(args.label)
    if args.json:
        emit_json(rows, out)
    else:
        out.write(format_table(LABEL_HEADERS, [label_table_row(r) for r in rows]) + "\n")
    return EXIT_OK


@command(
    "log",
    "Show the event log and label changes in log order, one line each.",
    """
    Times are UTC. --type takes a full type (run.started) or a prefix (run, label).
    --run takes a run id, a run hash or a label; a hash also shows its executions' events.

    examples:
      joshreg log demo-output/sweep.duckdb --type run.completed
      joshreg log demo-output/sweep.duckdb --label baseline
      joshreg log demo-output/sweep.duckdb --limit 5 --json
    """,
    arg("--type", metavar="T", help="only events of this type or type prefix"),
    arg("--run", metavar="RUN", help="only events of this run id, run hash or label"),
    arg("--session", metavar="ID", help="only events of this session"),
    arg("--label", metavar="L", help="only changes of this label"),
    arg("--limit", metavar="N", type=count, help="only the N most recent entries"),
    as_of=True,
)
def log(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.type is not None and not any(matches_type(args.type, t) for t in LOG_TYPES):
        raise JoshregError(f"unknown event type {args.type!r}; the types are: {', '.join(LOG_TYPES)}")
    with open_registry(args) as reg:
        entries = reg.timeline(
            type=args.type, run=args.run, session_id=args.session, label=args.label, full=args.json
        )
    if args.limit is not None:
        entries = entries[len(entries) - args.limit :] if args.limit < len(entries) else entries
    if args.json:
        emit_json((e.to_json() for e in entries), out)
    elif entries:
        out.write("\n".join(e.line() for e in entries) + "\n")
    else:
        out.write("(no entries)\n")
    return EXIT_OK


def _debug_entity(store: DebugMessageStore, prefix: str) -> str:
    """The one entity id ``prefix`` names, or an error listing what it could have meant."""
    eid = store.resolve_entity_id(prefix)
    if eid is not None:
        return eid
    found = store.entity_ids_with_prefix(prefix)
    if found:
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise InvalidArgumentError(
            f"entity id prefix '{prefix}' matches {len(found)} entities ({shown}); give more digits"
        )
    sample = ", ".join(store.entity_ids()[:3]) or "none"
    raise NotFoundError(f"no entity '{prefix}' in this debug output (ids look like: {sample})")


@command(
    "debug",
    "Show a run's Josh debug output: messages, an entity's trace, or a summary.",
    """
    RUN is a label or a run hash; the debug files are the debug.<type> outputs registered
    for its latest execution (--run-id for another). Messages print one per line in Josh's
    own format; --step, --entity and --grep narrow them (all must match). --entity alone
    shows that entity's trace, step by step; an id prefix is enough when it is unique.
    Spin-up steps are negative: --step -1.

    examples:
      joshreg debug demo-output/sweep.duckdb baseline --summary
      joshreg debug demo-output/sweep.duckdb baseline --entity-type organism --step 3
      joshreg debug demo-output/sweep.duckdb baseline --entity 3fa2 --grep height
    """,
    arg("run", metavar="RUN", help="a label or run hash"),
    arg("--run-id", metavar="ID", help="this execution instead of the latest"),
    arg(
        "--entity-type",
        metavar="T",
        action="append",
        help="only the debug files of this entity type (organism, patch, ...); repeat for more",
    ),
    arg("--step", metavar="N", type=int, help="only messages of step N"),
    arg("--entity", metavar="ID-PREFIX", help="only this entity (id or unique prefix)"),
    arg("--grep", metavar="TEXT", help="only messages whose text contains TEXT"),
    arg("--summary", action="store_true", help="counts per step, type and entity instead"),
    arg("--limit", metavar="N", type=count, help="print at most N messages"),
    as_of=True,
)
def debug(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from joshreg.provenance.debug import DebugMessageStore, format_message, format_summary, format_trace

    with open_registry(args) as reg:
        run_hash = reg.resolve_label_or_hash(args.run)
        run_id = reg.resolve_run_id(run_hash, args.run_id)
        files = reg.get_debug_output_files(run_hash, run_id=run_id, entity_types=args.entity_type)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DebugParseWarning)
            store = reg.load_debug(run_hash, run_id=run_id, entity_types=args.entity_type)
    for w in caught:
        if issubclass(w.category, DebugParseWarning):
            err.write(f"joshreg: warning: {w.message}\n")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    entity = _debug_entity(store, args.entity) if args.entity is not None else None
    filtered = args.step is not None or args.grep is not None
    if entity is not None and not filtered and not args.summary:
        messages = store.trace(entity)  # a trace reads by step, whatever the file order
    else:
        messages = store.filter(step=args.step, entity_id=entity, content_contains=args.grep)
    if args.summary:
        whole = entity is None and not filtered
        summary = (store if whole else DebugMessageStore(messages, store.parse_errors)).summary()
        if args.json:
            record = {"run_hash": run_hash, "run_id": run_id, "files": [str(f) for f in files]}
            emit_json([{**record, **summary.__dict__}], out)
        else:
            head = f"Debug output of {args.run}" + (f" ({run_hash})" if args.run != run_hash else "")
            lines = [head, f"Execution:     {run_id}"]
            lines += [f"{'Files:' if i == 0 else '':<15}{f}" for i, f in enumerate(files)]
            out.write("\n".join(lines) + "\n" + format_summary(summary) + "\n")
        return EXIT_OK
    shown = messages if args.limit is None else messages[: args.limit]
    try:
        if args.json:
            emit_json((m.to_dict() for m in shown), out)
        elif entity is not None and not filtered:
            out.write(f"Trace of {entity} ({len(messages)} messages)\n")
            out.write(format_trace(shown) + "\n")
        elif shown:
            for i in range(0, len(shown), 10_000):  # millions of lines: never one giant string
                out.write("".join(format_message(m) + "\n" for m in shown[i : i + 10_000]))
        else:
            out.write("(no matching messages)\n")
        if len(shown) < len(messages) and not args.json:
            out.write(f"... {len(messages) - len(shown)} more messages (raise --limit to see them)\n")
        out.flush()
    except BrokenPipeError:
        # `joshreg debug ... | head`: the reader has all it wanted. Point stdout at /dev/null so
        # the interpreter's final flush does not report the closed pipe.
        if out is sys.__stdout__:
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    return EXIT_OK
