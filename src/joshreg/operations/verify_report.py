"""What ``verify`` found: each problem with where it is and what to do, and the whole report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

#: ``progress(phase, done, total)``, always called from the calling thread; phases are reported
#: in the order ``"segments"``, ``"result files"``, ``"tables"``. ``"segments"`` counts bytes
#: (first those the private rebuild reads, then the rest), the others count items.
VerifyProgress = Callable[[str, int, int], None]


Severity = Literal["error", "warning"]


RESTORE = (
    "Restore the file from a backup if you have one; otherwise leave it as it is (replay works around it)."
)


@dataclass(frozen=True)
class VerifyProblem:
    """One finding: its ``kind``, where (``file`` relative to the store and 1-based ``line``, or
    the projection's ``table``), and a ``message`` saying what happened and what to do."""

    kind: str
    message: str
    file: str | None = None
    line: int | None = None
    table: str | None = None
    severity: Severity = "error"

    @property
    def where(self) -> str:
        if self.table is not None:
            return f"table {self.table}"
        if self.file is None:
            return "store"
        return self.file if not self.line else f"{self.file}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """The problem as JSON-ready builtins; unset places and the default severity left out."""
        out: dict[str, Any] = {"kind": self.kind, "message": self.message}
        for name in ("file", "line", "table"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.severity != "error":
            out["severity"] = self.severity
        return out


@dataclass
class VerifyReport:
    """What ``verify`` found: ``problems`` (damage: ``ok`` is False) and ``warnings`` (not
    damage, worth knowing), each in file and line order, with what was checked."""

    location: str
    problems: list[VerifyProblem] = field(default_factory=list)
    warnings: list[VerifyProblem] = field(default_factory=list)
    segments: int = 0
    events: int = 0
    writers: int = 0
    label_commits: int = 0
    blobs: int = 0
    tables: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no damage was found (warnings do not count)."""
        return not self.problems

    def add(self, problem: VerifyProblem) -> None:
        (self.problems if problem.severity == "error" else self.warnings).append(problem)

    def summary(self) -> str:
        checked = (
            f"{self.segments} segments, {self.events} events from {self.writers} writers, "
            f"{self.label_commits} label commits, {self.blobs} result files"
        )
        if self.tables:
            checked += f", {len(self.tables)} tables against a fresh rebuild"
        return f"verified {self.location}: {checked} ({self.seconds:.2f} s)"

    def __str__(self) -> str:
        lines = [self.summary()]
        for title, items in (("problems", self.problems), ("warnings", self.warnings)):
            if items:
                lines.append(f"{title} ({len(items)}):")
                lines += [f"  {p}" for p in items]
        if self.ok:
            lines.append("ok: the store is sound" + (" (see the warnings)" if self.warnings else ""))
        else:
            n = len(self.problems)
            lines.append(f"damaged: {n} problem{'s' if n != 1 else ''} found")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready builtins."""
        return {
            "ok": self.ok,
            "location": self.location,
            "problems": [p.to_dict() for p in self.problems],
            "warnings": [p.to_dict() for p in self.warnings],
            "segments": self.segments,
            "events": self.events,
            "writers": self.writers,
            "label_commits": self.label_commits,
            "blobs": self.blobs,
            "tables": self.tables,
            "seconds": round(self.seconds, 3),
        }
