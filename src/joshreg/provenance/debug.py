"""Josh debug output: parse the text Josh writes for ``debugFiles.<type>`` and query it.

Josh writes one line per debug message::

    [Step <int>, <entityType> @ <hexId> (<x>, <y>)] <free text>

Spin-up steps are negative, and so may be coordinates; both parse here (upstream's parser
dropped such lines as unparseable). Debug files of a long run reach hundreds of megabytes, so a
line costs one compiled-regex match, repeated values (steps, ids, coordinates) are shared
objects, messages are not tracked by the garbage collector, and the indexes behind
``trace``/``summary``/``find_events`` are built on first use and extended as messages arrive.


"""

from __future__ import annotations

import os
import re
import sys
import urllib.parse
import urllib.request
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any, TextIO

import msgspec

from joshreg.errors import DebugParseWarning, InvalidArgumentError

__all__ = [
    "DebugMessage",
    "DebugMessageStore",
    "DebugSummary",
    "EventMatch",
    "format_message",
    "format_summary",
    "format_trace",
    "load_debug_file",
    "output_path",
    "parse_debug_line",
]

# Coordinates are matched loosely here and validated by float(): a strict number pattern doubles
# the cost of every line, and float() rejects what the character class lets through ("1e", "-").
_LINE = re.compile(r"\[Step (-?\d+), (\w+) @ ([0-9a-fA-F]+) \(([-+.0-9eE]+), ([-+.0-9eE]+)\)\](?: (.*))?")
# Distinct coordinate strings remembered per file; beyond this (free-moving agents) each value
# is converted afresh rather than growing the cache without bound.
_COORD_CACHE_MAX = 1 << 16


class DebugMessage(msgspec.Struct, frozen=True, gc=False):
    """One parsed debug line.

    Immutable and hashable; ``line_number`` is the 1-based line in the file it came from.
    A msgspec struct rather than a dataclass: millions of these are built per file, and a
    struct is built in half the time and is invisible to the garbage collector.
    """

    step: int
    entity_type: str
    entity_id: str
    x: float
    y: float
    content: str
    line_number: int = 0

    @property
    def location(self) -> tuple[float, float]:
        return (self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


@dataclass(frozen=True)
class DebugSummary:
    """Counts over a store: what ``joshreg debug --summary`` shows."""

    total_messages: int
    parse_errors: int
    step_range: tuple[int, int]  # (0, 0) when there are no messages
    num_steps: int
    entity_types: tuple[str, ...]
    num_entities: int
    num_locations: int
    messages_per_step: dict[int, int]  # sorted by step
    entities_per_type: dict[str, int]  # distinct ids per type, sorted by type


@dataclass(frozen=True)
class EventMatch:
    """An entity whose trace contains an event searched for with ``find_events``.

    ``context`` is the part of ``full_trace`` shown around the event messages (all of it
    unless ``before``/``after`` were given); ``location`` is where the entity first appears.
    """

    entity_id: str
    location: tuple[float, float]
    event_messages: list[DebugMessage]
    context: list[DebugMessage]
    full_trace: list[DebugMessage]

    @property
    def event_steps(self) -> list[int]:
        return sorted({m.step for m in self.event_messages})

    def __repr__(self) -> str:
        return f"EventMatch({self.entity_id}, steps={self.event_steps})"

    def format(self, *, use_color: bool = False) -> str:
        """The context lines, events marked ``>``, skipped stretches counted."""
        position = {id(m): i for i, m in enumerate(self.full_trace)}
        events = {id(m) for m in self.event_messages}
        steps = ", ".join(str(s) for s in self.event_steps)
        x, y = self.location
        lines = [
            _paint(f"== entity {self.entity_id} at ({x}, {y}), event at step {steps} ==", _BOLD, use_color)
        ]
        last = -1
        for m in self.context:
            i = position[id(m)]
            if last >= 0 and i > last + 1:
                lines.append(_paint(f"     ({i - last - 1} messages not shown)", _DIM, use_color))
            last = i
            text = format_message(m, use_color=use_color)
            lines.append(f"> {text}   <- event" if id(m) in events else f"  {text}")
        return "\n".join(lines)

    def print(self, *, use_color: bool = False, file: TextIO | None = None) -> None:
        (file or sys.stdout).write(self.format(use_color=use_color) + "\n")


class _Interned(dict[str, Any]):
    """A per-file cache: equal strings of ids and types become one object, and steps and
    coordinates are converted once; a value that does not convert raises ValueError."""

    def __init__(self, convert: Any, limit: int | None = None) -> None:
        super().__init__()
        self._convert = convert
        self._limit = limit

    def __missing__(self, key: str) -> Any:
        value = self._convert(key)
        if self._limit is None or len(self) < self._limit:
            self[key] = value
        return value


def _same(text: str) -> str:
    return text


def parse_debug_line(line: str, line_number: int = 0) -> DebugMessage | None:
    """One debug line as a message, or None when it is not one (blank lines included)."""
    m = _LINE.fullmatch(line.strip())
    if m is None:
        return None
    step, kind, eid, x, y, content = m.groups()
    try:
        return DebugMessage(int(step), kind, eid, float(x), float(y), content or "", line_number)
    except ValueError:
        return None


def load_debug_file(path: str | os.PathLike[str]) -> DebugMessageStore:
    """Parse a Josh debug file into a new store.

    Blank lines are skipped; any other line that is not a debug message is counted in
    ``parse_errors`` and reported in one ``DebugParseWarning`` (a UserWarning) per file, so a
    stray line never stops a load. Bytes that are not UTF-8 are replaced, not fatal.
    """
    p = Path(path)
    if not p.is_file():
        if p.exists():
            raise IsADirectoryError(f"Debug file is a directory, not a file: {p}")
        raise FileNotFoundError(f"Debug file not found: {p}")
    messages: list[DebugMessage] = []
    errors = 0
    append = messages.append
    match = _LINE.fullmatch
    steps = _Interned(int)
    names = _Interned(_same)
    coords = _Interned(float, _COORD_CACHE_MAX)
    make = DebugMessage
    with open(p, encoding="utf-8", errors="replace") as f:
        for number, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            m = match(line)
            if m is None:
                errors += 1
                continue
            step, kind, eid, x, y, content = m.groups()
            try:
                append(
                    make(steps[step], names[kind], names[eid], coords[x], coords[y], content or "", number)
                )
            except ValueError:
                errors += 1
    if errors:
        warnings.warn(f"Skipped {errors} unparseable lines in {p}", DebugParseWarning, stacklevel=2)
    return DebugMessageStore(messages, parse_errors=errors)


def output_path(file_path: str) -> Path:
    """A registered output's path as a local Path; ``file://`` URIs (as Josh scripts write
    ``debugFiles``) become the file they name."""
    if file_path.startswith("file:"):
        parsed = urllib.parse.urlparse(file_path)
        if parsed.netloc in ("", "localhost"):
            return Path(urllib.request.url2pathname(parsed.path))
    return Path(file_path)


_STEP = attrgetter("step")
_XY = attrgetter("x", "y")


class _Index:
    """What the queries need beyond the message list, in two parts built on first use and
    extended with the messages appended since: per-entity traces, and step/location counts."""

    __slots__ = (
        "by_entity",
        "entities_done",
        "locations",
        "source",
        "stats_done",
        "step_counts",
        "type_of",
        "typed",
    )

    def __init__(self, source: list[DebugMessage]) -> None:
        self.source = source
        self.entities_done = 0
        self.stats_done = 0
        self.by_entity: dict[str, list[DebugMessage]] = {}
        self.type_of: dict[str, str] = {}  # an entity's type: that of its first message
        self.typed: set[tuple[str, str]] = set()  # (type, id) of messages of another type
        self.step_counts: Counter[int] = Counter()
        self.locations: set[tuple[float, float]] = set()

    def entities(self) -> _Index:
        msgs = self.source
        if self.entities_done < len(msgs):
            by_entity, type_of = self.by_entity, self.type_of
            for m in msgs[self.entities_done :]:
                eid = m.entity_id
                trace = by_entity.get(eid)
                if trace is None:
                    by_entity[eid] = [m]
                    type_of[eid] = m.entity_type
                else:
                    trace.append(m)
                    if m.entity_type != type_of[eid]:
                        self.typed.add((m.entity_type, eid))
            self.entities_done = len(msgs)
        return self

    def stats(self) -> _Index:
        msgs = self.source
        if self.stats_done < len(msgs):
            new = msgs[self.stats_done :] if self.stats_done else msgs
            self.step_counts.update(map(_STEP, new))
            self.locations.update(map(_XY, new))
            self.stats_done = len(msgs)
        return self

    def ids_per_type(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for eid, kind in self.type_of.items():
            out.setdefault(kind, set()).add(eid)
        for kind, eid in self.typed:
            out.setdefault(kind, set()).add(eid)
        return out


class DebugMessageStore:
    """Parsed debug messages in file order, with filters, traces and summaries.

    ``messages`` may be appended to directly or through ``add``; the indexes notice on the
    next query. ``parse_errors`` counts the lines that did not parse.
    """

    def __init__(self, messages: Iterable[DebugMessage] | None = None, parse_errors: int = 0) -> None:
        self.messages: list[DebugMessage] = list(messages) if messages is not None else []
        self.parse_errors = parse_errors
        self._idx: _Index | None = None

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self) -> Iterator[DebugMessage]:
        return iter(self.messages)

    def __repr__(self) -> str:
        return f"DebugMessageStore({len(self.messages)} messages, parse_errors={self.parse_errors})"

    def add(self, msg: DebugMessage) -> None:
        self.messages.append(msg)

    def merge(self, other: DebugMessageStore) -> None:
        """Append another store's messages (after this one's) and add up the parse errors."""
        self.messages.extend(other.messages)
        self.parse_errors += other.parse_errors

    def _index(self) -> _Index:
        idx = self._idx
        # A replaced or shortened message list cannot be extended: index it afresh.
        n = len(self.messages)
        if idx is None or idx.source is not self.messages or max(idx.entities_done, idx.stats_done) > n:
            idx = self._idx = _Index(self.messages)
        return idx

    # --- queries --------------------------------------------------------------------------------

    def filter(
        self,
        *,
        step: int | None = None,
        step_range: tuple[int, int] | None = None,
        entity_type: str | None = None,
        entity_id: str | None = None,
        x: float | None = None,
        y: float | None = None,
        content_contains: str | None = None,
    ) -> list[DebugMessage]:
        """Messages meeting every criterion given (None means any), in store order.

        ``step_range`` is inclusive; ``entity_id`` is exact (see ``resolve_entity_id`` for
        prefixes); ``content_contains`` is a case-sensitive substring.
        """
        source = (
            self._index().entities().by_entity.get(entity_id, []) if entity_id is not None else self.messages
        )
        found = source
        if step is not None:
            found = [m for m in found if m.step == step]
        if step_range is not None:
            lo, hi = step_range
            found = [m for m in found if lo <= m.step <= hi]
        if entity_type is not None:
            found = [m for m in found if m.entity_type == entity_type]
        if x is not None:
            fx = float(x)
            found = [m for m in found if m.x == fx]
        if y is not None:
            fy = float(y)
            found = [m for m in found if m.y == fy]
        if content_contains is not None:
            found = [m for m in found if content_contains in m.content]
        # Never hand out the store's own lists: a caller appending to them would corrupt it.
        return list(found) if found is source else found

    def steps(self) -> list[int]:
        return sorted(self._index().stats().step_counts)

    def entity_types(self) -> list[str]:
        idx = self._index().entities()
        return sorted(set(idx.type_of.values()) | {kind for kind, _ in idx.typed})

    def entity_ids(self) -> list[str]:
        return sorted(self._index().entities().by_entity)

    def locations(self) -> list[tuple[float, float]]:
        return sorted(self._index().stats().locations)

    def trace(self, entity_id: str) -> list[DebugMessage]:
        """Every message of one entity (exact id), by step, then line."""
        return sorted(self._index().entities().by_entity.get(entity_id, []), key=_chronological)

    def entity_ids_with_prefix(self, prefix: str) -> list[str]:
        """Sorted ids starting with ``prefix``, ignoring hex case."""
        p = prefix.lower()
        return sorted(e for e in self._index().entities().by_entity if e.lower().startswith(p))

    def resolve_entity_id(self, prefix: str) -> str | None:
        """The one id that is ``prefix`` or starts with it (hex case ignored), like a short git
        hash; None when no id or several ids match."""
        if prefix in self._index().entities().by_entity:
            return prefix
        found = self.entity_ids_with_prefix(prefix)
        return found[0] if len(found) == 1 else None

    def summary(self) -> DebugSummary:
        idx = self._index().entities().stats()
        per_type = idx.ids_per_type()
        steps = sorted(idx.step_counts)
        return DebugSummary(
            total_messages=len(self.messages),
            parse_errors=self.parse_errors,
            step_range=(steps[0], steps[-1]) if steps else (0, 0),
            num_steps=len(steps),
            entity_types=tuple(sorted(per_type)),
            num_entities=len(idx.by_entity),
            num_locations=len(idx.locations),
            messages_per_step={s: idx.step_counts[s] for s in steps},
            entities_per_type={t: len(per_type[t]) for t in sorted(per_type)},
        )

    def find_events(
        self,
        keyword: str,
        *,
        before: int | None = None,
        after: int | None = None,
        entity_type: str | None = None,
        step: int | None = None,
        step_range: tuple[int, int] | None = None,
        limit: int | None = 3,
        print: bool = True,
    ) -> list[EventMatch]:
        """Entities with a message containing ``keyword`` (at ``step`` / in ``step_range``).

        Returns the first ``limit`` matching entities (None: all), ordered by the step of their
        first event; each carries its trace with ``before``/``after`` trace messages around each
        event (None: to the start / end). ``print`` also writes the total count and the matches
        to stdout. ``entity_type`` is the type of the entity's first message.
        """
        for name, value in (("before", before), ("after", after), ("limit", limit)):
            if value is not None and value < 0:
                raise InvalidArgumentError(f"{name} must be at least 0 or None, got {value}")
        lo, hi = step_range if step_range is not None else (None, None)

        def is_event(m: DebugMessage) -> bool:
            return (
                keyword in m.content
                and (step is None or m.step == step)
                and (lo is None or lo <= m.step <= hi)  # type: ignore[operator]
            )

        idx = self._index().entities()
        hits = [
            eid
            for eid, msgs in idx.by_entity.items()
            if (entity_type is None or idx.type_of[eid] == entity_type) and any(map(is_event, msgs))
        ]
        chosen = hits if limit is None else hits[:limit]
        matches = [self._event_match(eid, is_event, before, after) for eid in chosen]
        matches.sort(key=lambda em: em.event_messages[0].step)
        if print:
            out = sys.stdout
            out.write(f'Found {len(hits)} entities matching "{keyword}"\n')
            for em in matches:
                out.write("\n" + em.format() + "\n")
            if len(hits) > len(chosen):
                out.write(f"\n... and {len(hits) - len(chosen)} more (raise limit= to see them)\n")
        return matches

    def _event_match(self, eid: str, is_event: Any, before: int | None, after: int | None) -> EventMatch:
        trace = self.trace(eid)
        at = [i for i, m in enumerate(trace) if is_event(m)]
        if before is None and after is None:
            context = list(trace)
        else:
            keep: set[int] = set()
            last = len(trace) - 1
            for i in at:
                start = 0 if before is None else max(0, i - before)
                end = last if after is None else min(last, i + after)
                keep.update(range(start, end + 1))
            context = [trace[i] for i in sorted(keep)]
        return EventMatch(
            entity_id=eid,
            location=(trace[0].x, trace[0].y),
            event_messages=[trace[i] for i in at],
            context=context,
            full_trace=trace,
        )

    def print_trace(
        self, entity_id: str, *, use_color: bool = False, limit: int | None = 20, file: TextIO | None = None
    ) -> None:
        """Print an entity's trace (id or unique prefix), at most ``limit`` messages."""
        out = file or sys.stdout
        resolved = self.resolve_entity_id(entity_id)
        if resolved is None:
            out.write(f"Entity ID '{entity_id}' not found.\n")
            return
        out.write(format_trace(self.trace(resolved), use_color=use_color, limit=limit) + "\n")


def _chronological(m: DebugMessage) -> tuple[int, int]:
    return (m.step, m.line_number)


# --- formatting -----------------------------------------------------------------------------------

_BOLD, _DIM, _YELLOW, _CYAN, _MAGENTA = "1", "2", "33", "36", "35"


def _paint(text: str, code: str, on: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if on else text


def format_message(msg: DebugMessage, use_color: bool = False) -> str:
    """A message in Josh's own line format (so output can be grepped like the file)."""
    step = _paint(f"Step {msg.step}", _YELLOW, use_color)
    kind = _paint(msg.entity_type, _CYAN, use_color)
    eid = _paint(msg.entity_id, _MAGENTA, use_color)
    where = _paint(f"({msg.x}, {msg.y})", _DIM, use_color)
    return f"[{step}, {kind} @ {eid} {where}] {msg.content}".rstrip()


def format_trace(messages: list[DebugMessage], *, use_color: bool = False, limit: int | None = None) -> str:
    """Messages under one ``--- Step N`` heading per step; ``limit`` caps the messages shown."""
    shown = messages if limit is None else messages[:limit]
    lines: list[str] = []
    current: int | None = None
    for m in shown:
        if m.step != current:
            current = m.step
            lines.append(_paint(f"--- Step {current} ---", _BOLD, use_color))
        lines.append(format_message(m, use_color=use_color))
    if len(messages) > len(shown):
        lines.append(f"... {len(messages) - len(shown)} more messages (raise limit= to see them)")
    return "\n".join(lines)


def format_summary(summary: DebugSummary) -> str:
    """A summary as the readable block ``joshreg debug --summary`` prints, per-step counts last."""
    s = summary
    skipped = f"  ({s.parse_errors:,} unparseable lines skipped)" if s.parse_errors else ""
    lo, hi = s.step_range
    types = ", ".join(f"{t} ({n:,} entities)" for t, n in s.entities_per_type.items())
    lines = [
        f"Messages:      {s.total_messages:,}{skipped}",
        f"Steps:         {lo} to {hi}  ({s.num_steps:,} distinct)" if s.num_steps else "Steps:         -",
        f"Entity types:  {types or '-'}",
        f"Entities:      {s.num_entities:,}",
        f"Locations:     {s.num_locations:,}",
    ]
    if s.messages_per_step:
        width = max(len("STEP"), *(len(str(k)) for k in s.messages_per_step))
        lines += ["", f"{'STEP'.rjust(width)}  MESSAGES"]
        lines += [f"{str(k).rjust(width)}  {n:>8,}" for k, n in s.messages_per_step.items()]
    return "\n".join(lines)
