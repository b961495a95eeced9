"""The registry as it was at one moment: a reader of a private projection, read-only.

``RunRegistry.as_of`` makes one. It shares the read API of every registry (``RegistryReader``);
the names of upstream's writes are defined here too, each refusing with
``ReadOnlyRegistryError``, so code written for a live registry gets a clear answer.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from joshreg.errors import LogDamageWarning, ReadOnlyRegistryError
from joshreg.projection.projector import CatchUp
from joshreg.projection.timetravel import Moment, describe, parse_when, project_as_of, to_position
from joshreg.registry.reader import RegistryReader

if TYPE_CHECKING:
    from joshreg.registry.registry import RunRegistry

__all__ = ["WRITE_NAMES", "RegistryView"]

#: The writes of ``RunRegistry`` (upstream's and joshreg's own): a view refuses each.
WRITE_NAMES = (
    "compact",
    "complete_run",
    "create_session",
    "delete_design",
    "drop_run",
    "import_joshpy",
    "label_run",
    "load_results",
    "mark_run",
    "merge_from",
    "publish_snapshot",
    "pull_from_s3",
    "push_to_s3",
    "rebuild",
    "recorder",
    "register_design",
    "register_output",
    "register_run",
    "reset_run",
    "restore_run",
    "set_attributes",
    "start_run",
    "supersede",
    "tag_by_run_id",
    "tag_by_session_id",
    "tag_custom",
    "update_session_status",
    "verify",
    "wait_for",
    "wait_for_event",
    "wait_for_run",
)


def _refusal(name: str) -> Callable[..., Any]:
    def refuse(self: RegistryView, *args: Any, **kwargs: Any) -> Any:
        raise self.refusal(name)

    refuse.__name__ = refuse.__qualname__ = name
    refuse.__doc__ = f"Refused on a view as of a past position: {name} needs the live registry."
    return refuse


class RegistryView(RegistryReader):
    """The registry as it was at one log position: read-only, in memory, a snapshot.

    Its tables are a private projection of the events and label commits with
    ``hlc <= position``, built from the live registry's event tables (not by replaying the log),
    so every read answers as the registry did then. ``when`` is what was asked for,
    ``position`` the log position it stands for (see ``joshreg.projection.timetravel``).
    """

    for _name in WRITE_NAMES:
        locals()[_name] = _refusal(_name)
    del _name

    def __init__(self, live: RunRegistry | RegistryView, when: Moment | str) -> None:
        position = to_position(when)
        self.when: Moment = parse_when(when) if isinstance(when, str) else when
        self.position = position
        self.db_path = live.db_path
        self.enable_spatial = live.enable_spatial
        self.tracer = live.tracer
        self.events_path = live.events_path
        self.private_projection = live.private_projection
        self._store = live.store
        self._filters = []
        source = live.conn
        assert source is not None  # a closed registry raised in as_of
        self._conn, self._projector, problems = project_as_of(
            source, live.store, position, spatial=live.enable_spatial
        )
        for p in problems:
            warnings.warn(f"damaged result file: {p}", LogDamageWarning, stacklevel=3)
        self._trace(f"view as of {describe(self.when, position)}")

    def __repr__(self) -> str:
        return f"RegistryView(db_path={self.db_path!r}, as_of={describe(self.when, self.position)!r})"

    def refusal(self, name: str) -> ReadOnlyRegistryError:
        """The error a write gets: what was refused, as of when, and where to write instead."""
        return ReadOnlyRegistryError(
            f"{name}() refused: this registry is a read-only view as of "
            f"{describe(self.when, self.position)}. Use the live registry to write "
            f"(RunRegistry({os.fspath(self.db_path)!r}))"
        )

    def sync(self) -> CatchUp:
        """Nothing to catch up with: the view stays as it was at its position."""
        self._con()
        return CatchUp()

    def flush(self) -> None:
        """Nothing to flush: a view writes nothing."""

    def close(self) -> None:
        """Free the view's tables (the live registry and its log are not touched)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def as_of(self, when: Moment | str) -> RegistryView:
        """An earlier view; a ``when`` after this view's position gives this view again (a view
        knows nothing later)."""
        return RegistryView(self, when if to_position(when) <= self.position else self.when)
