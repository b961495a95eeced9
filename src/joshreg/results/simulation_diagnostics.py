"""``SimulationDiagnostics``: upstream joshpy's plotting class, over joshreg's plots.

Same methods, arguments and errors as upstream's, so notebooks written for joshpy run; the
figures are joshreg's (legends name configurations by label or by the parameters that tell
them apart, the registry's filters apply, bad and superseded runs are left out). Nothing here
touches pyplot's global state: the Figure is returned (a notebook shows it) and ``show=True``
is accepted for compatibility.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from joshreg.errors import InvalidArgumentError
from joshreg.projection.sqltext import quote_identifier
from joshreg.registry.reader import RegistryReader
from joshreg.results import plots

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SimulationDiagnostics"]


class SimulationDiagnostics:
    """Plots of one registry's results: time series, comparisons across configurations, maps."""

    VALID_AGGREGATIONS = frozenset({"none", "mean", "sum", "min", "max"})

    def __init__(self, registry: RegistryReader) -> None:
        if not isinstance(registry, RegistryReader):
            raise TypeError(
                f"SimulationDiagnostics needs a RunRegistry (or a view of one), got {type(registry).__name__}"
            )
        self.registry = registry

    # --- upstream's validations, with its messages ------------------------------------------

    def _validate_variable(self, variable: str) -> None:
        available = self.registry.list_export_variables()
        if variable not in available:
            raise InvalidArgumentError(
                f"Export variable '{variable}' not found. Available: {', '.join(available) or '(none)'}"
            )

    def _validate_parameter(self, name: str) -> None:
        available = self.registry.list_config_parameters()
        if name not in available:
            raise InvalidArgumentError(
                f"Config parameter '{name}' not found. Available: {', '.join(available) or '(none)'}"
            )

    def _validate_aggregation(self, aggregate: str) -> None:
        if aggregate not in self.VALID_AGGREGATIONS:
            valid = ", ".join(sorted(self.VALID_AGGREGATIONS))
            raise InvalidArgumentError(f"Invalid aggregation '{aggregate}'. Valid options: {valid}")

    def _matching(self, run_hash: str | None, session_id: str | None, params: dict[str, Any]) -> list[str]:
        """Configurations with results that match: a hash, the session that registered them
        first (upstream's rule), parameter values."""
        where, values = ["TRUE"], []
        if run_hash is not None:
            where.append("cd.run_hash = ?")
            values.append(run_hash)
        if session_id is not None:
            where.append("jc.session_id = ?")
            values.append(session_id)
        for name, value in params.items():
            where.append(f"cp.{quote_identifier(name)} = ?")
            values.append(value)
        clause, more = self.registry.results_clause("cd")
        rows = self.registry.query(
            "SELECT DISTINCT cd.run_hash FROM cell_data cd JOIN job_configs jc ON jc.run_hash = cd.run_hash "
            "LEFT JOIN config_parameters cp ON cp.run_hash = cd.run_hash "
            f"WHERE {' AND '.join(where)}{clause} ORDER BY 1",
            [*values, *more],
        ).fetchall()
        return [r[0] for r in rows]

    @contextmanager
    def _narrowed(self, hashes: list[str], step_range: tuple[int, int] | None) -> Iterator[None]:
        with ExitStack() as stack:
            stack.enter_context(self.registry.run_filter(hashes))
            if step_range is not None:
                stack.enter_context(self.registry.time_filter(step_range))
            yield

    # --- the plots ----------------------------------------------------------------------------

    def plot_timeseries(
        self,
        variable: str,
        run_hash: str | None = None,
        session_id: str | None = None,
        aggregate: str = "mean",
        show_replicates: bool = True,
        step_range: tuple[int, int] | None = None,
        title: str | None = None,
        show: bool = True,
        **params: Any,
    ) -> Figure:
        """A variable over time for the matching configurations: per step, the mean across
        replicates of the cells' ``aggregate`` (a ±1 sd band with ``show_replicates``), or every
        cell's own line with ``aggregate="none"``. ``params`` filter by config parameter."""
        self._validate_variable(variable)
        self._validate_aggregation(aggregate)
        for name in params:
            self._validate_parameter(name)
        hashes = self._matching(run_hash, session_id, params)
        if not hashes:
            raise InvalidArgumentError(
                "No data found matching filters. Check run_hash, session_id and the parameter values, "
                "and that the runs are not marked bad or superseded"
            )
        if len(hashes) > 1:
            warnings.warn(
                f"Matched {len(hashes)} configs. Each is drawn as its own line; pass run_hash or "
                "parameter values to narrow them.",
                UserWarning,
                stacklevel=2,
            )
        with self._narrowed(hashes, step_range):
            if aggregate == "none":
                warnings.warn(
                    "aggregate='none' draws one line per cell and replicate; with many cells this is slow",
                    UserWarning,
                    stacklevel=2,
                )
                return plots.plot_cells(self.registry, variable, title=title)  # type: ignore[return-value]
            return plots.plot_timeseries(  # type: ignore[return-value]
                self.registry, variable, aggregate=aggregate, title=title, band=show_replicates
            )

    def plot_comparison(
        self,
        variable: str,
        group_by: str,
        aggregate: str = "mean",
        step: int | None = None,
        session_id: str | None = None,
        title: str | None = None,
        show: bool = True,
        show_sql: bool = False,
        **params: Any,
    ) -> Figure:
        """A variable compared across the values of a config parameter: lines across steps, or
        bars at ``step``. ``params`` filter by config parameter."""
        self._validate_variable(variable)
        self._validate_aggregation(aggregate)
        if aggregate == "none":
            raise InvalidArgumentError(
                "aggregate='none' is not supported for comparisons; choose mean, sum, min or max"
            )
        if group_by not in self.registry.list_config_parameters():
            raise InvalidArgumentError(
                f"'{group_by}' not found. Config parameters: "
                f"{', '.join(self.registry.list_config_parameters()) or '(none)'}; export variables: "
                f"{', '.join(self.registry.list_export_variables()) or '(none)'}"
            )
        for name in params:
            self._validate_parameter(name)
        hashes = self._matching(None, session_id, params)
        if not hashes:
            at = f" at step {step}" if step is not None else ""
            raise InvalidArgumentError(f"No data found{at} matching filters.")
        with self._narrowed(hashes, None):
            return plots.plot_comparison(  # type: ignore[return-value]
                self.registry, variable, group_by, step=step, aggregate=aggregate, title=title
            )

    def plot_spatial(
        self,
        variable: str,
        step: int,
        run_hash: str,
        replicate: int = 0,
        title: str | None = None,
        show: bool = True,
    ) -> Figure:
        """One replicate at one step as a map, coloured by the variable."""
        self._validate_variable(variable)
        try:
            return plots.plot_spatial(  # type: ignore[return-value]
                self.registry, variable, step, run_hash, replicate=replicate, title=title
            )
        except InvalidArgumentError:
            raise InvalidArgumentError(
                f"No spatial data found for run_hash={run_hash[:8]}..., step={step}, replicate={replicate}"
            ) from None
