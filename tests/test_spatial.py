"""The spatial extension loads offline from its wheel, or fails saying what to install."""

from __future__ import annotations

import duckdb
import pytest

from joshreg import SpatialUnavailableError
from joshreg.projection import spatial


def test_spatial_loads_from_the_wheel_without_network() -> None:
    con = duckdb.connect()
    spatial.load_spatial(con)
    assert con.execute("SELECT ST_AsText(ST_Point(1.5, -2))").fetchone() == ("POINT (1.5 -2)",)


def test_extension_path_matches_the_running_duckdb() -> None:
    assert spatial.extension_path().parent.name == f"v{duckdb.__version__}"


def test_a_missing_build_is_reported_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(duckdb, "__version__", "0.0.1")
    with pytest.raises(SpatialUnavailableError, match=r"duckdb-extension-spatial==0\.0\.1"):
        spatial.extension_path()
