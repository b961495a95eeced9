"""The label log: numbered commits claimed with put-if-absent, so label races get one order.

Commit ``N`` is the claim ``labels/<N as 20 digits>.json``. A caller reads the log up to its
head, decides its actions against that state (``plan``), and claims ``head + 1``. If another
process claimed it first, the caller reads the winner's commit and plans again: the plan either
still holds (it retries one number higher), changes (``force`` and ``on_collision`` recompute
their actions), or fails with ``LabelConflictError``. No clock is involved: the file system
picks the order, and every reader replays commits 1, 2, 3, ... the same way.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from joshreg.errors import JoshregError, LogFormatError
from joshreg.log.clock import HybridClock, actor, uuid7
from joshreg.log.codec import (
    GENESIS,
    LineCheck,
    Problem,
    check_line,
    decode_commit,
    encode_commit,
    frame,
    newer_commit_than_known,
)
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
from joshreg.log.store.base import LogStore

__all__ = ["LabelLog", "LabelState", "commit_name", "parse_commit"]

PREFIX = "labels"
MAX_ATTEMPTS = 500


def commit_name(version: int, prefix: str = PREFIX) -> str:
    """The claim name of commit ``version`` of the label stream under ``prefix``."""
    return f"{prefix}/{version:020d}.json"


@dataclass
class LabelState:
    """Which run holds which label after replaying the log up to ``version``."""

    version: int = 0
    holder: dict[str, str] = field(default_factory=dict)  # label -> run_hash
    label_of: dict[str, str] = field(default_factory=dict)  # run_hash -> label
    last_c: str = GENESIS

    def apply(self, commit: LabelCommit) -> None:
        for a in commit.actions:
            if isinstance(a, LabelAssigned):
                old = self.label_of.pop(a.run_hash, None)
                if old is not None and self.holder.get(old) == a.run_hash:
                    del self.holder[old]
                prev = self.holder.get(a.label)
                if prev is not None:
                    self.label_of.pop(prev, None)
                self.holder[a.label] = a.run_hash
                self.label_of[a.run_hash] = a.label
            elif isinstance(a, (LabelReleased, LabelSuperseded, RunDropped)):
                if a.label is None:  # a supersede or drop of a run that held no label
                    continue
                if self.holder.get(a.label) == a.run_hash:
                    del self.holder[a.label]
                if self.label_of.get(a.run_hash) == a.label:
                    del self.label_of[a.run_hash]
            elif isinstance(a, (RunReset, RunRestored)):
                continue  # no label moves
            elif isinstance(a, LabelArchived):
                if self.holder.get(a.label) == a.run_hash:
                    del self.holder[a.label]
                self.holder[a.archived_as] = a.run_hash
                self.label_of[a.run_hash] = a.archived_as
        self.version = commit.version


Plan = Callable[[LabelState], list[LabelAction]]


def parse_commit(data: bytes, version: int) -> tuple[LabelCommit, LineCheck]:
    """The label commit stored as ``version`` and its line's check; raises ``ValueError`` (or
    ``msgspec.DecodeError``) saying why the file cannot be trusted as that commit."""
    line = data.rstrip(b"\n")
    chk = check_line(line)
    if chk is None or not chk.intact:
        raise ValueError("the commit's checksum does not match (edited or truncated)")
    try:
        commit = decode_commit(line)
    except msgspec.ValidationError:
        newer = newer_commit_than_known(line)
        if newer is None:
            raise
        raise LogFormatError(
            f"label commit {version} holds {newer}, written by a newer joshreg; upgrade joshreg "
            "(pip install -U joshreg) to read this registry (nothing was changed)"
        ) from None
    if commit.version != version:
        raise ValueError(f"it says it is version {commit.version}")
    return commit, chk


class LabelLog:
    """Reads and extends the label log of one store."""

    def __init__(
        self,
        store: LogStore,
        *,
        clock: HybridClock | None = None,
        writer: str = "",
        after: int = 0,
        after_c: str = GENESIS,
        prefix: str = PREFIX,
    ) -> None:
        """``after``/``after_c`` start a reader past commits already applied elsewhere (its
        ``state`` then only knows later commits, so such a log must not ``commit``). ``prefix``
        reads another stream, such as one imported by a merge (``labelstreams``)."""
        self.store = store
        self.prefix = prefix
        self.clock = clock or HybridClock()
        self.writer = writer
        self.actor = actor()
        self.state = LabelState(version=after, last_c=after_c)
        self.commits: list[LabelCommit] = []
        self.problems: list[Problem] = []
        self._partial = after > 0
        self._holes_checked = False

    # --- reading ------------------------------------------------------------------------------

    def _load(self, version: int) -> LabelCommit | bool | None:
        """The commit at ``version``; None if absent; False if present but damaged."""
        name = commit_name(version, self.prefix)
        data = self.store.read_claim(name)
        if data is None:
            return None
        try:
            commit, chk = parse_commit(data, version)
        except LogFormatError:
            raise  # a newer joshreg's commit: refuse, never skip it
        except (msgspec.DecodeError, ValueError) as e:
            self.problems.append(Problem(name, 1, "label-commit", str(e)))
            return False
        if chk.prev != self.state.last_c:
            self.problems.append(
                Problem(name, 1, "chain-broken", "the previous label commit was changed or replaced")
            )
        self.state.last_c = chk.c
        return commit

    def refresh(self) -> list[LabelCommit]:
        """Read commits written since the last call; return them in version order."""
        new: list[LabelCommit] = []
        while True:
            got = self._load(self.state.version + 1)
            if not got:  # missing, or damaged: stop at the first gap in the order
                break
            assert isinstance(got, LabelCommit)
            self.state.apply(got)
            self.clock.observe(got.hlc)
            self.commits.append(got)
            new.append(got)
        return new

    def check_holes(self) -> None:
        """Record a missing commit below the highest one (a deleted file) as a problem."""
        listed = self.store.list_claims(self.prefix)
        versions = sorted(int(n.rsplit("/", 1)[1][:20]) for n in listed if n.endswith(".json"))
        missing = sorted(set(range(1, (versions[-1] if versions else 0) + 1)) - set(versions))
        if missing:
            self.problems.append(
                Problem(
                    commit_name(missing[0], self.prefix),
                    0,
                    "label-hole",
                    f"label commit {missing[0]} is missing; commits after it are not applied",
                )
            )

    @property
    def blocked(self) -> Problem | None:
        """The problem that stops the log from being extended, if any."""
        for p in self.problems:
            if p.kind in ("label-hole", "label-commit"):
                return p
        return None

    # --- writing ------------------------------------------------------------------------------

    def commit(self, plan: Plan) -> LabelCommit | None:
        """Claim the next version with the actions ``plan`` returns for the current state.

        ``plan`` may raise (``LabelConflictError``) to refuse; an empty plan commits nothing.
        Returns the commit, or None when there was nothing to do.
        """
        if self._partial:
            raise JoshregError("a label log opened after a version cannot commit")
        if not self._holes_checked:
            self._holes_checked = True
            self.check_holes()
        for attempt in range(MAX_ATTEMPTS):
            self.refresh()
            blocked = self.blocked
            if blocked is not None:
                raise JoshregError(
                    f"the label log cannot be extended: {blocked}. Restore the file from a "
                    "backup or run `joshreg verify` to see the damage"
                )
            actions = plan(self.state)
            if not actions:
                return None
            version = self.state.version + 1
            commit = LabelCommit(
                version=version,
                event_id=uuid7(),
                writer=self.writer,
                hlc=self.clock.now(),
                actor=self.actor,
                actions=actions,
            )
            line, _ = frame(encode_commit(commit), self.state.last_c)
            if self.store.claim(commit_name(version), line):
                self.refresh()
                return commit
            if attempt >= 2:
                time.sleep(random.uniform(0, min(0.05, 0.0005 * 2**attempt)))
        raise JoshregError(
            f"gave up committing a label change after {MAX_ATTEMPTS} lost races in "
            f"{self.store.location}; retry the call"
        )
