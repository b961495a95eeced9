"""The event types: every change to a registry is one of these, forever.

Evolution rules (msgspec's): a new field gets a default, no field changes type, tags are
explicit strings and never class names, and a type whose meaning changes bumps ``v`` and gets
an ``upcast_vN_vM`` function in ``UPCASTERS``. ``schemas/`` holds the JSON Schema generated from
these classes; a test fails when the two drift apart. No I/O here.

Segment events carry their envelope (``event_id``, ``writer``, ``seq``, ``hlc``, ``actor``,
``v``) as fields with empty defaults; the writer fills them in. Label changes are not segment
events: they are actions inside a numbered ``LabelCommit`` of the label log.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from joshreg.errors import InvalidArgumentError

__all__ = [
    "CURRENT_VERSIONS",
    "REMOVALS",
    "RESERVED_SCOPES",
    "UPCASTERS",
    "DesignDeleted",
    "DesignRegistered",
    "Event",
    "EventBase",
    "LabelAction",
    "LabelArchived",
    "LabelAssigned",
    "LabelCommit",
    "LabelReleased",
    "LabelSuperseded",
    "OutputRegistered",
    "RegistryImported",
    "ResultsLoaded",
    "RunCompleted",
    "RunDropped",
    "RunRegistered",
    "RunReset",
    "RunRestored",
    "RunStarted",
    "RunStatusChanged",
    "SegmentSealed",
    "SessionCreated",
    "SessionStatusChanged",
    "TagsSet",
    "event_types",
    "json_value",
]


class EventBase(msgspec.Struct, tag_field="type", frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The envelope every segment event carries.

    ``seq`` counts from 1 within a writer; ``hlc`` is the writer's hybrid logical clock in
    nanoseconds since the epoch; ``actor`` is ``user@host``; ``v`` the schema version of the
    event type. Fields equal to their defaults are left out of a line (``omit_defaults``), which
    keeps lines short; decoding puts the defaults back.

    Events are not tracked by the garbage collector (``gc=False``): a rebuild decodes a million
    of them, and the collections their allocation triggered cost more than decoding them (a
    decode of 500,000 events took 40% less time untracked). An event cannot be part of a
    reference cycle: it is frozen and holds only values decoded from JSON.
    """

    event_id: str = ""
    writer: str = ""
    seq: int = 0
    hlc: int = 0
    actor: str = ""
    v: int = 1

    # Which columns of the event log this type fills, for filtering without parsing JSON.
    keys: ClassVar[tuple[str, ...]] = ()
    # False for control records of the log itself, which no table shows (``SegmentSealed``).
    projected: ClassVar[bool] = True


class SessionCreated(EventBase, tag="session.created"):
    """A sweep session was created.

    ``created_us`` and the other ``*_us`` fields of the events below hold a row's original time
    (microseconds since the epoch, UTC) when the event was imported from another registry
    (``joshreg import``); they are absent from events joshreg recorded itself, whose time is
    their clock.
    """

    session_id: str
    experiment_name: str | None = None
    simulation: str | None = None
    template_path: str | None = None
    metadata: dict[str, Any] | None = None
    replicates: int | None = None
    created_us: int | None = None
    keys: ClassVar[tuple[str, ...]] = ("session_id",)


class SessionStatusChanged(EventBase, tag="session.status_changed"):
    """A session's free-text status changed (pending, running, completed, failed, ...)."""

    session_id: str
    status: str
    keys: ClassVar[tuple[str, ...]] = ("session_id",)


class RunRegistered(EventBase, tag="run.registered"):
    """A run configuration was registered to a session.

    ``parameter_types`` maps each parameter to ``DOUBLE`` or ``VARCHAR``, decided by the
    writer with upstream's inference rules, so that every reader types columns the same way.
    """

    session_id: str
    run_hash: str
    josh_path: str | None = None
    josh_content: str | None = None
    config_content: str = ""
    file_mappings: dict[str, dict[str, str]] | None = None
    parameters: dict[str, Any] = {}
    parameter_types: dict[str, str] = {}
    # Imported: when the session took up the configuration, and (on the registration that
    # brought the configuration itself) when the configuration was first registered.
    created_us: int | None = None
    config_created_us: int | None = None
    # Declared run attributes (``JobConfig.attributes``), merged into the run's attributes as a
    # ``tags.set`` of scope ``run_hash`` would be: one call, one event.
    attributes: dict[str, Any] | None = None
    keys: ClassVar[tuple[str, ...]] = ("session_id", "run_hash")


class RunStarted(EventBase, tag="run.started"):
    """A run execution started. Its start time is the event's ``hlc``."""

    run_id: str
    run_hash: str
    session_id: str
    replicate: int = 0
    output_path: str | None = None
    metadata: dict[str, Any] | None = None
    started_us: int | None = None  # imported: the original start time
    keys: ClassVar[tuple[str, ...]] = ("session_id", "run_hash", "run_id")


class RunCompleted(EventBase, tag="run.completed"):
    """A run execution finished. The last completion in log order wins."""

    run_id: str
    exit_code: int
    error_message: str | None = None
    completed_us: int | None = None  # imported: the original completion time
    keys: ClassVar[tuple[str, ...]] = ("run_id",)


class OutputRegistered(EventBase, tag="output.registered"):
    """A run execution produced a file (its path, not its contents)."""

    output_id: str
    run_id: str
    output_type: str
    file_path: str
    file_size: int | None = None
    row_count: int | None = None
    created_us: int | None = None  # imported: the original registration time
    keys: ClassVar[tuple[str, ...]] = ("run_id",)


class ResultsLoaded(EventBase, tag="results.loaded"):
    """Simulation results (one CSV export) were stored as the Parquet claim ``blob``.

    ``columns`` maps each variable to ``DOUBLE`` or ``VARCHAR``. The same source content loaded
    again for the same run and entity type adds no rows: the first load in log order counts.
    """

    run_id: str | None
    run_hash: str
    blob: str
    blob_sha256: str
    source_path: str
    source_sha256: str
    row_count: int
    entity_type: str = "patch"
    columns: dict[str, str] = {}
    # Imported results: the largest ``cell_id`` of the source rows in ``blob``, so importing a
    # source that grew since adds only the rows after it.
    import_through: int | None = None
    keys: ClassVar[tuple[str, ...]] = ("run_hash", "run_id")


class RegistryImported(EventBase, tag="registry.imported"):
    """Rows of a registry joshpy wrote were imported (``joshreg import``): what, from where,
    and how its naive local times were read. The imported rows are the events around it."""

    source: str
    source_kind: str  # "duckdb" (a registry file) or "parquet" (a folder of exported tables)
    source_timezone: str
    counts: dict[str, int] = {}
    not_imported: list[str] = []


class RunStatusChanged(EventBase, tag="run.status_changed"):
    """A run configuration was marked ``active``, ``superseded`` (by ``superseded_by``) or
    ``bad``; ``status`` None clears the mark (``reset_run``), which reads as active.

    Among all status changes of a run, in segments and label commits alike, the latest by
    (clock, writer, sequence) is its status; every one stays in ``status_history``.
    """

    run_hash: str
    status: str | None = None
    superseded_by: str | None = None
    reason: str | None = None
    changed_us: int | None = None  # imported: when the source registry set the status
    keys: ClassVar[tuple[str, ...]] = ("run_hash",)


#: Tag scopes that name what the registry holds (a run's attributes, sessions, executions).
RESERVED_SCOPES = ("run_hash", "session_id", "run_id")


class TagsSet(EventBase, tag="tags.set"):
    """Tags were merged into the tags of ``key`` in ``scope`` (like ``dict.update``).

    Scopes ``run_hash`` (a run's attributes), ``session_id`` and ``run_id`` tag what the registry
    holds; any other scope (``site``, ...) is the caller's own. Per tag, the latest change by
    (clock, writer, sequence) holds.
    """

    scope: str
    key: str
    tags: dict[str, Any]


class DesignRegistered(EventBase, tag="design.registered"):
    """A target design was registered, or replaced wholesale: ``requirements`` are
    ``{"attributes": {...}, "min_active": n}`` with the attributes' keys sorted."""

    name: str
    requirements: list[dict[str, Any]]


class DesignDeleted(EventBase, tag="design.deleted"):
    """A target design was deleted; a later registration of the name starts it again."""

    name: str


class SegmentSealed(EventBase, tag="segment.sealed"):
    """The writer closed its segment: no line will ever follow this one.

    A control record of the log, not a change to the registry: readers advance the writer's
    sequence number past it and project nothing. A sealed segment may be compacted to Parquet.
    """

    projected: ClassVar[bool] = False


Event = (
    SessionCreated
    | SessionStatusChanged
    | RunRegistered
    | RunStarted
    | RunCompleted
    | OutputRegistered
    | ResultsLoaded
    | RegistryImported
    | RunStatusChanged
    | TagsSet
    | DesignRegistered
    | DesignDeleted
    | SegmentSealed
)


# --- the label log -----------------------------------------------------------------------------


class LabelAssigned(
    msgspec.Struct, tag_field="type", tag="label.assigned", frozen=True, kw_only=True, omit_defaults=True
):
    """``label`` now names ``run_hash``; ``previous_run_hash`` held it just before, if anyone.

    ``reason`` is ``imported`` for a label brought in from a joshpy registry, else absent.
    """

    label: str
    run_hash: str
    previous_run_hash: str | None = None
    reason: str | None = None
    v: int = 1


class LabelReleased(msgspec.Struct, tag_field="type", tag="label.released", frozen=True, kw_only=True):
    """``run_hash`` no longer holds ``label``.

    ``reason`` is ``force`` (taken by another run with ``force=True``) or ``relabel`` (the run
    was given another label; a run holds one label at a time).
    """

    label: str
    run_hash: str
    reason: str = "force"
    v: int = 1


class LabelArchived(msgspec.Struct, tag_field="type", tag="label.archived", frozen=True, kw_only=True):
    """``run_hash`` gave up ``label`` and now holds ``archived_as`` (``on_collision="timestamp"``)."""

    label: str
    run_hash: str
    archived_as: str
    v: int = 1


class LabelSuperseded(
    msgspec.Struct, tag_field="type", tag="label.superseded", frozen=True, kw_only=True, omit_defaults=True
):
    """``run_hash`` was superseded by ``superseded_by`` and gave up ``label``, in one commit with
    whatever else the call did (``supersede``, or ``label_run(on_collision="supersede")``).

    ``label`` is None when the run held no label: the status change still goes through the
    label log, so that it and a concurrent label move are ordered together.
    """

    label: str | None
    run_hash: str
    superseded_by: str
    reason: str | None = None
    v: int = 1


class RunReset(
    msgspec.Struct, tag_field="type", tag="run.reset", frozen=True, kw_only=True, omit_defaults=True
):
    """``run_hash`` was reset (``reset_run``): the executions ``run_ids`` and the result loads
    ``results`` (event ids) leave the tables, and its status is cleared; its configuration
    stays. What leaves is what this names, whatever arrives later: a late completion of a named
    execution is recorded and left out."""

    run_hash: str
    run_ids: list[str] = []
    results: list[str] = []
    reason: str | None = None
    v: int = 1


class RunDropped(
    msgspec.Struct, tag_field="type", tag="run.dropped", frozen=True, kw_only=True, omit_defaults=True
):
    """``run_hash`` was dropped (``drop_run``): its registrations (event ids), executions and
    result loads leave the tables and the ``label`` it held is freed, in this one commit.
    Nothing leaves the log: registering the hash again starts it afresh, ``restore_run`` undoes
    the drop."""

    run_hash: str
    label: str | None = None
    registrations: list[str] = []
    run_ids: list[str] = []
    results: list[str] = []
    reason: str | None = None
    v: int = 1


class RunRestored(
    msgspec.Struct, tag_field="type", tag="run.restored", frozen=True, kw_only=True, omit_defaults=True
):
    """The drop made by label commit ``restores`` (its event id) is undone: what it named is
    back in the tables (its label is not)."""

    run_hash: str
    restores: str
    reason: str | None = None
    v: int = 1


#: Label-log actions that remove rows from the tables or bring them back.
REMOVALS = (RunReset, RunDropped, RunRestored)

LabelAction = (
    LabelAssigned | LabelReleased | LabelArchived | LabelSuperseded | RunReset | RunDropped | RunRestored
)


class LabelCommit(msgspec.Struct, frozen=True, kw_only=True):
    """One numbered commit of the label log: the actions of one ``label_run`` call, atomically.

    ``version`` is claimed with put-if-absent, so every reader replays commits in one order.
    """

    version: int
    event_id: str
    writer: str
    hlc: int
    actor: str
    actions: list[LabelAction]
    v: int = 1


# --- versions and upcasting ---------------------------------------------------------------------


def event_types() -> dict[str, type[EventBase]]:
    """Tag → class of every segment event type."""
    return {t.__struct_config__.tag: t for t in Event.__args__}  # type: ignore[attr-defined]


CURRENT_VERSIONS: dict[str, int] = {tag: 1 for tag in event_types()}

# (tag, from_version) → function turning an old event dict into the next version's dict.
# Empty while every type is at version 1; add ``upcast_v1_v2`` functions here when one changes.
UPCASTERS: dict[tuple[str, int], Any] = {}


def check_version(tag: str, v: int) -> None:
    """Refuse events from a newer joshreg rather than misreading them."""
    current = CURRENT_VERSIONS.get(tag)
    if current is not None and v > current:
        raise InvalidArgumentError(
            f"event type {tag!r} has schema version {v}, newer than this joshreg's {current}; "
            "upgrade joshreg to read this log"
        )


_JSON_SCALARS = (str, int, float, bool, type(None))


def json_value(value: Any) -> Any:
    """``value`` as something every event can carry: JSON scalars, lists and string-keyed
    dicts stay; anything else (a Path, a numpy number, a date) becomes its string, so a
    caller's object never makes an append fail halfway through a sweep."""
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)
