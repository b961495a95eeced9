"""``joshreg watch``: keep a registry file caught up while workers append."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from joshreg.cli.commands import EXIT_OK, EXIT_PROBLEMS, arg, command, open_registry, seconds
from joshreg.cli.output import emit_json, watch_line, watch_summary_line
from joshreg.operations.watch import DEFAULT_INTERVAL, DEFAULT_SNAPSHOT_INTERVAL


def _timed(publish: Callable[..., Any], path: Path) -> float:
    """Publish a snapshot without catching up first (the follower just did); the seconds."""
    t0 = time.perf_counter()
    publish(path, catch_up=False)
    return time.perf_counter() - t0


@command(
    "watch",
    "Keep the DuckDB file caught up while workers append, printing a line per batch applied.",
    """
    Wakes on file events in the log (and label log) and also catches up every --interval
    seconds, since file events never arrive for writes made on another host of a network
    file system (--poll uses only the timer). Each line: time (UTC), events and label
    commits applied, lag from the newest event's clock to now, running totals. Damaged log
    lines go to stderr. After each batch (at most every --snapshot-interval seconds) it
    publishes a read-only copy, REGISTRY with .snapshot.duckdb, that other processes open
    while this one holds the file: duckdb.connect(path, read_only=True). Ctrl-C or SIGTERM
    stops it with a summary line; exit status 1 if damage was found.

    examples:
      joshreg watch demo-output/sweep.duckdb
      joshreg watch /scratch/sweep.duckdb --events-path /shared/sweep.events --poll --interval 2
      joshreg watch demo-output/sweep.duckdb --once --json
    """,
    arg(
        "--interval",
        metavar="S",
        type=seconds,
        default=DEFAULT_INTERVAL,
        help=f"catch up at least every S seconds (default: {DEFAULT_INTERVAL:g})",
    ),
    arg("--poll", action="store_true", help="no file events, only the timer (NFS, Lustre)"),
    arg("--once", action="store_true", help="catch up and publish once, then exit"),
    arg(
        "--snapshot",
        metavar="PATH",
        type=Path,
        help="where to publish the snapshot (default: REGISTRY with .snapshot.duckdb)",
    ),
    arg("--no-snapshot", action="store_true", help="publish no snapshot"),
    arg(
        "--snapshot-interval",
        metavar="S",
        type=seconds,
        default=DEFAULT_SNAPSHOT_INTERVAL,
        help=f"publish at most every S seconds (default: {DEFAULT_SNAPSHOT_INTERVAL:g})",
    ),
)
def watch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from joshreg.operations.watch import Batch, Follower, FollowSummary
    from joshreg.projection.snapshot import snapshot_path

    """Follow the log until SIGINT/SIGTERM (or once); exit 0, or 1 when damage was found."""
    state: dict[str, Any] = {"stop": False, "follower": None}

    def on_signal(signum: int, frame: Any) -> None:
        state["stop"] = True
        if state["follower"] is not None:
            state["follower"].stop()

    saved: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            saved[sig] = signal.signal(sig, on_signal)
    try:
        with open_registry(args, refresh_interval=0.0) as reg:
            snap = None if args.no_snapshot else Path(args.snapshot or snapshot_path(reg.db_path))
            if reg.private_projection:
                err.write(
                    f"joshreg: note: {reg.db_path} is held by another process; following the log in a "
                    "private in-memory projection (the file is not updated"
                    + (", the snapshot is)\n" if snap else ")\n")
                )
            # Events in the tables so far (as CatchUp counts them: control records are not).
            events, commits = reg.query(
                "SELECT (SELECT count(*) FROM event_log), "
                "(SELECT coalesce(max(version), 0) FROM label_history)"
            ).fetchone()

            def on_start(s: FollowSummary) -> None:
                if args.json:
                    head = {
                        "watching": str(reg.db_path),
                        "events_path": reg.events_path,
                        "file_events": s.watching,
                        "interval": args.interval,
                        "snapshot": None if snap is None else str(snap),
                        "total_events": s.total_events,
                        "total_label_commits": s.total_label_commits,
                    }
                    emit_json([head], out)
                else:
                    how = "file events and a catch-up" if s.watching else "a catch-up"
                    how = "catching up once" if args.once else f"{how} every {args.interval:g} s"
                    why = f" (no file events: {s.watch_error})" if s.watch_error else ""
                    out.write(
                        f"watching {reg.db_path} (log {reg.events_path}): {how}{why}; "
                        f"{s.total_events} events, {s.total_label_commits} label commits so far"
                        + (f"; snapshot for readers: {snap}" if snap else "")
                        + "\n"
                    )
                out.flush()

            def on_batch(b: Batch) -> None:
                if args.json:
                    record = {k: v for k, v in b.__dict__.items() if k != "problems"}
                    emit_json([{**record, "problems": [str(p) for p in b.problems]}], out)
                else:
                    out.write(watch_line(b) + "\n")
                for p in b.problems:
                    err.write(f"joshreg: problem: {p}\n")
                out.flush()

            def on_error(e: Exception) -> None:
                err.write(f"joshreg: warning: {e}; trying again in {args.interval:g} s\n")
                err.flush()

            follower = Follower(
                reg.sync,
                events_path=reg.events_path,
                interval=args.interval,
                poll=args.poll,
                publish=(lambda: _timed(reg.publish_snapshot, snap)) if snap else None,
                snapshot_interval=args.snapshot_interval,
                totals=(events, commits),
                on_start=on_start,
                on_batch=on_batch,
                on_error=on_error,
            )
            state["follower"] = follower
            if state["stop"]:
                follower.stop()
            summary = follower.run(once=args.once)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    if args.json:
        record = {k: v for k, v in summary.__dict__.items() if k != "snapshot_seconds"}
        ms = sorted(summary.snapshot_seconds)
        record["snapshot_median_s"] = ms[len(ms) // 2] if ms else None
        emit_json([{"stopped": True, **record, "snapshot": None if snap is None else str(snap)}], out)
    else:
        out.write(watch_summary_line(summary, snap) + "\n")
    out.flush()
    return EXIT_PROBLEMS if summary.problems else EXIT_OK
