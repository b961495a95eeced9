"""``joshreg.diagnostics``, where joshpy users import it from: diagnostic queries over cell_data.

The code lives in ``joshreg.results.diagnostics``.
"""

from joshreg.results.diagnostics import (
    AGGREGATIONS,
    MIN_TIMESTEPS_FOR_CV,
    DiagnosticQueries,
)

__all__ = [
    "AGGREGATIONS",
    "MIN_TIMESTEPS_FOR_CV",
    "DiagnosticQueries",
]
