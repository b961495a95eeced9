"""How a command is declared, and what every command shares.

A command is a function ``(args, out, err) -> exit status`` under ``@command(...)``, which names
it, gives its help and example, and declares its options beside it. Command modules import the
library inside their functions, so building the parser (``joshreg --help``) loads no DuckDB,
Arrow or pandas.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from joshreg.errors import InvalidArgumentError, JoshregError
from joshreg.log.names import default_events_path

if TYPE_CHECKING:
    from joshreg.projection.timetravel import Moment
    from joshreg.registry.reader import RegistryReader

__all__ = [
    "COMMANDS",
    "EXIT_DIFFERENT",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "Arg",
    "Command",
    "arg",
    "command",
    "count",
    "open_registry",
    "seconds",
    "when",
]

EXIT_OK, EXIT_PROBLEMS, EXIT_ERROR = 0, 1, 2
EXIT_DIFFERENT = 1  # `joshreg diff` found differences, as diff(1) says

Run = Callable[[argparse.Namespace, TextIO, TextIO], int]


@dataclass(frozen=True)
class Arg:
    """One option or positional argument, as ``argparse.add_argument`` takes it."""

    flags: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


def arg(*flags: str, **options: Any) -> Arg:
    return Arg(flags, options)


@dataclass(frozen=True)
class Command:
    """A subcommand: its function, help, example and options; ``registry`` commands take
    ``REGISTRY`` and ``--events-path``, ``json`` ones ``--json``, ``as_of`` ones ``--as-of``."""

    name: str
    run: Run
    summary: str
    epilog: str
    args: tuple[Arg, ...]
    registry: bool = True
    json: bool = True
    as_of: bool = False


COMMANDS: dict[str, Command] = {}


def command(
    name: str,
    summary: str,
    epilog: str,
    *args: Arg,
    registry: bool = True,
    json: bool = True,
    as_of: bool = False,
) -> Callable[[Run], Run]:
    """Register the decorated function as ``joshreg NAME``."""

    def register(run: Run) -> Run:
        COMMANDS[name] = Command(name, run, summary, epilog, args, registry, json, as_of)
        return run

    return register


# --- argument types -------------------------------------------------------------------------------


def count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 0, got {text!r}")
    return n


def seconds(text: str) -> float:
    try:
        s = float(text)
    except ValueError:
        s = -1.0
    if not 0 < s < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return s


def when(text: str) -> Moment:
    from joshreg.projection.timetravel import parse_when

    try:
        return parse_when(text)
    except InvalidArgumentError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# --- opening the registry -------------------------------------------------------------------------


def open_registry(args: argparse.Namespace, *, refresh_interval: float = 1.0) -> RegistryReader:
    """Open an existing registry; refuse a path with neither a database file nor a log.
    (``refresh_interval``: see ``RunRegistry``; a follower lists at every poll instead.)

    With ``--as-of`` it is a read-only view as of then, and the live registry is closed at once.
    """
    from joshreg.registry.registry import RunRegistry

    db = Path(args.registry)
    events = events_of(args, db)
    if not db.exists() and not events_exist(events):
        raise JoshregError(f"no registry at {db}: neither {db} nor its log {events}/ exists")
    reg = RunRegistry(db, events_path=events, refresh_interval=refresh_interval)
    moment = getattr(args, "as_of", None)
    if moment is None:
        return reg
    with reg:
        return reg.as_of(moment)


def events_of(args: argparse.Namespace, registry: str | os.PathLike[str]) -> Path | str:
    """The event store the arguments name for ``registry``: a folder, or an ``s3://`` location
    kept as text (a Path would fold its ``//``)."""
    if args.events_path and str(args.events_path).startswith("s3://"):
        return str(args.events_path)
    return Path(args.events_path) if args.events_path else Path(default_events_path(registry))


def events_exist(events: Path | str) -> bool:
    """Whether there is anything at the events location (an ``s3://`` store is asked)."""
    if isinstance(events, str):
        from joshreg.log.store import store_exists_at

        return store_exists_at(events)
    return events.exists()
