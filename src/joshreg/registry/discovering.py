"""What the simulation results hold, and the spatial and time filters over them.

A mixin of ``RegistryReader``; the queries are in ``joshreg.results.discovery``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Self

from joshreg.errors import (
    InvalidArgumentError,
)
from joshreg.models import (
    DataSummary,
    SparsityReport,
)
from joshreg.projection import queries as q
from joshreg.projection.spatial import load_spatial
from joshreg.projection.sqltext import sql_literal
from joshreg.projection.tables import CURRENT_RUN_HASHES
from joshreg.results import discovery

# Hashes of loaded results whose rows do not count: not an active configuration (bad,
# superseded, or not registered here). A superset of such hashes in ``cell_data``.
LEFT_OUT_HASHES = (
    "SELECT DISTINCT e.run_hash FROM events_results_loaded e WHERE e.run_hash IS NOT NULL "
    f"AND e.run_hash NOT IN ({CURRENT_RUN_HASHES}) ORDER BY 1"
)
MAX_LISTED_HASHES = 1000  # more, and the clause joins with the current configurations instead


class ResultReads:
    """Discovery over ``cell_data`` and the filters every results query honours."""

    @contextmanager
    def spatial_filter(
        self,
        bbox: tuple[float, float, float, float] | None = None,
        geojson: str | dict[str, Any] | None = None,
    ) -> Iterator[Self]:
        """Restrict every cell_data query (diagnostics, plots) to an area while inside.

        ``bbox`` is ``(min_lon, max_lon, min_lat, max_lat)`` (upstream's order); ``geojson`` a
        GeoJSON geometry (string or dict) that rows' ``geom`` must lie within. Nested filters
        all apply (their intersection).
        """
        if bbox is not None and geojson is not None:
            raise InvalidArgumentError("Specify either bbox or geojson, not both")
        if bbox is not None:
            if len(bbox) != 4:
                raise InvalidArgumentError(f"bbox must be (min_lon, max_lon, min_lat, max_lat), got {bbox!r}")
            lo_lon, hi_lon, lo_lat, hi_lat = (float(v) for v in bbox)
            clause = (
                "{a}longitude BETWEEN ? AND ? AND {a}latitude BETWEEN ? AND ?",
                [lo_lon, hi_lon, lo_lat, hi_lat],
            )
        elif geojson is not None:
            text = geojson if isinstance(geojson, str) else json.dumps(geojson)
            self._ensure_spatial()
            clause = ("ST_Within({a}geom, ST_GeomFromGeoJSON(?))", [text])
        else:
            raise InvalidArgumentError("spatial_filter needs bbox or geojson")
        with self._filter(clause):
            yield self

    @contextmanager
    def time_filter(self, step_range: tuple[int, int]) -> Iterator[Self]:
        """Restrict every cell_data query to steps ``lo..hi`` (inclusive) while inside."""
        lo, hi = step_range
        with self._filter(("{a}step BETWEEN ? AND ?", [int(lo), int(hi)])):
            yield self

    @contextmanager
    def run_filter(self, run_hashes: Iterable[str]) -> Iterator[Self]:
        """Restrict every cell_data query to these configurations while inside."""
        hashes = sorted(set(run_hashes))
        placeholders = ", ".join("?" for _ in hashes) or "NULL"
        with self._filter((f"{{a}}run_hash IN ({placeholders})", hashes)):
            yield self

    @contextmanager
    def _filter(self, clause: tuple[str, list[Any]]) -> Iterator[None]:
        self._filters.append(clause)
        try:
            yield
        finally:
            self._filters.remove(clause)

    def filter_clause(self, alias: str = "") -> tuple[str, list[Any]]:
        """The active filters as ``(" AND ...", params)`` over cell_data columns.

        ``alias`` qualifies the columns (``"cd"`` → ``cd.step``), so the clause is safe in a
        join where another table has a column of the same name. ``("", [])`` when no filter
        is active.
        """
        prefix = f"{alias}." if alias else ""
        sql = "".join(f" AND ({c.format(a=prefix)})" for c, _ in self._filters)
        params = [p for _, ps in self._filters for p in ps]
        return sql, params

    # Nesting depth of ``all_runs``: results queries leave bad and superseded runs out unless > 0.
    _all_runs = 0

    @contextmanager
    def all_runs(self) -> Iterator[Self]:
        """Include bad and superseded runs in every results query (diagnostics, plots,
        discovery) while inside; outside, they are left out, as ``cell_data_current`` does."""
        self._all_runs += 1
        try:
            yield self
        finally:
            self._all_runs -= 1

    def results_clause(self, alias: str = "") -> tuple[str, list[Any]]:
        """What every results query adds to its ``WHERE``: only active runs (unless inside
        ``all_runs``), then the active spatial and time filters (``filter_clause``).

        The tables catch up first, so the clause names the runs as they are now. Rows are left
        out by naming the configurations with loaded results that do not count (bad,
        superseded or unregistered: usually a few): no condition at all when there are none, so
        DuckDB answers from its statistics, and a short literal list otherwise, which DuckDB
        checks about twice as fast as a join with every current configuration.
        """
        sql, params = self.filter_clause(alias)
        if not self._all_runs:
            prefix = f"{alias}." if alias else ""
            self.sync()
            left_out = self._left_out_hashes()
            if left_out is None:
                sql = f" AND ({prefix}run_hash IN ({CURRENT_RUN_HASHES}))" + sql
            elif left_out:
                listed = ", ".join(sql_literal(h) for h in left_out)
                sql = f" AND ({prefix}run_hash NOT IN ({listed}))" + sql
        return sql, params

    def _left_out_hashes(self) -> list[str] | None:
        """The run hashes of loaded results that are not current (``LEFT_OUT_HASHES``), kept
        until the projector next changes the tables; None when there are too many to list.

        Every ``cell_data`` row comes from a results load, so a hash that no load names has
        no rows, and ``NOT IN`` these equals ``IN`` the current configurations for every row
        (a NULL ``run_hash`` is left out by both)."""
        generation = getattr(getattr(self, "_projector", None), "generation", None)
        con = self._con()
        cached = getattr(self, "_left_out_cache", None)
        if generation is not None and cached is not None and cached[0] == (id(con), generation):
            return cached[1]
        rows = con.execute(f"{LEFT_OUT_HASHES} LIMIT {MAX_LISTED_HASHES + 1}").fetchall()
        hashes = None if len(rows) > MAX_LISTED_HASHES else [r[0] for r in rows]
        if generation is not None:
            self._left_out_cache = ((id(con), generation), hashes)
        return hashes

    def _ensure_spatial(self) -> None:
        if not self.enable_spatial:
            raise InvalidArgumentError(
                "a geojson filter needs the spatial extension; open the registry with enable_spatial=True"
            )
        if not self._projector._spatial_loaded:
            load_spatial(self._con())
            self._projector._spatial_loaded = True

    def list_config_columns(self) -> list[str]:
        """Sorted parameter column names of ``config_parameters``."""
        self.sync()
        return q.config_columns(self._con())

    def list_config_parameters(self, session_id: str | None = None) -> list[str]:
        """Parameters with at least one value (in the session's configurations, if given)."""
        self.sync()
        return discovery.config_parameters(self._con(), session_id)

    def list_parameters(self, session_id: str | None = None) -> list[str]:
        """Deprecated: use ``list_config_parameters``."""
        warnings.warn(
            "list_parameters() is deprecated; use list_config_parameters()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.list_config_parameters(session_id)

    def get_replicate_count(self, run_hash: str) -> int:
        """Distinct replicate indices with data for ``run_hash`` (one index under two run ids
        counts once, as in upstream HEAD); the spatial and time filters apply; 0 with none."""
        self.sync()
        return discovery.replicate_count(self._con(), run_hash, self.filter_clause("cd"))

    def list_variable_columns(self) -> list[str]:
        """Sorted variable column names of ``cell_data``."""
        self.sync()
        return discovery.variable_columns(self._con())

    def list_export_variables(self, session_id: str | None = None) -> list[str]:
        """Variables; with a session, only those with a value in its data (pooled hashes included)."""
        self.sync()
        return discovery.export_variables(self._con(), session_id, self.results_clause("cd"))

    def list_variables(self, session_id: str | None = None) -> list[str]:
        """Deprecated: use ``list_export_variables``."""
        warnings.warn(
            "list_variables() is deprecated; use list_export_variables()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.list_export_variables(session_id)

    def list_entity_types(self, session_id: str | None = None) -> list[str]:
        """Sorted entity types with data (in the session's data, if given)."""
        self.sync()
        return discovery.entity_types(self._con(), session_id, self.results_clause("cd"))

    def check_sparsity(self) -> SparsityReport:
        """NULL counts per variable column: many sparse columns mean mixed simulations."""
        self.sync()
        return discovery.check_sparsity(self._con(), self.results_clause("cd"))

    def get_data_summary(self, session_id: str | None = None) -> DataSummary:
        """Counts, variables, parameters and ranges of the registry or of one session."""
        self.sync()
        return discovery.data_summary(self._con(), session_id, self.results_clause("cd"))

    def export_results_df(self, session_id: str) -> Any:
        """The session's executions with their parameters, as a pandas DataFrame."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("export_results_df needs pandas: pip install 'joshreg[pandas]'") from e
        self.sync()
        return pd.DataFrame(q.session_results(self._con(), session_id))
