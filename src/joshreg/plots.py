"""``joshreg.plots``, where joshpy users import it from: plots of cell_data.

The code lives in ``joshreg.results.plots``.
"""

from joshreg.results.plots import (
    AGGREGATIONS,
    plot_comparison,
    plot_spatial,
    plot_timeseries,
)

__all__ = [
    "AGGREGATIONS",
    "plot_comparison",
    "plot_spatial",
    "plot_timeseries",
]
