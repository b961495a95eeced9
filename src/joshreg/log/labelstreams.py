"""Label streams: the label logs of several stores, folded into one order after a merge.

A store's own label log (``labels/``) is one *stream*: commits 1, 2, 3, ... ordered at write
time by put-if-absent. Merging registries (``joshreg.merge``) copies every other store's streams
verbatim, so their chains still verify, to ``labels-imported/<dir>/<version>.json``. Nothing
orders commits of different streams at write time: two stores both have a commit 1. The fold
below gives the union of all streams one order that depends only on the commits, not on which
store was merged into which, or when:

- A stream's id is the event id (a UUIDv7) of its commit 1, so it needs no registration and a
  copied store shares the stream with its original up to where the two diverged. ``<dir>`` is
  that id, or ``<id>~<event id>`` for a second, diverging branch of the same stream.
- Streams are merged like sorted runs: repeatedly the next commit of the stream whose next
  commit has the smallest ``(hlc, stream id, version, event id)`` is taken, so each stream's
  own order is kept. A commit found in several streams (a shared prefix) counts once.
- A commit that meets the state its own stream had when it was written is applied as recorded:
  for a store that never merged, the fold is exactly its label log. A commit that meets a state
  another stream changed is re-planned from its intent ("label L now names run R", with
  ``force`` or an archive name if it had one) against the merged state, as ``label_run`` would
  plan it, except that the conflict is resolved instead of refused: the later assignment wins,
  and the run that held the label is released with reason ``merge`` (``force``/archived if
  the commit did that). Every assignment of every stream stays in ``label_history``.

Writers fold the imported streams' clocks into theirs before committing, so a label change made
after a merge is ordered after everything merged (``LabelStreams.view``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import msgspec

from joshreg.log.codec import Problem
from joshreg.log.events import (
    LabelAction,
    LabelArchived,
    LabelAssigned,
    LabelCommit,
    LabelReleased,
    LabelSuperseded,
    RunDropped,
    RunReset,
    RunRestored,
)
from joshreg.log.labelplan import plan_assignment
from joshreg.log.labels import PREFIX, LabelLog, LabelState, commit_name
from joshreg.log.store.base import LogStore

__all__ = [
    "IMPORTED",
    "Applied",
    "LabelFold",
    "LabelStreams",
    "imported_dirs",
    "imports_pending",
    "stream_dir_ok",
]

IMPORTED = "labels-imported"
MERGE_REASON = "merge"
_DIR = re.compile(r"^[0-9A-Za-z-]{1,64}(~[0-9A-Za-z-]{1,64})?$")

Key = tuple[int, str, int, str]


def stream_dir_ok(name: str) -> bool:
    """Whether ``name`` can be an imported stream's folder (an id, optionally ``~`` another)."""
    return bool(_DIR.match(name))


def imported_dirs(store: LogStore) -> list[str]:
    """The prefixes (``labels-imported/<dir>``) of the streams a merge imported into ``store``."""
    found: set[str] = set()
    for name in store.list_claims(IMPORTED):
        part = name[len(IMPORTED) + 1 :].split("/", 1)[0]
        if stream_dir_ok(part):
            found.add(f"{IMPORTED}/{part}")
    return sorted(found)


def imports_pending(store: LogStore, heads: dict[str, int]) -> bool:
    """Whether an imported stream has a commit past ``heads`` (prefix → version), or is new."""
    for d in imported_dirs(store):
        if store.read_claim(commit_name(heads.get(d, 0) + 1, d)) is not None:
            return True
    return False


@dataclass(frozen=True)
class Applied:
    """One commit as the fold applied it: its place in the merged order, its stream, and the
    actions that took effect (the recorded ones unless ``replanned``)."""

    position: int
    stream: str
    commit: LabelCommit
    actions: tuple[LabelAction, ...]
    replanned: bool

    def effective(self) -> LabelCommit:
        """The commit as the projection records it: numbered by position, effective actions."""
        c = self.commit
        return LabelCommit(
            version=self.position,
            event_id=c.event_id,
            writer=c.writer,
            hlc=c.hlc,
            actor=c.actor,
            actions=list(self.actions),
        )


@dataclass
class LabelFold:
    """The merged label state of several streams, and every commit as applied (pure)."""

    state: LabelState = field(default_factory=LabelState)
    applied: list[Applied] = field(default_factory=list)
    own: dict[str, LabelState] = field(default_factory=dict)  # physical stream -> its own state
    seen: set[str] = field(default_factory=set)
    max_key: Key | None = None

    def can_append(self, streams: dict[str, tuple[str, list[LabelCommit]]], done: dict[str, int]) -> bool:
        """Whether folding the commits after ``done`` gives what a fold from scratch gives:
        true when every new commit orders after every commit already applied."""
        if self.max_key is None:
            return not self.applied
        for key, (sid, commits) in streams.items():
            for c in commits[done.get(key, 0) :]:
                if c.event_id not in self.seen and (c.hlc, sid, c.version, c.event_id) <= self.max_key:
                    return False
        return True

    def run(self, streams: dict[str, tuple[str, list[LabelCommit]]], done: dict[str, int]) -> list[Applied]:
        """Fold the commits of every stream after ``done[stream]``; return those applied.

        ``streams`` maps a physical stream (its prefix) to its id and commits in version order.
        """
        idx = {k: done.get(k, 0) for k in streams}
        order = sorted(streams)
        start = len(self.applied)
        while True:
            best: tuple[Key, str] | None = None
            for k in order:
                sid, commits = streams[k]
                i = idx[k]
                if i < len(commits):
                    c = commits[i]
                    key = (c.hlc, sid, c.version, c.event_id)
                    if best is None or key < best[0]:
                        best = (key, k)
            if best is None:
                break
            key, first = best
            commit = streams[first][1][idx[first]]
            holders = [
                k for k in order if idx[k] < len(streams[k][1]) and streams[k][1][idx[k]].event_id == key[3]
            ]
            for k in holders:
                idx[k] += 1
            self._apply(commit, key[1], holders)
            if self.max_key is None or key > self.max_key:
                self.max_key = key
        return self.applied[start:]

    def _apply(self, commit: LabelCommit, stream: str, holders: list[str]) -> None:
        if commit.event_id in self.seen:  # met before in another copy of the stream
            for k in holders:
                self.own.setdefault(k, LabelState()).apply(commit)
            return
        self.seen.add(commit.event_id)
        own = self.own.setdefault(holders[0], LabelState())
        actions: list[LabelAction] = list(commit.actions)
        replanned = False
        if not _agrees(self.state, own, actions) and not _valid(self.state, actions):
            actions, replanned = _replan(self.state, actions), True
        for k in holders:
            self.own.setdefault(k, LabelState()).apply(commit)
        done = Applied(len(self.applied) + 1, stream, commit, tuple(actions), replanned)
        self.state.apply(done.effective())
        self.applied.append(done)


def _touched(actions: list[LabelAction]) -> tuple[set[str], set[str]]:
    labels: set[str] = set()
    runs: set[str] = set()
    for a in actions:
        label = getattr(a, "label", None)
        if label is not None:
            labels.add(label)
        runs.add(a.run_hash)
        if isinstance(a, LabelArchived):
            labels.add(a.archived_as)
        elif isinstance(a, LabelAssigned) and a.previous_run_hash is not None:
            runs.add(a.previous_run_hash)
    return labels, runs


def _agrees(merged: LabelState, own: LabelState, actions: list[LabelAction]) -> bool:
    """Whether the merged state is, for everything the commit touches, the state its writer saw."""
    labels, runs = _touched(actions)
    return all(merged.holder.get(x) == own.holder.get(x) for x in labels) and all(
        merged.label_of.get(r) == own.label_of.get(r) for r in runs
    )


_GONE = object()


def _valid(state: LabelState, actions: list[LabelAction]) -> bool:
    """Whether the recorded actions are exactly right for ``state`` (checked on an overlay)."""
    holder: dict[str, object] = {}
    label_of: dict[str, object] = {}

    def held(label: str) -> object:
        return holder[label] if label in holder else state.holder.get(label, _GONE)

    def of(run: str) -> object:
        return label_of[run] if run in label_of else state.label_of.get(run, _GONE)

    for a in actions:
        if isinstance(a, LabelAssigned):
            if state.holder.get(a.label) != a.previous_run_hash:
                return False
            if held(a.label) not in (_GONE, a.run_hash) or of(a.run_hash) not in (_GONE, a.label):
                return False
            holder[a.label], label_of[a.run_hash] = a.run_hash, a.label
        elif isinstance(a, (RunReset, RunRestored)):
            continue  # no label moves
        elif isinstance(a, (LabelReleased, LabelSuperseded, RunDropped)):
            if a.label is None:  # a supersede or drop of a run holding no label: no label moves
                continue
            if held(a.label) != a.run_hash:
                return False
            holder[a.label], label_of[a.run_hash] = _GONE, _GONE
        else:
            if held(a.label) != a.run_hash or held(a.archived_as) is not _GONE:
                return False
            holder[a.label], holder[a.archived_as], label_of[a.run_hash] = _GONE, a.run_hash, a.archived_as
    return True


def _replan(state: LabelState, recorded: list[LabelAction]) -> list[LabelAction]:
    """The actions of the commit's intent against ``state``: each assignment wins; the holder it
    displaces is archived (if the commit archived), superseded (if it superseded), released with
    ``force`` (if forced) or with ``merge``; recorded releases and archives that nothing explains
    apply where still true; every recorded supersession keeps its status change, giving up its
    label only where the run still holds it."""
    scratch = LabelState(holder=dict(state.holder), label_of=dict(state.label_of))
    out: list[LabelAction] = []
    assigned = [a for a in recorded if isinstance(a, LabelAssigned)]

    def emit(action: LabelAction) -> None:
        out.append(action)
        scratch.apply(LabelCommit(version=0, event_id="", writer="", hlc=0, actor="", actions=[action]))

    for a in assigned:
        label, run = a.label, a.run_hash
        if scratch.holder.get(label) == run:  # assigned again: the history keeps the record
            emit(LabelAssigned(label=label, run_hash=run, previous_run_hash=run))
            continue
        archive = next((x for x in recorded if isinstance(x, LabelArchived) and x.label == label), None)
        superseding = next((x for x in recorded if isinstance(x, LabelSuperseded) and x.label == label), None)
        forced = any(
            isinstance(x, LabelReleased) and x.label == label and x.reason == "force" for x in recorded
        )
        old = scratch.label_of.get(run)
        relabel = any(
            isinstance(x, LabelReleased) and x.label == old and x.run_hash == run and x.reason == "relabel"
            for x in recorded
        )
        actions = plan_assignment(
            scratch,
            label,
            run,
            displace="archive"
            if archive is not None
            else "supersede"
            if superseding is not None
            else "force"
            if forced
            else "merge",
            archive_base=lambda _holder, archive=archive: archive.archived_as,  # type: ignore[union-attr]
            relabel_reason="relabel" if relabel else MERGE_REASON,
            merge_reason=MERGE_REASON,
            reason=superseding.reason if superseding is not None else None,
        )
        for action in actions:
            emit(action)
    superseded = {x.run_hash for x in out if isinstance(x, LabelSuperseded)}
    labels = {a.label for a in assigned}
    runs = {a.run_hash for a in assigned}
    for x in recorded:
        if isinstance(x, (RunReset, RunRestored)):
            emit(x)  # what it names leaves (or returns) whatever the labels did
            continue
        if isinstance(x, RunDropped):
            held = x.label is not None and scratch.holder.get(x.label) == x.run_hash
            emit(msgspec.structs.replace(x, label=x.label if held else None))
            continue
        if isinstance(x, LabelSuperseded) and x.run_hash not in superseded:
            held = x.label is not None and scratch.holder.get(x.label) == x.run_hash
            emit(msgspec.structs.replace(x, label=x.label if held else None))
            continue
        if isinstance(x, LabelAssigned) or x.label in labels or x.run_hash in runs:
            continue
        if scratch.holder.get(x.label) != x.run_hash:
            continue  # no longer true in the merged state: nothing to undo
        if isinstance(x, LabelArchived) and x.archived_as in scratch.holder:
            continue
        emit(x)
    return out


class LabelStreams:
    """Reads a store's own label stream and every imported one, and keeps their fold current.

    ``own`` is the store's ``LabelLog`` when a writer already holds one (its commits are read
    once); otherwise one is opened here.
    """

    def __init__(self, store: LogStore, own: LabelLog | None = None) -> None:
        self.store = store
        self.own = own if own is not None else LabelLog(store)
        self.logs: dict[str, LabelLog] = {PREFIX: self.own}
        self.fold = LabelFold()
        self._done: dict[str, int] = {}
        self._reported: dict[str, int] = {}

    def heads(self) -> dict[str, int]:
        """Imported stream prefix → the last version read."""
        return {k: log.state.version for k, log in self.logs.items() if k != PREFIX}

    @property
    def merged(self) -> bool:
        """Whether the store holds imported streams (otherwise its own log is the whole story)."""
        return len(self.logs) > 1

    def refresh(self) -> tuple[list[Applied], bool]:
        """Read what every stream gained; fold it. Returns the commits applied and whether the
        fold started over (an earlier commit arrived: every position may have moved)."""
        for d in imported_dirs(self.store):
            if d not in self.logs:
                self.logs[d] = LabelLog(self.store, prefix=d)
        for log in self.logs.values():
            log.refresh()
        streams = {
            k: (log.commits[0].event_id if log.commits else "", log.commits) for k, log in self.logs.items()
        }
        if all(len(c) == self._done.get(k, 0) for k, (_, c) in streams.items()):
            return [], False
        if self.fold.can_append(streams, self._done):
            new = self.fold.run(streams, self._done)
            restarted = False
        else:
            self.fold = LabelFold()
            new = self.fold.run(streams, {})
            restarted = True
        self._done = {k: len(c) for k, (_, c) in streams.items()}
        return new, restarted

    def new_problems(self) -> list[Problem]:
        """Damage found in any stream since the last call."""
        out: list[Problem] = []
        for k, log in self.logs.items():
            seen = self._reported.get(k, 0)
            out += log.problems[seen:]
            self._reported[k] = len(log.problems)
        return out

    def view(self, own: LabelState) -> LabelState:
        """The state a label change must be planned against: ``own`` when nothing was ever
        imported, else the fold of every stream (``version`` stays the own stream's, for
        messages). The own log's clock is moved past every imported commit, so the change is
        ordered after what it was planned against."""
        if not self.merged and not imported_dirs(self.store):
            return own
        self.refresh()
        if self.fold.max_key is not None:
            self.own.clock.observe(self.fold.max_key[0])
        merged = self.fold.state
        return LabelState(
            version=own.version, holder=dict(merged.holder), label_of=dict(merged.label_of), last_c=own.last_c
        )
