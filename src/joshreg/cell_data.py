"""``joshreg.cell_data``: loading Josh CSV exports and querying them, at the path joshpy users
import from (upstream's ``joshpy.cell_data`` holds both ``CellDataLoader`` and
``DiagnosticQueries``).

The code lives in ``joshreg.results.cell_data`` and ``joshreg.results.diagnostics``.
"""

from joshreg.results.cell_data import (
    CellDataLoader,
    DuplicateLoadWarning,
    SparsityWarning,
)
from joshreg.results.diagnostics import DiagnosticQueries

__all__ = [
    "CellDataLoader",
    "DiagnosticQueries",
    "DuplicateLoadWarning",
    "SparsityWarning",
]
