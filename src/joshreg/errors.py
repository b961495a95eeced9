"""Every public exception of joshreg, under one base class.

Where upstream joshpy raised ``ValueError`` or ``KeyError``, the joshreg error subclasses that
type too, so ``except ValueError`` written against upstream keeps working. Messages say what
went wrong, where, and what to do next.
"""

from __future__ import annotations

__all__ = [
    "BottleError",
    "ColumnConflictError",
    "ConsistencyError",
    "DebugParseWarning",
    "DuplicateLoadWarning",
    "DuplicateSessionError",
    "ForeignDatabaseError",
    "IdeUnavailableError",
    "ImportConflictWarning",
    "InvalidArgumentError",
    "JoshregError",
    "JoshregWarning",
    "LabelConflictError",
    "LogDamageError",
    "LogDamageWarning",
    "LogFormatError",
    "NoDebugOutputError",
    "NotFoundError",
    "ReadOnlyRegistryError",
    "RegistryBusyError",
    "RegistryClosedError",
    "RemoteUnavailableError",
    "RemovedRunWarning",
    "RunNotFoundError",
    "SessionNotFoundError",
    "SourceNotStoredError",
    "SparsityWarning",
    "SpatialUnavailableError",
    "StoreError",
    "StoreMismatchError",
    "UnsafeBottleError",
    "UploadBacklogError",
    "WaitTimeoutError",
]


class JoshregError(Exception):
    """Base class of every error joshreg raises on purpose."""


class InvalidArgumentError(JoshregError, ValueError):
    """An argument has a value the call cannot accept (upstream raised ``ValueError``)."""


class NotFoundError(JoshregError, KeyError):
    """Something named by the caller does not exist (upstream raised ``KeyError``)."""

    def __str__(self) -> str:
        # KeyError quotes its argument; a sentence reads better unquoted.
        return str(self.args[0]) if self.args else ""


class SessionNotFoundError(NotFoundError):
    """No session has the given id."""


class RunNotFoundError(NotFoundError):
    """No run configuration (hash or label) or run execution (run id) has the given name."""


class SourceNotStoredError(NotFoundError, ValueError):
    """A run was registered without the source text asked for (its Josh source).

    Both a ``KeyError`` (what upstream raised) and a ``ValueError`` (the run exists; it lacks
    data), so either ``except`` works.
    """


class NoDebugOutputError(JoshregError, ValueError):
    """A run execution has no debug output files to load (none registered, or none on disk)."""


class DuplicateSessionError(JoshregError, ValueError):
    """A session id that is already taken was passed to ``create_session``."""


class ColumnConflictError(JoshregError, ValueError):
    """A parameter or variable name clashes with an existing column (type, case or core name)."""


class LabelConflictError(JoshregError, ValueError):
    """A label is held by another run and neither ``force`` nor ``on_collision`` was given."""


class ReadOnlyRegistryError(JoshregError, PermissionError):
    """A write was asked of a registry view as of a past position (``as_of``): the past cannot
    change, so the view refuses it; write through the live registry."""


class RegistryClosedError(JoshregError, RuntimeError):
    """A method was called on a registry after ``close()``."""


class ConsistencyError(JoshregError, RuntimeError):
    """``check_consistency(strict=True)`` found errors; the message lists them."""


class StoreError(JoshregError, OSError):
    """The event store could not be read or written (permissions, full disk, missing files)."""


class UploadBacklogError(StoreError):
    """Appended events wait in this process's buffer because the object store does not take
    them; nothing is lost while the process lives, and the writer keeps its segment."""


class LogFormatError(JoshregError, ValueError):
    """The store directory is not a joshreg event store, or one of a newer format."""


class ForeignDatabaseError(JoshregError, ValueError):
    """The registry path holds something joshreg did not write: a joshpy registry, another
    DuckDB file, a file DuckDB cannot read, a directory, or a projection of a newer joshreg.

    joshreg never changes such a file; the message says what it is and what to do (for a
    joshpy registry: ``joshreg import``).
    """


class RegistryBusyError(JoshregError, RuntimeError):
    """A DuckDB file that is not a joshreg registry is held by another process (a running
    joshpy sweep, say), so joshreg cannot even look at it. A joshreg registry held by another
    process never raises this: the second process keeps a private projection."""


class StoreMismatchError(JoshregError, ValueError):
    """A registry file was built from one event store and is being opened with another (or
    with none): a forgotten ``--events-path`` or a mistyped location. Nothing was changed;
    ``joshreg rebuild --events-path`` points a registry at another store on purpose."""


class LogDamageError(JoshregError, ValueError):
    """A line of the event log is damaged: edited, glued to another or out of sequence.

    The reader never raises this for a damaged line during replay (the rest of the log still
    replays); it is raised by callers that asked for a strict read.
    """


class BottleError(JoshregError, ValueError):
    """A bottle archive cannot be used: unreadable (corrupt gzip or tar), or not a bottle."""


class UnsafeBottleError(BottleError):
    """A bottle archive has a member that could write outside the extraction directory
    (absolute path, ``..``, link or device); nothing was extracted."""


class IdeUnavailableError(JoshregError, RuntimeError):
    """The command line of the IDE asked for (``code``, ``cursor``) is not on PATH."""


class WaitTimeoutError(JoshregError, TimeoutError):
    """A wait (``wait_for_run``, ``wait_for``) ran out of time; the message says what was awaited
    and how far it got."""


class SpatialUnavailableError(JoshregError, RuntimeError):
    """The DuckDB spatial extension could not be loaded."""


class RemoteUnavailableError(JoshregError, RuntimeError):
    """DuckDB cannot reach ``s3://`` data: its httpfs extension is missing or did not load."""


class JoshregWarning(UserWarning):
    """Base class of every warning joshreg gives: ``warnings.simplefilter("error",
    JoshregWarning)`` turns them all into errors."""


class LogDamageWarning(JoshregWarning):
    """Damaged lines were found in the event log; they were skipped and recorded in
    ``log_problems``, and the rest of the log was applied."""


class RemovedRunWarning(JoshregWarning):
    """Events arrived for an execution that ``reset_run`` or ``drop_run`` removed (a worker
    finishing late): they are recorded in the log and left out of the tables."""


class DebugParseWarning(JoshregWarning):
    """Lines of a Josh debug file did not parse; they were counted and skipped, the rest loaded."""


class DuplicateLoadWarning(JoshregWarning):
    """The same file content was already loaded for this run and entity type: no rows added."""


class ImportConflictWarning(JoshregWarning):
    """``pull_from_s3`` met a session id or run hash this registry holds with other content:
    the registry's was kept, and the source's rows of it were left out."""


class SparsityWarning(JoshregWarning):
    """After a load, many variable columns are mostly NULL: probably mixed simulations."""
