"""``joshreg.diagnostics``, where joshpy users import it from: diagnostic queries over cell_data
and upstream's plotting class.

The code lives in ``joshreg.results.diagnostics`` and ``joshreg.results.simulation_diagnostics``.
"""

from joshreg.results.diagnostics import (
    AGGREGATIONS,
    MIN_TIMESTEPS_FOR_CV,
    DiagnosticQueries,
)
from joshreg.results.simulation_diagnostics import SimulationDiagnostics

__all__ = [
    "AGGREGATIONS",
    "MIN_TIMESTEPS_FOR_CV",
    "DiagnosticQueries",
    "SimulationDiagnostics",
]
