"""How a label moves: the one planner behind ``label_run`` and the fold of merged label streams.

Giving a run a label can displace two things: the run now holding the label, and the label the
run held before (a label names one run and a run holds one label). ``label_run`` plans against
its own log's state and refuses or displaces as its caller asked; a merged fold replays each
recorded assignment against the merged state and displaces whatever is in the way. Both ask
this module, so a label moved by a merge and one moved by a caller leave the same history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from joshreg.log.events import LabelAction, LabelArchived, LabelAssigned, LabelReleased, LabelSuperseded
from joshreg.log.labels import LabelState

__all__ = ["Displace", "free_name", "plan_assignment"]

#: What happens to a run that holds the label being given away: its label is renamed
#: (``archive``), it is superseded by the new holder (``supersede``: label and status change in
#: one commit), or its label is released as ``force`` or with the merge's reason (``merge``).
Displace = Literal["archive", "supersede", "force", "merge"]


def free_name(base: str, state: LabelState) -> str:
    """``base``, or ``base_2``, ``base_3``, ... : the first name no run holds in ``state``."""
    name, n = base, 1
    while name in state.holder:
        n += 1
        name = f"{base}_{n}"
    return name


def plan_assignment(
    state: LabelState,
    label: str,
    run_hash: str,
    *,
    displace: Displace,
    archive_base: Callable[[str], str] | None = None,
    relabel_reason: str = "relabel",
    merge_reason: str = "merge",
    reason: str | None = None,
) -> list[LabelAction]:
    """The actions that give ``run_hash`` the label ``label`` against ``state``; none when it
    holds it already.

    A run holding ``label`` is displaced as ``displace`` says; with ``archive`` its label becomes
    the first free name from ``archive_base(holder)``; with ``supersede`` it is marked superseded
    by ``run_hash`` for ``reason``. The label ``run_hash`` held before is
    released with ``relabel_reason``. A caller that must refuse a held label checks the holder
    before it plans.
    """
    holder = state.holder.get(label)
    if holder == run_hash:
        return []
    actions: list[LabelAction] = []
    if holder is not None:
        if displace == "archive":
            if archive_base is None:
                raise TypeError("displace='archive' needs archive_base")
            archived_as = free_name(archive_base(holder), state)
            actions.append(LabelArchived(label=label, run_hash=holder, archived_as=archived_as))
        elif displace == "supersede":
            actions.append(
                LabelSuperseded(label=label, run_hash=holder, superseded_by=run_hash, reason=reason)
            )
        else:
            why = "force" if displace == "force" else merge_reason
            actions.append(LabelReleased(label=label, run_hash=holder, reason=why))
    old = state.label_of.get(run_hash)
    if old is not None and old != label:
        actions.append(LabelReleased(label=old, run_hash=run_hash, reason=relabel_reason))
    actions.append(LabelAssigned(label=label, run_hash=run_hash, previous_run_hash=holder))
    return actions
