"""Job configs, sweeps, run hashes and expansion: upstream joshpy's dicts and hashes, exactly."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from joshreg import (
    CompoundSweepParameter,
    ConfigSweepParameter,
    FileSweepParameter,
    JobConfig,
    JobExpander,
    SessionInfo,
    SweepConfig,
    compute_run_hash,
)
from joshreg.provenance.jobs import expand_values, hash_file


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """A Josh source and two data files with fixed contents."""
    (tmp_path / "sim.josh").write_text("simulation Main { }")
    (tmp_path / "climate.jshd").write_bytes(b"rcp45 data")
    (tmp_path / "soil.jshd").write_bytes(b"loam")
    return tmp_path


# --- run hash -------------------------------------------------------------------------------


def test_run_hash_of_config_text_alone_is_the_first_12_hex_of_its_md5():
    text = "survivalProbAdult = 85 %"
    assert compute_run_hash(None, text) == md5(text.encode())[:12] == "4f782aa6412d"


def test_run_hash_feeds_josh_config_then_sorted_names_and_file_md5s(inputs):
    mappings = {"soil": inputs / "soil.jshd", "climate": inputs / "climate.jshd"}
    expected = md5(
        b"simulation Main { }"
        + b"maxGrowth = 10 meters"
        + b"climate"
        + md5(b"rcp45 data").encode()
        + b"soil"
        + md5(b"loam").encode()
    )[:12]
    got = compute_run_hash(inputs / "sim.josh", "maxGrowth = 10 meters", mappings)
    assert got == expected == "5aa43ac0af6b"
    # str paths work too, and the mapping order does not matter
    reordered = {"climate": str(inputs / "climate.jshd"), "soil": str(inputs / "soil.jshd")}
    assert compute_run_hash(str(inputs / "sim.josh"), "maxGrowth = 10 meters", reordered) == got


def test_an_explicit_seed_changes_the_hash_and_none_keeps_the_legacy_one(inputs):
    text = "survivalProbAdult = 85 %"
    assert compute_run_hash(None, text, seed=None) == compute_run_hash(None, text)
    assert compute_run_hash(None, text, seed=42) == md5(text.encode() + b"seed=42")[:12] == "89677d686a89"
    assert compute_run_hash(None, text, seed=42) != compute_run_hash(None, text, seed=99)
    assert compute_run_hash(None, text, None, 0) != compute_run_hash(None, text)
    mappings = {"soil": inputs / "soil.jshd", "climate": inputs / "climate.jshd"}
    assert compute_run_hash(inputs / "sim.josh", "maxGrowth = 10 meters", mappings, seed=7) == "8703fe0c17e3"


def test_run_hash_depends_on_file_contents_not_paths(inputs, tmp_path):
    moved = tmp_path / "elsewhere" / "soil.jshd"
    moved.parent.mkdir()
    moved.write_bytes(b"loam")
    a = compute_run_hash(None, "x", {"soil": inputs / "soil.jshd"})
    assert compute_run_hash(None, "x", {"soil": moved}) == a
    moved.write_bytes(b"clay")
    assert compute_run_hash(None, "x", {"soil": moved}) != a
    # the mapping name is part of the hash
    assert compute_run_hash(None, "x", {"ground": inputs / "soil.jshd"}) != a


def test_run_hash_refuses_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.josh"):
        compute_run_hash(tmp_path / "nope.josh", "x")
    with pytest.raises(FileNotFoundError, match="file mapping 'climate'"):
        compute_run_hash(None, "x", {"climate": tmp_path / "gone.jshd"})


def test_hash_file_is_the_full_md5_hex(inputs):
    assert hash_file(inputs / "soil.jshd") == md5(b"loam") == "a71ba23260fab1a96543f7e39b995a96"


# --- sweep values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ([1, 2, 3], [1, 2, 3]),
        ((1, 2), [1, 2]),
        (42, [42]),
        ("wet", ["wet"]),
        ({"start": 0, "stop": 10, "step": 2}, [0, 2, 4, 6, 8]),
        ({"stop": 3, "step": 1}, [0, 1, 2]),
        ({"start": 80, "stop": 90, "step": 2}, [80, 82, 84, 86, 88]),
        ({"start": 0, "stop": 10, "num": 3}, [0.0, 5.0, 10.0]),
        ({"start": 2, "stop": 9, "num": 1}, [2.0]),
        # numpy.arange's arithmetic: start + i * ((start + step) - start)
        (
            {"start": 0.1, "stop": 1, "step": 0.2},
            [0.1, 0.30000000000000004, 0.5000000000000001, 0.7000000000000001, 0.9000000000000001],
        ),
    ],
)
def test_expand_values(spec, expected):
    assert expand_values(spec) == expected


def test_ranges_match_numpy_bit_for_bit_so_rendered_configs_hash_alike():
    np = pytest.importorskip("numpy")
    assert expand_values({"start": 0.1, "stop": 1, "step": 0.2}) == np.arange(0.1, 1, 0.2).tolist()
    assert expand_values({"start": 0, "stop": 1, "num": 7}) == np.linspace(0, 1, 7).tolist()
    assert expand_values({"start": 1, "stop": 2.01, "step": 0.25}) == np.arange(1, 2.01, 0.25).tolist()
    assert expand_values(np.array([1, 2])) == [1, 2]


@pytest.mark.parametrize("spec", [{"start": 0, "step": 2}, {"start": 0, "stop": 10}])
def test_incomplete_range_specs_are_refused(spec):
    with pytest.raises(ValueError, match="range spec needs"):
        expand_values(spec)


# --- parameters -----------------------------------------------------------------------------


def test_config_parameter_keeps_a_range_spec_for_serialisation():
    p = ConfigSweepParameter(name="x", values={"start": 0, "stop": 6, "step": 2})
    assert p.values == [0, 2, 4]
    assert p.to_dict() == {"name": "x", "range": {"start": 0, "stop": 6, "step": 2}}
    assert ConfigSweepParameter(name="x", values=[1, 2]).to_dict() == {"name": "x", "values": [1, 2]}
    assert ConfigSweepParameter.from_dict(p.to_dict()) == p


def test_file_parameter_labels_are_stems_and_must_be_unique():
    p = FileSweepParameter(name="climate", paths=["data/rcp26.jshd", Path("other/rcp85.jshd")])
    assert p.paths == [Path("data/rcp26.jshd"), Path("other/rcp85.jshd")]
    assert p.labels == ["rcp26", "rcp85"]
    assert p.to_dict() == {"name": "climate", "paths": ["data/rcp26.jshd", "other/rcp85.jshd"]}
    with pytest.raises(ValueError, match=r"duplicate stems \['data'\]"):
        FileSweepParameter(name="climate", paths=["a/data.jshd", "b/data.jshd"])


def test_compound_parameter_validation():
    with pytest.raises(ValueError, match="same number of values; got a=3, b=2"):
        CompoundSweepParameter("g", [ConfigSweepParameter("a", [1, 2, 3]), ConfigSweepParameter("b", [1, 2])])
    with pytest.raises(ValueError, match="3 scenarios but 2 labels"):
        CompoundSweepParameter("g", [ConfigSweepParameter("a", [1, 2, 3])], labels=["x", "y"])
    with pytest.raises(TypeError, match="ConfigSweepParameter or FileSweepParameter"):
        CompoundSweepParameter("g", ["not a parameter"])  # type: ignore[list-item]
    auto = CompoundSweepParameter("g", [ConfigSweepParameter("a", [1, 2, 3])])
    assert auto.labels == ["0", "1", "2"] and len(auto) == 3


def test_compound_from_dict_infers_types_and_leaves_its_input_alone():
    data = {
        "name": "regime",
        "parameters": [
            {"_type": "config", "name": "a", "values": [1, 2]},
            {"name": "data", "paths": ["x.jshd", "y.jshd"]},
        ],
        "labels": ["low", "high"],
    }
    before = json.dumps(data)
    c = CompoundSweepParameter.from_dict(data)
    assert json.dumps(data) == before
    assert isinstance(c.parameters[0], ConfigSweepParameter)
    assert isinstance(c.parameters[1], FileSweepParameter)
    assert c.labels == ["low", "high"]


# --- JobConfig dicts: upstream's keys and omission rules --------------------------------------


def test_a_default_config_serialises_to_an_empty_dict():
    assert JobConfig().to_dict() == {}
    assert JobConfig.from_dict({}) == JobConfig()


def test_defaults_are_left_out_and_set_values_kept():
    config = JobConfig(
        template_string="",  # empty strings count as unset
        config_name="",  # ... but config_name is kept whenever it is not None
        simulation="Main",
        replicates=1,
        seed=0,  # seed is kept whenever it is not None
        crs="",
        use_float64=False,
    )
    assert config.to_dict() == {"config_name": "", "seed": 0}


def test_every_field_set():
    config = JobConfig(
        template_path=Path("templates/forest.jshc.j2"),
        config_name="forest",
        simulation="ForestSim",
        replicates=3,
        source_path="models/forest.josh",
        template_vars={"grid": 30, "debug": True},
        file_mappings={"climate": "data/rcp45.jshd"},
        upload_source_path="s3://b/src",
        upload_config_path="s3://b/cfg",
        upload_data_path="s3://b/data",
        label="baseline",
        output_steps="0-10,50",
        seed=42,
        crs="EPSG:4326",
        use_float64=True,
    )
    assert config.to_dict() == {
        "template_path": "templates/forest.jshc.j2",
        "config_name": "forest",
        "simulation": "ForestSim",
        "replicates": 3,
        "source_path": "models/forest.josh",
        "template_vars": {"grid": 30, "debug": True},
        "file_mappings": {"climate": "data/rcp45.jshd"},
        "upload_source_path": "s3://b/src",
        "upload_config_path": "s3://b/cfg",
        "upload_data_path": "s3://b/data",
        "output_steps": "0-10,50",
        "seed": 42,
        "crs": "EPSG:4326",
        "use_float64": True,
    }
    # label is not serialised (upstream's rule), so it does not come back
    restored = JobConfig.from_dict(config.to_dict())
    assert restored.label is None
    restored.label = "baseline"
    assert restored == config
    assert restored.source_path == Path("models/forest.josh")


def test_raw_config_and_source_template():
    config = JobConfig(
        config_path="/configs/baseline.jshc",
        source_template_path="/models/canonical.josh.j2",
        template_vars={"grid_size": 30},
    )
    assert config.to_dict() == {
        "config_path": "/configs/baseline.jshc",
        "source_template_path": "/models/canonical.josh.j2",
        "template_vars": {"grid_size": 30},
    }
    assert JobConfig.from_dict(config.to_dict()) == config


def sweep_config() -> JobConfig:
    return JobConfig(
        template_path=Path("sweep.jshc.j2"),
        source_path=Path("sim.josh"),
        replicates=2,
        sweep=SweepConfig(
            config_parameters=[
                ConfigSweepParameter(name="survival", values=[85, 90]),
                ConfigSweepParameter(name="growth", values={"start": 0, "stop": 1, "num": 3}),
            ],
            file_parameters=[FileSweepParameter(name="climate", paths=["rcp45.jshd", "rcp85.jshd"])],
            compound_parameters=[
                CompoundSweepParameter(
                    name="regime",
                    parameters=[
                        ConfigSweepParameter(name="fire", values=[0.1, 0.5]),
                        FileSweepParameter(name="soil", paths=["loam.jshd", "clay.jshd"]),
                    ],
                    labels=["mild", "harsh"],
                ),
                CompoundSweepParameter(
                    name="idx", parameters=[ConfigSweepParameter(name="k", values=[1, 2])]
                ),
            ],
        ),
    )


UPSTREAM_SWEEP_DICT = {
    "template_path": "sweep.jshc.j2",
    "replicates": 2,
    "source_path": "sim.josh",
    "sweep": {
        "config_parameters": [
            {"name": "survival", "values": [85, 90]},
            {"name": "growth", "range": {"start": 0, "stop": 1, "num": 3}},
        ],
        "file_parameters": [{"name": "climate", "paths": ["rcp45.jshd", "rcp85.jshd"]}],
        "compound_parameters": [
            {
                "name": "regime",
                "parameters": [
                    {"name": "fire", "values": [0.1, 0.5], "_type": "config"},
                    {"name": "soil", "paths": ["loam.jshd", "clay.jshd"], "_type": "file"},
                ],
                "labels": ["mild", "harsh"],
            },
            # index labels ("0", "1") are left out
            {"name": "idx", "parameters": [{"name": "k", "values": [1, 2], "_type": "config"}]},
        ],
    },
}


def test_sweep_serialises_to_upstreams_dict_and_back():
    config = sweep_config()
    assert config.to_dict() == UPSTREAM_SWEEP_DICT
    assert list(config.to_dict()) == list(UPSTREAM_SWEEP_DICT)  # same key order, same JSON text
    assert JobConfig.from_dict(UPSTREAM_SWEEP_DICT) == config
    assert JobConfig.from_dict(json.loads(json.dumps(config.to_dict()))).to_dict() == UPSTREAM_SWEEP_DICT


def test_sweep_strategies_are_kept_unless_cartesian():
    params = [ConfigSweepParameter(name="x", values=[1, 2])]
    optuna = {"type": "optuna", "n_trials": 50, "direction": "minimize", "sampler": "tpe"}
    assert SweepConfig(params, strategy=optuna).to_dict() == {
        "config_parameters": [{"name": "x", "values": [1, 2]}],
        "strategy": optuna,
    }
    assert SweepConfig(params, strategy={"type": "cartesian"}) == SweepConfig(params)
    assert "strategy" not in SweepConfig(params, strategy={"type": "cartesian"}).to_dict()
    assert SweepConfig.from_dict({"config_parameters": [], "strategy": optuna}).strategy == optuna
    with pytest.raises(ValueError, match="adaptive 'optuna' strategy"):
        SweepConfig(params, strategy=optuna).expand()
    # a sweep with no parameters is left out of the job config altogether
    assert JobConfig(sweep=SweepConfig(strategy=optuna)).to_dict() == {}


def test_legacy_parameters_key_reads_as_config_parameters():
    sweep = SweepConfig.from_dict({"parameters": [{"name": "x", "values": [1, 2]}]})
    assert sweep.config_parameters == sweep.parameters == [ConfigSweepParameter("x", [1, 2])]
    assert sweep.to_dict() == {"config_parameters": [{"name": "x", "values": [1, 2]}]}


def test_from_dict_ignores_unknown_keys_and_nones():
    config = JobConfig.from_dict({"simulation": "S", "template_path": None, "later_field": {"site": "A"}})
    assert config == JobConfig(simulation="S")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"template_path": "a.j2", "template_string": "x"},
        {"config_path": "a.jshc", "template_string": "x"},
        {"config_path": "a.jshc", "template_path": "a.j2"},
        {"source_path": "a.josh", "source_template_path": "a.josh.j2"},
    ],
)
def test_alternative_sources_are_exclusive(kwargs):
    with pytest.raises(ValueError, match=r"not both|one config source"):
        JobConfig(**kwargs)


# --- sweep expansion ------------------------------------------------------------------------


def test_grid_order_first_parameter_slowest_then_files_then_compounds():
    sweep = SweepConfig(
        config_parameters=[ConfigSweepParameter("a", [1, 2])],
        file_parameters=[FileSweepParameter("f", ["p.jshd", "q.jshd"])],
        compound_parameters=[
            CompoundSweepParameter("g", [ConfigSweepParameter("b", [10, 20])], ["lo", "hi"])
        ],
    )
    combos = sweep.expand()
    assert len(combos) == len(sweep) == 8
    assert combos[0] == {"a": 1, "f": {"path": Path("p.jshd"), "label": "p"}, "g": "lo", "b": 10}
    assert combos[1] == {"a": 1, "f": {"path": Path("p.jshd"), "label": "p"}, "g": "hi", "b": 20}
    assert combos[-1] == {"a": 2, "f": {"path": Path("q.jshd"), "label": "q"}, "g": "hi", "b": 20}
    assert SweepConfig().expand() == [{}] and len(SweepConfig()) == 1


def test_expanding_a_two_by_two_grid_with_a_file_sweep(inputs, tmp_path):
    (inputs / "rcp85.jshd").write_bytes(b"rcp85 data")
    template = inputs / "forest.jshc.j2"
    template.write_text("survival = {{ survival }} %\ngrowth = {{ growth }} meters\npatch = {{ patch }} m\n")
    config = JobConfig(
        template_path=template,
        source_path=inputs / "sim.josh",
        replicates=3,
        template_vars={"patch": 30, "growth": "unused"},
        file_mappings={"soil": inputs / "soil.jshd"},
        sweep=SweepConfig(
            config_parameters=[
                ConfigSweepParameter("survival", [85, 90]),
                ConfigSweepParameter("growth", [1.5, 2.5]),
            ],
            file_parameters=[FileSweepParameter("climate", [inputs / "climate.jshd", inputs / "rcp85.jshd"])],
        ),
    )
    out = tmp_path / "configs"
    with JobExpander().expand(config, output_dir=out) as jobs:
        assert (jobs.total_jobs, jobs.total_replicates, jobs.temp_dir) == (8, 24, None)
        job = jobs.jobs[0]
        # jinja's default environment drops the template's final newline, as upstream's does
        assert job.config_content == "survival = 85 %\ngrowth = 1.5 meters\npatch = 30 m"
        assert job.parameters == {"survival": 85, "growth": 1.5, "climate": "climate"}
        assert job.file_mappings == {"soil": inputs / "soil.jshd", "climate": inputs / "climate.jshd"}
        assert job.custom_tags == {
            "climate": "climate",
            "climate_file": "climate.jshd",
            "survival": "85",
            "growth": "1.5",
            "run_hash": job.run_hash,
        }
        assert job.run_hash == compute_run_hash(inputs / "sim.josh", job.config_content, job.file_mappings)
        assert job.config_path == out / f"job_0000_{job.run_hash}" / "sweep_config.jshc"
        assert job.config_path.read_text() == job.config_content
        assert (job.config_name, job.simulation, job.replicates) == ("sweep_config.jshc", "Main", 3)

        last = jobs.jobs[7]
        assert last.parameters == {"survival": 90, "growth": 2.5, "climate": "rcp85"}
        assert last.file_mappings["climate"] == inputs / "rcp85.jshd"
        assert last.config_path.parent.name == f"job_0007_{last.run_hash}"
        assert [j.parameters["climate"] for j in jobs] == ["climate", "rcp85"] * 4
        assert len({j.run_hash for j in jobs}) == 8
    assert out.exists(), "cleanup never removes a directory the caller chose"


def test_expansion_is_deterministic_and_seeded_hashes_differ(inputs, tmp_path):
    config = JobConfig(template_string="x = {{ x }}", sweep=SweepConfig([ConfigSweepParameter("x", [1, 2])]))
    first = [j.run_hash for j in JobExpander().expand(config, tmp_path / "a")]
    again = [j.run_hash for j in JobExpander().expand(config, tmp_path / "b")]
    assert first == again == [md5(b"x = 1")[:12], md5(b"x = 2")[:12]]
    config.seed = 5
    seeded = JobExpander().expand(config, tmp_path / "c")
    assert [j.run_hash for j in seeded] == [md5(b"x = 1seed=5")[:12], md5(b"x = 2seed=5")[:12]]
    assert seeded.jobs[0].seed == 5


def test_temporary_output_is_removed_by_cleanup():
    jobs = JobExpander().expand(JobConfig(template_string="value = 42"))
    temp = jobs.temp_dir
    assert temp is not None and temp.name.startswith("josh_sweep_")
    assert jobs.jobs[0].config_path.read_text() == "value = 42"
    assert jobs.jobs[0].parameters == {}
    jobs.cleanup()
    assert not temp.exists() and jobs.temp_dir is None


def test_no_config_source_gives_an_empty_config(tmp_path):
    job = JobExpander().expand(JobConfig(), tmp_path).jobs[0]
    assert (job.config_content, job.run_hash) == ("", md5(b"")[:12])


def test_raw_config_is_used_as_is_and_its_numbers_become_parameters(tmp_path):
    raw = tmp_path / "baseline.jshc"
    raw.write_text("# baseline\nmaxGrowth = 50 meters\nfireYear = 75 count\nrate = 0.5 %\n")
    job = JobExpander().expand(JobConfig(config_path=raw, config_name="growth"), tmp_path / "out").jobs[0]
    assert job.config_content == raw.read_text()  # not rendered: the newline stays
    assert job.parameters == {"maxGrowth": 50, "fireYear": 75, "rate": 0.5}
    assert job.custom_tags["maxGrowth"] == "50"
    assert job.config_name == "growth.jshc" and job.config_path.name == "growth.jshc"

    raw.write_text("maxGrowth = 50 meters\nmode = fast\n")
    job = JobExpander().expand(JobConfig(config_path=raw), tmp_path / "out2").jobs[0]
    assert job.parameters == {}, "a config that is not all numbers gives no parameters, and no error"


def test_source_template_is_rendered_once_and_hashed(tmp_path):
    (tmp_path / "model.josh.j2").write_text("start simulation {{ name }}\nend simulation")
    (tmp_path / "c.jshc.j2").write_text("patchSize = {{ grid }} m\nx = {{ x }}")
    config = JobConfig(
        source_template_path=tmp_path / "model.josh.j2",
        template_path=tmp_path / "c.jshc.j2",
        template_vars={"name": "Test", "grid": 30, "x": "default"},
        sweep=SweepConfig([ConfigSweepParameter("x", ["swept"])]),
        label="trial",
    )
    out = tmp_path / "out"
    job = JobExpander().expand(config, out).jobs[0]
    assert job.source_path == out / "model.josh"
    assert job.source_path.read_text() == "start simulation Test\nend simulation"
    assert job.config_content == "patchSize = 30 m\nx = swept"  # sweep values win over template_vars
    assert job.run_hash == compute_run_hash(job.source_path, job.config_content)
    assert job.custom_tags["label"] == "trial" and job.label == "trial"


def test_compound_parameters_set_labels_values_and_files(tmp_path):
    files = {n: tmp_path / f"{n}.jshd" for n in ("t126", "t245", "p126", "p245")}
    for path in files.values():
        path.write_bytes(path.stem.encode())
    config = JobConfig(
        template_string="a = {{ a }}",
        sweep=SweepConfig(
            compound_parameters=[
                CompoundSweepParameter(
                    "climate",
                    [
                        FileSweepParameter("temp", [files["t126"], files["t245"]]),
                        FileSweepParameter("precip", [files["p126"], files["p245"]]),
                        ConfigSweepParameter("a", [1, 2]),
                    ],
                    labels=["ssp126", "ssp245"],
                )
            ]
        ),
    )
    jobs = JobExpander().expand(config, tmp_path / "out").jobs
    assert [j.parameters for j in jobs] == [
        {"climate": "ssp126", "temp": "t126", "precip": "p126", "a": 1},
        {"climate": "ssp245", "temp": "t245", "precip": "p245", "a": 2},
    ]
    assert jobs[1].file_mappings == {"temp": files["t245"], "precip": files["p245"]}
    assert jobs[1].custom_tags["climate"] == "ssp245" and jobs[1].custom_tags["temp_file"] == "t245.jshd"
    assert jobs[1].config_content == "a = 2"


def test_jinja_includes_resolve_next_to_the_template(tmp_path):
    (tmp_path / "common.jshc").write_text("shared = 1 count")
    (tmp_path / "main.jshc.j2").write_text('{% include "common.jshc" %}\nx = {{ x }}')
    config = JobConfig(
        template_path=tmp_path / "main.jshc.j2", sweep=SweepConfig([ConfigSweepParameter("x", [3])])
    )
    assert JobExpander().expand(config, tmp_path / "out").jobs[0].config_content == "shared = 1 count\nx = 3"


def test_a_failed_expansion_leaves_no_temporary_directory(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    config = JobConfig(template_string="x", file_mappings={"gone": tmp_path / "missing.jshd"})
    with pytest.raises(FileNotFoundError, match=r"missing\.jshd"):
        JobExpander().expand(config)
    assert not list(tmp_path.glob("josh_sweep_*"))


# --- sessions -------------------------------------------------------------------------------


def test_session_job_config_round_trips_through_the_registry(registry):
    config = sweep_config()
    sid = registry.create_session(config, experiment_name="grid")
    info = registry.get_session(sid)
    assert info.metadata["job_config"] == UPSTREAM_SWEEP_DICT
    assert info.template_path == "sweep.jshc.j2"
    assert info.job_config == config


def test_session_job_config_is_none_without_one(registry, config):
    info = SessionInfo("s", None, None, None, None, None, None, None, "pending", None)  # type: ignore[arg-type]
    assert info.job_config is None
    assert registry.get_session(registry.create_session(config)).job_config == JobConfig(
        template_path=Path("sweep.jshc.j2")
    )


def test_a_stored_config_expands_to_the_same_jobs_again(registry, inputs, tmp_path):
    config = JobConfig(
        template_string="x = {{ x }}",
        source_path=inputs / "sim.josh",
        file_mappings={"soil": inputs / "soil.jshd"},
        sweep=SweepConfig([ConfigSweepParameter("x", {"start": 0, "stop": 1, "step": 0.5})]),
    )
    sid = registry.create_session(config)
    before = [j.run_hash for j in JobExpander().expand(config, tmp_path / "a")]
    after = [j.run_hash for j in JobExpander().expand(registry.get_session(sid).job_config, tmp_path / "b")]
    assert before == after and len(before) == 2


# --- upstream HEAD: declared attributes and imported Josh files --------------------------------------


def test_attributes_round_trip_and_each_job_gets_its_own_copy(tmp_path: Path) -> None:
    config = JobConfig(template_string="x = {{ x }}", attributes={"site": "mojave", "tier": 2})
    data = config.to_dict()
    assert data["attributes"] == {"site": "mojave", "tier": 2}
    assert "attributes" not in JobConfig(template_string="x = 1").to_dict()
    assert JobConfig.from_dict(data).attributes == {"site": "mojave", "tier": 2}
    config.sweep = SweepConfig(config_parameters=[ConfigSweepParameter("x", [1, 2])])
    jobs = JobExpander().expand(config, output_dir=tmp_path).jobs
    assert [j.attributes for j in jobs] == [{"site": "mojave", "tier": 2}] * 2
    jobs[0].attributes["tier"] = 3
    assert jobs[1].attributes["tier"] == 2 and config.attributes["tier"] == 2


def _model(tmp_path: Path) -> dict[str, Path]:
    files = {
        "main.josh": "start simulation Main\nend simulation\n",
        "imp.josh": 'import "lib/util.josh"\n',
        "lib/util.josh": "start unit x\nend unit\n",
        "data.jshd": "abc\n",
    }
    out = {}
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        out[name] = path
    return out


def test_run_hash_of_models_that_import_files_matches_upstream(tmp_path: Path) -> None:
    f = _model(tmp_path)
    config = "maxGrowth = 5\n"
    assert compute_run_hash(f["main.josh"], config) == "a24570a55bfc"
    assert compute_run_hash(f["main.josh"], config, {"climate": f["data.jshd"]}) == "26d6a4350fe2"
    assert compute_run_hash(f["main.josh"], config, {"climate": f["data.jshd"]}, seed=42) == "8a9a09a11aed"
    imports = [("lib/util.josh", f["lib/util.josh"])]
    assert compute_run_hash(f["imp.josh"], config, import_files=imports) == "3e83169557fc"
    assert compute_run_hash(f["imp.josh"], config, import_files=[]) == "f36ead37ff24"
    assert compute_run_hash(f["imp.josh"], config) == "f36ead37ff24"
    (tmp_path / "lib/util.josh").unlink()
    with pytest.raises(FileNotFoundError, match=r"imported as 'lib/util\.josh'"):
        compute_run_hash(f["imp.josh"], config, import_files=imports)
