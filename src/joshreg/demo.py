"""A small sweep, end to end: ``python -m joshreg.demo [--dir DIR]``.

It shows what the event log buys: a ``JobConfig`` grid over a ``.jshc`` template expands into
jobs with upstream's run hashes; four worker processes run a stand-in simulation, record each
run's start and end as they happen, write Josh-format CSV exports and load them into one
registry at the same time with no lock, while the main process keeps the registry open; then
labels move (every move stays in the history), the results are summarised, queried through a
time and a spatial filter and plotted, the baseline run is bottled and unbottled, and two runs'
configs are diffed. The directory (``demo-output/`` by default) is wiped first, so the demo
always starts fresh.

``run_demo_s3`` runs the same sweep with its events in a bucket (``just demo-s3`` starts a
SeaweedFS for it: ``joshreg.testing.demo_s3``): worker subprocesses that share nothing but the
bucket's URL and the ``AWS_*`` variables record there, each in its own temporary folder, and a
registry in another folder catches up from the bucket and prints the same report.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import multiprocessing
import os
import pickle
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from joshreg.errors import JoshregError
from joshreg.log.names import default_events_path
from joshreg.log.store.s3options import resolve_s3_options, s3_client, split_s3_url
from joshreg.models import Requirement, TargetDesign
from joshreg.provenance.bottle import unbottle
from joshreg.provenance.callback import RegistryCallback, RunResult
from joshreg.provenance.jobs import ConfigSweepParameter, ExpandedJob, JobConfig, JobExpander, SweepConfig
from joshreg.registry.recorder import RunRecorder
from joshreg.registry.registry import RunRegistry
from joshreg.registry.text import (
    HISTORY_HEADERS,
    LABEL_HEADERS,
    SESSION_HEADERS,
    format_duration,
    format_table,
    history_rows,
    label_table_row,
    session_table_row,
)
from joshreg.results.plots import plot_comparison, plot_spatial, plot_timeseries

__all__ = ["JOSH_SOURCE", "TEMPLATE", "demo_config", "main", "run_demo", "run_demo_s3", "s3_worker"]

MAX_GROWTH = (40, 60, 80)
SURVIVAL_RATE = (0.80, 0.85, 0.90, 0.95)
WORKERS = 4
# The stand-in landscape: GRID x GRID patches of CELL degrees, south-west corner at ORIGIN.
GRID = 4
CELL = 0.05
ORIGIN = (-116.0, 34.0)
STEPS = 10
# Josh's export layout: variables first, then the position columns, step and replicate last.
EXPORT_COLUMNS = (
    "avg.height",
    "treeCount",
    "position.x",
    "position.y",
    "position.longitude",
    "position.latitude",
    "step",
    "replicate",
)
# Marks a directory as the demo's own, so that wiping it can never remove someone's files.
MARKER = ".joshreg-demo"


REPLICATES = 3
# The model the demo's stand-in simulation plays, as Josh source: what a bottle carries.
JOSH_SOURCE = """\
start simulation Main
  grid.size = 5 km
  grid.low = 34 degrees latitude, -116 degrees longitude
  grid.high = 34.2 degrees latitude, -115.8 degrees longitude
  steps.low = 0 count
  steps.high = 9 count
  exportFiles.patch = "file:///tmp/demo_{run_hash}_{replicate}.csv"
end simulation

start patch Default
  Tree.init = create 10 count of Tree
  export.avg.height.step = mean(Tree.height)
  export.treeCount.step = count(Tree)
end patch

start organism Tree
  height.init = 1 m
  height.step = prior.height + config sweep_config.maxGrowth / 100 m
  survives.step = sample uniform from 0 % to 100 % < config sweep_config.survivalRate * 100 %
end organism
"""
# The config template: one file per job, rendered with the job's parameters (Jinja).
TEMPLATE = """\
# growth per step (cm) and yearly survival
maxGrowth = {{ maxGrowth }}
survivalRate = {{ survivalRate }}
"""


def demo_config(source_path: Path, template_path: Path) -> JobConfig:
    """The demo's sweep: 3 growth rates x 4 survival rates, 3 replicates each."""
    return JobConfig(
        template_path=template_path,
        source_path=source_path,
        replicates=REPLICATES,
        sweep=SweepConfig(
            config_parameters=[
                ConfigSweepParameter("maxGrowth", list(MAX_GROWTH)),
                ConfigSweepParameter("survivalRate", list(SURVIVAL_RATE)),
            ]
        ),
    )


def _fails(params: dict[str, float]) -> bool:
    # One corner of the grid "crashes", so the tables show a failure too.
    return params["maxGrowth"] == MAX_GROWTH[-1] and params["survivalRate"] == SURVIVAL_RATE[-1]


def simulate(run_hash: str, params: dict[str, float], replicate: int) -> list[tuple[object, ...]]:
    """A stand-in for Josh: trees per patch survive, recruit and grow for STEPS steps.

    Survival follows ``survivalRate``, growth ``maxGrowth``; patches to the north-east are
    kinder, and the replicate seeds the randomness, so replicates differ but reruns do not.
    Rows are in ``EXPORT_COLUMNS`` order.
    """
    rng = random.Random(f"{run_hash}:{replicate}")
    growth, survival = params["maxGrowth"], params["survivalRate"]
    rows: list[tuple[object, ...]] = []
    for x, y in itertools.product(range(GRID), range(GRID)):
        suitability = 0.6 + 0.8 * (x + y) / (2 * GRID - 2)
        trees, height = rng.randint(8, 14), 1.0
        lon, lat = ORIGIN[0] + (x + 0.5) * CELL, ORIGIN[1] + (y + 0.5) * CELL
        for step in range(STEPS):
            if step:
                survivors = sum(rng.random() < survival for _ in range(trees))
                trees = survivors + round(rng.uniform(0, 4) * suitability)
                crowding = max(0.0, 1.0 - trees / 60)
                height += growth / 100 * suitability * crowding * rng.uniform(0.6, 1.4)
            rows.append(
                (round(height, 3), trees, x + 0.5, y + 0.5, round(lon, 4), round(lat, 4), step, replicate)
            )
    return rows


def write_export(path: Path, rows: list[tuple[object, ...]]) -> None:
    """Write rows the way Josh's CSV export does (header, comma-separated, no index)."""
    lines = [",".join(EXPORT_COLUMNS), *(",".join(str(v) for v in row) for row in rows)]
    path.write_text("\n".join(lines) + "\n")


def _worker(db_path: str, session_id: str, jobs: list[ExpandedJob], out_dir: str) -> None:
    """One worker process: simulate, export and load each of its runs; never opens the DuckDB file."""
    exports = Path(out_dir) / "exports"
    with RunRecorder(db_path, session_id=session_id) as rec:
        _record_jobs(rec, session_id, jobs, exports, str(exports))


def _record_jobs(
    rec: RunRecorder, session_id: str, jobs: list[ExpandedJob], exports: Path, outputs: str
) -> None:
    """Simulate, export and load each job's runs; ``outputs`` is where the exports are kept
    (``exports`` itself, or a bucket they are uploaded to), recorded as the run's output.

    The callback records each start before the simulation and each end after it, so the
    registry's durations are the simulations' own.
    """
    callback = RegistryCallback(rec, session_id)
    for job in jobs:
        h, params = job.run_hash, job.parameters
        run_id = callback.start(job)
        if _fails(params):
            callback.finish(run_id, RunResult(1, stderr="simulated crash: population exploded at step 7"))
            continue
        paths = []
        for r in range(job.replicates):
            paths.append(exports / f"{h}_{r}.csv")
            write_export(paths[-1], simulate(h, params, r))
        callback.finish(run_id, RunResult(0))
        if outputs.startswith("s3://"):
            _upload(paths, outputs)
        rows = sum(rec.load_csv(path, run_id, h) for path in paths)
        rec.register_output(run_id, "export.patch", f"{outputs}/{h}_{{replicate}}.csv", row_count=rows)


def _upload(paths: list[Path], url: str) -> None:
    """Put each file under ``url`` (``s3://bucket/prefix``), signed in from the environment."""
    import obstore

    bucket, prefix = split_s3_url(url)
    client = s3_client(bucket, resolve_s3_options())
    for path in paths:
        obstore.put(client, f"{prefix}/{path.name}".lstrip("/"), path.read_bytes())


def _prepare(directory: Path) -> None:
    if directory.exists():
        if any(directory.iterdir()) and not (directory / MARKER).exists():
            raise JoshregError(
                f"{directory} is not empty and was not made by the demo; pass another --dir "
                "(the demo wipes its directory)"
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("made by python -m joshreg.demo; wiped on each run\n")


def run_demo(directory: Path, out: TextIO | None = None) -> Path:
    """Run the sweep in ``directory``, print its tables to ``out`` (stdout); return the registry path."""
    out = out or sys.stdout
    t0 = time.perf_counter()
    _prepare(directory)
    (directory / "exports").mkdir()
    config, jobs = _sweep(directory)
    db_path = directory / "sweep.duckdb"

    with RunRegistry(db_path) as reg:
        sid = _register(reg, config, jobs)
        ctx = multiprocessing.get_context("spawn")
        procs = [
            ctx.Process(target=_worker, args=(str(db_path), sid, jobs[w::WORKERS], str(directory)))
            for w in range(WORKERS)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        failed = [p.exitcode for p in procs if p.exitcode != 0]
        if failed:
            raise JoshregError(f"{len(failed)} demo worker(s) failed with exit codes {failed}")
        _conclude(reg, sid, jobs, directory, out)
    events = default_events_path(db_path)
    cli = _cli_name()
    out.write(
        f"\nregistry: {db_path}   event log: {events}/   ({time.perf_counter() - t0:.1f} s)\n"
        f"look around: {cli} log {db_path}   |   {cli} labels {db_path} --history\n"
    )
    return db_path


def run_demo_s3(directory: Path, events: str, environ: Mapping[str, str], out: TextIO | None = None) -> Path:
    """The same sweep with its events at ``events`` (``s3://bucket/prefix``); return the path of
    the registry that printed the report.

    ``environ`` holds the ``AWS_*`` variables that reach the bucket. The sweep is registered
    from ``directory/submit/``; the workers are subprocesses that get only ``events``, their
    jobs and ``environ``, each in a temporary folder of its own, and upload their exports to
    the bucket; a registry in ``directory`` (no file in common with the others) catches up from
    the bucket and reports, as ``run_demo`` does.
    """
    out = out or sys.stdout
    t0 = time.perf_counter()
    _prepare(directory)
    config, jobs = _sweep(directory)
    options = _storage_options(environ)
    (directory / "submit").mkdir()
    with RunRegistry(
        directory / "submit" / "sweep.duckdb", events_path=events, storage_options=options
    ) as reg:
        sid = _register(reg, config, jobs)
    bucket, prefix = split_s3_url(events)
    exports = f"s3://{bucket}/exports/{prefix.strip('/')}".rstrip("/")
    _run_s3_workers(events, sid, jobs, exports, environ)
    db_path = directory / "sweep.duckdb"
    with RunRegistry(db_path, events_path=events, storage_options=options) as reg:
        _conclude(reg, sid, jobs, directory, out)
    out.write(
        f"\nregistry: {db_path}   event log: {events}   exports: {exports}/   "
        f"({time.perf_counter() - t0:.1f} s)\n"
        f"{WORKERS} worker processes recorded into the bucket, sharing no folder with each other or "
        "with this registry\n"
    )
    return db_path


_OPTION_FOR_VARIABLE = {
    "AWS_ENDPOINT_URL": "endpoint_url",
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "AWS_SESSION_TOKEN": "aws_session_token",
    "AWS_REGION": "region",
    "AWS_ALLOW_HTTP": "allow_http",
}


def _storage_options(environ: Mapping[str, str]) -> dict[str, str]:
    """The workers' ``AWS_*`` variables as ``storage_options``, so this process reaches the
    same bucket without changing its own environment."""
    return {option: environ[name] for name, option in _OPTION_FOR_VARIABLE.items() if name in environ}


def _run_s3_workers(
    events: str, session_id: str, jobs: list[ExpandedJob], exports: str, environ: Mapping[str, str]
) -> None:
    """Start WORKERS subprocesses, each in its own temporary folder; their jobs go on stdin
    (as a batch system hands a job its spec). None inherits a store setting of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MINIO_"))}
    env.update(environ)
    code = "from joshreg.demo import s3_worker; s3_worker()"
    with contextlib.ExitStack() as stack:
        procs = []
        for w in range(WORKERS):
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"joshreg-demo-worker{w}-")))
            log = stack.enter_context(open(folder / "worker.log", "wb"))
            proc = subprocess.Popen(
                [sys.executable, "-c", code, events, session_id, exports],
                cwd=folder,
                env=env,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            assert proc.stdin is not None
            with proc.stdin:
                proc.stdin.write(pickle.dumps(jobs[w::WORKERS]))
            procs.append((proc, folder / "worker.log"))
        failed = [(proc.wait(), path.read_text(errors="replace")) for proc, path in procs]
        failed = [(status, text) for status, text in failed if status != 0]
    if failed:
        raise JoshregError(
            f"{len(failed)} demo worker(s) failed with exit codes {[status for status, _ in failed]}:\n"
            + failed[0][1][-2000:]
        )


def s3_worker() -> None:
    """A worker of ``run_demo_s3`` (``python -c``): arguments EVENTS SESSION EXPORTS, its jobs
    pickled on stdin, the bucket's settings in ``AWS_*``; works in the current folder."""
    events, session_id, outputs = sys.argv[1:4]
    jobs = pickle.loads(sys.stdin.buffer.read())
    exports = Path.cwd() / "exports"
    exports.mkdir()
    with RunRecorder(events_path=events, session_id=session_id) as rec:
        _record_jobs(rec, session_id, jobs, exports, outputs)


def _sweep(directory: Path) -> tuple[JobConfig, list[ExpandedJob]]:
    """Write the model and template into ``directory/models`` and expand the sweep's jobs."""
    (directory / "models").mkdir()
    source = directory / "models" / "main.josh"
    source.write_text(JOSH_SOURCE)
    template = directory / "models" / "sweep.jshc.j2"
    template.write_text(TEMPLATE)
    config = demo_config(source, template)
    return config, JobExpander().expand(config, output_dir=directory / "jobs").jobs


def _register(reg: RunRegistry, config: JobConfig, jobs: list[ExpandedJob]) -> str:
    """Open the demo's session and register every job; return the session id."""
    sid = reg.create_session(config, experiment_name="demo_sweep")
    for job in jobs:
        reg.register_run(
            sid,
            job.run_hash,
            str(config.source_path),
            job.config_content,
            None,
            job.parameters,
            josh_content=JOSH_SOURCE,
        )
    reg.update_session_status(sid, "running")
    return sid


def _conclude(reg: RunRegistry, sid: str, jobs: list[ExpandedJob], directory: Path, out: TextIO) -> None:
    """After the workers: close the session, move labels, and print, plot and bottle."""
    reg.update_session_status(sid, "completed")
    population = final_population(reg)
    best, second, third = sorted(population, key=population.__getitem__, reverse=True)[:3]
    reg.label_run(best, "baseline")
    reg.label_run(second, "candidate")
    reg.label_run(third, "baseline", on_collision="timestamp")

    _print_report(reg, jobs, population, out)
    _curate(reg, jobs, population, out)
    _print_results(reg, sid, out)
    _write_plots(reg, sid, directory / "plots", out)
    _print_provenance(reg, directory, out)


def final_population(reg: RunRegistry) -> dict[str, float]:
    """Mean trees per patch at the last step, over the replicates: what 'best run' means here."""
    rows = reg.query(
        "SELECT run_hash, round(avg(treeCount), 2) FROM cell_data "
        "WHERE step = (SELECT max(step) FROM cell_data) GROUP BY run_hash"
    ).fetchall()
    return dict(rows)


def _cli_name() -> str:
    """How to call the CLI from here: the script beside this interpreter (venvs are rarely active)."""
    script = Path(sys.executable).parent / "joshreg"
    if not script.exists():
        return "joshreg"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _print_report(
    reg: RunRegistry, jobs: list[ExpandedJob], population: dict[str, float], out: TextIO
) -> None:
    out.write("Sessions\n")
    out.write(format_table(SESSION_HEADERS, [session_table_row(r) for r in reg.sessions_overview()]))
    out.write("\n\nRuns\n")
    table = []
    for job in jobs:
        h, params = job.run_hash, job.parameters
        for r in reg.get_runs_for_hash(h):
            table.append(
                (
                    h,
                    params["maxGrowth"],
                    params["survivalRate"],
                    population.get(h),
                    r.exit_code,
                    format_duration(r.started_at, r.completed_at),
                    r.error_message,
                )
            )
    headers = ("RUN_HASH", "maxGrowth", "survivalRate", "TREES_AT_END", "EXIT", "DURATION", "ERROR")
    out.write(format_table(headers, table) + "\n\nLabels\n")
    labels = [label_table_row(r) for r in reg.labels_overview()]
    out.write(format_table(LABEL_HEADERS, labels) + "\n\nLabel history\n")
    out.write(format_table(HISTORY_HEADERS, history_rows(reg.label_history())) + "\n")


def _curate(reg: RunRegistry, jobs: list[ExpandedJob], population: dict[str, float], out: TextIO) -> None:
    """What a scientist says about the runs: the weakest marked bad, each tagged with its growth
    class, and a design asking for every configuration of each class to be good, checked."""
    weakest = min(population, key=population.__getitem__)
    reg.mark_run(weakest, "bad", reason="population collapsed; check survivalRate")
    for job in jobs:
        growth = "fast" if job.parameters["maxGrowth"] > MAX_GROWTH[0] else "slow"
        reg.set_attributes(job.run_hash, growth=growth)
    design = TargetDesign(
        "coverage", [Requirement({"growth": "fast"}, 6), Requirement({"growth": "slow"}, 4)]
    )
    reg.register_design(design)
    report = reg.check_design("coverage")
    out.write("\nStatus and attributes (mark_run, set_attributes; every change kept)\n")
    rows = [(s.run_hash, s.status, s.reason) for s in reg.run_statuses() if s.status is not None]
    out.write(format_table(("RUN_HASH", "STATUS", "REASON"), rows) + "\n")
    out.write("\nTarget design coverage (check_design: only active runs count)\n")
    coverage = [
        (r.attributes["growth"], f"{r.found}/{r.min_active}", "met" if r.satisfied else "UNMET")
        for r in report.requirements
    ]
    out.write(format_table(("GROWTH", "ACTIVE", ""), coverage) + "\n")


def _print_results(reg: RunRegistry, sid: str, out: TextIO) -> None:
    """The loaded exports: a summary, then one query through a time and a spatial filter."""
    out.write("\nSimulation results (Josh CSV exports loaded by the workers)\n")
    if hasattr(reg, "get_data_summary"):
        out.write(f"{reg.get_data_summary(sid)}\n")
    else:
        rows, configs, lo, hi = reg.query(
            "SELECT count(*), count(DISTINCT run_hash), min(step), max(step) FROM cell_data"
        ).fetchone()
        out.write(f"Rows: {rows:,}   Configs: {configs}   Steps: {lo} - {hi}\n")

    steps = (STEPS // 2, STEPS - 1)
    bbox = (ORIGIN[0], ORIGIN[0] + 2 * CELL, ORIGIN[1], ORIGIN[1] + 2 * CELL)
    with reg.time_filter(steps), reg.spatial_filter(bbox=bbox):
        clause, params = reg.filter_clause("cd")
        rows = reg.query(
            'SELECT cd.run_hash, cp.maxGrowth, cp.survivalRate, count(*), round(avg(cd."avg.height"), 2), '
            "round(avg(cd.treeCount), 1) AS trees "
            "FROM cell_data cd JOIN config_parameters cp ON cp.run_hash = cd.run_hash "
            f"WHERE TRUE{clause} GROUP BY ALL ORDER BY trees DESC LIMIT 5",
            params,
        ).fetchall()
    out.write(
        f"\nFiltered query: steps {steps[0]}-{steps[1]} in the south-west corner, lon {bbox[0]}..{bbox[1]}, "
        f"lat {bbox[2]}..{bbox[3]}\n  with reg.time_filter({steps}), reg.spatial_filter(bbox={bbox}):\n"
        f'      reg.filter_clause("cd") → "{clause.removeprefix(" AND ")}"\n'
    )
    headers = ("RUN_HASH", "maxGrowth", "survivalRate", "ROWS", "avg.height", "treeCount")
    out.write(format_table(headers, rows) + "\n")


def _write_plots(reg: RunRegistry, sid: str, folder: Path, out: TextIO) -> None:
    """Three PNGs: every configuration over time, growth compared, the baseline's map."""
    try:
        import matplotlib  # noqa: F401  (only to say plainly why there are no plots)
    except ImportError:
        out.write("\nPlots skipped: matplotlib is not installed (pip install 'joshreg[plot]')\n")
        return
    folder.mkdir()
    baseline = reg.resolve_label("baseline")
    paths = [
        plot_timeseries(reg, "treeCount", session_id=sid, path=folder / "timeseries_treeCount.png"),
        plot_comparison(reg, "avg.height", "maxGrowth", path=folder / "comparison_height_by_maxGrowth.png"),
        plot_spatial(reg, "treeCount", STEPS - 1, baseline, path=folder / "map_treeCount_baseline.png"),
    ]
    out.write("\nPlots\n" + "".join(f"  {p}\n" for p in paths))


def _print_provenance(reg: RunRegistry, directory: Path, out: TextIO) -> None:
    """Bottle the baseline, unpack it somewhere else, and diff two runs' configs."""
    archive = reg.bottle("baseline", output_dir=directory / "bottles")
    out.write(f"\nBottle of the baseline run: {archive}\n")
    with tempfile.TemporaryDirectory(prefix="joshreg-demo-unbottle-") as tmp:
        (job,) = unbottle(archive, extract_dir=tmp)
        root = Path(job.config_path).parent
        out.write(f"  unbottled into a temporary directory: {sorted(p.name for p in root.iterdir())}\n")
        command = [line.strip(" \\") for line in (root / "run.sh").read_text().splitlines()]
        start = next(i for i, line in enumerate(command) if line.startswith("java "))
        out.write("  run.sh: " + " ".join(command[start:]) + "\n")
    out.write("\nConfig diff, baseline vs candidate (joshreg diff REGISTRY baseline candidate):\n")
    out.write(reg.diff_configs("baseline", "candidate"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m joshreg.demo",
        description="Run a 12-configuration demo sweep with 4 concurrent worker processes.",
        epilog="example:\n  python -m joshreg.demo --dir /tmp/joshreg-demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dir", default="demo-output", help="where to write the registry (wiped first; default: demo-output)"
    )
    args = parser.parse_args(argv)
    try:
        run_demo(Path(args.dir))
    except JoshregError as e:
        sys.stderr.write(f"joshreg.demo: error: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
