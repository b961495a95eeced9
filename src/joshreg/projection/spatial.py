"""The DuckDB spatial extension (``ST_Point``, ``ST_Within``, ...), loaded from its wheel."""

from __future__ import annotations

from pathlib import Path

import duckdb

from joshreg.errors import SpatialUnavailableError
from joshreg.projection.extensions import extension_file, load_extension

__all__ = ["extension_path", "load_spatial"]

_HINT = " (or pass enable_spatial=False)"


def extension_path() -> Path:
    """The spatial extension file for the running DuckDB version."""
    return extension_file("spatial", SpatialUnavailableError, _HINT)


def load_spatial(con: duckdb.DuckDBPyConnection) -> None:
    """Load the spatial extension into ``con``."""
    load_extension(con, "spatial", SpatialUnavailableError, _HINT)
