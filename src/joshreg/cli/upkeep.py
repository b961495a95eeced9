"""Commands that maintain registries: rebuild, verify, compact, merge, import."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TextIO

from joshreg.cli.commands import (
    EXIT_OK,
    EXIT_PROBLEMS,
    arg,
    command,
    count,
    events_exist,
    events_of,
    open_registry,
)
from joshreg.cli.output import ProgressLines, emit_json
from joshreg.errors import JoshregError
from joshreg.log.reader import ABANDONED_AFTER_S
from joshreg.operations.compaction import MIN_BYTES


@command(
    "rebuild",
    "Drop the registry's tables and replay its whole event log into them.",
    """
    The DuckDB file is a cache of the log: rebuilding gives the same tables an up-to-date
    registry has. Damaged log lines are reported (segment:line) and skipped; the exit status
    is then 1. With --events-path it rebuilds the file from that store: the explicit way to
    point a registry file at another event store.

    example:
      joshreg rebuild demo-output/sweep.duckdb
    """,
    json=False,
)
def rebuild(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from joshreg.registry.registry import RunRegistry

    say = ProgressLines(err)

    def progress(done: int, total: int) -> None:
        pct = 100.0 * done / total if total else 100.0
        say(f"rebuilding: {done / 1e6:.2f} of {total / 1e6:.2f} MB read ({pct:.0f}%)")

    db = Path(args.registry)
    events = events_of(args, db)
    if not db.exists() and not events_exist(events):
        raise JoshregError(f"no registry at {db}: neither {db} nor its log {events}/ exists")
    # Rebuilding at open is also the explicit way to point the file at another event store.
    with RunRegistry(db, events_path=events, rebuild=True, progress=progress) as reg:
        if reg.private_projection:
            err.write(
                f"joshreg: note: {reg.db_path} is held by another process; rebuilt a private "
                "in-memory projection only, the file was not changed\n"
            )
        result = reg.opened
    out.write(
        f"rebuilt {result.events} events, {result.label_commits} label commits in {result.seconds:.2f} s\n"
    )
    for p in result.problems:
        err.write(f"joshreg: problem: {p}\n")
    return EXIT_PROBLEMS if result.problems else EXIT_OK


@command(
    "verify",
    "Check the event log, label log and result files for damage, and the tables against a rebuild.",
    """
    Checks every segment line's checksum and hash chain (edited, deleted, moved, glued or
    truncated lines), each writer's sequence numbers (gaps, repeats, copied segments), the
    label log (no missing or edited commit), every result file (present, with its recorded
    SHA-256), and, unless --no-rebuild-check, that every table equals a fresh rebuild of
    the log. Each problem names its kind, the file (relative to the event store) and line,
    and what to do. A torn last line that a running writer may still finish is a warning,
    as is an event that names something no event creates (an orphan).
    Exit status: 0 sound, 1 problems found, 2 usage error.

    examples:
      joshreg verify demo-output/sweep.duckdb
      joshreg verify demo-output/sweep.duckdb --no-rebuild-check --json
    """,
    arg(
        "--no-rebuild-check",
        action="store_true",
        help="skip comparing the tables with a fresh rebuild (faster on big registries)",
    ),
)
def verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Report on stdout; exit 0 when the store is sound, 1 when damage was found."""
    say = ProgressLines(err)

    def progress(phase: str, done: int, total: int) -> None:
        pct = 100.0 * done / total if total else 100.0
        if phase in ("segments", "rebuild"):
            amount = f"{done / 1e6:.2f} of {total / 1e6:.2f} MB"
        else:
            amount = f"{done} of {total}"
        say(f"verifying {phase}: {amount} ({pct:.0f}%)")

    with open_registry(args) as reg:
        report = reg.verify(rebuild_check=not args.no_rebuild_check, progress=progress)
    if args.json:
        emit_json([report.to_dict()], out)
    else:
        out.write(f"{report}\n")
    return EXIT_OK if report.ok else EXIT_PROBLEMS


@command(
    "compact",
    "Rewrite finished log segments as Parquet (smaller, faster rebuilds) and delete their JSONL.",
    """
    A segment is finished when its writer closed it (sealed), or when its writer ran on this
    host, has exited, and the file has not changed for --abandoned-after seconds. Live
    segments, unsealed ones from other hosts and small ones (--min-bytes) are left alone.
    Each Parquet file is durable before its JSONL is deleted, and holds the JSONL's exact
    bytes, so the tables do not change and a crash at any point loses and duplicates nothing
    (run it again to finish). Safe while writers and readers run. Exit status: 0 done, 1 a
    segment could not be compacted safely (it keeps its JSONL), 2 usage error.

    examples:
      joshreg compact demo-output/sweep.duckdb
      joshreg compact demo-output/sweep.duckdb --dry-run --abandoned-after 600
    """,
    arg(
        "--abandoned-after",
        metavar="SECONDS",
        type=count,
        default=int(ABANDONED_AFTER_S),
        help="compact an unsealed segment of an exited local writer once untouched this long "
        f"(default: {int(ABANDONED_AFTER_S)})",
    ),
    arg(
        "--min-bytes",
        metavar="N",
        type=count,
        default=MIN_BYTES,
        help=f"leave smaller segments as JSONL: Parquet would not shrink them (default: {MIN_BYTES})",
    ),
    arg("--dry-run", action="store_true", help="only say what would be compacted"),
)
def compact(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Report on stdout; exit 0 when every finished segment was compacted (or left alone), 1 when
    a segment could not be compacted safely."""
    with open_registry(args) as reg:
        report = reg.compact(  # type: ignore[attr-defined]
            abandoned_after=args.abandoned_after, min_bytes=args.min_bytes, dry_run=args.dry_run
        )
    if args.json:
        emit_json([report.to_dict()], out)
    else:
        out.write(f"{report}\n")
    return EXIT_OK if report.ok else EXIT_PROBLEMS


@command(
    "merge",
    "Merge other registries into TARGET: the union of their event logs, labels and results.",
    """
    SOURCE and TARGET are registry files (sweep.duckdb, the log beside it) or event store
    folders; TARGET is created if missing. Only what TARGET lacks is copied: log segments,
    label commits, result files, session ids. Merging again, or in another order, gives the
    same tables. A label given to different runs in different registries goes to the later
    assignment (by the registries' clocks); the run that held it is released with reason
    'merge', and both assignments stay in the label history. Prints what each SOURCE added;
    damage found on the way goes to stderr with exit status 1.

    examples:
      joshreg merge laptop.duckdb cluster.duckdb --into combined.duckdb
      joshreg merge /scratch/sweep.events --into sweep.duckdb --json
    """,
    arg("sources", metavar="SOURCE", nargs="+", help="a registry file or event store folder to merge"),
    arg("--into", metavar="TARGET", required=True, help="the registry (file or event store) to merge into"),
    registry=False,
)
def merge(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from joshreg.operations.merge import event_store_path, merge_stores
    from joshreg.registry.registry import RunRegistry

    reports = merge_stores(args.sources, args.into)
    target = Path(args.into)
    caught = None
    if event_store_path(target) != os.fspath(target):  # a registry file: bring its tables up to date
        with RunRegistry(target) as reg:
            caught = reg.sync()
    problems = [p for r in reports for p in r.problems]
    if args.json:
        emit_json([r.to_dict() for r in reports], out)
    else:
        for r in reports:
            out.write(("merged " if r.changed else "") + r.summary() + "\n")
        if caught is not None:
            out.write(f"{target}: tables up to date\n")
    for p in problems:
        err.write(f"joshreg: problem: {p}\n")
    return EXIT_PROBLEMS if problems else EXIT_OK


@command(
    "import",
    "Import a registry joshpy wrote (its DuckDB file, or its tables as Parquet) into a joshreg registry.",
    """
    SOURCE is read-only: nothing in it changes. It is a joshpy registry file that this
    joshreg's DuckDB can read, or a folder of its tables as Parquet: EXPORT DATABASE
    'dir' (FORMAT parquet) from any DuckDB, or push_to_s3's <table>.parquet layout.
    Sessions, configurations, executions, outputs, labels and cell_data become events in
    TARGET's log (created if missing; it may hold other registries already). Importing
    again adds only what SOURCE gained since. joshpy's naive local times are read in
    --source-timezone (default: this machine's zone) and kept in UTC. The summary lists
    what was added, what TARGET already held, every conflict (kept TARGET's) and every
    difference from SOURCE. --dry-run counts without writing.

    examples:
      joshreg import old.duckdb --into sweep.duckdb
      joshreg import old-export/ --into sweep.duckdb --source-timezone America/Los_Angeles
      joshreg import old.duckdb --into sweep.duckdb --dry-run --json
    """,
    arg("source", metavar="SOURCE", help="a joshpy registry file, or a folder of its tables as Parquet"),
    arg("--into", metavar="TARGET", required=True, help="the joshreg registry file to import into"),
    arg("--events-path", metavar="DIR", help="TARGET's event store, if not beside it"),
    arg(
        "--source-timezone",
        metavar="TZ",
        help="the zone of SOURCE's naive times, e.g. Europe/Berlin (default: this machine's)",
    ),
    arg("--dry-run", action="store_true", help="count what would be imported; write nothing"),
    registry=False,
)
def import_registry(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Import a joshpy registry; a dry run into a registry that does not exist yet writes nothing."""
    from joshreg.registry.registry import RunRegistry

    source, into = Path(args.source), Path(args.into)
    if into.exists() and source.exists() and into.resolve() == source.resolve():
        raise JoshregError(f"{into} is the source itself; give a new file with --into")
    say = ProgressLines(err)

    def progress(phase: str, done: int, total: int) -> None:
        say(f"importing {phase}: {done} of {total}")

    events = events_of(args, into)
    dry_into_nothing = args.dry_run and not into.exists() and not events_exist(events)
    target = RunRegistry(":memory:") if dry_into_nothing else RunRegistry(into, events_path=events)
    with target as reg:
        report = reg.import_joshpy(
            source, source_timezone=args.source_timezone, dry_run=args.dry_run, progress=progress
        )
        summary = None if args.dry_run else reg.get_data_summary()
    if args.json:
        emit_json([{**report.to_dict(), "into": str(into)}], out)
    else:
        out.write(report.summary() + "\n")
        if summary is not None:
            out.write(
                f"{into} now holds {summary.sessions} sessions, {summary.configs} configurations, "
                f"{summary.runs} executions and {summary.cell_data_rows} result rows\n"
            )
    return EXIT_OK
