"""Upstream's registry sync on S3: push_to_s3 publishes the tables in upstream's layout,
pull_from_s3 imports such a layout as events (never overwriting), open_s3_registries reads
several publications side by side. Server tests run against a real SeaweedFS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from joshpy_shapes import small_sweep
from joshreg import RunRegistry, open_s3_registries
from joshreg.errors import ImportConflictWarning, InvalidArgumentError, NotFoundError, StoreError
from joshreg.projection.tables import REGISTRY_SYNC_TABLES, UPSTREAM_TABLES
from joshreg.testing.registries import FakeJobConfig, dump_tables

SECRET = "publish-secret-value"
# What an import changes on purpose (README): totals filled in, cell ids renumbered, geom computed;
# and the times of tags and designs, which their events do not carry: the import's time instead.
SKIP = {
    "sweep_sessions": frozenset({"total_jobs", "total_replicates"}),
    "cell_data": frozenset({"cell_id", "geom"}),
    "run_tags": frozenset({"updated_at"}),
    "target_designs": frozenset({"created_at"}),
}


def synced(con: duckdb.DuckDBPyConnection | RunRegistry) -> dict[str, list[dict[str, Any]]]:
    return dump_tables(con, REGISTRY_SYNC_TABLES, skip=SKIP)


def upstream_args(endpoint: str) -> dict[str, Any]:
    """Upstream's way of naming the server: host:port, keys, use_ssl."""
    return {
        "endpoint": endpoint.removeprefix("http://"),
        "access_key": "any",
        "secret_key": SECRET,
        "use_ssl": False,
    }


@pytest.fixture
def env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The server through upstream's MINIO_* variables (host:port, read as plain http)."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MINIO_ENDPOINT", s3_endpoint.removeprefix("http://"))
    monkeypatch.setenv("MINIO_ACCESS_KEY", "any")
    monkeypatch.setenv("MINIO_SECRET_KEY", SECRET)
    return s3_endpoint


def filled(path: Path | str) -> RunRegistry:
    """A registry with everything the sync carries: sessions, configurations with parameters,
    executions, outputs, labels, results, a status, tags and a design (imported from an
    upstream-shaped file, then grown through joshreg's own API)."""
    folder = Path(path).parent if str(path) != ":memory:" else None
    reg = RunRegistry(path)
    if folder is not None:
        reg.import_joshpy(small_sweep(folder / "upstream-source.duckdb", head=True), source_timezone="UTC")
    s = reg.create_session(FakeJobConfig(), experiment_name="joshreg-side")
    reg.register_run(s, "dddddddddddd", "model.josh", "maxGrowth = 7\n", None, {"maxGrowth": 7})
    reg.label_run("dddddddddddd", "seven")
    reg.set_attributes("dddddddddddd", site="north")
    reg.complete_run(reg.start_run("dddddddddddd", session_id=s), exit_code=0)
    return reg


# --- without a server ---------------------------------------------------------------------------


def test_a_memory_registry_needs_a_prefix_before_credentials_are_looked_at(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_credentials(*args: object, **kwargs: object) -> None:
        raise AssertionError("credentials were resolved")

    monkeypatch.setattr("joshreg.projection.httpfs.resolve_s3_options", no_credentials)
    monkeypatch.setattr("joshreg.results.locations.resolve_s3_options", no_credentials)
    with RunRegistry(":memory:") as reg:
        with pytest.raises(ValueError, match=r"':memory:' registry .* pass prefix="):
            reg.push_to_s3(bucket="sweeps")
        with pytest.raises(InvalidArgumentError, match="pass prefix="):
            reg.pull_from_s3(bucket="sweeps")


def test_bad_arguments_are_refused_in_one_line() -> None:
    with RunRegistry(":memory:") as reg:
        with pytest.raises(InvalidArgumentError, match="unknown table 'label_history'") as e:
            reg.push_to_s3(bucket="sweeps", prefix="p", tables=["job_configs", "label_history"])
        assert "\n" not in str(e.value)
        with pytest.raises(InvalidArgumentError, match="mode must be 'merge' or 'restore'"):
            reg.pull_from_s3(bucket="sweeps", prefix="p", mode="overwrite")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="bucket must be a bucket name"):
            reg.push_to_s3(bucket="s3://sweeps", prefix="p")
        with pytest.raises(InvalidArgumentError, match="prefix must be a path"):
            reg.push_to_s3(bucket="sweeps", prefix="a/../b")
    with (
        pytest.raises(InvalidArgumentError, match="at least one registry name"),
        open_s3_registries([], bucket="sweeps"),
    ):
        pass
    with (
        pytest.raises(InvalidArgumentError, match="prefix_template"),
        open_s3_registries(["a"], bucket="sweeps", prefix_template="x/{experiment}"),
    ):
        pass


# --- against a real server ----------------------------------------------------------------------


@pytest.mark.slow  # a server
def test_push_then_pull_into_another_registry_gives_the_same_tables(env: str, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    with filled(tmp_path / "a" / "exp.duckdb") as a:
        url = a.push_to_s3(bucket="sweeps", prefix=f"{tmp_path.name}/exp")
        assert url == f"s3://sweeps/{tmp_path.name}/exp"
        expected = synced(a)
    with RunRegistry(tmp_path / "b" / "exp.duckdb") as b:
        counts = b.pull_from_s3(bucket="sweeps", prefix=f"{tmp_path.name}/exp")
        assert counts == {t: len(rows) for t, rows in expected.items()}
        assert synced(b) == expected
        assert b.resolve_label("seven") == "dddddddddddd"
        assert b.get_attributes("dddddddddddd") == {"site": "north"}
        assert b.pull_from_s3(bucket="sweeps", prefix=f"{tmp_path.name}/exp") == dict.fromkeys(expected, 0)
        assert synced(b) == expected
        assert b.verify().ok
    assert SECRET.encode() not in (tmp_path / "b" / "exp.duckdb").read_bytes()


@pytest.mark.slow  # a server
def test_the_default_prefix_is_upstreams_and_upstream_arguments_work(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MINIO_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    db = tmp_path / f"{tmp_path.name}.duckdb"  # the stem names the prefix: unique per test
    with filled(db) as reg:
        url = reg.push_to_s3(
            bucket="sweeps", tables=["job_configs", "config_parameters"], **upstream_args(s3_endpoint)
        )
    assert url == f"s3://sweeps/run-registries/{tmp_path.name}"
    with open_s3_registries([tmp_path.name], bucket="sweeps", **upstream_args(s3_endpoint)) as con:
        views = con.execute(
            "SELECT view_name FROM duckdb_views() WHERE schema_name = ? ORDER BY 1", [tmp_path.name]
        ).fetchall()
        assert views == [("config_parameters",), ("job_configs",)]  # the others were not pushed
        labels = con.execute(
            f'SELECT label FROM "{tmp_path.name}".job_configs WHERE label IS NOT NULL ORDER BY 1'
        )
        assert labels.fetchall() == [("baseline",), ("seven",), ("tall",)]


@pytest.mark.slow  # a server
def test_a_layout_upstream_wrote_imports_like_its_file(env: str, tmp_path: Path) -> None:
    old = small_sweep(tmp_path / "old.duckdb", head=True)
    prefix = f"{tmp_path.name}/upstream"
    with duckdb.connect(str(old), read_only=True) as con:  # what upstream's push_to_s3 writes
        from joshreg.projection.httpfs import use_s3

        use_s3(con)
        for t in REGISTRY_SYNC_TABLES:
            con.execute(f"COPY (SELECT * FROM {t}) TO 's3://sweeps/{prefix}/{t}.parquet' (FORMAT parquet)")
    with RunRegistry(tmp_path / "from-file.duckdb") as reference:
        reference.import_joshpy(old, source_timezone="UTC")
        expected = synced(reference)
    with RunRegistry(tmp_path / "pulled.duckdb") as reg:
        counts = reg.pull_from_s3(bucket="sweeps", prefix=prefix, mode="restore", source_timezone="UTC")
        assert synced(reg) == expected
        assert counts["cell_data"] == len(expected["cell_data"]) > 0
        assert set(counts) == set(REGISTRY_SYNC_TABLES)
        upstream = {t: dump_tables(reg, (t,), skip=SKIP)[t] for t in UPSTREAM_TABLES}
        assert upstream["job_configs"] and upstream["job_runs"]


@pytest.mark.slow  # a server
def test_restore_only_fills_an_empty_registry_and_merge_never_overwrites(env: str, tmp_path: Path) -> None:
    prefix = f"{tmp_path.name}/exp"
    with filled(tmp_path / "exp.duckdb") as a:
        a.push_to_s3(bucket="sweeps", prefix=prefix)
    with RunRegistry(tmp_path / "other.duckdb") as b:
        s = b.create_session(FakeJobConfig(), experiment_name="mine")
        b.register_run(s, "dddddddddddd", "model.josh", "something else\n", None, {"maxGrowth": 1})
        with pytest.raises(InvalidArgumentError, match=r"restore.* refused: .* already holds events") as e:
            b.pull_from_s3(bucket="sweeps", prefix=prefix, mode="restore")
        assert "\n" not in str(e.value)
        assert b.query("SELECT count(*) FROM job_configs").fetchone() == (1,)
        with pytest.warns(ImportConflictWarning, match="run hash dddddddddddd"):
            counts = b.pull_from_s3(bucket="sweeps", prefix=prefix)
        assert counts["job_configs"] == 3
        mine = b.query("SELECT config_content FROM job_configs WHERE run_hash = 'dddddddddddd'").fetchall()
        assert mine == [("something else\n",)]  # kept, not overwritten


@pytest.mark.slow  # a server
def test_open_s3_registries_joins_two_publications(env: str, tmp_path: Path) -> None:
    template = tmp_path.name + "/{name}"
    with RunRegistry(":memory:") as a, RunRegistry(":memory:") as b:
        for reg, label, value in ((a, "base", 1), (b, "rerun", 2)):
            s = reg.create_session(FakeJobConfig(), experiment_name=label)
            reg.register_run(s, "abcabcabcabc", "m.josh", "x = 1\n", None, {"x": value})
            reg.label_run("abcabcabcabc", label)
        a.push_to_s3(bucket="sweeps", prefix=template.format(name="first"))
        b.push_to_s3(
            bucket="sweeps",
            prefix=template.format(name="second"),
            tables=["job_configs", "config_parameters"],
        )
    with open_s3_registries(["first", "second"], bucket="sweeps", prefix_template=template) as con:
        joined = con.execute(
            "SELECT f.label, s.label, fp.x, sp.x FROM first.job_configs f "
            "JOIN second.job_configs s USING (run_hash) "
            "JOIN first.config_parameters fp USING (run_hash) "
            "JOIN second.config_parameters sp USING (run_hash)"
        ).fetchall()
        assert joined == [("base", "rerun", 1.0, 2.0)]
        tables = con.execute("SELECT schema_name, count(*) FROM duckdb_views() WHERE NOT internal GROUP BY 1")
        assert dict(tables.fetchall()) == {"first": len(REGISTRY_SYNC_TABLES), "second": 2}
    with (
        pytest.raises(NotFoundError, match=r"no registry is published at .*/nobody"),
        open_s3_registries(["nobody"], bucket="sweeps", prefix_template=template),
    ):
        pass


@pytest.mark.slow  # a server
def test_a_publication_inside_an_event_store_is_refused(env: str, tmp_path: Path) -> None:
    events = f"s3://sweeps/{tmp_path.name}/events"
    with RunRegistry(tmp_path / "s3.duckdb", events_path=events) as reg:
        reg.create_session(FakeJobConfig(), experiment_name="e")
        with pytest.raises(InvalidArgumentError, match="inside this registry's event store") as e:
            reg.push_to_s3(bucket="sweeps", prefix=f"{tmp_path.name}/events/published")
        assert "\n" not in str(e.value)
        with pytest.raises(InvalidArgumentError, match="inside this registry's event store"):
            reg.push_to_s3(bucket="sweeps", prefix=f"{tmp_path.name}/events")
        assert reg.push_to_s3(bucket="sweeps", prefix=f"{tmp_path.name}/published").endswith("/published")
    with RunRegistry(tmp_path / "local.duckdb") as other:  # another registry's store, found by its FORMAT
        with pytest.raises(InvalidArgumentError, match=f"inside the event store {events};"):
            other.push_to_s3(bucket="sweeps", prefix=f"{tmp_path.name}/events/x")
        with pytest.raises(InvalidArgumentError, match="is a joshreg event store, not a published registry"):
            other.pull_from_s3(bucket="sweeps", prefix=f"{tmp_path.name}/events")
        with pytest.raises(InvalidArgumentError, match="nothing to pull at"):
            other.pull_from_s3(bucket="sweeps", prefix=f"{tmp_path.name}/nothing-here")


@pytest.mark.slow  # a server
def test_a_missing_bucket_is_one_line_without_the_secret(env: str, tmp_path: Path) -> None:
    with RunRegistry(":memory:") as reg, pytest.raises(StoreError) as e:
        reg.push_to_s3(bucket="no-such-bucket-here", prefix=tmp_path.name)
    assert "\n" not in str(e.value) and SECRET not in str(e.value)
