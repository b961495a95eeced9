"""Bottles: what the archive holds, that run.sh re-runs the run as it was registered, and that
unbottle refuses archives that would write outside their directory."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from joshreg import BottleError, RunRegistry, UnsafeBottleError, unbottle
from joshreg.cli.app import main
from joshreg.provenance.bottle import config_file_name, custom_tags
from joshreg.provenance.jobs import compute_run_hash

HASH = "a1b2c3d4e5f6"
JOSH = "start simulation Main\n  grid.size = 1000 m\nend simulation\n"
CONFIG = "maxGrowth = 85 %\n"


class JobConfigStub:
    """What ``create_session`` reads from a job config."""

    def __init__(self, job_config: dict[str, Any], simulation: str = "Main") -> None:
        self.simulation = simulation
        self.template_path = None
        self._job_config = job_config

    def to_dict(self) -> dict[str, Any]:
        return dict(self._job_config)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_run(
    reg: RunRegistry,
    data: dict[str, Path],
    *,
    run_hash: str = HASH,
    job_config: dict[str, Any] | None = None,
    simulation: str = "Main",
    parameters: dict[str, Any] | None = None,
    label: str | None = "baseline",
    josh_content: str | None = JOSH,
    exit_code: int | None = 0,
    error: str | None = None,
) -> str:
    """A session, a registered run with data files, one execution and an output, and a label."""
    if job_config is None:
        job_config = {"config_path": "/home/me/models/growth.jshc", "replicates": 3, "simulation": "Main"}
    sid = reg.create_session(JobConfigStub(job_config, simulation), experiment_name="bottles")
    files = {name: {"path": str(p), "hash": md5(p) if p.exists() else ""} for name, p in data.items()}
    reg.register_run(
        sid,
        run_hash,
        "/home/me/models/growth.josh",
        CONFIG,
        file_mappings=files,
        parameters={"maxGrowth": 85} if parameters is None else parameters,
        josh_content=josh_content,
    )
    if exit_code is not None:
        rid = reg.start_run(run_hash, session_id=sid)
        reg.complete_run(rid, exit_code, error)
        reg.register_output(rid, "csv", "/out/patches_0.csv", 10)
    if label is not None:
        reg.label_run(run_hash, label)
    return sid


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    d = tmp_path / "inputs"
    d.mkdir()
    p = d / "soil.jshd"
    p.write_bytes(b"\x00soil grid bytes\xff")
    return p


@pytest.fixture
def reg() -> Iterator[RunRegistry]:
    r = RunRegistry(":memory:")
    yield r
    r.close()


def members(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return tar.getnames()


def read_member(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def manifest_of(archive: Path) -> dict[str, Any]:
    top = members(archive)[0]
    return json.loads(read_member(archive, f"{top}/manifest.json"))


def extract(archive: Path, where: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(where, filter="data")
    return where / members(archive)[0]


# --- what a bottle holds ------------------------------------------------------------------------


def test_members_and_their_contents(reg, data_file, tmp_path):
    make_run(reg, {"soil": data_file})
    archive = reg.bottle("baseline", tmp_path / "out")
    top = f"bottle_baseline_{HASH}"
    assert members(archive) == [
        top,
        f"{top}/data",
        f"{top}/data/soil.jshd",
        f"{top}/growth.jshc",
        f"{top}/manifest.json",
        f"{top}/run.sh",
        f"{top}/simulation.josh",
    ]
    assert read_member(archive, f"{top}/simulation.josh").decode() == JOSH
    assert read_member(archive, f"{top}/growth.jshc").decode() == CONFIG
    assert read_member(archive, f"{top}/data/soil.jshd") == data_file.read_bytes()


def test_archive_name_output_dir_and_no_leftovers(reg, data_file, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    make_run(reg, {"soil": data_file}, label=None)
    out = tmp_path / "a" / "b"
    archive = reg.bottle(HASH, out)
    assert archive.parent == out
    assert re.fullmatch(rf"bottle_{HASH}_\d{{8}}_\d{{6}}\.tar\.gz", archive.name)
    assert members(archive)[0] == f"bottle_{HASH}"
    assert sorted(os.listdir(out)) == [archive.name]  # no temporary archive left
    assert list(scratch.iterdir()) == []  # staging directory removed


def test_two_bottles_in_the_same_second_do_not_replace_each_other(reg, data_file, tmp_path):
    make_run(reg, {"soil": data_file})
    first = reg.bottle("baseline", tmp_path)
    second = reg.bottle("baseline", tmp_path)
    assert first != second and first.exists() and second.exists()


def test_member_order_and_metadata_are_deterministic(reg, data_file, tmp_path):
    make_run(reg, {"soil": data_file})
    archive = reg.bottle("baseline", tmp_path)
    with tarfile.open(archive) as tar:
        infos = tar.getmembers()
    names = [m.name for m in infos]
    assert names == sorted(names)
    assert {(m.uid, m.gid, m.uname, m.gname) for m in infos} == {(0, 0, "", "")}
    assert all(m.isdir() or m.isfile() for m in infos)
    assert len({m.mtime for m in infos}) == 1


# --- run.sh -------------------------------------------------------------------------------------


def fake_java(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A ``java`` on PATH that records its arguments as JSON, one call per line."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    record = tmp_path / "java_calls.jsonl"
    java = bin_dir / "java"
    java.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        "with open(os.environ['FAKE_JAVA_RECORD'], 'a', encoding='utf-8') as f:\n"
        "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    java.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_JAVA_RECORD": str(record),
    }
    return env, record


def run_script(bottle_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["./run.sh", *args], cwd=bottle_dir, env=env, capture_output=True, text=True, check=False
    )


def test_run_sh_is_executable_and_passes_upstreams_arguments(reg, data_file, tmp_path):
    make_run(reg, {"soil": data_file}, parameters={"maxGrowth": 85, "rate": 0.5})
    archive = reg.bottle("baseline", tmp_path / "out")
    with tarfile.open(archive) as tar:
        assert tar.getmember(f"bottle_baseline_{HASH}/run.sh").mode == 0o755
    bottle_dir = extract(archive, tmp_path / "x")
    assert os.access(bottle_dir / "run.sh", os.X_OK)
    env, record = fake_java(tmp_path)
    done = run_script(bottle_dir, env, "/opt/josh/joshsim-fat.jar")
    assert done.returncode == 0, done.stderr
    argv = json.loads(record.read_text())
    assert argv == [
        "-jar",
        "/opt/josh/joshsim-fat.jar",
        "run",
        "simulation.josh",
        "Main",
        "--data",
        "growth.jshc=growth.jshc",
        "--data",
        "soil=data/soil.jshd",
        "--replicates",
        "3",
        "--custom-tag",
        "label=baseline",
        "--custom-tag",
        "maxGrowth=85",
        "--custom-tag",
        "rate=0.5",
        "--custom-tag",
        f"run_hash={HASH}",
    ]


def test_run_sh_header_and_missing_jar_argument(reg, data_file, tmp_path):
    make_run(reg, {"soil": data_file})
    archive = reg.bottle("baseline", tmp_path / "out")
    text = read_member(archive, f"bottle_baseline_{HASH}/run.sh").decode()
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert "# JAR SHA256: unknown" in lines
    assert f"# Original run hash: {HASH}" in lines
    assert "set -euo pipefail" in lines
    bottle_dir = extract(archive, tmp_path / "x")
    env, record = fake_java(tmp_path)
    done = run_script(bottle_dir, env)
    assert done.returncode != 0
    assert "Usage: ./run.sh /path/to/joshsim-fat.jar" in done.stderr
    assert not record.exists()


def test_one_replicate_gets_no_replicates_flag(reg, data_file, tmp_path):
    make_run(reg, {"soil": data_file}, job_config={"config_name": "growth"})
    archive = reg.bottle("baseline", tmp_path)
    text = read_member(archive, f"bottle_baseline_{HASH}/run.sh").decode()
    assert "--replicates" not in text
    assert manifest_of(archive)["replicates"] == 1


def test_quotes_spaces_and_non_ascii_survive_the_shell(reg, tmp_path):
    odd_dir = tmp_path / "dir with 'quotes' and spaces"
    odd_dir.mkdir()
    data = odd_dir / 'sol "été" $HOME.jshd'
    data.write_bytes(b"x")
    label = "café 'run' \"one\""
    make_run(
        reg,
        {"soil map": data},
        job_config={"config_name": "my 'config'", "replicates": 2},
        simulation="Main Sim",
        parameters={"note": "it's a `test` $(rm -rf /)", "maxGrowth": 85},
        label=label,
    )
    archive = reg.bottle(label, tmp_path / "out dir")
    top = members(archive)[0]
    assert top == f"bottle_{label}_{HASH}"
    bottle_dir = extract(archive, tmp_path / "x")
    assert (bottle_dir / "my 'config'.jshc").read_text() == CONFIG
    assert (bottle_dir / "data" / data.name).read_bytes() == b"x"
    env, record = fake_java(tmp_path)
    done = run_script(bottle_dir, env, "/jars/my josh.jar")
    assert done.returncode == 0, done.stderr
    argv = json.loads(record.read_text())
    assert argv[:5] == ["-jar", "/jars/my josh.jar", "run", "simulation.josh", "Main Sim"]
    assert argv[5:9] == [
        "--data",
        "my 'config'.jshc=my 'config'.jshc",
        "--data",
        f"soil map=data/{data.name}",
    ]
    tags = [argv[i + 1] for i, a in enumerate(argv) if a == "--custom-tag"]
    assert tags == [f"label={label}", "maxGrowth=85", "note=it's a `test` $(rm -rf /)", f"run_hash={HASH}"]
    assert argv[argv.index("--replicates") + 1] == "2"


# --- manifest.json ------------------------------------------------------------------------------


def test_manifest_fields_and_events(reg, data_file, tmp_path):
    sid = make_run(reg, {"soil": data_file}, exit_code=3, error="boom at step 7")
    archive = reg.bottle("baseline", tmp_path)
    raw = read_member(archive, f"bottle_baseline_{HASH}/manifest.json").decode()
    m = json.loads(raw)
    assert raw == json.dumps(m, indent=2, ensure_ascii=False) + "\n"
    for key in (
        "joshreg_version",
        "jar_version",
        "jar_sha256",
        "python_version",
        "platform",
        "git_hash",
        "bottled_at",
    ):
        assert key in m
    assert (m["jar_version"], m["jar_sha256"]) == ("unknown", None)
    assert m["run_hash"] == HASH and m["label"] == "baseline"
    assert (m["simulation"], m["replicates"]) == ("Main", 3)
    assert m["parameters"] == {"maxGrowth": 85}
    assert isinstance(m["parameters"]["maxGrowth"], int)
    assert m["original_josh_path"] == "/home/me/models/growth.josh"
    assert m["original_data_paths"] == {"soil": str(data_file)}
    assert m["data_files"] == {"soil": "data/soil.jshd"}
    assert (m["omit_jshd"], m["exit_code"], m["stderr"]) == (False, 3, "boom at step 7")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m["bottled_at"])
    types = [e["type"] for e in m["events"]]
    assert types == [
        "session.created",
        "run.registered",
        "run.started",
        "run.completed",
        "output.registered",
        "label.assigned",
    ]
    registered = m["events"][1]
    assert registered["parameters"] == {"maxGrowth": 85} and registered["session_id"] == sid
    assert m["events"][3]["error_message"] == "boom at step 7"
    assert all(e.get("event_id") and e.get("actor") for e in m["events"])


def test_events_are_only_those_of_the_run(reg, data_file, tmp_path):
    make_run(reg, {"soil": data_file})
    make_run(reg, {"soil": data_file}, run_hash="ffffffffffff", label="other")
    reg.label_run(HASH, "moved")  # a relabel: released + assigned
    m = manifest_of(reg.bottle(HASH, tmp_path))
    assert {e.get("run_hash") for e in m["events"] if "run_hash" in e} == {HASH}
    assert [e["type"] for e in m["events"]].count("session.created") == 1
    labels = [(e["type"], e["label"]) for e in m["events"] if e["type"].startswith("label.")]
    assert labels == [
        ("label.assigned", "baseline"),
        ("label.released", "baseline"),
        ("label.assigned", "moved"),
    ]


def test_jar_version_and_sha256_from_a_cli_object(reg, data_file, tmp_path):
    jar = tmp_path / "joshsim-fat.jar"
    with zipfile.ZipFile(jar, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nImplementation-Version: 2.4.1\n")

    class Cli:
        jar_path = jar

    make_run(reg, {"soil": data_file})
    archive = reg.bottle("baseline", tmp_path / "out", cli=Cli())
    m = manifest_of(archive)
    assert m["jar_version"] == "2.4.1"
    assert m["jar_sha256"] == hashlib.sha256(jar.read_bytes()).hexdigest()
    assert (
        f"# JAR SHA256: {m['jar_sha256']}" in read_member(archive, members(archive)[0] + "/run.sh").decode()
    )


# --- options and errors -------------------------------------------------------------------------


def test_omit_jshd_leaves_data_out_but_keeps_the_arguments(reg, tmp_path):
    gone = tmp_path / "gone.jshd"  # need not exist with omit_jshd
    make_run(reg, {"soil": gone})
    archive = reg.bottle("baseline", tmp_path / "out", omit_jshd=True)
    assert not [n for n in members(archive) if "/data" in n]
    m = manifest_of(archive)
    assert m["omit_jshd"] is True
    assert m["original_data_paths"] == {"soil": str(gone)}
    text = read_member(archive, f"bottle_baseline_{HASH}/run.sh").decode()
    assert "--data soil=data/gone.jshd" in text


def test_data_files_with_the_same_base_name_do_not_clobber(reg, tmp_path):
    files = {}
    for name in ("future", "past"):
        (tmp_path / name).mkdir()
        files[name] = tmp_path / name / "climate.jshd"
        files[name].write_bytes(name.encode())
    make_run(reg, files)
    archive = reg.bottle("baseline", tmp_path / "out")
    assert manifest_of(archive)["data_files"] == {
        "future": "data/climate.jshd",
        "past": "data/past-climate.jshd",
    }
    [job] = unbottle(archive, tmp_path / "x")
    assert {k: v.read_bytes() for k, v in job.file_mappings.items()} == {"future": b"future", "past": b"past"}


def test_missing_data_file_says_how_to_bottle_anyway(reg, tmp_path):
    make_run(reg, {"soil": tmp_path / "gone.jshd"})
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match=r"omit_jshd=True"):
        reg.bottle("baseline", out)
    assert not out.exists() or list(out.iterdir()) == []


def test_unknown_run_is_a_key_error(reg, data_file, tmp_path):
    make_run(reg, {"soil": data_file})
    with pytest.raises(KeyError, match="no-such-run"):
        reg.bottle("no-such-run", tmp_path)


def test_a_label_wins_over_a_hash(reg, data_file, tmp_path):
    make_run(reg, {"soil": data_file}, label=None)
    make_run(reg, {"soil": data_file}, run_hash="ffffffffffff", label=HASH)
    assert manifest_of(reg.bottle(HASH, tmp_path))["run_hash"] == "ffffffffffff"


def test_no_stored_josh_source_says_how_to_fix_it(reg, data_file, tmp_path):
    make_run(reg, {"soil": data_file}, josh_content=None)
    with pytest.raises(ValueError, match=r"josh_content="):
        reg.bottle("baseline", tmp_path)


@pytest.mark.parametrize(
    ("job_config", "expected"),
    [
        ({"config_name": "growth", "config_path": "/x/other.jshc"}, "growth.jshc"),
        ({"config_name": "growth.jshc"}, "growth.jshc"),
        ({"config_path": "/x/y/my config.jshc"}, "my config.jshc"),
        ({"config_path": "C:\\models\\win.jshc"}, "win.jshc"),
        ({"template_path": "t.jshc.j2"}, "sweep_config.jshc"),
        ({"config_name": "../run.sh"}, "run.sh.jshc"),
        ({"config_path": "/x/manifest.json"}, "sweep_config.jshc"),
        ({}, "sweep_config.jshc"),
    ],
)
def test_config_file_name(job_config, expected):
    assert config_file_name(job_config) == expected


def test_custom_tags_keep_values_as_written_and_name_swept_files():
    tags = custom_tags({"maxGrowth": 85, "soil": "clay"}, HASH, None, {"soil": "/d/clay.jshd"})
    assert tags == {"maxGrowth": "85", "run_hash": HASH, "soil": "clay", "soil_file": "clay.jshd"}


# --- unbottle -----------------------------------------------------------------------------------


def test_unbottle_round_trip(reg, data_file, tmp_path):
    make_run(reg, {"soil": data_file})
    archive = reg.bottle("baseline", tmp_path / "out")
    target = tmp_path / "rerun"
    [job] = unbottle(archive, target)
    root = target / f"bottle_baseline_{HASH}"
    assert Path(job.config_path) == (root / "growth.jshc").resolve()
    assert Path(job.source_path) == (root / "simulation.josh").resolve()
    assert {k: Path(v) for k, v in job.file_mappings.items()} == {"soil": (root / "data/soil.jshd").resolve()}
    assert (job.simulation, job.replicates) == ("Main", 3)
    assert (job.config_name, job.label) == ("growth", "baseline")
    assert Path(job.config_path).read_text() == CONFIG


def test_an_unbottled_run_has_the_original_run_hash(reg, data_file, tmp_path):
    josh = tmp_path / "model.josh"
    josh.write_text(JOSH)
    run_hash = compute_run_hash(josh, CONFIG, {"soil": data_file})
    make_run(reg, {"soil": data_file}, run_hash=run_hash)
    [job] = unbottle(reg.bottle("baseline", tmp_path / "out"), tmp_path / "x")
    assert compute_run_hash(job.source_path, job.config_path.read_text(), job.file_mappings) == run_hash


def test_unbottle_reads_upstreams_sweep_bottles(tmp_path):
    manifest = {"simulation": "Main", "original_data_paths": {"soil": "/orig/soil.jshd"}}
    entries: list[tarfile.TarInfo | tuple[str, bytes]] = [
        ("bottle_sweep_1/manifest.json", json.dumps(manifest).encode()),
        ("bottle_sweep_1/data/soil.jshd", b"s"),
    ]
    for h in ("bbbbbbbbbbbb", "aaaaaaaaaaaa"):
        entries += [
            (f"bottle_sweep_1/jobs/{h}/simulation.josh", b"j"),
            (f"bottle_sweep_1/jobs/{h}/sweep_config.jshc", h.encode()),
        ]
    archive = make_archive(tmp_path / "sweep.tar.gz", entries)
    jobs = unbottle(archive, tmp_path / "x")
    assert [j.config_path.read_text() for j in jobs] == ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]
    assert jobs[0].file_mappings == {"soil": (tmp_path / "x/bottle_sweep_1/data/soil.jshd").resolve()}
    [only] = unbottle(archive, tmp_path / "y", run_hash="bbbbbbbbbbbb")
    assert only.config_path.read_text() == "bbbbbbbbbbbb"
    with pytest.raises(KeyError, match="aaaaaaaaaaaa, bbbbbbbbbbbb"):
        unbottle(archive, tmp_path / "z", run_hash="cccccccccccc")


def test_unbottle_with_a_data_dir_keeps_sub_directories(reg, tmp_path):
    base = tmp_path / "orig"
    (base / "soil").mkdir(parents=True)
    (base / "climate").mkdir()
    soil, climate = base / "soil" / "a.jshd", base / "climate" / "b.jshd"
    soil.write_bytes(b"a")
    climate.write_bytes(b"b")
    make_run(reg, {"soil": soil, "climate": climate})
    archive = reg.bottle("baseline", tmp_path / "out", omit_jshd=True)
    mine = tmp_path / "my data"
    [job] = unbottle(archive, tmp_path / "x", data_dir=mine)
    assert {k: Path(v) for k, v in job.file_mappings.items()} == {
        "soil": mine / "soil" / "a.jshd",
        "climate": mine / "climate" / "b.jshd",
    }


def test_unbottle_defaults_to_a_temporary_directory(reg, data_file, tmp_path):
    make_run(reg, {"soil": data_file})
    archive = reg.bottle("baseline", tmp_path / "out")
    [job] = unbottle(archive)
    assert Path(job.config_path).parent.parent.name.startswith("joshreg_unbottle_")


def test_unbottle_wrong_run_hash_lists_the_one_it_has(reg, data_file, tmp_path):
    make_run(reg, {"soil": data_file})
    archive = reg.bottle("baseline", tmp_path / "out")
    with pytest.raises(KeyError, match=HASH):
        unbottle(archive, tmp_path / "x", run_hash="ffffffffffff")


def test_unbottle_missing_archive(tmp_path):
    with pytest.raises(FileNotFoundError):
        unbottle(tmp_path / "nope.tar.gz", tmp_path / "x")


def make_archive(path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for entry in entries:
            if isinstance(entry, tuple):
                name, data = entry
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(entry)
    return path


def link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def test_unbottle_without_a_manifest(tmp_path):
    archive = make_archive(tmp_path / "b.tar.gz", [("bottle_x/simulation.josh", b"x")])
    with pytest.raises(ValueError, match=r"manifest\.json"):
        unbottle(archive, tmp_path / "x")


NOT_BOTTLES = {
    "no manifest": [("bottle_x/simulation.josh", b"x"), ("bottle_x/run.jshc", b"a = 1")],
    "manifest not JSON": [("bottle_x/manifest.json", b"{oops"), ("bottle_x/run.jshc", b"a = 1")],
    "manifest not an object": [("bottle_x/manifest.json", b"[1]"), ("bottle_x/run.jshc", b"a = 1")],
    "no config": [("bottle_x/manifest.json", b"{}"), ("bottle_x/simulation.josh", b"x")],
    "a job without config": [
        ("bottle_x/manifest.json", b"{}"),
        ("bottle_x/jobs/aaaaaaaaaaaa/run.jshc", b"a = 1"),
        ("bottle_x/jobs/bbbbbbbbbbbb/simulation.josh", b"x"),
    ],
}


@pytest.mark.parametrize("case", sorted(NOT_BOTTLES))
def test_an_archive_that_is_not_a_bottle_extracts_nothing(tmp_path, case):
    archive = make_archive(tmp_path / "b.tar.gz", NOT_BOTTLES[case])
    with pytest.raises(BottleError, match=r"b\.tar\.gz|bottle_x"):
        unbottle(archive, tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("content", [b"", b"not a tarball at all", b"\x1f\x8b\x08\x00garbage"])
def test_unbottle_corrupt_archive_names_it(tmp_path, content):
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(content)
    with pytest.raises(BottleError, match=r"broken\.tar\.gz"):
        unbottle(archive, tmp_path / "x")


def test_unbottle_truncated_archive(reg, data_file, tmp_path):
    make_run(reg, {"soil": data_file})
    archive = reg.bottle("baseline", tmp_path / "out")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cut\.tar\.gz"):
        unbottle(cut, tmp_path / "x")


MANIFEST = ("bottle_x/manifest.json", b"{}")
HOSTILE = {
    "absolute path": [MANIFEST, ("/tmp/joshreg_escape_abs", b"x")],
    "dot-dot": [MANIFEST, ("bottle_x/../../escape", b"x")],
    "symlink outside": [MANIFEST, link("bottle_x/data", "/tmp", tarfile.SYMTYPE)],
    "relative symlink": [MANIFEST, link("bottle_x/up", "../..", tarfile.SYMTYPE)],
    "hardlink": [MANIFEST, link("bottle_x/passwd", "/etc/passwd", tarfile.LNKTYPE)],
    "device": [MANIFEST, link("bottle_x/null", "", tarfile.CHRTYPE)],
    "fifo": [MANIFEST, link("bottle_x/pipe", "", tarfile.FIFOTYPE)],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_unbottle_refuses_hostile_archives_and_writes_nothing(tmp_path, case):
    archive = make_archive(tmp_path / "evil.tar.gz", HOSTILE[case])
    target = tmp_path / "a" / "b" / "target"
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(UnsafeBottleError, match=r"evil\.tar\.gz"):
        unbottle(archive, target)
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before  # not even the target directory was created
    assert not Path("/tmp/joshreg_escape_abs").exists()


def test_unbottle_does_not_follow_a_symlink_already_in_the_target(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    (target / "bottle_x").symlink_to(outside)
    archive = make_archive(tmp_path / "b.tar.gz", [MANIFEST, ("bottle_x/simulation.josh", b"x")])
    with pytest.raises(UnsafeBottleError, match="outside"):
        unbottle(archive, target)
    assert list(outside.iterdir()) == []


def test_unbottle_refuses_a_manifest_pointing_outside(tmp_path):
    manifest = {"config_name": "../../x.jshc", "data_files": {"soil": "../../../etc/passwd"}}
    archive = make_archive(
        tmp_path / "b.tar.gz",
        [("bottle_x/manifest.json", json.dumps(manifest).encode()), ("bottle_x/a.jshc", b"a")],
    )
    with pytest.raises(UnsafeBottleError, match="soil"):
        unbottle(archive, tmp_path / "x")


def test_unbottle_refuses_more_than_one_top_level_directory(tmp_path):
    archive = make_archive(tmp_path / "b.tar.gz", [MANIFEST, ("other/x", b"x")])
    with pytest.raises(BottleError, match="one top-level directory"):
        unbottle(archive, tmp_path / "x")


def test_unbottle_failure_removes_its_temporary_directory(tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    archive = make_archive(tmp_path / "b.tar.gz", [("bottle_x/simulation.josh", b"x")])
    with pytest.raises(BottleError):
        unbottle(archive)
    assert list(scratch.iterdir()) == []


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture
def file_registry(tmp_path: Path, data_file: Path) -> Path:
    db = tmp_path / "sweep.duckdb"
    with RunRegistry(db) as r:
        make_run(r, {"soil": data_file})
        make_run(r, {"soil": tmp_path / "gone.jshd"}, run_hash="ffffffffffff", label="broken")
    return db


def run_cli(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_bottle_prints_the_archive_path(file_registry, tmp_path, capsys):
    code, out, err = run_cli(capsys, "bottle", file_registry, "baseline", "-o", tmp_path / "b")
    assert (code, err) == (0, "")
    archive = Path(out.strip())
    assert archive.parent == tmp_path / "b" and archive.is_file()
    assert manifest_of(archive)["run_hash"] == HASH


def test_cli_bottle_omit_jshd_and_errors(file_registry, tmp_path, capsys):
    code, out, err = run_cli(capsys, "bottle", file_registry, "broken", "-o", tmp_path / "b")
    assert code == 2 and out == ""
    assert err.startswith("joshreg: error: ") and "omit_jshd=True" in err and len(err.splitlines()) == 1
    code, out, _ = run_cli(capsys, "bottle", file_registry, "broken", "-o", tmp_path / "b", "--omit-jshd")
    assert code == 0 and manifest_of(Path(out.strip()))["omit_jshd"] is True
    code, _, err = run_cli(capsys, "bottle", file_registry, "nope", "-o", tmp_path / "b")
    assert code == 2 and "nope" in err


def test_cli_unbottle_needs_no_registry(file_registry, tmp_path, capsys):
    _, out, _ = run_cli(capsys, "bottle", file_registry, "baseline", "-o", tmp_path / "b")
    archive = Path(out.strip())
    target = tmp_path / "re run"
    code, out, err = run_cli(capsys, "unbottle", archive, "-d", target)
    assert (code, err) == (0, "")
    root = (target / f"bottle_baseline_{HASH}").resolve()
    assert f"unbottled to {root}" in out
    assert str(root / "data" / "soil.jshd") in out
    assert "./run.sh /path/to/joshsim-fat.jar" in out
    code, out, _ = run_cli(
        capsys, "unbottle", archive, "-d", tmp_path / "j", "--data-dir", tmp_path / "d", "--json"
    )
    [record] = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert record["file_mappings"] == {"soil": str(tmp_path / "d" / "soil.jshd")}
    assert (record["simulation"], record["replicates"]) == ("Main", 3)


def test_cli_unbottle_refuses_a_hostile_archive(tmp_path, capsys):
    archive = make_archive(tmp_path / "evil.tar.gz", HOSTILE["dot-dot"])
    code, out, err = run_cli(capsys, "unbottle", archive, "-d", tmp_path / "x")
    assert code == 2 and out == ""
    assert err.startswith("joshreg: error: refusing to unbottle") and len(err.splitlines()) == 1
    code, _, err = run_cli(capsys, "unbottle", tmp_path / "missing.tar.gz")
    assert code == 2 and "missing.tar.gz" in err
