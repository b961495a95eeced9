"""CellDataLoader: Josh CSV exports → ``cell_data``, through the event log.

Imports ``registry``, ``recorder``, ``josh_csv``, ``tables``, ``errors``. A load reads the CSV
once, checks it against the registry (variable types, an identical earlier load), stores the
rows as a content-addressed Parquet claim and appends one ``results.loaded`` event; the
projector adds the rows to ``cell_data``. Nothing is written before every check passed, so a
failed load leaves the registry exactly as it was.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable

from joshreg.errors import InvalidArgumentError
from joshreg.projection.tables import CELL_DATA_CORE_COLUMNS, check_new_names
from joshreg.registry.recorder import results_event
from joshreg.registry.registry import RunRegistry
from joshreg.results.discovery import check_sparsity
from joshreg.results.josh_csv import read_josh_csv

__all__ = ["CellDataLoader", "DuplicateLoadWarning", "SparsityWarning"]


class DuplicateLoadWarning(UserWarning):
    """The same file content was already loaded for this run and entity type: no rows added."""


class SparsityWarning(UserWarning):
    """After a load, many variable columns are mostly NULL: probably mixed simulations."""


class CellDataLoader:
    """Loads simulation results into a registry's ``cell_data``."""

    def __init__(self, registry: RunRegistry) -> None:
        if not isinstance(registry, RunRegistry):
            raise TypeError(f"CellDataLoader needs a RunRegistry, got {type(registry).__name__}")
        self.registry = registry

    def load_csv(
        self,
        csv_path: str | os.PathLike[str],
        run_id: str | None,
        run_hash: str,
        entity_type: str = "patch",
    ) -> int:
        """Load one export for a run execution; return the number of rows added.

        Loading the same content again for the same run and entity type adds nothing, says so
        with a ``DuplicateLoadWarning`` and returns 0. A load into a non-empty ``cell_data``
        that leaves it sparse (``check_sparsity().should_warn``) emits a ``SparsityWarning``.
        """
        self.registry._require_writable()
        if not os.path.exists(csv_path):
            raise FileNotFoundError(f"CSV not found: {os.fspath(csv_path)}")
        # Rows for a run nobody registered would be orphans for good: refuse them up front.
        self.registry._require_hash(run_hash)
        if run_id is not None:
            self.registry._require_run(run_id)
            owner = self.registry.get_run(run_id)
            if owner is not None and owner.run_hash != run_hash:
                raise InvalidArgumentError(
                    f"run_id '{run_id}' is an execution of run hash '{owner.run_hash}', not '{run_hash}'; "
                    "load its results under that hash"
                )
        export = read_josh_csv(csv_path)
        reg = self.registry
        reg.sync()
        check_new_names(
            export.variables,
            reg._variable_types(),
            CELL_DATA_CORE_COLUMNS,
            what="Column",
            advice="This may indicate mixed simulation types. Use a separate registry.",
            examples={k: f"{os.fspath(csv_path)}, {v}" for k, v in export.examples.items()},
        )
        if reg._results_loaded(export.source_sha256, run_id, entity_type):
            warnings.warn(
                f"{os.fspath(csv_path)} was already loaded for run {run_id} ({entity_type}); no rows added",
                DuplicateLoadWarning,
                stacklevel=2,
            )
            return 0
        had_rows = reg._con().execute("SELECT count(*) FROM cell_data").fetchone() != (0,)
        event = results_event(reg.store, export, run_id=run_id, run_hash=run_hash, entity_type=entity_type)
        reg._record_results(event)
        if had_rows:
            # Upstream's check: the whole table, whatever filters are active.
            reg.sync()
            report = check_sparsity(reg._con())
            if report.should_warn:
                warnings.warn(str(report), SparsityWarning, stacklevel=2)
        return export.rows

    def load_csv_batch(
        self,
        csv_paths: Iterable[tuple[str | os.PathLike[str], str | None, str]],
        entity_type: str = "patch",
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Load ``(path, run_id, run_hash)`` triples in order; return the rows added in all.

        Each file is its own load: a failure stops the batch and leaves earlier files loaded.
        ``progress(done, total)`` is called after each file.
        """
        items = list(csv_paths)
        total = 0
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
