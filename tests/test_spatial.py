"""The spatial extension loads offline from its wheel, or fails saying what to install."""

from __future__ import annotations

import duckdb
import pytest

from joshreg import SpatialUnavailableError
from joshreg.projection import spatial
from joshreg.testing.registries import FakeJobConfig


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


def test_geom_is_the_point_st_point_makes(tmp_path) -> None:
    """Points are made from WKB without the extension: the same bytes as ``ST_Point``, and a
    missing or non-finite coordinate gives no point."""
    from joshreg import CellDataLoader, RunRegistry

    csv = tmp_path / "out.csv"
    csv.write_text(
        "step,replicate,position.longitude,position.latitude,v\n"
        "0,0,-116.123456789012,34.1,1\n0,1,1e-300,-0.0,2\n0,2,,34,3\n0,3,NaN,34,4\n0,4,Infinity,1,5\n"
        "0,5,5e-324,-1.7976931348623157e308,6\n"
    )

    with RunRegistry(":memory:") as reg:
        sid = reg.create_session(FakeJobConfig())
        reg.register_run(sid, "aaaaaaaaaaaa", None, "x", None, {})
        CellDataLoader(reg).load_csv(csv, reg.start_run("aaaaaaaaaaaa", session_id=sid), "aaaaaaaaaaaa")
        con = reg.conn
        assert con is not None
        spatial.load_spatial(con)
        rows = con.execute(
            "SELECT replicate, geom IS NULL, ST_AsWKB(geom) = ST_AsWKB(ST_Point(longitude, latitude)) "
            "AND ST_X(geom) = longitude AND ST_Y(geom) = latitude FROM cell_data ORDER BY replicate"
        ).fetchall()
    assert rows == [
        (0, False, True), (1, False, True), (2, True, None),
        (3, True, None), (4, True, None), (5, False, True),
    ]  # fmt: skip
