"""DiagnosticQueries: ready-made pandas questions over ``cell_data``.

Upstream's methods keep their names, arguments and result columns; three of upstream's bugs are
fixed on purpose: every query honours the registry's active ``spatial_filter``/``time_filter``
(upstream applied them nowhere), ``step=0`` is a step rather than "no filter", and aggregation
names come from a whitelist instead of being pasted into the SQL. Variable and parameter names
are checked against the tables and quoted; every value is a bound parameter.
"""

from __future__ import annotations

import math
import warnings
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from joshreg.errors import InvalidArgumentError
from joshreg.projection import queries as q
from joshreg.projection.sqltext import quote_identifier, sql_literal
from joshreg.projection.tables import CELL_DATA_CORE_COLUMNS, table_columns
from joshreg.registry.reader import RegistryReader

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AGGREGATIONS", "MIN_TIMESTEPS_FOR_CV", "DiagnosticQueries"]

# Fewer steps than this after burn-in make a coefficient of variation unreliable (upstream's 10).
MIN_TIMESTEPS_FOR_CV = 10

# Accepted aggregation names (case-insensitive) → the DuckDB function they run.
AGGREGATIONS: dict[str, str] = {
    "avg": "avg",
    "count": "count",
    "max": "max",
    "mean": "avg",
    "median": "median",
    "min": "min",
    "std": "stddev_samp",
    "stddev": "stddev_samp",
    "sum": "sum",
}

_SERIES_COLUMNS = "avg(v) AS mean, stddev_samp(v) AS std, min(v) AS min, max(v) AS max, count(v) AS n"


class DiagnosticQueries:
    """Per-cell, per-step and per-parameter views of a registry's simulation results.

    Every method returns a pandas DataFrame (``get_replicate_cv`` a dict, as upstream) and
    restricts ``cell_data`` to the filters active on the registry when it is called::

        with registry.spatial_filter(bbox=(-116.5, -115.5, 33.5, 34.5)):
            DiagnosticQueries(registry).get_timeseries("avg.height", run_hash=h)
    """

    def __init__(self, registry: RegistryReader) -> None:
        if not isinstance(registry, RegistryReader):
            raise TypeError(
                f"DiagnosticQueries needs a RunRegistry (or a view of one), got {type(registry).__name__}"
            )
        self.registry = registry

    # --- upstream's methods ---------------------------------------------------------------------

    def get_cell_timeseries(
        self,
        longitude: float,
        latitude: float,
        variable: str,
        run_hash: str | None = None,
        tolerance: float = 0.01,
        show_sql: bool = False,
    ) -> pd.DataFrame:
        """The values of cells within ``tolerance`` degrees of a point, over steps.

        Columns ``step, replicate, value, run_hash``.
        """
        var = self._variable(variable)
        where, params = self._where(run_hash=run_hash)
        sql = (
            f"SELECT cd.step, cd.replicate, cd.{var} AS value, cd.run_hash FROM cell_data cd\n"
            "WHERE cd.longitude BETWEEN ? AND ? AND cd.latitude BETWEEN ? AND ?"
            f"{where}\nORDER BY cd.run_hash, cd.replicate, cd.step"
        )
        box = [longitude - tolerance, longitude + tolerance, latitude - tolerance, latitude + tolerance]
        return self._df(sql, box + params, show_sql)

    def get_spatial_snapshot(
        self, step: int, variable: str, run_hash: str, replicate: int = 0, show_sql: bool = False
    ) -> pd.DataFrame:
        """Every located cell of one run and replicate at one step: ``longitude, latitude, value``."""
        var = self._variable(variable)
        where, params = self._where(run_hash=run_hash, step=step, replicate=replicate)
        sql = (
            f"SELECT cd.longitude, cd.latitude, cd.{var} AS value FROM cell_data cd\n"
            f"WHERE cd.longitude IS NOT NULL{where}\nORDER BY cd.longitude, cd.latitude"
        )
        return self._df(sql, params, show_sql)

    def get_parameter_comparison(
        self,
        variable: str,
        param_name: str,
        step: int | None = None,
        aggregation: str = "AVG",
        show_sql: bool = False,
    ) -> pd.DataFrame:
        """The variable over all cells, grouped by a config parameter (or ``"label"``) and step.

        Columns ``param_value, step, mean_value, std_value, n_cells``; ``mean_value`` is the
        chosen aggregation. With ``step`` only that step is returned.
        """
        var = self._variable(variable, numeric=True)
        agg = _aggregation(aggregation)
        group, join, cond = self._group(param_name)
        where, params = self._where(step=step)
        sql = (
            f"SELECT {group} AS param_value, cd.step, {agg}(cd.{var}) AS mean_value,\n"
            f"       stddev_samp(cd.{var}) AS std_value, count(*) AS n_cells\n"
            f"FROM cell_data cd {join}\nWHERE {cond}{where}\n"
            f"GROUP BY {group}, cd.step\nORDER BY param_value, cd.step"
        )
        return self._df(sql, params, show_sql)

    def get_replicate_uncertainty(
        self,
        variable: str,
        run_hash: str,
        step: int | None = None,
        confidence: float = 0.95,
        show_sql: bool = False,
    ) -> pd.DataFrame:
        """Spread across replicates of the spatial mean, per step, with a normal confidence interval.

        Columns ``step, mean, std, ci_low, ci_high, n_replicates``; one replicate gives NaN
        std and interval.
        """
        if not 0 < confidence < 1:
            raise InvalidArgumentError(f"confidence must be between 0 and 1 (exclusive), got {confidence!r}")
        var = self._variable(variable, numeric=True)
        z = NormalDist().inv_cdf((1 + confidence) / 2)
        where, params = self._where(run_hash=run_hash, step=step)
        sql = (
            "WITH per_rep AS (\n"
            f"    SELECT cd.step, cd.replicate, avg(cd.{var}) AS v FROM cell_data cd\n"
            f"    WHERE TRUE{where}\n    GROUP BY cd.step, cd.replicate\n)\n"
            "SELECT step, avg(v) AS mean, stddev_samp(v) AS std,\n"
            "       avg(v) - ? * stddev_samp(v) / sqrt(count(v)) AS ci_low,\n"
            "       avg(v) + ? * stddev_samp(v) / sqrt(count(v)) AS ci_high,\n"
            "       count(v) AS n_replicates\n"
            "FROM per_rep GROUP BY step ORDER BY step"
        )
        return self._df(sql, [*params, z, z], show_sql)

    def get_replicate_cv(
        self,
        variable: str,
        run_hash: str,
        burn_in: int = 0,
        extinction_threshold: float = 0.01,
    ) -> dict[str, Any]:
        """Coefficient of variation over time of each replicate's spatial mean (after ``burn_in``).

        Returns upstream's dict: ``mean_cv, replicate_cvs, n_replicates, n_timesteps,
        extinct_replicates``. A replicate whose mean is below ``extinction_threshold`` is
        extinct: its cv is ``inf`` and so is ``mean_cv``.
        """
        var = self._variable(variable, numeric=True)
        where, params = self._where(run_hash=run_hash)
        sql = (
            "WITH per_step AS (\n"
            f"    SELECT cd.replicate, cd.step, avg(cd.{var}) AS v FROM cell_data cd\n"
            f"    WHERE cd.step >= ?{where}\n    GROUP BY cd.replicate, cd.step\n)\n"
            "SELECT replicate, avg(v), stddev_samp(v), count(*) FROM per_step\n"
            "GROUP BY replicate ORDER BY replicate"
        )
        rows = self.registry.query(sql, [int(burn_in), *params]).fetchall()
        if not rows:
            return {
                "mean_cv": math.inf,
                "replicate_cvs": [],
                "n_replicates": 0,
                "n_timesteps": 0,
                "extinct_replicates": [],
            }
        cvs: list[float] = []
        extinct: list[int] = []
        for replicate, mean, std, _ in rows:
            if mean is None or mean < extinction_threshold:
                cvs.append(math.inf)
                extinct.append(replicate)
            else:
                cvs.append(math.nan if std is None else std / mean)
        n_timesteps = rows[0][3]
        if n_timesteps < MIN_TIMESTEPS_FOR_CV:
            warnings.warn(
                f"only {n_timesteps} timesteps after burn-in {burn_in}; a CV needs at least "
                f"{MIN_TIMESTEPS_FOR_CV} timesteps to be reliable",
                UserWarning,
                stacklevel=2,
            )
        if extinct:
            warnings.warn(
                f"Extinction: replicates {extinct} of {run_hash} have a mean {variable!r} below "
                f"{extinction_threshold}; their CV is inf",
                UserWarning,
                stacklevel=2,
            )
        return {
            "mean_cv": math.inf if extinct else sum(cvs) / len(cvs),
            "replicate_cvs": cvs,
            "n_replicates": len(rows),
            "n_timesteps": n_timesteps,
            "extinct_replicates": extinct,
        }

    def get_bbox_timeseries(
        self,
        min_lon: float,
        max_lon: float,
        min_lat: float,
        max_lat: float,
        variable: str,
        run_hash: str | None = None,
        aggregation: str = "AVG",
        show_sql: bool = False,
    ) -> pd.DataFrame:
        """The variable aggregated over the cells inside a box, per step, replicate and run.

        Columns ``step, replicate, run_hash, value, n_cells``.
        """
        var = self._variable(variable, numeric=True)
        agg = _aggregation(aggregation)
        where, params = self._where(run_hash=run_hash)
        sql = (
            f"SELECT cd.step, cd.replicate, cd.run_hash, {agg}(cd.{var}) AS value, count(*) AS n_cells\n"
            "FROM cell_data cd\nWHERE cd.longitude BETWEEN ? AND ? AND cd.latitude BETWEEN ? AND ?"
            f"{where}\nGROUP BY cd.step, cd.replicate, cd.run_hash\n"
            "ORDER BY cd.run_hash, cd.replicate, cd.step"
        )
        return self._df(sql, [min_lon, max_lon, min_lat, max_lat, *params], show_sql)

    def get_all_variables_at_step(
        self, step: int, run_hash: str, replicate: int = 0, show_sql: bool = False
    ) -> pd.DataFrame:
        """Positions and every variable (sorted by name) of one run and replicate at one step."""
        names = sorted(self._variables())
        cols = "".join(f", cd.{quote_identifier(n)}" for n in names)
        where, params = self._where(run_hash=run_hash, step=step, replicate=replicate)
        sql = (
            f"SELECT cd.longitude, cd.latitude, cd.position_x, cd.position_y{cols}\n"
            f"FROM cell_data cd\nWHERE TRUE{where}\n"
            "ORDER BY cd.position_x, cd.position_y, cd.longitude, cd.latitude, cd.cell_id"
        )
        return self._df(sql, params, show_sql)

    # --- the API reference's summaries ----------------------------------------------------------

    def get_timeseries(
        self,
        variable: str,
        run_hash: str | None = None,
        session_id: str | None = None,
        aggregate: str = "mean",
        show_sql: bool = False,
        **params: Any,
    ) -> pd.DataFrame:
        """The variable per run configuration and step, with its spread across replicates.

        First ``aggregate`` over the cells of each replicate at each step, then across the
        replicates of that step: columns ``run_hash, step, mean, std, min, max, n`` (``n`` =
        replicates, each a distinct (run_id, replicate) pair). ``session_id`` and
        ``**params`` (config parameter = value) narrow the configurations.
        """
        var = self._variable(variable, numeric=True)
        agg = _aggregation(aggregate)
        where, values = self._where(run_hash=run_hash, session_id=session_id, params=params)
        sql = (
            "WITH per_rep AS (\n"
            f"    SELECT cd.run_hash, cd.step, {agg}(cd.{var}) AS v FROM cell_data cd\n"
            f"    WHERE TRUE{where}\n"
            "    GROUP BY cd.run_hash, cd.step, cd.run_id, cd.replicate\n)\n"
            f"SELECT run_hash, step, {_SERIES_COLUMNS}\n"
            "FROM per_rep GROUP BY run_hash, step ORDER BY run_hash, step"
        )
        return self._df(sql, values, show_sql)

    def get_comparison(
        self,
        variable: str,
        group_by: str,
        step: int | None = None,
        aggregate: str = "mean",
        session_id: str | None = None,
        show_sql: bool = False,
        **params: Any,
    ) -> pd.DataFrame:
        """The variable per group of configurations (a config parameter or ``"label"``) and step.

        Aggregated like ``get_timeseries``, but across every replicate of every configuration
        in the group: columns ``group, step, mean, std, min, max, n``. With ``step`` only that
        step is returned.
        """
        var = self._variable(variable, numeric=True)
        agg = _aggregation(aggregate)
        group, join, cond = self._group(group_by)
        where, values = self._where(step=step, session_id=session_id, params=params)
        sql = (
            "WITH per_rep AS (\n"
            f"    SELECT {group} AS g, cd.step, {agg}(cd.{var}) AS v\n"
            f"    FROM cell_data cd {join}\n    WHERE {cond}{where}\n"
            f"    GROUP BY {group}, cd.step, cd.run_hash, cd.run_id, cd.replicate\n)\n"
            f'SELECT g AS "group", step, {_SERIES_COLUMNS}\n'
            'FROM per_rep GROUP BY g, step ORDER BY "group", step'
        )
        return self._df(sql, values, show_sql)

    # --- helpers --------------------------------------------------------------------------------

    def _variables(self) -> dict[str, str]:
        con = self.registry.conn
        assert con is not None, "the registry is closed"
        cols = table_columns(con, "cell_data")
        return {n: t for n, t in cols.items() if n not in CELL_DATA_CORE_COLUMNS}

    def _variable(self, name: str, numeric: bool = False) -> str:
        """``name`` quoted, after checking it is a variable column (and numeric, if asked)."""
        types = self._variables()
        if name not in types:
            available = ", ".join(sorted(types)) or "(none)"
            raise InvalidArgumentError(
                f"Export variable '{name}' not found. Available: {available}. "
                "Load results with CellDataLoader first"
            )
        if numeric and types[name] != "DOUBLE":
            raise InvalidArgumentError(
                f"Export variable '{name}' holds text ({types[name]}); this query needs a numeric variable"
            )
        return quote_identifier(name)

    def _parameters(self) -> list[str]:
        con = self.registry.conn
        assert con is not None, "the registry is closed"
        return q.config_columns(con)

    def _parameter(self, name: str, known: list[str]) -> str:
        if name not in known:
            raise InvalidArgumentError(
                f"Config parameter '{name}' not found. Available: {', '.join(known) or '(none)'}"
            )
        return quote_identifier(name)

    def _group(self, name: str) -> tuple[str, str, str]:
        """(group expression, join, condition) for grouping cell_data by a parameter or label."""
        if name == "label":
            return "jc.label", "JOIN job_configs jc ON jc.run_hash = cd.run_hash", "jc.label IS NOT NULL"
        known = self._parameters()
        if name in known:
            col = quote_identifier(name)
            return f"cp.{col}", "JOIN config_parameters cp ON cp.run_hash = cd.run_hash", "TRUE"
        attributes = self.registry.list_attribute_keys()
        if name in attributes:
            # A run attribute (upstream HEAD's fallback), read as a MAP key: never a JSON path.
            value = f"(from_json(rt.tags, '\"MAP(VARCHAR, JSON)\"'))[{sql_literal(name)}] ->> '$'"
            join = "JOIN run_tags rt ON rt.scope = 'run_hash' AND rt.key = cd.run_hash"
            return value, join, f"{value} IS NOT NULL"
        raise InvalidArgumentError(
            f"'{name}' not found. Group by 'label', a config parameter ({', '.join(known) or 'none'}) "
            f"or a run attribute ({', '.join(attributes) or 'none'})"
        )

    def _where(
        self,
        *,
        run_hash: str | None = None,
        step: int | None = None,
        replicate: int | None = None,
        session_id: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> tuple[str, list[Any]]:
        """`` AND ...`` conditions on ``cd`` for the given arguments, then the registry's filters."""
        parts: list[str] = []
        values: list[Any] = []
        if run_hash is not None:
            parts.append("cd.run_hash = ?")
            values.append(run_hash)
        if step is not None:
            parts.append("cd.step = ?")
            values.append(int(step))
        if replicate is not None:
            parts.append("cd.replicate = ?")
            values.append(int(replicate))
        if session_id is not None:
            parts.append("cd.run_hash IN (SELECT run_hash FROM session_configs WHERE session_id = ?)")
            values.append(session_id)
        if params:
            known = self._parameters()
            for name, value in params.items():
                col = self._parameter(name, known)
                parts.append(f"cd.run_hash IN (SELECT run_hash FROM config_parameters WHERE {col} = ?)")
                values.append(value)
        filt, filt_values = self.registry.results_clause("cd")
        return "".join(f" AND {p}" for p in parts) + filt, values + filt_values

    def _df(self, sql: str, params: list[Any], show_sql: bool) -> pd.DataFrame:
        try:
            import pandas  # noqa: F401
        except ImportError as e:
            raise ImportError("DiagnosticQueries needs pandas: pip install 'joshreg[pandas]'") from e
        if show_sql:
            print(f"registry.query('''\n{sql}\n''', {params!r}).df()")
        return self.registry.query(sql, params).df()


def _aggregation(name: str) -> str:
    """The DuckDB function for an aggregation name; anything else is refused, never spliced."""
    fn = AGGREGATIONS.get(name.lower()) if isinstance(name, str) else None
    if fn is None:
        raise InvalidArgumentError(
            f"Invalid aggregation '{name}'. Valid options: {', '.join(sorted(AGGREGATIONS))}"
        )
    return fn
