"""Plots of simulation results: time series, parameter comparison, spatial map.

Each plot reads ``cell_data`` with its own small query and honours the registry's active
``spatial_filter`` / ``time_filter`` (upstream's plots ignored them). Figures are built on the
Agg canvas without pyplot, so plotting never changes the caller's backend or leaks open figures;
a Figure is returned for notebooks, or a PNG written with ``path=``. matplotlib is an optional
extra (``pip install 'joshreg[plot]'``), imported only inside the calls.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joshreg.errors import InvalidArgumentError
from joshreg.projection.sqltext import quote_identifier
from joshreg.projection.tables import CELL_DATA_CORE_COLUMNS
from joshreg.registry.reader import RegistryReader

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["AGGREGATIONS", "plot_cells", "plot_comparison", "plot_spatial", "plot_timeseries"]

# Spatial aggregate of one step of one replicate (the cells' values → one number).
AGGREGATIONS = {"mean": "avg", "sum": "sum", "min": "min", "max": "max"}
_INSTALL_HINT = "plotting needs matplotlib: pip install 'joshreg[plot]'"


def plot_timeseries(
    registry: RegistryReader,
    variable: str,
    *,
    run_hash: str | None = None,
    session_id: str | None = None,
    aggregate: str = "mean",
    path: str | os.PathLike[str] | None = None,
    title: str | None = None,
    band: bool = True,
) -> Path | Figure:
    """One line per configuration: the mean across replicates of each step's spatial
    ``aggregate``, with a band of ± one standard deviation across replicates (``band=False``
    leaves it out).

    ``run_hash`` / ``session_id`` narrow the configurations (a session's are those it
    registered). Returns the written ``path`` or, without one, the Figure.
    """
    _check_registry(registry)
    col = _numeric_variable(registry, variable)
    agg = _aggregation(aggregate)
    where, params = _where(registry)
    if run_hash is not None:
        where += " AND cd.run_hash = ?"
        params.append(run_hash)
    if session_id is not None:
        if registry.get_session(session_id) is None:
            raise InvalidArgumentError(f"No session found with id '{session_id}'")
        where += " AND cd.run_hash IN (SELECT run_hash FROM session_configs WHERE session_id = ?)"
        params.append(session_id)
    rows = registry.query(
        f"""
        WITH per_replicate AS (
            SELECT cd.run_hash, cd.run_id, cd.replicate, cd.step, {agg}(cd.{col}) AS value
            FROM cell_data cd WHERE {where}
            GROUP BY cd.run_hash, cd.run_id, cd.replicate, cd.step
        )
        SELECT run_hash, step, avg(value), coalesce(stddev_samp(value), 0)
        FROM per_replicate WHERE value IS NOT NULL
        GROUP BY run_hash, step ORDER BY run_hash, step
        """,
        params,
    ).fetchall()
    if not rows:
        narrowed = ", ".join(
            f"{k}={v!r}" for k, v in (("run_hash", run_hash), ("session_id", session_id)) if v is not None
        )
        raise InvalidArgumentError(
            _no_data(registry, f"'{variable}'" + (f" ({narrowed})" if narrowed else ""))
        )
    series: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for h, step, mean, std in rows:
        series[h].append((step, mean, std))
    names = _series_names(registry, list(series))

    fig, ax = _figure()
    for i, (h, points) in enumerate(series.items()):
        steps, means, stds = zip(*points, strict=True)
        color, style, marker = _style(i, len(steps))
        (line,) = ax.plot(steps, means, color=color, linestyle=style, marker=marker, label=names[h])
        if band and any(s > 0 for s in stds):
            lo = [m - s for m, s in zip(means, stds, strict=True)]
            hi = [m + s for m, s in zip(means, stds, strict=True)]
            ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{variable} ({aggregate} over cells)")
    ax.set_title(title or f"{variable} over time ({aggregate}; band: ± 1 sd across replicates)")
    if len(series) > 1:
        ax.legend(fontsize="small", ncol=2 if len(series) > 8 else 1)
    return _finish(fig, path)


def plot_comparison(
    registry: RegistryReader,
    variable: str,
    group_by: str,
    *,
    step: int | None = None,
    aggregate: str = "mean",
    path: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Path | Figure:
    """Compare the values of a config parameter ``group_by``: one line per value across steps,
    or, with ``step=``, one bar per value at that step (``step=0`` is a step).

    A group's value at a step is the mean, over its configurations' replicates, of the spatial
    ``aggregate``; the band / error bar is ± one standard deviation over those replicates.
    Groups are ordered numerically, then alphabetically.
    """
    _check_registry(registry)
    col = _numeric_variable(registry, variable)
    agg = _aggregation(aggregate)
    param = _parameter(registry, group_by)
    where, params = _where(registry)
    if step is not None:
        where += " AND cd.step = ?"
        params.append(int(step))
    rows = registry.query(
        f"""
        WITH per_replicate AS (
            SELECT CAST(cp.{param} AS VARCHAR) AS grp, cd.run_hash, cd.run_id, cd.replicate, cd.step,
                   {agg}(cd.{col}) AS value
            FROM cell_data cd JOIN config_parameters cp ON cp.run_hash = cd.run_hash
            WHERE {where} AND cp.{param} IS NOT NULL
            GROUP BY grp, cd.run_hash, cd.run_id, cd.replicate, cd.step
        )
        SELECT grp, step, avg(value), coalesce(stddev_samp(value), 0)
        FROM per_replicate WHERE value IS NOT NULL
        GROUP BY grp, step ORDER BY step
        """,
        params,
    ).fetchall()
    if not rows:
        at = f" at step {step}" if step is not None else ""
        raise InvalidArgumentError(_no_data(registry, f"'{variable}' grouped by '{group_by}'{at}"))
    groups: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for grp, s, mean, std in rows:
        groups[grp].append((s, mean, std))
    order = sorted(groups, key=_numeric_then_text)

    fig, ax = _figure()
    if step is not None:
        means = [groups[g][0][1] for g in order]
        stds = [groups[g][0][2] for g in order]
        ax.bar([_tidy(g) for g in order], means, yerr=stds, capsize=4, color="tab:blue", alpha=0.8)
        ax.set_xlabel(group_by)
        ax.set_title(title or f"{variable} at step {step} by {group_by} ({aggregate})")
    else:
        for g in order:
            steps, means, stds = zip(*groups[g], strict=True)
            (line,) = ax.plot(steps, means, label=f"{group_by} = {_tidy(g)}")
            if any(s > 0 for s in stds):
                lo = [m - s for m, s in zip(means, stds, strict=True)]
                hi = [m + s for m, s in zip(means, stds, strict=True)]
                ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
        ax.set_xlabel("step")
        ax.legend(fontsize="small")
        ax.set_title(title or f"{variable} by {group_by} ({aggregate})")
    ax.set_ylabel(f"{variable} ({aggregate} over cells)")
    return _finish(fig, path)


def plot_cells(
    registry: RegistryReader,
    variable: str,
    *,
    path: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Path | Figure:
    """One faint line per cell and replicate across steps, unaggregated (every cell the active
    filters leave: narrow them with ``run_filter`` first, there can be many)."""
    _check_registry(registry)
    col = _numeric_variable(registry, variable)
    where, params = _where(registry)
    rows = registry.query(
        f"""
        SELECT cd.run_hash, cd.position_x, cd.position_y, cd.replicate, cd.step, avg(cd.{col})
        FROM cell_data cd WHERE {where} AND cd.{col} IS NOT NULL
        GROUP BY ALL ORDER BY ALL
        """,
        params,
    ).fetchall()
    if not rows:
        raise InvalidArgumentError(_no_data(registry, f"'{variable}' per cell"))
    lines: dict[tuple[Any, ...], list[tuple[int, float]]] = defaultdict(list)
    for h, x, y, rep, step, value in rows:
        lines[(h, x, y, rep)].append((step, value))
    fig, ax = _figure()
    for points in lines.values():
        steps, values = zip(*points, strict=True)
        ax.plot(steps, values, color="tab:blue", alpha=0.2, linewidth=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel(variable)
    ax.set_title(title or f"{variable} over time (per-patch)")
    return _finish(fig, path)


def plot_spatial(
    registry: RegistryReader,
    variable: str,
    step: int,
    run_hash: str,
    replicate: int = 0,
    path: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Path | Figure:
    """A map of one replicate at one step: each cell at its longitude/latitude, coloured by
    ``variable`` (viridis, with a colorbar and equal aspect).

    Exports without coordinates are drawn on ``position.x``/``position.y`` instead. Rows at the
    same place (several executions of the replicate, or agents) are averaged.
    """
    _check_registry(registry)
    col = _numeric_variable(registry, variable)
    where, params = _where(registry)
    rows = registry.query(
        f"""
        SELECT cd.longitude, cd.latitude, cd.position_x, cd.position_y, avg(cd.{col})
        FROM cell_data cd
        WHERE {where} AND cd.run_hash = ? AND cd.step = ? AND cd.replicate = ? AND cd.{col} IS NOT NULL
        GROUP BY ALL ORDER BY ALL
        """,
        [*params, run_hash, int(step), int(replicate)],
    ).fetchall()
    geographic = [r for r in rows if r[0] is not None and r[1] is not None]
    if geographic:
        xs, ys, values = [r[0] for r in geographic], [r[1] for r in geographic], [r[4] for r in geographic]
        xlabel, ylabel = "longitude", "latitude"
    else:
        grid = [r for r in rows if r[2] is not None and r[3] is not None]
        xs, ys, values = [r[2] for r in grid], [r[3] for r in grid], [r[4] for r in grid]
        xlabel, ylabel = "position.x", "position.y"
    if not values:
        what = f"'{variable}' with a position at run_hash={run_hash}, step={step}, replicate={replicate}"
        raise InvalidArgumentError(_no_data(registry, what))

    fig, ax = _figure()
    points = ax.scatter(xs, ys, c=values, cmap="viridis", s=_marker_size(len(values)), marker="s")
    fig.colorbar(points, ax=ax, label=variable)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"{variable} at step {step} ({run_hash[:8]}, replicate {replicate})")
    return _finish(fig, path)


# --- helpers -------------------------------------------------------------------------------------


def _check_registry(registry: object) -> None:
    if not isinstance(registry, RegistryReader):
        raise TypeError(f"plots need a RunRegistry (or a view of one), got {type(registry).__name__}")


def _figure() -> tuple[Any, Any]:
    """A Figure on the Agg canvas; no pyplot, so no global backend or figure registry."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(_INSTALL_HINT) from e
    fig = Figure(figsize=(8, 5), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _finish(fig: Figure, path: str | os.PathLike[str] | None) -> Path | Figure:
    if path is None:
        return fig
    out = Path(path)
    fig.savefig(out, format="png", dpi=100)
    return out


def _variables(registry: RegistryReader) -> dict[str, str]:
    """``cell_data``'s variable columns and their types, in column order."""
    rows = registry.query(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'cell_data' AND table_schema = 'main' ORDER BY ordinal_position"
    ).fetchall()
    return {name: kind for name, kind in rows if name not in CELL_DATA_CORE_COLUMNS}


def _numeric_variable(registry: RegistryReader, variable: str) -> str:
    """The quoted column of ``variable``, after checking that it exists and holds numbers."""
    found = _variables(registry)
    if variable not in found:
        raise InvalidArgumentError(f"Export variable '{variable}' not found. Available: {_listing(found)}")
    if found[variable] not in ("DOUBLE", "FLOAT", "INTEGER", "BIGINT"):
        numeric = [v for v, kind in found.items() if kind == "DOUBLE"]
        raise InvalidArgumentError(
            f"Export variable '{variable}' holds text ({found[variable]}), which cannot be plotted. "
            f"Numeric variables: {_listing(numeric)}"
        )
    return quote_identifier(variable)


def _parameter(registry: RegistryReader, name: str) -> str:
    available = registry.list_config_columns()
    if name not in available:
        raise InvalidArgumentError(f"Config parameter '{name}' not found. Available: {_listing(available)}")
    return quote_identifier(name)


def _aggregation(aggregate: str) -> str:
    if aggregate not in AGGREGATIONS:
        raise InvalidArgumentError(
            f"Invalid aggregation '{aggregate}'. Valid options: {', '.join(sorted(AGGREGATIONS))}"
        )
    return AGGREGATIONS[aggregate]


def _where(registry: RegistryReader) -> tuple[str, list[Any]]:
    """``TRUE AND <active runs> AND <active filters>`` over ``cell_data cd``, with its parameters."""
    clause, params = registry.results_clause("cd")
    return "TRUE" + clause, list(params)


def _no_data(registry: RegistryReader, what: str) -> str:
    """Say what was asked for and which filters were active, so an empty plot is explainable."""
    clause, params = registry.filter_clause("")
    if not clause:
        return f"No data found for {what}; no spatial_filter or time_filter is active"
    text = clause.removeprefix(" AND ")
    for p in params:
        shown = repr(p) if not isinstance(p, str) or len(p) <= 60 else repr(p[:57] + "...")
        text = text.replace("?", shown, 1)
    return f"No data found for {what} with the active filters: {text}"


# Ten colours, then four line styles, then markers: 10 × 4 × 6 lines before any two look alike.
_COLORS = tuple(f"C{i}" for i in range(10))
_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = (None, "o", "s", "^", "D", "v")


def _style(i: int, points: int) -> tuple[str, str, str | None]:
    """The colour, line style and marker of the ``i``-th line, distinct from every other's."""
    color = _COLORS[i % len(_COLORS)]
    style = _LINESTYLES[(i // len(_COLORS)) % len(_LINESTYLES)]
    marker = _MARKERS[(i // (len(_COLORS) * len(_LINESTYLES))) % len(_MARKERS)]
    if marker is None and points < 30:
        marker = "."  # a few points: show where they are
    return color, style, marker


def _series_names(registry: RegistryReader, hashes: list[str]) -> dict[str, str]:
    """A legend entry per configuration: its label, else the parameter values that set it apart
    from the others plotted (a hash prefix tells a reader nothing), else its hash."""
    labels = _labels_by_hash(registry)
    params = {
        h: registry.get_registered_parameters(h) if registry.get_config_by_hash(h) else {} for h in hashes
    }
    varying = sorted(
        {
            k
            for p in params.values()
            for k in p
            if len({json.dumps(q.get(k), sort_keys=True) for q in params.values()}) > 1
        }
    )
    names = {}
    for h in hashes:
        shown = ", ".join(f"{k}={params[h][k]}" for k in varying if k in params[h])
        names[h] = labels.get(h) or shown or h[:12]
    counts = Counter(names.values())
    return {h: f"{n} ({h[:8]})" if counts[n] > 1 else n for h, n in names.items()}


def _labels_by_hash(registry: RegistryReader) -> dict[str, str]:
    found: dict[str, list[str]] = defaultdict(list)
    for label, h in registry.list_labels():
        found[h].append(label)
    return {h: ", ".join(sorted(names)) for h, names in found.items()}


def _listing(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(names) if names else "(none)"


def _numeric_then_text(value: str) -> tuple[int, float, str]:
    try:
        number = float(value)
    except ValueError:
        return (1, 0.0, value)
    return (0, number, "") if not math.isnan(number) else (1, 0.0, value)


def _tidy(value: str) -> str:
    """``40.0`` → ``40``: parameters come back as DOUBLE even when they were whole numbers."""
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else value


def _marker_size(n: int) -> float:
    return max(8.0, min(400.0, 40000.0 / max(n, 1)))
