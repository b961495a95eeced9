"""Job configurations, parameter sweeps and run hashes, as upstream joshpy defines them.

A ``JobConfig`` says what to run: a ``.jshc`` Jinja template (or a raw ``.jshc``), a Josh
source, data files and an optional ``SweepConfig`` of parameters. ``JobExpander`` turns it into
one ``ExpandedJob`` per parameter combination, each with its rendered config written to disk and
its ``run_hash``. ``RunRegistry.create_session`` stores ``JobConfig.to_dict()``, so the dicts
here use upstream's keys and omission rules exactly: a session created from an upstream
``JobConfig`` and one created from this one hold the same ``metadata["job_config"]``, and
``SessionInfo.job_config`` reads either back. The run hash is upstream's, byte for byte, so both
name the same run the same way.

jinja2 is imported when a ``JobExpander`` is made.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joshreg.closing import Closeable
from joshreg.errors import InvalidArgumentError
from joshreg.provenance.sweep import (
    CompoundSweepParameter,
    ConfigSweepParameter,
    FileSweepParameter,
    SweepConfig,
    expand_values,
)

__all__ = [
    "CompoundSweepParameter",
    "ConfigSweepParameter",
    "ExpandedJob",
    "FileSweepParameter",
    "JobConfig",
    "JobExpander",
    "JobSet",
    "SweepConfig",
    "compute_run_hash",
    "expand_values",
    "hash_file",
]


PathLike = str | os.PathLike[str]


# Upstream's defaults: fields equal to these are left out of ``to_dict()``.
DEFAULT_SIMULATION = "Main"


DEFAULT_CONFIG_NAME = "sweep_config"


def hash_file(path: PathLike) -> str:
    """The MD5 hex digest of a file's bytes (read in chunks, so large ``.jshd`` files are fine).

    Used for the content part of a run hash and for the ``hash`` of registered file mappings.
    """
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(8192), b""):
            digest.update(chunk)
    return digest.hexdigest()


def compute_run_hash(
    josh_path: PathLike | None,
    config_content: str,
    file_mappings: Mapping[str, PathLike] | None = None,
    seed: int | None = None,
    import_files: Sequence[tuple[str, PathLike]] | None = None,
) -> str:
    """The 12-hex-character run hash upstream joshpy gives a simulation specification.

    One MD5 is fed, in order: the Josh source's text (when ``josh_path`` is given), the rendered
    config text, then for each data file in name order its name and the MD5 hex of its bytes,
    then, only when ``seed`` is not None, ``seed=`` and the seed; last, only when
    ``import_files`` (``(relative path, path)`` pairs of the Josh files the source imports) is
    not empty, each relative path in order and the MD5 hex of that file's bytes. Everything is
    UTF-8. What is optional comes last and only when set, so older runs keep their hashes.

    Paths themselves are not hashed, only contents and mapping names: moving a data file keeps
    the hash, editing it changes it. A missing source or data file raises FileNotFoundError.
    """
    digest = hashlib.md5()
    if josh_path is not None:
        source = Path(josh_path)
        if not source.exists():
            raise FileNotFoundError(f"Josh source not found: {source} (needed for the run hash)")
        digest.update(source.read_text(encoding="utf-8").encode("utf-8"))
    digest.update(config_content.encode("utf-8"))
    mappings = dict(file_mappings or {})
    for name in sorted(mappings):
        data = Path(mappings[name])
        if not data.exists():
            raise FileNotFoundError(
                f"data file not found: {data} (file mapping '{name}'); every mapped file must "
                "exist when the run hash is computed"
            )
        digest.update(name.encode("utf-8"))
        digest.update(hash_file(data).encode("utf-8"))
    if seed is not None:
        digest.update(b"seed=")
        digest.update(str(seed).encode("utf-8"))
    for relative, path in sorted(import_files or (), key=lambda pair: pair[0]):
        imported = Path(path)
        if not imported.exists():
            raise FileNotFoundError(f"imported Josh file not found: {imported} (imported as '{relative}')")
        digest.update(relative.encode("utf-8"))
        digest.update(hash_file(imported).encode("utf-8"))
    return digest.hexdigest()[:12]


_PATH_FIELDS = ("template_path", "config_path", "source_path", "source_template_path")


_TEXT_FIELDS = ("upload_source_path", "upload_config_path", "upload_data_path", "output_steps")


@dataclass
class JobConfig:
    """What to run: a config source, a Josh source, data files, replicates and a sweep.

    The config comes from one of ``template_path`` (a ``.jshc.j2`` file), ``template_string``
    or ``config_path`` (a raw ``.jshc``, used as is); with none the config is empty. The Josh
    source is ``source_path``, or ``source_template_path`` rendered once with ``template_vars``.
    ``config_name`` is the name Josh knows the config by (``config <name>.x``); the expander
    uses ``sweep_config`` when it is None. ``label`` is not serialised (upstream's rule): it
    names one run, not the configuration.
    """

    template_path: Path | None = None
    template_string: str | None = None
    config_path: Path | None = None
    config_name: str | None = None
    simulation: str = DEFAULT_SIMULATION
    replicates: int = 1
    source_path: Path | None = None
    source_template_path: Path | None = None
    template_vars: dict[str, Any] = field(default_factory=dict)
    sweep: SweepConfig | None = None
    file_mappings: dict[str, Path] = field(default_factory=dict)
    upload_source_path: str | None = None
    upload_config_path: str | None = None
    upload_data_path: str | None = None
    label: str | None = None
    output_steps: str | None = None
    seed: int | None = None
    crs: str | None = None
    use_float64: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sources = [
            n for n in ("template_path", "template_string", "config_path") if getattr(self, n) is not None
        ]
        if len(sources) > 1:
            raise InvalidArgumentError(
                f"a JobConfig takes one config source; got {', '.join(sources)} "
                "(template_path, template_string and config_path are alternatives)"
            )
        if self.source_path is not None and self.source_template_path is not None:
            raise InvalidArgumentError("a JobConfig takes source_path or source_template_path, not both")
        for name in _PATH_FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                setattr(self, name, Path(value))
        self.file_mappings = {str(k): Path(v) for k, v in self.file_mappings.items()}

    def to_dict(self) -> dict[str, Any]:
        """Upstream's dict: only fields that differ from their defaults, paths as strings."""
        out: dict[str, Any] = {}
        if self.template_path:
            out["template_path"] = str(self.template_path)
        if self.template_string:
            out["template_string"] = self.template_string
        if self.config_path:
            out["config_path"] = str(self.config_path)
        if self.config_name is not None:
            out["config_name"] = self.config_name
        if self.simulation != DEFAULT_SIMULATION:
            out["simulation"] = self.simulation
        if self.replicates != 1:
            out["replicates"] = self.replicates
        if self.source_path:
            out["source_path"] = str(self.source_path)
        if self.source_template_path:
            out["source_template_path"] = str(self.source_template_path)
        if self.template_vars:
            out["template_vars"] = dict(self.template_vars)
        if self.sweep:
            out["sweep"] = self.sweep.to_dict()
        if self.file_mappings:
            out["file_mappings"] = {k: str(v) for k, v in self.file_mappings.items()}
        if self.upload_source_path:
            out["upload_source_path"] = self.upload_source_path
        if self.upload_config_path:
            out["upload_config_path"] = self.upload_config_path
        if self.upload_data_path:
            out["upload_data_path"] = self.upload_data_path
        if self.output_steps:
            out["output_steps"] = self.output_steps
        if self.seed is not None:
            out["seed"] = self.seed
        if self.crs:
            out["crs"] = self.crs
        if self.use_float64:
            out["use_float64"] = True
        if self.attributes:
            out["attributes"] = dict(self.attributes)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobConfig:
        """The inverse of ``to_dict``: absent keys (and None values) take their defaults.

        Unknown keys are ignored, so dicts written by newer upstream versions still load.
        """
        kwargs: dict[str, Any] = {}
        simple = ("template_string", "config_name", "simulation", "replicates", *_TEXT_FIELDS)
        for name in (*simple, "seed", "crs", "use_float64"):
            if data.get(name) is not None:
                kwargs[name] = data[name]
        for name in _PATH_FIELDS:
            if data.get(name) is not None:
                kwargs[name] = Path(data[name])
        if data.get("template_vars") is not None:
            kwargs["template_vars"] = dict(data["template_vars"])
        if data.get("sweep") is not None:
            kwargs["sweep"] = SweepConfig.from_dict(data["sweep"])
        if data.get("file_mappings") is not None:
            kwargs["file_mappings"] = {k: Path(v) for k, v in data["file_mappings"].items()}
        if data.get("attributes") is not None:
            kwargs["attributes"] = dict(data["attributes"])
        return cls(**kwargs)


@dataclass
class ExpandedJob:
    """One concrete job of a sweep: its rendered config (written to ``config_path``) and hash.

    ``parameters`` holds the swept values as registered (a file parameter's value is its
    label); ``custom_tags`` are what Josh gets as ``--custom-tag`` to fill export paths.
    ``config_name`` includes ``.jshc``, as Josh's ``--data`` flag needs.
    """

    config_content: str
    config_path: Path
    config_name: str
    run_hash: str
    parameters: dict[str, Any]
    simulation: str
    replicates: int
    source_path: Path | None = None
    file_mappings: dict[str, Path] = field(default_factory=dict)
    custom_tags: dict[str, str] = field(default_factory=dict)
    label: str | None = None
    upload_source_path: str | None = None
    upload_config_path: str | None = None
    upload_data_path: str | None = None
    output_steps: str | None = None
    seed: int | None = None
    crs: str | None = None
    use_float64: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobSet(Closeable):
    """The jobs of an expanded ``JobConfig``; iterate over it, or use it as a context manager
    to remove a temporary config directory afterwards."""

    jobs: list[ExpandedJob] = field(default_factory=list)
    temp_dir: Path | None = None
    template_path: Path | None = None

    @property
    def total_jobs(self) -> int:
        """Number of job configurations (what ``SessionInfo.total_jobs`` means)."""
        return len(self.jobs)

    @property
    def total_replicates(self) -> int:
        """Replicates summed over all jobs."""
        return sum(job.replicates for job in self.jobs)

    def cleanup(self) -> None:
        """Delete the temporary directory the configs were written to, if the expander made one.

        A directory the caller passed as ``output_dir`` is never deleted.
        """
        if self.temp_dir is not None and self.temp_dir.exists():
            shutil.rmtree(self.temp_dir)
        self.temp_dir = None

    def close(self) -> None:
        """The ``with`` block's end: remove the temporary directory, as ``cleanup()`` does."""
        self.cleanup()

    def __len__(self) -> int:
        return len(self.jobs)

    def __iter__(self) -> Iterator[ExpandedJob]:
        return iter(self.jobs)


def _parse_jshc(content: str) -> dict[str, int | float]:
    """``name = value unit`` lines of a raw ``.jshc`` as numbers (all or nothing, like upstream).

    Raises ValueError on the first line that is not a comment, blank or numeric assignment.
    """
    params: dict[str, int | float] = {}
    for number, line in enumerate(content.splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, sep, rest = text.partition("=")
        name, tokens = name.strip(), rest.split()
        if not sep or not name or not tokens:
            raise ValueError(f"line {number}: expected 'name = value unit', got {text!r}")
        params[name] = float(tokens[0]) if "." in tokens[0] else int(tokens[0])
    return params


@dataclass
class JobExpander:
    """Expands a ``JobConfig`` into a ``JobSet``: one job per combination of swept values.

    Templates are rendered with ``jinja_env`` (a default ``jinja2.Environment`` without
    autoescaping, as upstream, so the same template renders the same text and the same hash).
    Template files are loaded through ``jinja_env.overlay`` so ``{% include %}`` works relative
    to the template's directory and your filters still apply.
    """

    jinja_env: Any = None

    def __post_init__(self) -> None:
        if self.jinja_env is None:
            try:
                import jinja2
            except ImportError as exc:  # pragma: no cover - jinja2 is a dependency
                raise ImportError(
                    "JobExpander needs jinja2 to render templates: pip install 'jinja2>=3.1'"
                ) from exc
            self.jinja_env = jinja2.Environment(autoescape=False)

    def _file_template(self, path: Path) -> Any:
        import jinja2

        env = self.jinja_env.overlay(loader=jinja2.FileSystemLoader(str(path.parent)))
        return env.get_template(path.name)

    def expand(self, config: JobConfig, output_dir: PathLike | None = None) -> JobSet:
        """Render every job's config into ``output_dir/job_<i:04d>_<hash>/<config_name>``.

        Without ``output_dir`` a temporary directory is made; ``JobSet.cleanup()`` removes it.
        A config from ``config_path`` is used as is and, with no swept values, its numeric
        ``name = value`` lines become the job's parameters. Every parameter is also a custom
        tag, with ``run_hash`` and (when set) ``label``; a swept file adds ``<name>`` (its label)
        and ``<name>_file`` (its file name).
        """
        config_name = config.config_name or DEFAULT_CONFIG_NAME
        if not config_name.endswith(".jshc"):
            config_name += ".jshc"
        temp_dir = None
        if output_dir is None:
            temp_dir = Path(tempfile.mkdtemp(prefix="josh_sweep_"))
            out = temp_dir
        else:
            out = Path(output_dir)
            out.mkdir(parents=True, exist_ok=True)
        try:
            jobs = self._expand_into(config, config_name, out)
        except BaseException:
            if temp_dir is not None:
                shutil.rmtree(temp_dir, ignore_errors=True)
            raise
        return JobSet(jobs=jobs, temp_dir=temp_dir, template_path=config.template_path)

    def _expand_into(self, config: JobConfig, config_name: str, out: Path) -> list[ExpandedJob]:
        source_path = config.source_path
        if config.source_template_path is not None:
            rendered_source = self._file_template(config.source_template_path).render(**config.template_vars)
            source_path = out / config.source_template_path.stem  # model.josh.j2 -> model.josh
            if not source_path.suffix:
                source_path = source_path.with_suffix(".josh")
            source_path.write_text(rendered_source, encoding="utf-8")

        template = None
        raw = ""
        if config.template_path is not None:
            template = self._file_template(config.template_path)
        elif config.template_string is not None:
            template = self.jinja_env.from_string(config.template_string)
        elif config.config_path is not None:
            raw = config.config_path.read_text(encoding="utf-8")

        combos = config.sweep.expand() if config.sweep else [{}]
        jobs = []
        for i, combo in enumerate(combos):
            params: dict[str, Any] = {}
            files = dict(config.file_mappings)
            tags: dict[str, str] = {}
            for name, value in combo.items():
                if isinstance(value, dict) and "path" in value and "label" in value:
                    files[name] = Path(value["path"])
                    params[name] = value["label"]
                    tags[name] = value["label"]
                    tags[f"{name}_file"] = files[name].name
                else:
                    params[name] = value
            content = template.render(**{**config.template_vars, **params}) if template else raw
            if raw and not params:
                # A config we cannot read as numbers still runs; it just has no parameters.
                with contextlib.suppress(ValueError):
                    params.update(_parse_jshc(raw))
            for name, value in params.items():
                tags.setdefault(str(name), str(value))
            run_hash = compute_run_hash(source_path, content, files or None, seed=config.seed)
            tags["run_hash"] = run_hash
            if config.label is not None:
                tags["label"] = config.label
            job_dir = out / f"job_{i:04d}_{run_hash}"
            job_dir.mkdir(parents=True, exist_ok=True)
            written = job_dir / config_name
            written.write_text(content, encoding="utf-8")
            jobs.append(
                ExpandedJob(
                    config_content=content,
                    config_path=written,
                    config_name=config_name,
                    run_hash=run_hash,
                    parameters=params,
                    simulation=config.simulation,
                    replicates=config.replicates,
                    source_path=source_path,
                    file_mappings=files,
                    custom_tags=tags,
                    label=config.label,
                    upload_source_path=config.upload_source_path,
                    upload_config_path=config.upload_config_path,
                    upload_data_path=config.upload_data_path,
                    output_steps=config.output_steps,
                    seed=config.seed,
                    crs=config.crs,
                    use_float64=config.use_float64,
                    attributes=dict(config.attributes),  # each job its own copy
                )
            )
        return jobs
