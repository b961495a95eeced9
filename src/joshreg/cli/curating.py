"""Commands for what users say about runs: status, tags (attributes), target designs, reset and drop."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from joshreg.cli.commands import EXIT_OK, EXIT_PROBLEMS, arg, command, open_registry
from joshreg.cli.output import emit_json
from joshreg.errors import InvalidArgumentError
from joshreg.registry.text import STATUS_HISTORY_HEADERS, format_table, status_rows, status_text

__all__ = ["designs", "drop", "parse_value", "reset", "status", "tags"]

STATUS_HEADERS = ("RUN_HASH", "LABEL", "STATUS")


@command(
    "status",
    "Show each run configuration's status (active, bad, superseded), or with --history every change.",
    """
    RUN (a label or run hash) shows one run. Statuses are set from Python with mark_run,
    supersede and label_run(..., on_collision="supersede"); every change is kept.

    examples:
      joshreg status demo-output/sweep.duckdb
      joshreg status demo-output/sweep.duckdb baseline --history
      joshreg status demo-output/sweep.duckdb --as-of "2026-05-01 12:00"
    """,
    arg("run", metavar="RUN", nargs="?", help="a label or run hash"),
    arg("--history", action="store_true", help="every status change, oldest first"),
    as_of=True,
)
def status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with open_registry(args) as reg:
        run_hash = None if args.run is None else reg.resolve_label_or_hash(args.run)
        if args.history:
            changes = reg.status_history(run_hash)
            if args.json:
                emit_json((c.__dict__ for c in changes), out)
            else:
                out.write(format_table(STATUS_HISTORY_HEADERS, status_rows(changes)) + "\n")
            return EXIT_OK
        statuses = [reg.get_run_status(run_hash)] if run_hash is not None else reg.run_statuses()
        labels = {h: label for label, h in reg.list_labels()}
    if args.json:
        emit_json(
            (
                {**s.__dict__, "label": labels.get(s.run_hash), "effective_status": s.effective_status}
                for s in statuses
            ),
            out,
        )
    else:
        rows = [(s.run_hash, labels.get(s.run_hash), status_text(s)) for s in statuses]
        out.write(format_table(STATUS_HEADERS, rows) + "\n")
    return EXIT_OK


def parse_value(text: str) -> Any:
    """A tag value from the command line: JSON first (``2``, ``true``, ``"2"``, ``[1, 2]``),
    the text itself otherwise (``mojave``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _pair(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, parse_value(value)


@command(
    "tags",
    "Show, find or set tags: a run's attributes (scope run_hash), a session's, an execution's, your own.",
    """
    Values are read as JSON first, as text otherwise: n=2 is a number, n='"2"' text, ok=true
    a boolean, site=mojave text. Matching is by JSON type (2 matches 2.0, not "2").

    examples:
      joshreg tags demo-output/sweep.duckdb
      joshreg tags demo-output/sweep.duckdb 3f2a9c41d07e --set site=mojave --set tier=2
      joshreg tags demo-output/sweep.duckdb --find site=mojave
      joshreg tags demo-output/sweep.duckdb mojave --scope site --set elevation=900
    """,
    arg(
        "key", metavar="KEY", nargs="?", help="a run hash (or label) in scope run_hash, else a key of --scope"
    ),
    arg("--scope", default="run_hash", help="run_hash (default), session_id, run_id or a scope of your own"),
    arg("--set", metavar="NAME=VALUE", type=_pair, action="append", default=[], help="merge this tag in"),
    arg("--find", metavar="NAME=VALUE", type=_pair, help="the keys whose tag NAME equals VALUE"),
    as_of=True,
)
def tags(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.set and (args.key is None or args.find is not None):
        raise InvalidArgumentError("--set needs a KEY and goes without --find")
    if args.set and getattr(args, "as_of", None) is not None:
        raise InvalidArgumentError("--set changes the registry; it cannot be combined with --as-of")
    with open_registry(args) as reg:
        key = args.key
        if key is not None and args.scope == "run_hash":
            key = reg.resolve_label_or_hash(key)
        if args.set:
            values = dict(args.set)
            setter = {
                "run_hash": lambda: reg.set_attributes(key, **values),
                "session_id": lambda: reg.tag_by_session_id(key, **values),
                "run_id": lambda: reg.tag_by_run_id(key, **values),
            }.get(args.scope, lambda: reg.tag_custom(key, scope=args.scope, **values))
            setter()
        if args.find is not None:
            name, value = args.find
            keys = reg.find_tagged(name, value, scope=args.scope)
            rows = [(k, reg.get_custom_tags(k, scope=args.scope)) for k in keys]
        elif key is not None:
            rows = [(key, reg.get_custom_tags(key, scope=args.scope))]
        else:
            rows = [
                (k, json.loads(t))
                for k, t in reg.query(
                    "SELECT key, tags FROM run_tags WHERE scope = ? ORDER BY key", [args.scope]
                ).fetchall()
            ]
    if args.json:
        emit_json(({"scope": args.scope, "key": k, "tags": t} for k, t in rows), out)
    else:
        table = [(k, ", ".join(f"{n}={json.dumps(v)}" for n, v in t.items())) for k, t in rows]
        out.write(format_table((args.scope.upper(), "TAGS"), table) + "\n")
    return EXIT_OK


@command(
    "designs",
    "List target designs, or with --check NAME show how far the active runs meet one.",
    """
    Designs are registered from Python (register_design). With --check, the exit status is 0
    when every requirement is met and 1 when some are not.

    examples:
      joshreg designs demo-output/sweep.duckdb
      joshreg designs demo-output/sweep.duckdb --check coverage
    """,
    arg("--check", metavar="NAME", help="the coverage of this design"),
    as_of=True,
)
def designs(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with open_registry(args) as reg:
        if args.check is None:
            found = reg.list_designs()
            if args.json:
                emit_json(
                    ({"name": d.name, "requirements": [r.__dict__ for r in d.requirements]} for d in found),
                    out,
                )
            else:
                rows = [
                    (d.name, json.dumps(r.attributes), r.min_active) for d in found for r in d.requirements
                ]
                out.write(format_table(("DESIGN", "ATTRIBUTES", "MIN_ACTIVE"), rows) + "\n")
            return EXIT_OK
        report = reg.check_design(args.check)
    if args.json:
        emit_json(
            (
                {**r.__dict__, "found": r.found, "satisfied": r.satisfied, "design": report.design_name}
                for r in report.requirements
            ),
            out,
        )
    else:
        rows = [
            (
                json.dumps(r.attributes),
                f"{r.found}/{r.min_active}",
                "met" if r.satisfied else "UNMET",
                ", ".join(f"{h} ({s})" for h, s in r.non_active_matches),
            )
            for r in report.requirements
        ]
        out.write(format_table(("ATTRIBUTES", "ACTIVE", "", "NOT COUNTED"), rows) + "\n")
        verdict = "complete" if report.complete else f"{len(report.unmet)} requirement(s) unmet"
        out.write(f"design {report.design_name}: {verdict}\n")
    return EXIT_OK if report.complete else EXIT_PROBLEMS


# What reset and drop take alike.
REMOVAL_ARGS = (
    arg("run", metavar="RUN", help="a label or run hash"),
    arg("--reason", help="why, kept in the label history"),
    arg("--dry-run", action="store_true", help="only count what would go"),
    arg("--yes", action="store_true", help="do not ask"),
)


def _removal(args: argparse.Namespace, out: TextIO, verb: str) -> int:
    """reset and drop: count, say what goes, ask (unless --yes), then do it."""
    with open_registry(args) as reg:
        act = reg.reset_run if verb == "reset" else reg.drop_run
        summary = act(args.run, reason=args.reason, dry_run=True)
        rows = ", ".join(f"{n} {table}" for table, n in summary.rows.items() if n) or "no rows"
        label = f" and free its label '{summary.label}'" if summary.label else ""
        plan = f"{verb} {summary.run_hash}: take {rows} out of the tables{label}"
        if args.json and args.dry_run:
            emit_json([{**summary.__dict__, "dry_run": True}], out)
            return EXIT_OK
        if args.dry_run:
            out.write(f"would {plan} (dry run: nothing changed)\n")
            return EXIT_OK
        if not args.yes:
            if not sys.stdin.isatty():
                raise InvalidArgumentError(f"{plan}? Not asked without a terminal; pass --yes to do it")
            out.write(f"{plan}? The log keeps everything. [y/N] ")
            out.flush()
            if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                out.write("nothing changed\n")
                return EXIT_OK
        summary = act(args.run, reason=args.reason)
    if args.json:
        emit_json([summary.__dict__], out)
    else:
        out.write(
            f"{verb}: {summary.run_hash}, {summary.total} rows out of the tables (the log keeps them)\n"
        )
    return EXIT_OK


@command(
    "reset",
    "Take a run's executions, outputs and results out of the tables and clear its status, to run it again.",
    """
    RUN is a label or run hash; its configuration stays. Nothing leaves the log: `--as-of`
    still shows the old runs, and a worker finishing one later is recorded and left out. Asks
    first unless --yes.

    examples:
      joshreg reset demo-output/sweep.duckdb baseline --dry-run
      joshreg reset demo-output/sweep.duckdb 3f2a9c41d07e --reason "diverged" --yes
    """,
    *REMOVAL_ARGS,
)
def reset(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _removal(args, out, "reset")


@command(
    "drop",
    "Take everything about a run hash out of the tables and free its label (restore_run undoes it).",
    """
    RUN is a label or run hash; its session stays. Nothing leaves the log: the hash can be
    registered again, and RunRegistry.restore_run(hash) brings it back. Asks first unless --yes.

    examples:
      joshreg drop demo-output/sweep.duckdb 3f2a9c41d07e --dry-run
      joshreg drop demo-output/sweep.duckdb 3f2a9c41d07e --reason "wrong template" --yes
    """,
    *REMOVAL_ARGS,
)
def drop(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _removal(args, out, "drop")
