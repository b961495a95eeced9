"""CellDataLoader: upstream's way to load Josh CSV exports into ``cell_data``.

The work is ``RunRegistry.load_results`` (read once, checked against the registry, stored as a
content-addressed result file and one ``results.loaded`` event); this class keeps upstream's
names and its batch form. A ``RegistryView`` of the past refuses to load.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from joshreg.errors import DuplicateLoadWarning, InvalidArgumentError, SparsityWarning
from joshreg.registry.reader import RegistryReader
from joshreg.results.read_ahead import reading_ahead

__all__ = ["CellDataLoader", "DuplicateLoadWarning", "SparsityWarning"]


class CellDataLoader:
    """Loads simulation results into a registry's ``cell_data``."""

    def __init__(self, registry: RegistryReader) -> None:
        if not isinstance(registry, RegistryReader):
            raise TypeError(f"CellDataLoader needs a RunRegistry, got {type(registry).__name__}")
        self.registry = registry

    def load_csv(
        self,
        csv_path: str | os.PathLike[str],
        run_id: str | None,
        run_hash: str,
        entity_type: str = "patch",
    ) -> int:
        """Load one export for a run execution; return the number of rows added (see
        ``RunRegistry.load_results``)."""
        return self.registry.load_results(csv_path, run_id, run_hash, entity_type)  # type: ignore[attr-defined]

    def load_csv_batch(
        self,
        csv_paths: Iterable[tuple[str | os.PathLike[str], str | None, str]],
        entity_type: str = "patch",
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Load ``(path, run_id, run_hash)`` triples in order; return the rows added in all.

        Each file is checked and recorded in its turn: a failure stops the batch and leaves
        earlier files loaded. ``progress(done, total)`` is called after each file. The next
        files are parsed in a thread while one is recorded (``read_ahead``), and the tables
        catch up half a million rows at a time (``RunRegistry._load_results_batch``).
        """
        items = list(csv_paths)
        batch = getattr(self.registry, "_load_results_batch", None)
        with reading_ahead(item[0] for item in items if isinstance(item, tuple | list) and len(item) == 3):
            if batch is not None:
                return int(batch(items, entity_type, progress))
            total = 0  # a view: its load_results refuses
            for i, item in enumerate(items):
                if len(item) != 3:
                    raise InvalidArgumentError(
                        f"load_csv_batch item {i} is not (path, run_id, run_hash): {item!r}"
                    )
                path, run_id, run_hash = item
                total += self.load_csv(path, run_id, run_hash, entity_type)
                if progress is not None:
                    progress(i + 1, len(items))
        return total
