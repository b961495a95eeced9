"""Bottles: one run packed as a ``.tar.gz`` that reproduces it with Java and the Josh jar alone,
and ``unbottle`` to unpack one safely.

A bottle holds one directory, ``bottle_<label>_<hash>`` (``bottle_<hash>`` without a label):
``simulation.josh``, the config under its original name, ``data/<file>`` per data file,
``run.sh`` (upstream joshpy's layout: the jar path is its first argument) and ``manifest.json``
(provenance, plus the registry events of the run). The registry gathers the facts into a
``BottleSpec`` and calls ``write_bottle``, so this module never touches the log or DuckDB.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import re
import shlex
import shutil
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from joshreg.errors import BottleError, RunNotFoundError, UnsafeBottleError
from joshreg.provenance.jobs import JobConfig

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "BottleSpec",
    "bottle_dirname",
    "config_file_name",
    "custom_tags",
    "render_run_sh",
    "unbottle",
    "write_bottle",
]

JOSH_NAME = "simulation.josh"
RUN_SH = "run.sh"
MANIFEST = "manifest.json"
DATA_DIR = "data"
DEFAULT_CONFIG_NAME = "sweep_config.jshc"
_RESERVED = {JOSH_NAME, RUN_SH, MANIFEST, DATA_DIR}
# Characters that cannot stay in one path component of the archive: separators and controls.
_UNSAFE_CHARS = re.compile(r"[/\\\x00-\x1f\x7f]")


@dataclass
class BottleSpec:
    """Everything a bottle says about one run, gathered by the registry.

    ``parameters`` are the values as registered (``85``, not the table's ``85.0``);
    ``data_files`` maps each Josh data name to the file's original path; ``events`` are the
    registry events of the run as JSON objects.
    """

    run_hash: str
    josh_content: str
    config_content: str
    config_name: str = DEFAULT_CONFIG_NAME
    label: str | None = None
    josh_path: str | None = None
    data_files: dict[str, str] = field(default_factory=dict)
    simulation: str = "Main"
    replicates: int = 1
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None
    error_message: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    git_hash: str | None = None


def _component(name: str) -> str:
    """``name`` made safe as one path component: separators and control characters become
    ``_``; quotes, spaces and non-ASCII stay (run.sh quotes them)."""
    name = _UNSAFE_CHARS.sub("_", name)
    return "_" if name in ("", ".", "..") else name


def bottle_dirname(run_hash: str, label: str | None) -> str:
    """``bottle_<label>_<hash>``, or ``bottle_<hash>`` for an unlabelled run."""
    return _component(f"bottle_{label}_{run_hash}" if label else f"bottle_{run_hash}")


def config_file_name(job_config: Mapping[str, Any] | None) -> str:
    """The file name the run's config had: the job config's ``config_name`` (``.jshc`` added
    when missing), else the base name of its ``config_path``, else ``sweep_config.jshc``.

    Josh scripts refer to configs by name, so a bottle must keep it (upstream always wrote
    ``sweep_config.jshc``).
    """
    jc = job_config or {}
    name = jc.get("config_name")
    if isinstance(name, str) and name.strip():
        name = _component(re.split(r"[/\\]", name.strip())[-1])
        if not name.endswith(".jshc"):
            name += ".jshc"
    else:
        path = jc.get("config_path")
        name = _component(re.split(r"[/\\]", path)[-1]) if isinstance(path, str) and path.strip() else ""
    return DEFAULT_CONFIG_NAME if not name or name in _RESERVED else name


def custom_tags(
    parameters: Mapping[str, Any],
    run_hash: str,
    label: str | None,
    data_files: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The ``--custom-tag`` values the sweep gave the run, sorted by name.

    Every parameter as written (``85`` stays ``85``), ``run_hash``, ``label`` when labelled,
    and ``<name>_file=<file name>`` for a parameter that names a data file (a file sweep).
    """
    tags = {str(k): _tag_value(v) for k, v in parameters.items()}
    for name, path in (data_files or {}).items():
        if name in parameters and f"{name}_file" not in tags:
            tags[f"{name}_file"] = _basename(path)
    tags["run_hash"] = run_hash
    if label:
        tags["label"] = label
    return dict(sorted(tags.items()))


def _tag_value(value: Any) -> str:
    # JSON values as the sweep wrote them: str() of the Python value, so True stays "True".
    return value if isinstance(value, str) else str(value)


def _basename(path: str) -> str:
    return _component(re.split(r"[/\\]", str(path).rstrip("/\\"))[-1])


def _data_members(data_files: Mapping[str, str]) -> dict[str, str]:
    """Name → path inside the bottle (``data/<file>``); a base name shared by two different
    files gets the data name as prefix instead of one clobbering the other."""
    out: dict[str, str] = {}
    taken: dict[str, str] = {}  # member → original path
    for name, path in sorted(data_files.items()):
        base, n = _basename(path), 1
        member = f"{DATA_DIR}/{base}"
        while taken.get(member, path) != path:
            prefix = _component(name if n == 1 else f"{name}-{n}")
            member = f"{DATA_DIR}/{prefix}-{base}"
            n += 1
        taken[member] = path
        out[name] = member
    return out


def _comment(text: str) -> str:
    return re.sub(r"[\r\n]+", " ", text)


def render_run_sh(
    spec: BottleSpec,
    data_members: Mapping[str, str],
    *,
    bottled_at: str,
    jar_version: str = "unknown",
    jar_sha256: str | None = None,
    omit_jshd: bool = False,
) -> str:
    """The bottle's ``run.sh``: ``./run.sh /path/to/joshsim-fat.jar`` runs the simulation.

    Upstream's layout: the jar is the first argument, the config is passed as
    ``--data <name>=<name>``, then one ``--data`` per file sorted by name, ``--replicates N``
    when N > 1 and one ``--custom-tag`` per tag sorted by key. Every value is shell-quoted.
    Data files left out (``omit_jshd``) keep their ``--data`` arguments: put the files in
    ``data/`` and the script runs.
    """
    q = shlex.quote
    parts = [
        'java -jar "${1:?Usage: ./run.sh /path/to/joshsim-fat.jar}"',
        f"run {JOSH_NAME}",
        q(spec.simulation),
        f"--data {q(f'{spec.config_name}={spec.config_name}')}",
    ]
    parts += [f"--data {q(f'{name}={data_members[name]}')}" for name in sorted(data_members)]
    if spec.replicates > 1:
        parts.append(f"--replicates {int(spec.replicates)}")
    parts += [f"--custom-tag {q(f'{k}={v}')}" for k, v in sorted(spec.tags.items())]
    header = [
        "#!/bin/bash",
        f"# Bottled by joshreg {_version()}",
        f"# JAR SHA256: {_comment(jar_sha256 or 'unknown')}",
        f"# JAR version: {_comment(jar_version)}",
        f"# Original run hash: {_comment(spec.run_hash)}",
        f"# Bottled at: {bottled_at}",
        *(["# Data files were left out (omit_jshd): put them in data/ first."] if omit_jshd else []),
        "",
        "set -euo pipefail",
        "",
    ]
    return "\n".join(header) + "\n" + " \\\n    ".join(parts) + "\n"


def _version() -> str:
    try:
        return metadata.version("joshreg")
    except metadata.PackageNotFoundError:
        return "unknown"


def _jar_facts(cli: Any) -> tuple[str, str | None]:
    """(version, sha256) of the jar a joshpy-style ``cli`` object runs; ("unknown", None) when
    there is none. The version comes from the object or the jar's manifest, never by running
    Java."""
    if cli is None:
        return "unknown", None
    jar = next(
        (
            getattr(cli, a)
            for a in ("_resolved_jar", "jar_path", "jar")
            if isinstance(getattr(cli, a, None), (str, os.PathLike))
        ),
        None,
    )
    if jar is None or not Path(jar).is_file():
        return "unknown", None
    with open(jar, "rb") as f:
        sha = hashlib.file_digest(f, "sha256").hexdigest()
    version = getattr(cli, "jar_version", None)
    if not isinstance(version, str) or not version:
        version = "unknown"
        try:
            with zipfile.ZipFile(jar) as z:
                for line in z.read("META-INF/MANIFEST.MF").decode("utf-8", "replace").splitlines():
                    key, _, value = line.partition(":")
                    if key.strip() == "Implementation-Version" and value.strip():
                        version = value.strip()
        except (OSError, KeyError, zipfile.BadZipFile):
            pass
    return version, sha


def _manifest(
    spec: BottleSpec,
    data_members: Mapping[str, str],
    *,
    bottled_at: str,
    omit_jshd: bool,
    jar_version: str,
    jar_sha256: str | None,
) -> dict[str, Any]:
    return {
        "joshreg_version": _version(),
        "jar_version": jar_version,
        "jar_sha256": jar_sha256,
        "run_hash": spec.run_hash,
        "label": spec.label,
        "simulation": spec.simulation,
        "replicates": spec.replicates,
        "parameters": spec.parameters,
        "custom_tags": spec.tags,
        "config_name": spec.config_name,
        "data_files": dict(data_members),
        "python_version": sys.version.split()[0],
        "platform": platform.platform(),
        "original_josh_path": spec.josh_path,
        "original_data_paths": dict(sorted(spec.data_files.items())),
        "git_hash": spec.git_hash,
        "bottled_at": bottled_at,
        "omit_jshd": omit_jshd,
        "exit_code": spec.exit_code,
        "stderr": spec.error_message,
        "events": spec.events,
    }


def write_bottle(
    spec: BottleSpec,
    output_dir: str | os.PathLike[str] = "bottles",
    omit_jshd: bool = False,
    cli: Any = None,
) -> Path:
    """Write ``spec`` as ``<output_dir>/<dirname>_<UTC YYYYmmdd_HHMMSS>.tar.gz``; return its path.

    Generated files are staged in a temporary directory (removed afterwards); the archive is
    written under a temporary name and then linked into place, so a reader never sees half an
    archive and an existing bottle is never replaced (a second one in the same second gets
    ``_2``). Members are in a fixed order with fixed owners, so equal inputs give equal
    contents. A data file that is missing raises ``FileNotFoundError`` unless ``omit_jshd``.
    """
    data_members = _data_members(spec.data_files)
    for name in [] if omit_jshd else sorted(data_members):
        if not Path(spec.data_files[name]).is_file():
            raise FileNotFoundError(
                f"data file '{name}' of run {spec.run_hash} not found: {spec.data_files[name]}. "
                "Restore it, or bottle with omit_jshd=True and pass the data at unbottle time"
            )
    now = datetime.now(UTC).replace(microsecond=0)
    bottled_at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    jar_version, jar_sha256 = _jar_facts(cli)
    dirname = bottle_dirname(spec.run_hash, spec.label)
    manifest = _manifest(
        spec,
        data_members,
        bottled_at=bottled_at,
        omit_jshd=omit_jshd,
        jar_version=jar_version,
        jar_sha256=jar_sha256,
    )
    texts = {
        JOSH_NAME: spec.josh_content,
        spec.config_name: spec.config_content,
        MANIFEST: json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n",
        RUN_SH: render_run_sh(
            spec,
            data_members,
            bottled_at=bottled_at,
            jar_version=jar_version,
            jar_sha256=jar_sha256,
            omit_jshd=omit_jshd,
        ),
    }
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="joshreg_bottle_") as staging:
        root = Path(staging) / dirname
        root.mkdir()
        for name, text in texts.items():
            (root / name).write_bytes(text.encode("utf-8"))
        (root / RUN_SH).chmod(0o755)
        files = {name: root / name for name in texts}
        if not omit_jshd:
            files.update({member: Path(spec.data_files[n]) for n, member in data_members.items()})
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dirname}.", suffix=".tar.gz.tmp", dir=out_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as raw:
                _write_tar(raw, dirname, files, mtime=int(now.timestamp()))
                raw.flush()
                os.fsync(raw.fileno())
            return _publish(tmp, out_dir, f"{dirname}_{now:%Y%m%d_%H%M%S}")
        finally:
            tmp.unlink(missing_ok=True)


def _write_tar(raw: io.BufferedWriter, dirname: str, files: Mapping[str, Path], mtime: int) -> None:
    """The archive: the top directory, then files sorted by path (directories before their
    contents); regular files only, links followed, owner root, fixed mtime."""

    def info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.size, ti.mtime = kind, mode, size, mtime
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        return ti

    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        tar.addfile(info(dirname, tarfile.DIRTYPE, 0o755))
        dirs_done: set[str] = set()
        for member in sorted(files):
            parent = member.rpartition("/")[0]
            if parent and parent not in dirs_done:
                tar.addfile(info(f"{dirname}/{parent}", tarfile.DIRTYPE, 0o755))
                dirs_done.add(parent)
            with open(files[member], "rb") as f:
                size = os.fstat(f.fileno()).st_size
                mode = 0o755 if member == RUN_SH else 0o644
                tar.addfile(info(f"{dirname}/{member}", tarfile.REGTYPE, mode, size), f)


def _publish(tmp: Path, out_dir: Path, stem: str) -> Path:
    """Give the finished archive its name without ever replacing an existing file."""
    n = 1
    while True:
        target = out_dir / (f"{stem}.tar.gz" if n == 1 else f"{stem}_{n}.tar.gz")
        try:
            os.link(tmp, target)
            return target
        except FileExistsError:
            n += 1
        except OSError:
            # A file system without hard links: check, then rename (good enough there).
            if target.exists():
                n += 1
                continue
            os.replace(tmp, target)
            return target


# --- unbottle -----------------------------------------------------------------------------------


def _safe_members(tar: tarfile.TarFile, archive: Path, target: Path) -> tuple[str, list[tarfile.TarInfo]]:
    """Every member checked before anything is written: regular files and directories only,
    relative, without ``..``, inside ``target`` even through existing symlinks, under one
    top-level directory. Returns that directory and the members."""
    members = tar.getmembers()
    real_target = os.path.realpath(target)
    roots: set[str] = set()
    for m in members:
        what = f"member '{m.name}' of {archive}"
        if not (m.isfile() or m.isdir()):
            kind = "a symlink" if m.issym() else "a hard link" if m.islnk() else "a device or special file"
            raise UnsafeBottleError(f"refusing to unbottle {archive}: {what} is {kind}")
        name = m.name.replace("\\", "/")
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
            raise UnsafeBottleError(f"refusing to unbottle {archive}: {what} is an absolute path")
        parts = PurePosixPath(name).parts
        if ".." in parts:
            raise UnsafeBottleError(f"refusing to unbottle {archive}: {what} contains '..'")
        dest = os.path.realpath(os.path.join(real_target, *parts))
        if os.path.commonpath([real_target, dest]) != real_target:
            raise UnsafeBottleError(
                f"refusing to unbottle {archive}: {what} would be written outside {target}"
            )
        if parts:
            roots.add(parts[0])
    if len(roots) != 1:
        found = ", ".join(sorted(roots)) or "nothing"
        raise BottleError(f"{archive} is not a bottle: expected one top-level directory, found {found}")
    return roots.pop(), members


def _extract(archive: Path, target: Path, run_hash: str | None) -> tuple[Path, dict[str, Any]]:
    """Check that the whole archive is a bottle (safe members, a manifest, a config for every
    run asked for), and only then extract it; return its directory and manifest."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            root, members = _safe_members(tar, archive, target)
            manifest = _read_manifest(tar, root, archive)
            _check_layout(members, root, manifest, archive, run_hash)
            target.mkdir(parents=True, exist_ok=True)
            tar.extractall(target, members=members, filter="data")
    except tarfile.FilterError as e:  # defence in depth: the checks above should have caught it
        raise UnsafeBottleError(f"refusing to unbottle {archive}: {e}") from e
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise BottleError(f"cannot read bottle {archive}: not a readable .tar.gz ({e})") from e
    return target / root, manifest


def _read_manifest(tar: tarfile.TarFile, root: str, archive: Path) -> dict[str, Any]:
    try:
        member = tar.getmember(f"{root}/{MANIFEST}")
    except KeyError:
        raise BottleError(f"{archive} is not a bottle: it has no {root}/{MANIFEST}") from None
    stream = tar.extractfile(member)
    try:
        manifest = json.loads(stream.read().decode("utf-8")) if stream is not None else None
    except (ValueError, UnicodeDecodeError) as e:
        raise BottleError(f"the {MANIFEST} of {archive} is not valid JSON: {e}") from e
    if not isinstance(manifest, dict):
        raise BottleError(f"the {MANIFEST} of {archive} is not a JSON object")
    return manifest


def _check_layout(
    members: list[tarfile.TarInfo],
    root: str,
    manifest: Mapping[str, Any],
    archive: Path,
    run_hash: str | None,
) -> None:
    """A config for the bottle's run, or for every job (and the one asked for) of a sweep bottle."""
    files = [PurePosixPath(m.name.replace("\\", "/")).parts for m in members if m.isfile()]
    jobs = {p[2] for p in files if len(p) > 3 and p[1] == "jobs"}
    if jobs:
        if run_hash is not None and run_hash not in jobs:
            raise RunNotFoundError(
                f"run hash '{run_hash}' not in {archive}; available: {', '.join(sorted(jobs))}"
            )
        for job in sorted(jobs if run_hash is None else {run_hash}):
            if not any(len(p) == 4 and p[1:3] == ("jobs", job) and p[3].endswith(".jshc") for p in files):
                raise BottleError(f"bottle directory {root}/jobs/{job} has no .jshc config")
        return
    if run_hash is not None and manifest.get("run_hash") not in (None, run_hash):
        raise RunNotFoundError(
            f"run hash '{run_hash}' not in {archive}; available: {manifest.get('run_hash')}"
        )
    if not any(len(p) == 2 and p[1].endswith(".jshc") for p in files):
        raise BottleError(f"bottle directory {root} has no .jshc config")


def _data_mappings(root: Path, manifest: Mapping[str, Any], data_dir: Path | None) -> dict[str, Path]:
    """Data files of a job: under ``data_dir`` (the originals' common parent replaced by it),
    else the files the bottle holds."""
    originals: dict[str, str] = {
        str(k): str(v) for k, v in (manifest.get("original_data_paths") or {}).items()
    }
    if data_dir is not None:
        if not originals:
            return {}
        try:
            common = os.path.commonpath([os.path.dirname(p) for p in originals.values()])
            return {name: data_dir / os.path.relpath(p, common or ".") for name, p in originals.items()}
        except ValueError:  # relative and absolute mixed, or different drives
            return {name: data_dir / _basename(p) for name, p in originals.items()}
    members = {str(k): str(v) for k, v in (manifest.get("data_files") or {}).items()}
    real_root = root.resolve()
    out: dict[str, Path] = {}
    for name in sorted(set(originals) | set(members)):
        path = (root / (members.get(name) or f"{DATA_DIR}/{_basename(originals[name])}")).resolve()
        if not path.is_relative_to(real_root):  # the manifest is data too: never point outside
            raise UnsafeBottleError(f"the {MANIFEST} of {root.name} puts data file '{name}' outside it")
        if path.is_file():
            out[name] = path
    return out


def _job(
    root: Path, job_dir: Path, manifest: Mapping[str, Any], data_dir: Path | None, shared: bool
) -> JobConfig:
    name = str(manifest.get("config_name") or "")
    named = job_dir / name if name and name == _component(name) else None  # one plain file name
    configs = (
        [named] if named and named.suffix == ".jshc" and named.is_file() else sorted(job_dir.glob("*.jshc"))
    )
    if not configs:
        raise BottleError(f"bottle directory {job_dir} has no .jshc config")
    josh = job_dir / JOSH_NAME
    replicates = manifest.get("replicates")
    kwargs: dict[str, Any] = {
        "config_path": configs[0].resolve(),
        "config_name": configs[0].name.removesuffix(".jshc"),  # the name Josh knows it by
        "simulation": str(manifest.get("simulation") or "Main"),
        "replicates": replicates if isinstance(replicates, int) and replicates > 0 else 1,
        "file_mappings": _data_mappings(root if shared else job_dir, manifest, data_dir),
    }
    if josh.is_file():
        kwargs["source_path"] = josh.resolve()
    if isinstance(manifest.get("label"), str) and manifest["label"]:
        kwargs["label"] = manifest["label"]
    return JobConfig(**kwargs)


def unbottle(
    archive: str | os.PathLike[str],
    extract_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    run_hash: str | None = None,
) -> list[JobConfig]:
    """Extract a bottle and return the ``JobConfig`` of each run in it, ready to run again.

    Every member is checked before anything is written: absolute paths, ``..``, links and
    devices raise ``UnsafeBottleError`` and nothing is extracted. ``extract_dir`` defaults to a
    new temporary directory. ``data_dir`` points the data files at another copy of the
    originals (for bottles made with ``omit_jshd=True``). A sweep bottle (``jobs/``) gives one
    config per job, or only ``run_hash``'s. Missing archive → ``FileNotFoundError``; corrupt
    archive or no ``manifest.json`` → ``BottleError`` (a ``ValueError``).
    """
    path = Path(archive)
    if not path.is_file():
        raise FileNotFoundError(f"bottle not found: {path}")
    if extract_dir is not None:
        return _unbottle(path, Path(extract_dir), data_dir, run_hash)
    target = Path(tempfile.mkdtemp(prefix="joshreg_unbottle_"))
    try:
        return _unbottle(path, target, data_dir, run_hash)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # our own temporary directory: leave nothing
        raise


def _unbottle(
    path: Path, target: Path, data_dir: str | os.PathLike[str] | None, run_hash: str | None
) -> list[JobConfig]:
    root, manifest = _extract(path, target, run_hash)
    data = None if data_dir is None else Path(data_dir)
    jobs_dir = root / "jobs"
    if jobs_dir.is_dir():
        job_dirs = sorted(d for d in jobs_dir.iterdir() if d.is_dir())
        if run_hash is not None:
            job_dirs = [d for d in job_dirs if d.name == run_hash]
        return [_job(root, d, manifest, data, shared=True) for d in job_dirs]
    return [_job(root, root, manifest, data, shared=False)]
