"""RegistryCallback: records each job's execution in a registry, with its real start and end.

Upstream's ``RegistryCallback.record(job, result)`` writes the start and the completion of a run
together, after the simulation finished, so every run looks instantaneous. Here a run's start is
recorded when it starts and its completion when it ends, so ``completed_at - started_at`` is
the run's duration::

    callback = RegistryCallback(registry, session_id)
    for job in job_set:
        with callback.running(job) as run:
            run.finish(cli.run(to_run_config(job)))

or ``run_id = callback.start(job)`` … ``callback.finish(run_id, result)``. ``record(job,
result)`` keeps upstream's one-call shape for code that only learns of a run afterwards.

Jobs and results are duck-typed: a job needs ``run_hash``, ``parameters``, ``replicates`` and
``config_path`` (joshpy's ``ExpandedJob`` and ``joshreg.jobs.ExpandedJob`` both do); a result
needs ``exit_code``, ``success`` and ``stderr`` (joshpy's ``CLIResult`` or ``RunResult``). The
registry may be a ``RunRegistry`` or a worker's ``RunRecorder``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joshreg.log.events import json_value
from joshreg.provenance.jobs import hash_file

__all__ = ["RegistryCallback", "RunResult", "RunningJob"]

_JOB_ATTRIBUTES = ("run_hash", "parameters", "replicates", "config_path")
_RESULT_ATTRIBUTES = ("exit_code", "success", "stderr")

# The exit code recorded for a run that ended without a process exit code (an exception in the
# ``running`` block, or no result given).
NO_EXIT_CODE = -1


@dataclass
class RunResult:
    """The outcome of one simulation run, for callers without joshpy's ``CLIResult``.

    ``duration`` (seconds), when known, is stored in the run's metadata by ``record``, which
    cannot otherwise know how long a run it hears of afterwards took.
    """

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    duration: float | None = None

    @property
    def success(self) -> bool:
        return self.exit_code == 0


def _require(obj: Any, attributes: tuple[str, ...], what: str) -> None:
    missing = [a for a in attributes if not hasattr(obj, a)]
    if missing:
        raise TypeError(
            f"RegistryCallback needs a {what} with {', '.join(attributes)}; "
            f"{type(obj).__name__} has no {', '.join(missing)}"
        )


def _error_message(result: Any) -> str | None:
    """None for a successful run; otherwise its stderr, or its exit code when stderr is empty."""
    if result.success:
        return None
    stderr = result.stderr
    if stderr is None or not str(stderr).strip():
        return f"the run failed with exit code {result.exit_code} and wrote nothing to stderr"
    return str(stderr)


class RunningJob:
    """A job whose start is recorded; call ``finish(result)`` once it has a result."""

    def __init__(self, callback: RegistryCallback, job: Any, run_id: str) -> None:
        self.callback = callback
        self.job = job
        self.run_id = run_id
        self.finished = False

    def finish(self, result: Any) -> None:
        """Record the result (exit code, and stderr when it failed) as the run's completion."""
        self.callback.finish(self.run_id, result)
        self.finished = True


class RegistryCallback:
    """Records job executions of one session in ``registry`` (a RunRegistry or RunRecorder).

    ``run_ids`` maps each job's ``run_hash`` to the id of its latest execution, as upstream's
    ``SweepResult.run_ids`` does, so results can be loaded against the right run afterwards.
    The job's configuration must already be registered (``register_run``).
    """

    def __init__(self, registry: Any, session_id: str) -> None:
        for method in ("start_run", "complete_run"):
            if not callable(getattr(registry, method, None)):
                raise TypeError(
                    f"RegistryCallback records into a RunRegistry or RunRecorder; "
                    f"{type(registry).__name__} has no {method}()"
                )
        self.registry = registry
        self.session_id = session_id
        self.run_ids: dict[str, str] = {}

    def register(self, job: Any) -> None:
        """Register ``job``'s configuration in the session (a ``RunRegistry`` only): its config
        text, Josh source, data files with their hashes, parameters, and the job's declared
        ``attributes`` in the same registration event."""
        register = getattr(self.registry, "register_run", None)
        if not callable(register):
            raise TypeError(
                f"registering a configuration needs a RunRegistry; {type(self.registry).__name__} "
                "records executions only (register the jobs where the registry is open)"
            )
        source = getattr(job, "source_path", None)
        files = getattr(job, "file_mappings", None) or {}
        josh = Path(source).read_text(encoding="utf-8") if source and Path(source).exists() else None
        register(
            self.session_id,
            job.run_hash,
            None if source is None else str(source),
            job.config_content,
            {name: {"path": str(path), "hash": hash_file(path)} for name, path in files.items()} or None,
            job.parameters,
            josh_content=josh,
            attributes=dict(getattr(job, "attributes", None) or {}) or None,
        )

    def start(self, job: Any, *, replicate: int = 0, metadata: dict[str, Any] | None = None) -> str:
        """Record that ``job`` starts now; return the run id to ``finish`` later.

        The run's metadata holds the job's ``parameters`` and ``replicates`` (upstream's keys)
        plus any ``metadata`` given; its output path is the directory of the job's config.
        """
        _require(job, _JOB_ATTRIBUTES, "job")
        config_path = job.config_path
        run_id = self.registry.start_run(
            job.run_hash,
            session_id=self.session_id,
            replicate=replicate,
            output_path=str(Path(config_path).parent) if config_path else None,
            metadata=json_value(
                {"parameters": job.parameters, "replicates": job.replicates, **(metadata or {})}
            ),
        )
        self.run_ids[job.run_hash] = run_id
        return run_id

    def finish(self, run_id: str, result: Any) -> None:
        """Record that run ``run_id`` ended now with ``result``.

        A failed result's error message is its stderr (or a sentence naming the exit code
        when stderr is empty). ``result`` is checked before anything is written.
        """
        _require(result, _RESULT_ATTRIBUTES, "result")
        self.registry.complete_run(run_id, int(result.exit_code), _error_message(result))

    def record(self, job: Any, result: Any) -> str:
        """Upstream's call: record a run that already ended, as starting and ending now.

        Both objects are checked before anything is written. When ``result`` has a numeric
        ``duration`` (seconds) it is kept in the run's metadata as ``duration_seconds``; the
        recorded times themselves are those of this call. Prefer ``start``/``finish`` or
        ``running`` when you can call in before the run starts.
        """
        _require(job, _JOB_ATTRIBUTES, "job")
        _require(result, _RESULT_ATTRIBUTES, "result")
        duration = getattr(result, "duration", None)
        extra = None
        if isinstance(duration, (int, float)) and not isinstance(duration, bool) and math.isfinite(duration):
            extra = {"duration_seconds": float(duration)}
        run_id = self.start(job, metadata=extra)
        self.finish(run_id, result)
        return run_id

    @contextmanager
    def running(self, job: Any, *, replicate: int = 0) -> Iterator[RunningJob]:
        """Record the start on entry; call ``run.finish(result)`` inside the block.

        If the block raises before ``finish``, the run is completed as failed (exit code -1,
        the exception as its error message) and the exception propagates. If the block ends
        without ``finish``, the run is completed as failed too, so no run is left open.
        """
        run = RunningJob(self, job, self.start(job, replicate=replicate))
        try:
            yield run
        except BaseException as exc:
            if not run.finished:
                message = f"the run raised {type(exc).__name__}: {exc}"
                self.registry.complete_run(run.run_id, NO_EXIT_CODE, message)
            raise
        if not run.finished:
            self.registry.complete_run(
                run.run_id, NO_EXIT_CODE, "the run ended without a result (finish() was not called)"
            )
