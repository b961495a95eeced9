"""A projector that counts the changes it makes to its tables, for caches of what they said.

A registry keeps point reads' answers in dicts (``registry.readmodel``); they stay true exactly
as long as the tables do, and only the projector changes the tables: by a catch-up that applied
something (this process's writes or another's), a rebuild, or projecting copied rows. Each bumps
``generation``, whoever called it (the registry's reads, ``rebuild``, ``verify``, ``compact``).
"""

from __future__ import annotations

from typing import Any

from joshreg.projection.projector import CatchUp, Progress, Projector

__all__ = ["TrackedProjector"]


class TrackedProjector(Projector):
    """``Projector`` plus ``generation``: it moves whenever the tables may have changed."""

    generation: int = 0

    def _position(self) -> tuple[Any, ...]:
        # ``writer_seqs`` is replaced (not updated) by every batch a catch-up commits, so its
        # identity changes with any batch applied, even one of label commits or damage alone.
        return (self.writer_seqs, self.labels_head, self.labels_c, dict(self.label_imports))

    def catch_up(self, progress: Progress | None = None) -> CatchUp:
        before = self._position()
        try:
            result = super().catch_up(progress)
        except BaseException:
            self.generation += 1  # some batches may have committed before the failure
            raise
        after = self._position()
        if (
            result.events
            or result.label_commits
            or result.problems
            or after[0] is not before[0]
            or after[1:] != before[1:]
        ):
            self.generation += 1
        return result

    def rebuild(self, progress: Progress | None = None) -> CatchUp:
        try:
            return super().rebuild(progress)
        finally:
            self.generation += 1

    def project_tables(self) -> list[Any]:
        try:
            return super().project_tables()
        finally:
            self.generation += 1
