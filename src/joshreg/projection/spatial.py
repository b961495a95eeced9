"""The DuckDB spatial extension, loaded from its wheel: nothing is downloaded at run time.

``duckdb-extension-spatial`` ships the compiled extension for exactly one DuckDB version;
``load_spatial`` finds the file that matches the running DuckDB and ``LOAD``s it by path, and
says clearly what to install when it cannot.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb

from joshreg.errors import SpatialUnavailableError

__all__ = ["extension_path", "load_spatial"]


def extension_path() -> Path:
    """The spatial extension file for the running DuckDB version."""
    spec = importlib.util.find_spec("duckdb_extension_spatial")
    if spec is None or spec.origin is None:
        raise SpatialUnavailableError(
            "the DuckDB spatial extension is not installed: pip install "
            f"'duckdb-extension-spatial=={duckdb.__version__}' (or pass enable_spatial=False)"
        )
    root = Path(spec.origin).parent / "extensions"
    wanted = root / f"v{duckdb.__version__}" / "spatial.duckdb_extension"
    if wanted.exists():
        return wanted
    found = sorted(p.parent.name for p in root.glob("v*/spatial.duckdb_extension"))
    raise SpatialUnavailableError(
        f"the installed duckdb-extension-spatial has builds for {', '.join(found) or 'nothing'}, "
        f"not for duckdb {duckdb.__version__}: pip install "
        f"'duckdb-extension-spatial=={duckdb.__version__}' (or pass enable_spatial=False)"
    )


def load_spatial(con: duckdb.DuckDBPyConnection) -> None:
    """Load the spatial extension into ``con`` (``ST_Point``, ``ST_Within``, ...)."""
    path = extension_path()
    try:
        con.execute("LOAD '" + str(path).replace("'", "''") + "'")
    except duckdb.Error as e:
        raise SpatialUnavailableError(f"the DuckDB spatial extension at {path} did not load: {e}") from e
