"""The ``joshreg`` parser and ``main``: one subcommand per ``@command`` of the command modules.

Library errors become one line on stderr (``joshreg: error: ...``) and exit status 2; problems
found in the log (or differences found by ``diff``) exit status 1. Every command opens the
registry like any other process: if a running sweep holds the DuckDB file, the command reads a
private projection of the same log instead of failing.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import warnings
from collections.abc import Sequence

from joshreg.cli import curating, inspect, sources, upkeep, watching
from joshreg.cli.commands import COMMANDS, EXIT_ERROR, Arg, when
from joshreg.errors import JoshregError, LogDamageWarning

__all__ = ["build_parser", "main"]

# Importing the command modules registers their commands.
_MODULES = (inspect, curating, sources, upkeep, watching)


def _add(parser: argparse.ArgumentParser, a: Arg) -> None:
    if a.flags:
        parser.add_argument(*a.flags, **a.options)
        return
    group = parser.add_mutually_exclusive_group()
    for member in a.options["exclusive"]:
        group.add_argument(*member.flags, **member.options)
    parser.set_defaults(**a.options.get("defaults", {}))


def build_parser() -> argparse.ArgumentParser:
    """The ``joshreg`` parser with one subcommand per registered command."""
    parser = argparse.ArgumentParser(
        prog="joshreg",
        description="Inspect and rebuild a joshreg run registry (an event-sourced joshpy RunRegistry).",
        epilog=textwrap.dedent(
            """
            example:
              joshreg sessions demo-output/sweep.duckdb

            Run `joshreg COMMAND --help` for each command's options.
            """
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in sorted(COMMANDS, key=_order):
        cmd = COMMANDS[name]
        p = sub.add_parser(
            name,
            help=cmd.summary,
            description=cmd.summary,
            epilog=textwrap.dedent(cmd.epilog),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(func=cmd.run)
        if cmd.registry:
            p.add_argument(
                "registry", metavar="REGISTRY", help="the registry's DuckDB file, e.g. sweep.duckdb"
            )
            p.add_argument(
                "--events-path",
                metavar="DIR",
                help="the registry's event store, if not beside the file (default: REGISTRY with .events)",
            )
        if cmd.json:
            p.add_argument("--json", action="store_true", help="print one JSON object per line")
        if cmd.as_of:
            p.add_argument(
                "--as-of",
                metavar="WHEN",
                type=when,
                help="show the registry as it was then: an ISO time such as 2026-07-29T18:00 (UTC unless "
                "it has a zone) or a log position (the @number of `joshreg log`, POSITION of --history)",
            )
        for a in cmd.args:
            _add(p, a)
    return parser


_FIRST = ("sessions", "runs", "info", "labels", "log")


def _order(name: str) -> tuple[int, str]:
    return (_FIRST.index(name), "") if name in _FIRST else (len(_FIRST), name)


def _message(e: BaseException) -> str:
    # KeyError's str() quotes its argument; show the sentence itself.
    if isinstance(e, KeyError) and e.args:
        return str(e.args[0])
    return str(e)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``joshreg`` command; return its exit status (0 ok, 1 problems found, 2 error)."""
    args = build_parser().parse_args(argv)
    out, err = sys.stdout, sys.stderr
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LogDamageWarning)
        try:
            status = args.func(args, out, err)
        except (JoshregError, KeyError, ValueError) as e:
            err.write(f"joshreg: error: {_message(e)}\n")
            status = EXIT_ERROR
    for w in caught:
        if issubclass(w.category, LogDamageWarning):
            err.write(f"joshreg: warning: {w.message}\n")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return status
